"""Push pairs to Label Studio as tasks, pull annotations into the catalog, agreement, adjudication, the gate.

Label Studio Community has overlap (`maximum_annotations`) but no agreement or review stage, so those live
here: per pair, a quorum of N concordant verdicts decides; a split goes to a separate adjudication project
whose single verdict decides. Only accepted pairs are train-ready (`train_ready_pairs`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from capture.catalog import Catalog
from annotate.config import LABEL_CONFIG
from annotate.server import Connection, ServerError

REVIEW_TITLE = "cinectrl pair review"
ADJUDICATION_TITLE = "cinectrl pair adjudication"
BATCH = 500

_TABLES = """
CREATE TABLE IF NOT EXISTS ls_projects (kind TEXT NOT NULL, server TEXT NOT NULL, project_id INTEGER NOT NULL,
    PRIMARY KEY (kind, server));
CREATE TABLE IF NOT EXISTS ls_tasks (server TEXT NOT NULL, project_id INTEGER NOT NULL, task_id INTEGER NOT NULL,
    pair_id INTEGER NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (server, project_id, pair_id));
"""


def _ensure_tables(cat: Catalog) -> None:
    cat.conn.executescript(_TABLES)


def client(conn: Connection) -> LabelStudio:
    return LabelStudio(base_url=conn.url, api_key=conn.token, timeout=120)


def _wrap(exc: Exception, conn: Connection) -> ServerError:
    if isinstance(exc, ApiError) and exc.status_code == 401:
        return ServerError(f"Label Studio at {conn.url} refused the API token (401): check CINECTRL_LS_TOKEN "
                           "or the credentials file beside the catalog")
    if isinstance(exc, ApiError):
        return ServerError(f"Label Studio at {conn.url} answered {exc.status_code}: {str(exc.body)[:300]}")
    return ServerError(f"cannot reach Label Studio at {conn.url} ({type(exc).__name__}); is it running? "
                       "`cinectrl review server status`; rerun the command once it is up (nothing is duplicated)")


def _project(ls: LabelStudio, cat: Catalog, conn: Connection, kind: str, overlap: int) -> int:
    row = cat.conn.execute("SELECT project_id FROM ls_projects WHERE kind = ? AND server = ?",
                           (kind, conn.key)).fetchone()
    if row:
        return int(row[0])
    title = REVIEW_TITLE if kind == "review" else ADJUDICATION_TITLE
    p = ls.projects.create(title=title, label_config=LABEL_CONFIG, maximum_annotations=overlap,
                           show_skip_button=False, show_collab_predictions=True,
                           description="cinectrl: review each clip pair; overlap = quorum")
    cat.conn.execute("INSERT INTO ls_projects VALUES (?,?,?)", (kind, conn.key, p.id))
    return int(p.id)


def _media_url(rel: str) -> str:
    return "/data/local-files/?d=" + rel


def _ensure_storages(ls: LabelStudio, project_id: int, cat: Catalog, rels: Iterable[str]) -> None:
    """A Local Files storage per clip folder: without one, /data/local-files answers 404."""
    have = {s.path for s in ls.import_storage.local.list(project=project_id)}
    for folder in sorted({str(cat.abspath(r).parent) for r in rels}):
        if folder == str(cat.data_root):
            raise ServerError(f"clips directly in the catalog folder {folder} cannot be served: keep media in a "
                              "subfolder (e.g. media/) of the catalog's folder")
        if folder not in have:
            ls.import_storage.local.create(project=project_id, path=folder, title=Path(folder).name,
                                           use_blob_urls=False)


def _task(pair: dict[str, Any]) -> dict[str, Any]:
    ref, oth = pair["reference_proxy_path"] or pair["reference_path"], pair["other_proxy_path"] or pair["other_path"]
    rs, os_ = pair["reference_settings"] or {}, pair["other_settings"] or {}
    capture = {f"{k} (reference / other)": f"{rs.get(k, '-')} / {os_.get(k, '-')}" for k in sorted({*rs, *os_})}
    task: dict[str, Any] = {"data": {
        "pair_id": pair["pair_id"], "video_a": _media_url(ref), "video_b": _media_url(oth),
        "fps": pair.get("fps") or 24, "label_a": pair["reference_combination"], "label_b": pair["other_combination"],
        "capture": capture or {"settings": "-"}}}
    qc = pair.get("qc") or {}
    if qc:
        verdict = "accept" if qc.get("passed", True) else "reject"
        task["predictions"] = [{"model_version": "auto-qc", "score": float(qc.get("score", 0.0) or 0.0),
                                "result": [{"from_name": "verdict", "to_name": "video_a", "type": "choices",
                                            "value": {"choices": [verdict]}},
                                           {"from_name": "notes", "to_name": "video_a", "type": "textarea",
                                            "value": {"text": [f"auto QC: {qc}"[:500]]}}]}]
    return task


def _pairs_with_fps(cat: Catalog, session_id: int | None) -> list[dict[str, Any]]:
    pairs = cat.pairs(session_id=session_id)
    fps = {r["id"]: r["fps"] for r in cat.rows("SELECT id, fps FROM clips")}
    for p in pairs:
        p["fps"] = fps.get(p["reference_clip_id"])
    return pairs


def _reconcile(ls: LabelStudio, cat: Catalog, conn: Connection, project_id: int, kind: str) -> None:
    """After an interrupted push the server may hold tasks we never recorded: adopt them by their pair_id."""
    known = cat.conn.execute("SELECT count(*) FROM ls_tasks WHERE server = ? AND project_id = ?",
                             (conn.key, project_id)).fetchone()[0]
    if ls.projects.get(id=project_id).task_number == known:
        return
    for t in ls.tasks.list(project=project_id, fields="task_only"):
        cat.conn.execute("INSERT OR IGNORE INTO ls_tasks VALUES (?,?,?,?,?)",
                         (conn.key, project_id, t.id, int(t.data["pair_id"]), kind))


@dataclass
class PushResult:
    project_id: int
    added: int
    already: int


def _push(cat: Catalog, conn: Connection, pairs: list[dict[str, Any]], kind: str, overlap: int) -> PushResult:
    _ensure_tables(cat)
    try:
        ls = client(conn)  # a PAT is exchanged here: a bad one fails here
        project_id = _project(ls, cat, conn, kind, overlap)
        _reconcile(ls, cat, conn, project_id, kind)
        done = {r[0] for r in cat.conn.execute("SELECT pair_id FROM ls_tasks WHERE server = ? AND project_id = ?",
                                               (conn.key, project_id))}
        todo = [p for p in pairs if p["pair_id"] not in done]
        if todo:
            rels = [p[k] for p in todo for k in ("reference_proxy_path", "reference_path", "other_proxy_path",
                                                 "other_path") if p[k]]
            _ensure_storages(ls, project_id, cat, rels)
        for i in range(0, len(todo), BATCH):
            batch = todo[i:i + BATCH]
            res = ls.projects.import_tasks(id=project_id, request=[_task(p) for p in batch], return_task_ids=True)
            with cat.transaction():
                cat.conn.executemany("INSERT OR IGNORE INTO ls_tasks VALUES (?,?,?,?,?)",
                                     [(conn.key, project_id, tid, p["pair_id"], kind)
                                      for tid, p in zip(res.task_ids, batch)])
                for p in batch:
                    if kind == "review":
                        cat.set_pair_state(p["pair_id"], review_state="in_review")
    except (ApiError, httpx.HTTPError) as exc:
        raise _wrap(exc, conn) from None
    return PushResult(project_id, len(todo), len(pairs) - len(todo))


def push(cat: Catalog, conn: Connection, *, session_id: int | None = None, overlap: int = 2) -> PushResult:
    """Import pairs not yet on the server as tasks (idempotent); `overlap` annotations per task = the quorum."""
    return _push(cat, conn, _pairs_with_fps(cat, session_id), "review", overlap)


@dataclass
class PullResult:
    added: int = 0
    updated: int = 0
    adjudication_pushed: int = 0
    states: Counter = field(default_factory=Counter)


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


def _auth_headers(conn: Connection) -> dict[str, str]:
    """A legacy token goes as `Token`; a personal access token (a JWT, the only kind a server >= 1.17 issues by
    default) is exchanged for a short-lived access token first, as the SDK does."""
    if conn.token.startswith("eyJ") and conn.token.count(".") == 2:
        r = httpx.post(f"{conn.url}/api/token/refresh/", json={"refresh": conn.token}, timeout=60)
        if r.status_code != 200:
            raise ApiError(status_code=401 if r.status_code in (400, 401) else r.status_code, body="token refresh")
        return {"Authorization": f"Bearer {r.json()['access']}"}
    return {"Authorization": f"Token {conn.token}"}


def _export(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{conn.url}/api/projects/{project_id}/export", params={"exportType": "JSON"},
                  headers=_auth_headers(conn), timeout=300)
    if r.status_code != 200:
        raise ApiError(status_code=r.status_code, body=r.text[:300])
    return r.json()


def pull(cat: Catalog, conn: Connection, *, quorum: int | None = None) -> PullResult:
    """Annotations -> reviews table (idempotent by annotation id); then decide states and route splits."""
    _ensure_tables(cat)
    out = PullResult()
    try:
        ls = client(conn)
        projects = dict(cat.conn.execute("SELECT kind, project_id FROM ls_projects WHERE server = ?", (conn.key,)))
        if "review" not in projects:
            raise ServerError("nothing pushed to this server yet: run `cinectrl review push` first")
        users = {u.id: u.email or u.username for u in ls.users.list()}
        if quorum is None:
            quorum = ls.projects.get(id=projects["review"]).maximum_annotations or 1
        with cat.transaction():
            for kind, project_id in projects.items():
                for task in _export(conn, project_id):
                    pair_id = int(task["data"]["pair_id"])
                    for ann in task.get("annotations", []):
                        if ann.get("was_cancelled"):
                            continue
                        parsed = _parse(ann.get("result", []))
                        if parsed["verdict"] is None:
                            continue
                        who = ann.get("completed_by")
                        who = users.get(who.get("id") if isinstance(who, dict) else who, str(who))
                        prefix = "ls-adj" if kind == "adjudication" else "ls"
                        _, created = cat.add_review(
                            pair_id, annotator=who, verdict=parsed["verdict"], reasons=parsed["reasons"],
                            rating=parsed["rating"], defects=parsed["defects"], notes=parsed["notes"],
                            external_id=f"{prefix}:{conn.key}:{project_id}:{ann['id']}",
                            created_at=_ts(ann.get("created_at")))
                        out.added += created
                        out.updated += not created
        to_adjudicate = decide(cat, quorum=quorum, out=out)
        if to_adjudicate:
            res = _push(cat, conn, [p for p in _pairs_with_fps(cat, None) if p["pair_id"] in to_adjudicate],
                        "adjudication", 1)
            out.adjudication_pushed = res.added
    except (ApiError, httpx.HTTPError) as exc:
        raise _wrap(exc, conn) from None
    return out


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def decide(cat: Catalog, *, quorum: int, out: PullResult | None = None) -> set[int]:
    """The gate. Adjudication wins; else `quorum` verdicts all equal decide; a split is 'disputed'.
    Returns the disputed pair ids (to adjudicate)."""
    _ensure_tables(cat)
    disputed: set[int] = set()
    by_pair: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in cat.rows("SELECT pair_id, verdict, external_id FROM reviews ORDER BY created_at, id"):
        by_pair[r["pair_id"]].append(r)
    with cat.transaction():
        for pair_id, rows in by_pair.items():
            adj = [r["verdict"] for r in rows if (r["external_id"] or "").startswith("ls-adj:")]
            normal = [r["verdict"] for r in rows if not (r["external_id"] or "").startswith("ls-adj:")]
            if adj:
                state = "accepted" if adj[-1] == "accept" else "rejected"
            elif len(normal) >= quorum and len(set(normal)) == 1:
                state = "accepted" if normal[0] == "accept" else "rejected"
            elif len(normal) >= quorum:
                state = "disputed"
                disputed.add(pair_id)
            else:
                state = "in_review"
            cat.set_pair_state(pair_id, review_state=state, train_ready=state == "accepted")
            if out is not None:
                out.states[state] += 1
    return disputed


def train_ready_pairs(cat: Catalog, *, session_id: int | None = None) -> list[dict[str, Any]]:
    """What training may read: pairs accepted by the quorum or by adjudication."""
    return [p for p in cat.pairs(session_id=session_id, train_ready=True) if p["review_state"] == "accepted"]


def agreement(cat: Catalog) -> dict[str, Any]:
    """Percent agreement per pair and Krippendorff's alpha (nominal) on the verdict across the project."""
    import krippendorff
    import numpy as np

    rows = cat.rows("SELECT pair_id, annotator, verdict FROM reviews WHERE coalesce(external_id, '') "
                    "NOT LIKE 'ls-adj:%' ORDER BY pair_id")
    annotators = sorted({r["annotator"] for r in rows})
    pairs = sorted({r["pair_id"] for r in rows})
    per_pair: dict[int, float] = {}
    votes: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        votes[r["pair_id"]].append(r["verdict"])
    for pid, v in votes.items():
        if len(v) >= 2:
            agreeing = sum(a == b for i, a in enumerate(v) for b in v[i + 1:])
            per_pair[pid] = agreeing / (len(v) * (len(v) - 1) / 2)
    alpha = None
    if len(annotators) >= 2 and per_pair:
        mat = np.full((len(annotators), len(pairs)), np.nan)
        for r in rows:
            mat[annotators.index(r["annotator"]), pairs.index(r["pair_id"])] = 1.0 if r["verdict"] == "accept" else 0.0
        try:
            alpha = float(krippendorff.alpha(reliability_data=mat, level_of_measurement="nominal"))
        except ValueError:  # one verdict value only: alpha undefined
            alpha = None
    return {"per_pair": per_pair, "percent": (sum(per_pair.values()) / len(per_pair)) if per_pair else None,
            "alpha": alpha}


def throughput(cat: Catalog) -> list[dict[str, Any]]:
    return cat.rows("SELECT annotator, count(*) AS reviews, min(created_at) AS first, max(created_at) AS last "
                    "FROM reviews GROUP BY annotator ORDER BY reviews DESC")


def state_counts(cat: Catalog) -> dict[str, int]:
    return {r["review_state"]: r["n"] for r in cat.rows("SELECT review_state, count(*) AS n FROM pairs GROUP BY 1")}
