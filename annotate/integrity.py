"""What cinectrl pushed, kept in the catalog so that the server's copy is checked against it, never trusted.

Label Studio Community lets any member import tasks, edit a task's data and delete annotations. So:
- every task cinectrl imports carries a **seal**, a random value recorded in the catalog *before* the import
  (`review_seals`); crash recovery adopts only a task whose seal is the one recorded for its pair, and the
  oldest such task (a copy made later by someone else carries the same seal but a higher id);
- the catalog keeps the **hash of each task's data** as pushed; a pull that finds other data puts it back and
  marks the verdicts it brings in for the first time (or changed) on that task as made on a view cinectrl did
  not push (`review_taint`): they do not count until their author saves them again;
- tasks on the server cinectrl did not push are recorded (`review_foreign`) and reported, never read;
- verdicts the catalog holds that are gone from the server are recorded (`review_vanished`) and reported; the
  catalog's copy still counts.
Side tables made here (like `review_media`), so no catalog migration is needed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any, Iterable, Mapping

from capture.catalog import Catalog

SEAL_KEY = "cinectrl_seal"

_TABLES = (
    """CREATE TABLE IF NOT EXISTS review_seals (
        server     TEXT NOT NULL,
        project_id INTEGER NOT NULL,
        pair_id    INTEGER NOT NULL,
        seal       TEXT NOT NULL,        -- random; in the task data; recorded before the task is imported
        data_sha   TEXT NOT NULL,        -- sha256 of the task data cinectrl last wrote
        sealed_at  REAL NOT NULL,
        PRIMARY KEY (server, project_id, pair_id))""",
    """CREATE TABLE IF NOT EXISTS review_taint (
        external_id TEXT PRIMARY KEY,    -- the annotation (reviews.external_id)
        updated_at  REAL,                -- the version of it that was made on another view
        task_id     INTEGER NOT NULL,
        found_at    REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS review_foreign (
        server     TEXT NOT NULL,
        project_id INTEGER NOT NULL,
        task_id    INTEGER NOT NULL,
        claims_pair INTEGER,              -- the pair id in its data, if any
        seen_at    REAL NOT NULL,
        PRIMARY KEY (server, project_id, task_id))""",
    """CREATE TABLE IF NOT EXISTS review_vanished (
        external_id TEXT PRIMARY KEY,
        missing_since REAL NOT NULL)""",
)

TAINTED = "made while the task's data differed from what cinectrl pushed (task {task}): save it again"


def ensure_tables(cat: Catalog) -> None:
    for sql in _TABLES:
        cat.conn.execute(sql)


def data_sha(data: Mapping[str, Any]) -> str:
    """The hash of task data as the server stores it (a JSON round trip: what comes back compares equal)."""
    return hashlib.sha256(json.dumps(json.loads(json.dumps(data, default=str)), sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def seal(cat: Catalog, server: str, project_id: int, data: Mapping[int, dict[str, Any]]) -> None:
    """Put a seal into each pair's task data and record it with the data's hash, before the import. A pair
    whose earlier import may have reached the server keeps its seal (so that task can still be adopted)."""
    ensure_tables(cat)
    known = seals(cat, server, project_id)
    now = time.time()
    with cat.transaction():
        for pair_id, d in data.items():
            d[SEAL_KEY] = known.get(pair_id, (None,))[0] or secrets.token_hex(16)
            cat.conn.execute("INSERT OR REPLACE INTO review_seals VALUES (?,?,?,?,?,?)",
                             (server, project_id, pair_id, d[SEAL_KEY], data_sha(d), now))


def reseal(cat: Catalog, server: str, project_id: int, pair_id: int, data: dict[str, Any]) -> None:
    """New data for a task cinectrl wrote again (restored, refreshed, upgraded): same seal, new hash."""
    seal(cat, server, project_id, {pair_id: data})


def seals(cat: Catalog, server: str, project_id: int) -> dict[int, tuple[str, str, float]]:
    """pair id -> (seal, data hash, sealed at)."""
    ensure_tables(cat)
    return {r[0]: (r[1], r[2], r[3]) for r in cat.conn.execute(
        "SELECT pair_id, seal, data_sha, sealed_at FROM review_seals WHERE server = ? AND project_id = ?",
        (server, project_id))}


def adoptable(cat: Catalog, server: str, project_id: int, tasks: Iterable[tuple[int, Mapping[str, Any]]],
              recorded_pairs: set[int]) -> dict[int, int]:
    """pair id -> task id for tasks on the server that cinectrl imported but never recorded (a crash between
    the import and the catalog write): the seal must be the one recorded for that pair; the oldest wins."""
    known = seals(cat, server, project_id)
    out: dict[int, int] = {}
    for task_id, data in sorted(tasks, key=lambda t: t[0]):
        try:
            pair_id = int(data.get("pair_id"))
        except (TypeError, ValueError):
            continue
        if pair_id in recorded_pairs or pair_id in out:
            continue
        mine = known.get(pair_id)
        if mine and secrets.compare_digest(str(data.get(SEAL_KEY, "")), mine[0]):
            out[pair_id] = task_id
    return out


def note_foreign(cat: Catalog, server: str, project_id: int, tasks: Iterable[tuple[int, Mapping[str, Any]]]
                 ) -> list[dict[str, Any]]:
    """Record tasks cinectrl did not push (first time seen only); returns all known for this project."""
    ensure_tables(cat)
    rows = []
    for task_id, data in tasks:
        claim = data.get("pair_id")
        rows.append((server, project_id, task_id, int(claim) if str(claim).isdigit() else None, time.time()))
    if rows:
        have = {r[0] for r in cat.conn.execute("SELECT task_id FROM review_foreign WHERE server = ? AND "
                                                "project_id = ?", (server, project_id))}
        new = [r for r in rows if r[2] not in have]
        if new:
            with cat.transaction():
                cat.conn.executemany("INSERT OR IGNORE INTO review_foreign VALUES (?,?,?,?,?)", new)
    return foreign(cat, server)


def foreign(cat: Catalog, server: str | None = None) -> list[dict[str, Any]]:
    ensure_tables(cat)
    return cat.rows("SELECT server, project_id, task_id, claims_pair, seen_at FROM review_foreign "
                    + ("WHERE server = ? " if server else "") + "ORDER BY project_id, task_id",
                    (server,) if server else ())


def taint(cat: Catalog, marks: Iterable[tuple[str, float | None, int]]) -> None:
    """Record annotation versions made on a view that differed from the pushed one."""
    ensure_tables(cat)
    marks = list(marks)
    if marks:
        with cat.transaction():
            cat.conn.executemany("INSERT OR REPLACE INTO review_taint VALUES (?,?,?,?)",
                                 [(e, u, t, time.time()) for e, u, t in marks])


def tainted(cat: Catalog) -> dict[str, tuple[float | None, int]]:
    """external id -> (the tainted version's updated_at, task id)."""
    ensure_tables(cat)
    return {r[0]: (r[1], r[2]) for r in cat.conn.execute("SELECT external_id, updated_at, task_id FROM review_taint")}


def note_vanished(cat: Catalog, external_ids: Iterable[str]) -> list[str]:
    """Record verdicts gone from the server; returns those newly noticed."""
    ensure_tables(cat)
    ids = sorted(set(external_ids))
    if not ids:
        return []
    have = {r[0] for r in cat.conn.execute("SELECT external_id FROM review_vanished")}
    new = [e for e in ids if e not in have]
    if new:
        with cat.transaction():
            cat.conn.executemany("INSERT OR IGNORE INTO review_vanished VALUES (?,?)", [(e, time.time()) for e in new])
    return new


def vanished(cat: Catalog) -> list[dict[str, Any]]:
    ensure_tables(cat)
    return cat.rows("SELECT v.external_id, v.missing_since, r.pair_id, r.annotator, r.verdict, r.stage "
                    "FROM review_vanished v JOIN reviews r ON r.external_id = v.external_id ORDER BY r.pair_id")
