"""Push pairs to Label Studio as tasks, pull verdicts into the catalog, decide pairs, route splits to adjudication.

Label Studio Community has overlap (`maximum_annotations`) but no roles, agreement or review stage, so those
live here, with the catalog as the truth: the quorum is the overlap cinectrl set (never read back from the
server, where any member can change it), the project settings are checked and restored on every push and pull,
a verdict counts only under the rules in `annotate/gate.py`, and only tasks cinectrl pushed are read. A split
goes to a separate adjudication project whose task shows every earlier verdict by account.

A server is keyed by its instance (annotate/server.py `identify`): every URL that reaches it finds the same
projects, and pushing to a new server only adds tasks; it never changes a decided pair.
"""

from __future__ import annotations

import contextlib
import html
import json
import posixpath
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from capture.catalog import REVIEW_COLUMNS, Catalog, sha256_file

from . import accounts, gate, gold, integrity, media, report
from .config import ADJUDICATION_CONFIG, DEFAULT_OVERLAP, PROJECT_SETTINGS, REVIEW_CONFIG
from .server import Connection, ServerError, http_error, identify, request, shared_http, unreachable

REVIEW_TITLE = "cinectrl pair review"
ADJUDICATION_TITLE = "cinectrl pair adjudication"
TITLES = {"review": REVIEW_TITLE, "adjudication": ADJUDICATION_TITLE}
CONFIGS = {"review": REVIEW_CONFIG, "adjudication": ADJUDICATION_CONFIG}
BATCH = 1000
NO_EARLIER = "<p>No earlier verdicts recorded.</p>"


def client(conn: Connection) -> LabelStudio:
    return LabelStudio(base_url=conn.url, api_key=conn.token, timeout=120, httpx_client=shared_http())


def _explain(exc: Exception, conn: Connection) -> ServerError:
    if isinstance(exc, ServerError):
        return exc
    if isinstance(exc, ApiError):
        headers = getattr(exc, "headers", None) or {}
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)
        ctype = headers.get("content-type", "application/json" if not isinstance(exc.body, str) else "")
        return http_error(conn, exc.status_code or 0, ctype, body)
    return unreachable(conn, exc)


@contextlib.contextmanager
def _guard(conn: Connection) -> Iterator[None]:
    """Every SDK/HTTP failure inside becomes a one-line ServerError (never the token, never a web page)."""
    try:
        yield
    except (ApiError, httpx.HTTPError) as exc:
        raise _explain(exc, conn) from None


# ------------------------------------------------------------------------------------------- server identity

def open_server(cat: Catalog, conn: Connection, *, record: bool = True) -> Connection:
    """Identify the server (clear errors for a wrong URL, path or token) and adopt what an older cinectrl
    recorded for it under a URL or 'local'. `record=False` (a status) only identifies: it writes nothing."""
    conn = identify(conn) if not conn.key else conn
    if not record:
        return conn
    legacy = [r[0] for r in cat.conn.execute("SELECT DISTINCT server FROM ls_projects WHERE server NOT LIKE 'ls-%'")]
    mine = cat.conn.execute("SELECT count(*) FROM ls_projects WHERE server = ?", (conn.key,)).fetchone()[0]
    for old in legacy:
        if not mine and _recorded_here(cat, conn, old):
            _adopt(cat, old, conn.key)
            mine = 1
    with cat.transaction():
        cat.conn.execute("UPDATE ls_projects SET url = ? WHERE server = ? AND coalesce(url, '') != ?",
                         (conn.url, conn.key, conn.url))
    return conn


def _recorded_here(cat: Catalog, conn: Connection, old_key: str) -> bool:
    """Whether the tasks recorded under `old_key` are on this server (one task checked per project)."""
    for project_id, task_id, pair_id in cat.conn.execute(
            "SELECT project_id, min(task_id), pair_id FROM ls_tasks WHERE server = ? GROUP BY project_id", (old_key,)):
        try:
            task = request(conn, "GET", f"/api/tasks/{task_id}").json()
        except ServerError:
            return False
        if task.get("project") != project_id or int(task.get("data", {}).get("pair_id", -1)) != pair_id:
            return False
    return bool(cat.conn.execute("SELECT 1 FROM ls_tasks WHERE server = ?", (old_key,)).fetchone())


def _adopt(cat: Catalog, old: str, key: str) -> None:
    with cat.transaction():
        cat.conn.execute("UPDATE ls_projects SET server = ? WHERE server = ?", (key, old))
        cat.conn.execute("UPDATE ls_tasks SET server = ? WHERE server = ?", (key, old))
        for prefix in ("ls", "ls-adj"):
            cat.conn.execute("UPDATE reviews SET external_id = 'ls:' || ? || substr(external_id, ?) "
                             "WHERE external_id LIKE ?", (key, len(f"{prefix}:{old}") + 1, f"{prefix}:{old}:%"))


# ------------------------------------------------------------------------------------------- projects

def _projects(cat: Catalog, key: str) -> dict[str, tuple[int, int | None]]:
    return {r[0]: (int(r[1]), r[2]) for r in cat.conn.execute(
        "SELECT kind, project_id, overlap FROM ls_projects WHERE server = ?", (key,))}


def _project_settings(kind: str, overlap: int) -> dict[str, Any]:
    return {**PROJECT_SETTINGS, "label_config": CONFIGS[kind], "maximum_annotations": overlap}


def _ensure_project(cat: Catalog, conn: Connection, kind: str, overlap: int | None
                    ) -> tuple[int, int, list[str] | None]:
    """The project of `kind` on this server (created on first use) and its quorum; settings restored. The list
    of restored settings is None for a project created just now."""
    known = _projects(cat, conn.key).get(kind)
    if known is None:
        overlap = overlap or (1 if kind == "adjudication" else DEFAULT_OVERLAP)
        p = request(conn, "POST", "/api/projects/", json={
            "title": TITLES[kind], **_project_settings(kind, overlap),
            "description": "cinectrl: review each clip pair; verdicts are counted by cinectrl's gate"}).json()
        with cat.transaction():
            cat.conn.execute("INSERT INTO ls_projects (kind, server, project_id, overlap, url) VALUES (?,?,?,?,?)",
                             (kind, conn.key, p["id"], overlap, conn.url))
        return int(p["id"]), overlap, None
    project_id, recorded = known
    if recorded is None:   # recorded by an older cinectrl: adopt what the project was created with
        recorded = int(request(conn, "GET", f"/api/projects/{project_id}/").json().get("maximum_annotations") or 1)
        with cat.transaction():
            cat.conn.execute("UPDATE ls_projects SET overlap = ? WHERE kind = ? AND server = ?",
                             (recorded, kind, conn.key))
    if overlap is not None and overlap != recorded:
        held = cat.conn.execute("SELECT count(*) FROM reviews WHERE counted = 1 AND external_id LIKE ?",
                                (f"ls:{conn.key}:{project_id}:%",)).fetchone()[0]
        # the catalog's counted verdicts decide (any member can delete the server's); verdicts not pulled yet
        # would be judged by the new quorum, so those refuse too
        project = {} if held else request(conn, "GET", f"/api/projects/{project_id}/").json()
        if held or project.get("total_annotations_number") or project.get("num_tasks_with_annotations"):
            what = f"the catalog holds {held} counted verdicts from it" if held else "it has verdicts not pulled yet"
            raise ServerError(f"project {project_id} on {conn.url} already collects {recorded} verdicts per pair and "
                              f"{what}: changing it to {overlap} would re-decide pairs already decided. Keep "
                              f"--overlap {recorded} (or leave it out)")
        with cat.transaction():
            cat.conn.execute("UPDATE ls_projects SET overlap = ? WHERE kind = ? AND server = ?",
                             (overlap, kind, conn.key))
        recorded = overlap
    return project_id, recorded, enforce_settings(cat, conn, kind, project_id, recorded)


def enforce_settings(cat: Catalog, conn: Connection, kind: str, project_id: int, overlap: int) -> list[str]:
    """Put back any project setting someone changed on the server; returns the names restored. A project made
    by an older cinectrl also loses its QC pre-annotations and gets the current view and task data."""
    try:
        project = request(conn, "GET", f"/api/projects/{project_id}/").json()
    except ServerError as exc:
        if "404" in str(exc):
            raise ServerError(f"project {project_id} recorded for {conn.url} is gone from the server (deleted "
                              f"there?); nothing was changed in the catalog") from None
        raise
    wanted = _project_settings(kind, overlap)
    changed = {k: v for k, v in wanted.items() if _differs(project.get(k), v)}
    if not changed:
        return []
    request(conn, "PATCH", f"/api/projects/{project_id}/", json=changed)
    if "label_config" in changed:
        _upgrade_tasks(cat, conn, kind, project_id)
    return sorted(changed)


def _differs(have: Any, want: Any) -> bool:
    if isinstance(want, str):
        return " ".join(str(have or "").split()) != " ".join(want.split())
    return have != want


def _upgrade_tasks(cat: Catalog, conn: Connection, kind: str, project_id: int) -> None:
    """Tasks pushed under an older view: drop their predictions (the old QC pre-selected a verdict) and give
    them the data the current view needs."""
    request(conn, "POST", "/api/dm/actions", params={"id": "delete_tasks_predictions", "project": project_id},
            json={"selectedItems": {"all": True, "excluded": []}, "project": project_id})
    rows = cat.rows("SELECT task_id, pair_id FROM ls_tasks WHERE server = ? AND project_id = ?",
                    (conn.key, project_id))
    if not rows:
        return
    pairs = {p["pair_id"]: p for p in review_pairs(cat)}
    wanted = [pairs[r["pair_id"]] for r in rows if r["pair_id"] in pairs]
    _rewrite(cat, conn, kind, project_id, {r["pair_id"]: r["task_id"] for r in rows}, wanted)


def _rewrite(cat: Catalog, conn: Connection, kind: str, project_id: int, tasks: Mapping[int, int],
             pairs: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Write the data cinectrl means each task (pair id -> task id) to show, sealed and recorded."""
    if pairs is None:
        pairs = [p for p in review_pairs(cat) if p["pair_id"] in tasks]
    data = _task_data(cat, [p for p in pairs if p["pair_id"] in tasks], adjudication=kind == "adjudication")
    integrity.seal(cat, conn.key, project_id, data)
    for pair_id, d in data.items():
        request(conn, "PATCH", f"/api/tasks/{tasks[pair_id]}", json={"data": d})


# ------------------------------------------------------------------------------------------- tasks

def review_pairs(cat: Catalog, session_id: int | None = None) -> list[dict[str, Any]]:
    """Pairs with their clip fps and gold marks (what push and the gate need beyond `Catalog.pairs`)."""
    pairs = cat.pairs(session_id=session_id, gold=None)
    fps = {r["id"]: r["fps"] for r in cat.rows("SELECT id, fps FROM clips")}
    golds = gold.gold_info(cat)
    for p in pairs:
        p["fps"] = fps.get(p["reference_clip_id"]) or 24
        info = golds.get(p["pair_id"], {})
        p["gold_kind"], p["gold_source_pair_id"] = info.get("kind"), info.get("source")
    return pairs


def _media_url(rel: str) -> str:
    return "/data/local-files/?d=" + rel


def _ensure_storages(conn: Connection, project_id: int, cat: Catalog, rels: Iterable[str], *, new: bool = False
                     ) -> None:
    """A Local Files storage per media folder: without one, /data/local-files answers 404."""
    have = set() if new else {s["path"] for s in request(conn, "GET", "/api/storages/localfiles",
                                                          params={"project": project_id}).json()}
    for folder in sorted({str(cat.abspath(rel)) for rel in {posixpath.dirname(r) or "." for r in rels}}):
        if folder == str(cat.data_root):
            raise ServerError(f"clips directly in the catalog folder {folder} cannot be served: keep media in a "
                              "subfolder (e.g. media/) of the catalog's folder")
        if folder not in have:
            request(conn, "POST", "/api/storages/localfiles", json={
                "project": project_id, "path": folder, "title": Path(folder).name[:200], "use_blob_urls": False})


def _task_data(cat: Catalog, pairs: Sequence[Mapping[str, Any]], *, adjudication: bool = False
               ) -> dict[int, dict[str, Any]]:
    """The data of each pair's task: three clip URLs, titles that say what changed, the settings table and
    the QC as information (never a verdict); for adjudication, the earlier verdicts by account."""
    diffs = media.ensure_difference_clips(cat, pairs)
    all_pairs = {p["pair_id"]: p for p in pairs}
    sources = {p["gold_source_pair_id"] for p in pairs if p.get("gold_source_pair_id")} - set(all_pairs)
    if sources:
        all_pairs.update({p["pair_id"]: p for p in cat.pairs() if p["pair_id"] in sources})
    readings = media.clip_readings(cat, [c for p in all_pairs.values()
                                         for c in (p["reference_clip_id"], p["other_clip_id"])])
    earlier = earlier_verdicts(cat, [p["pair_id"] for p in pairs]) if adjudication else {}
    out = {}
    for p in pairs:
        seen = readings
        if p.get("gold_source_pair_id") in all_pairs:   # a gold clip reads like the clip it was made from
            seen = {**readings, p["other_clip_id"]: readings.get(all_pairs[p["gold_source_pair_id"]]["other_clip_id"],
                                                                 {})}
        ref, oth = p["reference_settings"] or {}, p["other_settings"] or {}
        data = {
            "pair_id": p["pair_id"], "fps": p["fps"],
            "video_a": _media_url(media.review_path(p, "reference")),
            "video_b": _media_url(media.review_path(p, "other")),
            "video_diff": _media_url(diffs[p["pair_id"]]),
            "title_a": f"Reference: {media.describe(ref)}", "title_b": f"Other: {media.describe(oth)}",
            "title_diff": "Difference |reference - other|, exposure-normalised",
            "change": media.change_text(ref, oth),
            "settings_html": media.settings_html(p, seen), "qc_html": media.qc_html(p.get("qc")),
        }
        if adjudication:
            data["earlier_html"] = earlier.get(p["pair_id"], NO_EARLIER)
        out[p["pair_id"]] = data
    return out


def _reconcile(cat: Catalog, conn: Connection, project_id: int, kind: str) -> list[dict[str, Any]]:
    """After an interrupted push the server may hold tasks cinectrl imported but never recorded: adopt those
    whose seal is the one the catalog recorded for their pair (never a task someone else imported, whatever
    pair id its data names); note the others as foreign. Adopted pairs move to in_review like pushed ones."""
    known = cat.conn.execute("SELECT count(*) FROM ls_tasks WHERE server = ? AND project_id = ?",
                             (conn.key, project_id)).fetchone()[0]
    if request(conn, "GET", f"/api/projects/{project_id}/").json().get("task_number") == known:
        return integrity.foreign(cat, conn.key)
    recorded = {r[0]: r[1] for r in cat.conn.execute(
        "SELECT task_id, pair_id FROM ls_tasks WHERE server = ? AND project_id = ?", (conn.key, project_id))}
    tasks = [(t.id, t.data or {}) for t in client(conn).tasks.list(project=project_id, fields="task_only")
             if t.id not in recorded]
    adopted = integrity.adoptable(cat, conn.key, project_id, tasks, set(recorded.values()))
    with cat.transaction():
        for pair_id, task_id in adopted.items():
            cat.conn.execute("INSERT OR IGNORE INTO ls_tasks (server, project_id, task_id, pair_id, kind) "
                             "VALUES (?,?,?,?,?)", (conn.key, project_id, task_id, pair_id, kind))
        if kind == "review" and adopted:
            _mark_in_review(cat, list(adopted))
    mine = set(adopted.values())
    return integrity.note_foreign(cat, conn.key, project_id, [t for t in tasks if t[0] not in mine])


def _mark_in_review(cat: Catalog, pair_ids: Sequence[int]) -> None:
    """A pushed pair is in review; a decided one stays decided, whatever server it is pushed to."""
    with cat.transaction():
        todo = cat.conn.execute("SELECT id FROM pairs WHERE review_state = 'unreviewed' AND id IN "
                                "(SELECT value FROM json_each(?))", (json.dumps(list(pair_ids)),)).fetchall()
        for (pair_id,) in todo:
            cat.set_pair_state(pair_id, review_state="in_review")


def _import(cat: Catalog, conn: Connection, project_id: int, kind: str, pairs: Sequence[Mapping[str, Any]], *,
            new_project: bool = False) -> int:
    if not pairs:
        return 0
    data = _task_data(cat, pairs, adjudication=kind == "adjudication")
    _ensure_storages(conn, project_id, cat, [d[k].split("?d=", 1)[1] for d in data.values()
                                             for k in ("video_a", "video_b", "video_diff")], new=new_project)
    integrity.seal(cat, conn.key, project_id, data)   # recorded before the import: only these are adopted
    ls = client(conn)
    for i in range(0, len(pairs), BATCH):
        batch = pairs[i:i + BATCH]
        res = ls.projects.import_tasks(id=project_id, request=[{"data": data[p["pair_id"]]} for p in batch],
                                       return_task_ids=True)
        with cat.transaction():
            cat.conn.executemany(
                "INSERT OR IGNORE INTO ls_tasks (server, project_id, task_id, pair_id, kind, context_sha) "
                "VALUES (?,?,?,?,?,?)",
                [(conn.key, project_id, tid, p["pair_id"], kind,
                  _context_sha(data[p["pair_id"]]) if kind == "adjudication" else None)
                 for tid, p in zip(res.task_ids, batch)])
            if kind == "review":
                _mark_in_review(cat, [p["pair_id"] for p in batch])
    return len(pairs)


@dataclass
class PushResult:
    project_id: int
    added: int
    already: int
    gold: int = 0
    overlap: int = DEFAULT_OVERLAP
    restored: list[str] = field(default_factory=list)
    foreign: list[dict[str, Any]] = field(default_factory=list)   # tasks on the server cinectrl did not push
    identical: list[tuple[int, int]] = field(default_factory=list)   # (pair, pair it shows the same bytes as)


def push(cat: Catalog, conn: Connection, *, session_id: int | None = None, overlap: int | None = None,
         gold_rate: float = 0.0, seed: int | None = None) -> PushResult:
    """Import pairs not yet on the server as tasks (idempotent). `overlap` verdicts per pair = the quorum (a new
    project defaults to 2; an existing one changes only while it has no verdicts). With `gold_rate`, that many
    gold pairs per new real pair are made and mixed in."""
    if not 0.0 <= gold_rate <= 1.0:
        raise ServerError(f"--gold-rate {gold_rate} is not a fraction between 0 and 1 (e.g. 0.1: one gold task per "
                          "ten pairs)")
    conn = open_server(cat, conn)
    with _guard(conn):
        project_id, quorum, restored = _ensure_project(cat, conn, "review", overlap)
        new_project = restored is None
        foreign = [] if new_project else _reconcile(cat, conn, project_id, "review")
        done = {r[0] for r in cat.conn.execute("SELECT pair_id FROM ls_tasks WHERE server = ? AND project_id = ?",
                                               (conn.key, project_id))}
        pairs = review_pairs(cat, session_id)
        real = [p for p in pairs if not gold.is_gold(p) and p["pair_id"] not in done]
        real, identical = _distinct(cat, real, [p for p in review_pairs(cat) if p["pair_id"] in done])
        waiting_gold = [p for p in pairs if gold.is_gold(p) and p["pair_id"] not in done]
        rng = random.Random(seed)
        n_gold = round(len(real) * gold_rate)
        if gold_rate > 0 and real and n_gold == 0:
            n_gold = 1
        n_gold -= len(waiting_gold)   # made by an interrupted push of these pairs: not made twice
        if n_gold > 0:
            accepted = [p for p in pairs if p["review_state"] == "accepted" and not gold.is_gold(p)]
            made = set(gold.make_gold(cat, n_gold, accepted or real, rng=rng))
            waiting_gold += [p for p in review_pairs(cat, session_id) if p["pair_id"] in made]
        todo = real + waiting_gold
        if waiting_gold:
            rng.shuffle(todo)
        _import(cat, conn, project_id, "review", todo, new_project=new_project)
    return PushResult(project_id, len(real), sum(p["pair_id"] in done for p in pairs), len(waiting_gold), quorum,
                      restored or [], foreign, identical)


def _distinct(cat: Catalog, todo: Sequence[Mapping[str, Any]], pushed: Sequence[Mapping[str, Any]]
              ) -> tuple[list[Mapping[str, Any]], list[tuple[int, int]]]:
    """One task per distinct view: a pair whose two clips are byte-identical (sha256) to those of a pair
    already pushed or earlier in the list (identical takes) is not pushed; returns (to push, [(pair, same
    as pair)])."""
    known = {r[0]: r[1] for r in cat.conn.execute("SELECT path, sha256 FROM assets WHERE sha256 IS NOT NULL")}

    def sha(rel: str) -> str:
        if rel not in known:
            known[rel] = sha256_file(cat.abspath(rel))
        return known[rel]

    def key(p: Mapping[str, Any]) -> tuple[str, str]:
        return sha(media.review_path(p, "reference")), sha(media.review_path(p, "other"))

    first = {key(p): p["pair_id"] for p in sorted(pushed, key=lambda p: -p["pair_id"])}
    keep, identical = [], []
    for p in sorted(todo, key=lambda p: p["pair_id"]):
        k = key(p)
        if k in first:
            identical.append((p["pair_id"], first[k]))
        else:
            first[k] = p["pair_id"]
            keep.append(p)
    return keep, identical


# ------------------------------------------------------------------------------------------- pull

@dataclass
class PullResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_pairs: int = 0
    adjudication_pushed: int = 0
    adjudication_refreshed: int = 0
    foreign_tasks: int = 0
    states: Counter = field(default_factory=Counter)      # real pairs by state (gold pairs in `gold_states`)
    gold_states: Counter = field(default_factory=Counter)
    ignored: Counter = field(default_factory=Counter)
    restored: list[str] = field(default_factory=list)
    foreign: list[dict[str, Any]] = field(default_factory=list)       # tasks cinectrl did not push (all known)
    tampered: list[dict[str, Any]] = field(default_factory=list)      # tasks whose data was put back this pull
    vanished: list[dict[str, Any]] = field(default_factory=list)      # verdicts held here, gone from the server
    overlap_raised: list[dict[str, Any]] = field(default_factory=list)  # tasks given room for counted verdicts
    stalled: dict[int, str] = field(default_factory=dict)             # pairs that cannot reach a decision: why

    @property
    def nothing_changed(self) -> bool:
        return not (self.added or self.updated or self.changed_pairs or self.adjudication_pushed
                    or self.adjudication_refreshed or self.tampered or self.overlap_raised)


def _parse(result: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"verdict": None, "reasons": [], "rating": None, "defects": [], "notes": None}
    for item in result or []:
        name, value = item.get("from_name"), item.get("value", {})
        if name == "verdict" and value.get("choices"):
            out["verdict"] = value["choices"][0]
        elif name == "reasons":
            out["reasons"] = list(value.get("choices", []))
        elif name == "effect_clarity":
            out["rating"] = value.get("rating")
        elif name == "defects":
            out["defects"] += [[int(r["start"]), int(r["end"])] for r in value.get("ranges", [])]
        elif name == "notes":
            out["notes"] = "\n".join(value.get("text", [])) or None
    return out


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _user_id(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def _fresh(cat: Catalog, records: Sequence[Mapping[str, Any]]) -> set[str]:
    """External ids of records the catalog does not hold yet, or holds with other values."""
    existing = cat.review_values(r["external_id"] for r in records)
    return {r["external_id"] for r in records if existing.get(r["external_id"]) != tuple(r[c] for c in REVIEW_COLUMNS)}


def _upsert_reviews(cat: Catalog, records: list[dict[str, Any]], out: PullResult) -> None:
    """One row per annotation (by external id); a row is written only when something in it changed."""
    counts = cat.upsert_reviews(records)
    out.added, out.updated, out.unchanged = counts["added"], counts["updated"], counts["unchanged"]


def _export(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    return request(conn, "GET", f"/api/projects/{project_id}/export", params={"exportType": "JSON"},
                   timeout=300).json()


def pull(cat: Catalog, conn: Connection) -> PullResult:
    """Verdicts -> reviews (idempotent by annotation id); decide pairs; route splits to adjudication. Only tasks
    cinectrl pushed are read, each checked against the data cinectrl pushed (put back when it differs)."""
    conn = open_server(cat, conn)
    projects = _projects(cat, conn.key)
    if "review" not in projects:
        raise ServerError(f"this catalog has pushed nothing to {conn.url} yet: run `cinectrl review push` first")
    out = PullResult()
    with _guard(conn):
        registered = {uid: a.email for (srv, uid), a in accounts.registry(cat).items() if srv == conn.key}
        users = accounts.server_users(conn)
        tasks = {(r[0], r[1]): r[2] for r in cat.conn.execute(
            "SELECT project_id, task_id, pair_id FROM ls_tasks WHERE server = ?", (conn.key,))}
        records: list[dict[str, Any]] = []
        on_task: dict[tuple[int, int], list[str]] = {}     # (project, task) -> every annotation's external id
        tampered: list[tuple[str, int, int, int]] = []     # kind, project, task, pair
        unsealed: list[tuple[str, int, int, int]] = []
        seen: set[str] = set()
        for kind, (project_id, overlap) in projects.items():
            out.restored += [f"{kind}.{name}" for name in
                             enforce_settings(cat, conn, kind, project_id, overlap or _overlap(kind))]
            sealed = integrity.seals(cat, conn.key, project_id)
            strangers = []
            for task in _export(conn, project_id):
                pair_id = tasks.get((project_id, task["id"]))
                if pair_id is None:   # a task cinectrl did not push (imported by someone else): never read
                    strangers.append((task["id"], task.get("data") or {}))
                    continue
                mine = sealed.get(pair_id)
                if mine is None:
                    unsealed.append((kind, project_id, task["id"], pair_id))
                elif integrity.data_sha(task.get("data") or {}) != mine[1]:
                    tampered.append((kind, project_id, task["id"], pair_id))
                ids = on_task.setdefault((project_id, task["id"]), [])
                for ann in task.get("annotations", []):
                    external_id = f"ls:{conn.key}:{project_id}:{ann['id']}"
                    ids.append(external_id)
                    seen.add(external_id)
                    parsed = _parse(ann.get("result", []))
                    if ann.get("was_cancelled") or parsed["verdict"] is None:
                        continue
                    who = _user_id(ann.get("completed_by"))
                    records.append({
                        "pair_id": pair_id, "annotator": registered.get(who) or users.get(who) or f"user {who}",
                        "created_at": _ts(ann.get("created_at")) or time.time(), "verdict": parsed["verdict"],
                        "reasons_json": json.dumps(parsed["reasons"]), "rating": parsed["rating"],
                        "defects_json": json.dumps(parsed["defects"]), "notes": parsed["notes"], "stage": kind,
                        "server": conn.key, "account_id": who, "updated_by": _user_id(ann.get("updated_by")),
                        "updated_at": _ts(ann.get("updated_at")), "lead_time_s": ann.get("lead_time"),
                        "external_id": external_id, "_task": task["id"]})
            if strangers:
                integrity.note_foreign(cat, conn.key, project_id, strangers)
        out.foreign = integrity.foreign(cat, conn.key)
        out.foreign_tasks = len(out.foreign)
        if tampered:
            out.tampered = _put_back(cat, conn, tampered, records)
        if unsealed:   # pushed by an older cinectrl: sealed now with the data it should show
            _seal_existing(cat, conn, unsealed)
        out.vanished = _vanished(cat, conn.key, projects, seen)
        _upsert_reviews(cat, records, out)
        names = {**users, **registered}
        decided = decide(cat, out=out, names=names)
        out.overlap_raised = _make_room(cat, conn, projects, on_task)
        to_adjudicate = [p for p in review_pairs(cat) if p["pair_id"] in decided and not gold.is_gold(p)]
        already = {r[0] for r in cat.conn.execute("SELECT pair_id FROM ls_tasks WHERE server = ? AND kind = "
                                                  "'adjudication'", (conn.key,))}
        out.adjudication_refreshed = _refresh_context(cat, conn)   # before new tasks: those are not "refreshed"
        new = [p for p in to_adjudicate if p["pair_id"] not in already]
        if new:
            adj_id, _, restored = _ensure_project(cat, conn, "adjudication", None)
            out.adjudication_pushed = _import(cat, conn, adj_id, "adjudication", new, new_project=restored is None)
        out.stalled = report.stalled(cat, conn.key)
    return out


def _by_pair(kind_tasks: Iterable[tuple[str, int, int, int]]) -> dict[tuple[str, int], dict[int, int]]:
    out: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
    for kind, project_id, task_id, pair_id in kind_tasks:
        out[(kind, project_id)][pair_id] = task_id
    return out


def _put_back(cat: Catalog, conn: Connection, tampered: list[tuple[str, int, int, int]],
              records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks whose data is not what cinectrl pushed: write it back, and mark the verdicts on them that this
    pull brings in new or changed as made on another view (not counted until their author saves again)."""
    for (kind, project_id), by_pair in _by_pair(tampered).items():
        _rewrite(cat, conn, kind, project_id, by_pair)
    task_ids = {t[2] for t in tampered}
    mine = [r for r in records if r["_task"] in task_ids]
    fresh = _fresh(cat, mine)
    integrity.taint(cat, [(r["external_id"], r["updated_at"], r["_task"]) for r in mine
                          if r["external_id"] in fresh])
    return [{"pair_id": pair_id, "task_id": task_id, "stage": kind,
             "accounts": sorted({r["annotator"] for r in mine if r["_task"] == task_id
                                 and r["external_id"] in fresh})}
            for kind, _, task_id, pair_id in tampered]


def _seal_existing(cat: Catalog, conn: Connection, unsealed: list[tuple[str, int, int, int]]) -> None:
    for (kind, project_id), by_pair in _by_pair(unsealed).items():
        _rewrite(cat, conn, kind, project_id, by_pair)


def _vanished(cat: Catalog, key: str, projects: Mapping[str, tuple[int, int | None]], seen: set[str]
              ) -> list[dict[str, Any]]:
    """Verdicts the catalog pulled from these projects that the server no longer has (deleted there): noted
    and reported; the catalog's copy still counts."""
    held = [r[0] for project_id, _ in projects.values() for r in cat.conn.execute(
        "SELECT external_id FROM reviews WHERE external_id LIKE ?", (f"ls:{key}:{project_id}:%",))]
    new = set(integrity.note_vanished(cat, [e for e in held if e not in seen]))
    return [v for v in integrity.vanished(cat) if v["external_id"] in new]


def _make_room(cat: Catalog, conn: Connection, projects: Mapping[str, tuple[int, int | None]],
               on_task: Mapping[tuple[int, int], list[str]]) -> list[dict[str, Any]]:
    """Label Studio closes a task once it holds `overlap` annotations, counted by the gate or not (a blank
    submit, an unregistered account, a forged adjudication). For every task of a pair still open, the overlap
    becomes the quorum plus the annotations the gate does not count, so the queue keeps it for those whose
    verdicts would count."""
    counted = {r[0] for r in cat.conn.execute("SELECT external_id FROM reviews WHERE counted = 1 AND server = ?",
                                              (conn.key,))}
    state = dict(cat.conn.execute("SELECT id, review_state FROM pairs"))
    open_in = {"review": ("unreviewed", "in_review"), "adjudication": ("disputed",)}
    pair_of = {(r[0], r[1]): r[2] for r in cat.conn.execute(
        "SELECT project_id, task_id, pair_id FROM ls_tasks WHERE server = ?", (conn.key,))}
    raised = []
    for kind, (project_id, overlap) in projects.items():
        quorum = overlap or _overlap(kind)
        for (pid, task_id), ids in on_task.items():
            if pid != project_id or state.get(pair_of.get((pid, task_id))) not in open_in[kind]:
                continue
            uncounted = sum(e not in counted for e in ids)
            if not uncounted:
                continue
            wanted = quorum + uncounted
            task = request(conn, "GET", f"/api/tasks/{task_id}").json()
            labeled = len(ids) >= wanted
            if task.get("overlap") != wanted or bool(task.get("is_labeled")) != labeled:
                request(conn, "PATCH", f"/api/tasks/{task_id}", json={"overlap": wanted, "is_labeled": labeled})
                raised.append({"pair_id": pair_of[(pid, task_id)], "task_id": task_id, "stage": kind,
                               "overlap": wanted, "uncounted": uncounted})
    return raised


def _overlap(kind: str) -> int:
    return 1 if kind == "adjudication" else DEFAULT_OVERLAP


def _context_sha(data: Mapping[str, Any]) -> str:
    return media.data_sha({"earlier_html": data["earlier_html"]})


def _refresh_context(cat: Catalog, conn: Connection) -> int:
    """Adjudication tasks whose earlier verdicts changed since they were sent get the current ones."""
    rows = cat.rows("SELECT project_id, task_id, pair_id, context_sha FROM ls_tasks WHERE server = ? AND "
                    "kind = 'adjudication'", (conn.key,))
    if not rows:
        return 0
    earlier = earlier_verdicts(cat, [r["pair_id"] for r in rows])
    stale = [r for r in rows if _context_sha({"earlier_html": earlier.get(r["pair_id"], NO_EARLIER)})
             != r["context_sha"] and r["context_sha"] is not None]
    if not stale:
        return 0
    pairs = {p["pair_id"]: p for p in review_pairs(cat) if p["pair_id"] in {r["pair_id"] for r in stale}}
    data = _task_data(cat, list(pairs.values()), adjudication=True)
    for project_id in {r["project_id"] for r in stale}:
        integrity.seal(cat, conn.key, project_id, {r["pair_id"]: data[r["pair_id"]] for r in stale
                                                   if r["project_id"] == project_id})
    with cat.transaction():
        for r in stale:
            request(conn, "PATCH", f"/api/tasks/{r['task_id']}", json={"data": data[r["pair_id"]]})
            cat.conn.execute("UPDATE ls_tasks SET context_sha = ? WHERE server = ? AND task_id = ?",
                             (_context_sha(data[r["pair_id"]]), conn.key, r["task_id"]))
    return len(stale)


def earlier_verdicts(cat: Catalog, pair_ids: Iterable[int]) -> dict[int, str]:
    """Per pair, an HTML table of the counted review verdicts by account: verdict, reasons, defect frames,
    notes, when. What the adjudicator sees."""
    ids = sorted(set(pair_ids))
    rows = cat.rows(
        "SELECT pair_id, annotator, verdict, reasons_json, defects_json, notes, coalesce(updated_at, created_at) AS t "
        "FROM reviews WHERE stage = 'review' AND counted = 1 AND pair_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY pair_id, t", (json.dumps(ids),))
    by_pair: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        defects = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in json.loads(r["defects_json"] or "[]"))
        cells = (r["annotator"], r["verdict"], ", ".join(json.loads(r["reasons_json"] or "[]")), defects,
                 r["notes"] or "", time.strftime("%Y-%m-%d %H:%M", time.localtime(r["t"])))
        by_pair[r["pair_id"]].append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "<tr><th>account</th><th>verdict</th><th>reasons</th><th>defect frames</th><th>notes</th><th>when</th></tr>"
    return {pid: f"<p><b>Earlier verdicts</b></p><table>{head}{''.join(lines)}</table>"
            for pid, lines in by_pair.items()}


# ------------------------------------------------------------------------------------------- the gate

def decide(cat: Catalog, *, out: PullResult | None = None, names: Mapping[int, str] | None = None) -> set[int]:
    """Apply the gate to every pair that has verdicts or a review task, from the catalog's verdicts only (a
    verdict deleted on the server still counts here); write only what changed. `names` (user id -> email)
    names the account that edited someone else's verdict. Returns the disputed pair ids (to adjudicate)."""
    registry = accounts.registry(cat)
    names = {**{uid: a.email for (_, uid), a in registry.items()}, **(names or {})}
    quorums = report.quorums(cat)
    tainted = integrity.tainted(cat)
    votes: dict[int, list[gate.Vote]] = defaultdict(list)
    current: dict[int, tuple] = {}
    for r in cat.conn.execute(
            "SELECT id, pair_id, coalesce(stage, 'review'), server, account_id, updated_by, annotator, verdict, "
            "coalesce(updated_at, created_at), counted, gate_note, external_id, updated_at FROM reviews"):
        taint = tainted.get(r[11])
        note = integrity.TAINTED.format(task=taint[1]) if taint and taint[0] == r[12] else None
        votes[r[1]].append(gate.Vote(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8], note=note,
                                     editor=names.get(r[5]) if r[5] is not None else None))
        current[r[0]] = (r[9], r[10])
    pairs = {r[0]: r[1:] for r in cat.conn.execute(
        "SELECT id, review_state, train_ready, decided_by, adjudicated_by, gold_kind FROM pairs "
        "WHERE id IN (SELECT pair_id FROM reviews UNION SELECT pair_id FROM ls_tasks WHERE kind = 'review')")}
    disputed: set[int] = set()
    now = time.time()
    with cat.transaction():
        for pair_id, (state, ready, decided_by, adjudicated_by, gold_kind) in pairs.items():
            d = gate.judge(votes.get(pair_id, []), registry, quorums.get(pair_id, DEFAULT_OVERLAP))
            new = (d.state, int(d.state == "accepted" and gold_kind is None),
                   json.dumps(d.decided_by) if d.decided_by else None,
                   json.dumps(d.adjudicated_by) if d.adjudicated_by else None)
            if new != (state, ready, decided_by, adjudicated_by):
                cat.set_pair_state(pair_id, review_state=d.state, train_ready=bool(new[1]), decided_by=d.decided_by,
                                   adjudicated_by=d.adjudicated_by, decided_at=now if d.state in gate.DECIDED else None)
                if out is not None:
                    out.changed_pairs += 1
            for review_id, (ok, why) in d.marks.items():
                if current.get(review_id) != (int(ok), why):
                    cat.mark_review(review_id, counted=ok, note=why)
                if out is not None and not ok:
                    out.ignored[why] += 1
            if out is not None:
                (out.states if gold_kind is None else out.gold_states)[d.state] += 1
            if d.state == "disputed":
                disputed.add(pair_id)
    return disputed


def train_ready_pairs(cat: Catalog, *, session_id: int | None = None) -> list[dict[str, Any]]:
    """What training may read: pairs accepted by the quorum or by adjudication (gold pairs never)."""
    return [p for p in cat.pairs(session_id=session_id, train_ready=True, gold=False)
            if p["review_state"] == "accepted"]


def state_counts(cat: Catalog) -> dict[str, int]:
    return {r["review_state"]: r["n"] for r in cat.rows(
        "SELECT review_state, count(*) AS n FROM pairs WHERE gold_kind IS NULL GROUP BY 1")}

