"""The session ledger: one row per planned point, and the one-transaction commit of a frame.

This module is the runner's only door into the catalog, so the durability rule lives in one place:
a frame counts when its file is fsynced and hashed and its asset, settings, slider rows and the point's
`done` status are committed together.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rigs.camera.protocol import CameraIdentity, CapturedFile
from rigs.slider.protocol import SliderInfo

from .plan import Costs, Plan, Point

SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_sessions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    plan_sha256 TEXT NOT NULL,
    plan_toml TEXT NOT NULL,
    plan_source TEXT,
    mode TEXT NOT NULL,
    scene TEXT NOT NULL,
    operator TEXT NOT NULL,
    notes TEXT,
    camera_json TEXT,
    slider_json TEXT,
    status TEXT NOT NULL DEFAULT 'planned',
    created_at REAL NOT NULL,
    started_at REAL,
    stopped_at REAL,
    dir TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS capture_points (
    session_id INTEGER NOT NULL REFERENCES capture_sessions(id),
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    combo INTEGER NOT NULL,
    frame_index INTEGER NOT NULL,
    slider_target_mm REAL,
    requested_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    seconds REAL,
    capture_s REAL,
    set_s REAL,
    sets INTEGER,
    move_s REAL,
    move_mm REAL,
    done_at REAL,
    PRIMARY KEY (session_id, key)
);
CREATE TABLE IF NOT EXISTS capture_frames (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    point_key TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    kind TEXT NOT NULL,
    requested_json TEXT NOT NULL,
    readback_json TEXT NOT NULL,
    slider_mm REAL,
    slider_target_mm REAL,
    move_started_at REAL,
    move_finished_at REAL,
    captured_at REAL,
    clip_json TEXT,
    FOREIGN KEY (session_id, point_key) REFERENCES capture_points(session_id, key)
);
CREATE INDEX IF NOT EXISTS capture_frames_by_point ON capture_frames(session_id, point_key);
CREATE TABLE IF NOT EXISTS capture_clips (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    combo INTEGER NOT NULL,
    settings_json TEXT NOT NULL,
    path TEXT NOT NULL,
    proxy_path TEXT NOT NULL,
    frames INTEGER NOT NULL,
    UNIQUE (session_id, combo)
);
CREATE TABLE IF NOT EXISTS capture_pairs (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    reference_combo INTEGER NOT NULL,
    target_combo INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    UNIQUE (session_id, reference_combo, target_combo)
);
CREATE TABLE IF NOT EXISTS capture_events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PointRow:
    key: str
    status: str
    attempts: int


def plan_fingerprint(plan: Plan, points: list[Point]) -> str:
    """Same plan text + same expanded points = same session (so a rerun resumes instead of starting over)."""
    digest = hashlib.sha256(plan.text.encode())
    for p in points:
        digest.update(f"{p.key}|{sorted(p.settings.items())}|{p.slider_mm}".encode())
    return digest.hexdigest()


class Ledger:
    def __init__(self, catalog: Path) -> None:
        self.path = Path(catalog)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data_root = self.path.parent.resolve()
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")     # the commit is the durability point of a frame
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------------------------------ sessions

    def open_session(self, plan: Plan, points: list[Point], *, camera: CameraIdentity,
                     slider: SliderInfo | None, new: bool = False) -> tuple[int, bool]:
        """The latest session of this same plan (resume; a finished one is left as it is), or a new one with
        every point as a ledger row (`new=True` always starts another take)."""
        fingerprint = plan_fingerprint(plan, points)
        row = None if new else self.db.execute(
            "SELECT id FROM capture_sessions WHERE plan_sha256 = ? ORDER BY id DESC LIMIT 1", (fingerprint,)).fetchone()
        if row:
            return int(row[0]), True
        name = plan.session.get("name") or plan.session["scene"]
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")[:40] or "session"
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO capture_sessions (name, plan_sha256, plan_toml, plan_source, mode, scene, operator, "
                "notes, camera_json, slider_json, status, created_at, dir) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (name, fingerprint, plan.text, plan.source, plan.mode, plan.session["scene"],
                 plan.session["operator"], plan.session.get("notes", ""), json.dumps(_identity(camera)),
                 json.dumps(_slider(slider)), "planned", time.time(), ""))
            session_id = int(cur.lastrowid)
            self.db.execute("UPDATE capture_sessions SET dir = ? WHERE id = ?",
                            (f"sessions/{session_id:04d}-{slug}", session_id))
            self.db.executemany(
                "INSERT INTO capture_points (session_id, key, idx, kind, combo, frame_index, slider_target_mm, "
                "requested_json) VALUES (?,?,?,?,?,?,?,?)",
                [(session_id, p.key, p.index, p.kind, p.combo, p.frame_index, p.slider_mm,
                  json.dumps(p.settings_dict())) for p in points])
        return session_id, False

    def session_dir(self, session_id: int) -> Path:
        (rel,) = self.db.execute("SELECT dir FROM capture_sessions WHERE id = ?", (session_id,)).fetchone()
        return self.data_root / rel

    def set_status(self, session_id: int, status: str) -> None:
        now = time.time()
        column = "started_at" if status == "running" else "stopped_at"
        self.db.execute(f"UPDATE capture_sessions SET status = ?, {column} = COALESCE(?, {column}) WHERE id = ?",
                        (status, now, session_id))

    def event(self, session_id: int, kind: str, message: str) -> None:
        self.db.execute("INSERT INTO capture_events (session_id, at, kind, message) VALUES (?,?,?,?)",
                        (session_id, time.time(), kind, message))

    # ------------------------------------------------------------------------------------------ points

    def points(self, session_id: int) -> list[PointRow]:
        return [PointRow(*r) for r in self.db.execute(
            "SELECT key, status, attempts FROM capture_points WHERE session_id = ? ORDER BY idx", (session_id,))]

    def reset_running(self, session_id: int) -> None:
        self.db.execute("UPDATE capture_points SET status = 'pending' WHERE session_id = ? AND status IN "
                        "('running', 'failed')", (session_id,))

    def mark_running(self, session_id: int, key: str) -> None:
        self.db.execute("UPDATE capture_points SET status = 'running', attempts = attempts + 1 "
                        "WHERE session_id = ? AND key = ?", (session_id, key))

    def mark_failed(self, session_id: int, key: str, error: str) -> None:
        self.db.execute("UPDATE capture_points SET status = 'failed', error = ? WHERE session_id = ? AND key = ?",
                        (error, session_id, key))

    def done_count(self, session_id: int) -> int:
        return self.db.execute("SELECT count(*) FROM capture_points WHERE session_id = ? AND status = 'done'",
                               (session_id,)).fetchone()[0]

    def progress(self, session_id: int) -> tuple[int, int]:
        total = self.db.execute("SELECT count(*) FROM capture_points WHERE session_id = ?", (session_id,)).fetchone()
        return int(total[0]), self.done_count(session_id)

    def commit_frame(self, session_id: int, point: Point, files: Iterable[tuple[CapturedFile, str, int]], *,
                     requested: dict[str, str], readback: dict[str, str], slider: dict[str, Any],
                     clip: dict[str, Any] | None, seconds: float, attempts: int,
                     timing: dict[str, float] | None = None) -> None:
        """Asset rows + point done, in ONE transaction: all of the frame's rows or none."""
        with self.transaction():
            for captured, sha, size in files:
                self.db.execute(
                    "INSERT INTO capture_frames (session_id, point_key, path, sha256, bytes, kind, requested_json, "
                    "readback_json, slider_mm, slider_target_mm, move_started_at, move_finished_at, captured_at, "
                    "clip_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (session_id, point.key, self.relative(Path(captured.path)), sha, size, captured.kind,
                     json.dumps(requested), json.dumps(readback), slider.get("slider_mm"),
                     slider.get("slider_target_mm"), slider.get("move_started_at"), slider.get("move_finished_at"),
                     captured.captured_at, json.dumps(clip) if clip else None))
            t = timing or {}
            self.db.execute("UPDATE capture_points SET status = 'done', error = NULL, seconds = ?, done_at = ?, "
                            "attempts = ?, capture_s = ?, set_s = ?, sets = ?, move_s = ?, move_mm = ? "
                            "WHERE session_id = ? AND key = ?",
                            (seconds, time.time(), attempts, t.get("capture_s"), t.get("set_s"), t.get("sets"),
                             t.get("move_s"), t.get("move_mm"), session_id, point.key))

    # ------------------------------------------------------------------------------------------ files

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.data_root))

    def asset_paths(self, session_id: int) -> set[Path]:
        return {(self.data_root / r[0]).resolve() for r in self.db.execute(
            "SELECT path FROM capture_frames WHERE session_id = ?", (session_id,))}

    def frame_sizes(self, session_id: int) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT bytes FROM capture_frames WHERE session_id = ?",
                                              (session_id,))]

    def measured_costs(self, camera_model: str, mode: str, defaults: "Costs") -> "Costs":
        """Per-operation costs measured in earlier sessions of this camera model (the plan's ETA source)."""
        row = self.db.execute(
            "SELECT count(*), avg(p.capture_s), sum(p.set_s), sum(p.sets), sum(p.move_mm), sum(p.move_s), "
            "(SELECT avg(f.bytes) FROM capture_frames f JOIN capture_sessions s2 ON s2.id = f.session_id "
            " WHERE s2.mode = ? AND json_extract(s2.camera_json, '$.model') = ?) "
            "FROM capture_points p JOIN capture_sessions s ON s.id = p.session_id "
            "WHERE p.status = 'done' AND s.mode = ? AND json_extract(s.camera_json, '$.model') = ?",
            (mode, camera_model, mode, camera_model)).fetchone()
        n, capture_s, set_s, sets, move_mm, move_s, size = row
        if not n:
            return defaults
        from dataclasses import replace
        costs = replace(defaults, capture_s=capture_s or defaults.capture_s,
                        source=f"measured over {n} earlier points of {camera_model}")
        if sets:
            costs = replace(costs, set_s=set_s / sets)
        if move_s and move_mm:
            costs = replace(costs, move_mm_s=move_mm / move_s, settle_s=0.0)
        if size:
            costs = replace(costs, **({"bytes_per_still": size} if mode == "stills" else {"bytes_per_clip_frame": size}))
        return costs

    def frames(self, session_id: int) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT f.*, p.combo, p.frame_index, p.idx FROM capture_frames f JOIN capture_points p "
            "ON p.session_id = f.session_id AND p.key = f.point_key WHERE f.session_id = ? ORDER BY p.idx",
            (session_id,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur]

    def events(self, session_id: int) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT at, kind, message FROM capture_events WHERE session_id = ? ORDER BY id",
                              (session_id,))
        return [dict(at=a, kind=k, message=m) for a, k, m in cur]

    def summaries(self) -> list[dict[str, Any]]:
        """One line per session for `cinectrl capture status`: points, files, bytes, clips, pairs."""
        cur = self.db.execute(
            "SELECT s.id, s.name, s.mode, s.status, s.dir, "
            "(SELECT count(*) FROM capture_points p WHERE p.session_id = s.id), "
            "(SELECT count(*) FROM capture_points p WHERE p.session_id = s.id AND p.status = 'done'), "
            "(SELECT count(*) FROM capture_frames f WHERE f.session_id = s.id), "
            "(SELECT coalesce(sum(bytes), 0) FROM capture_frames f WHERE f.session_id = s.id), "
            "(SELECT count(*) FROM capture_clips c WHERE c.session_id = s.id), "
            "(SELECT count(*) FROM capture_pairs c WHERE c.session_id = s.id), "
            "(SELECT count(*) FROM capture_events e WHERE e.session_id = s.id AND e.kind NOT IN ('resume', 'stopped')) "
            "FROM capture_sessions s ORDER BY s.id")
        keys = ("id", "name", "mode", "status", "dir", "points", "done", "files", "bytes", "clips", "pairs", "faults")
        return [dict(zip(keys, row)) for row in cur]

    def session(self, session_id: int) -> dict[str, Any]:
        cur = self.db.execute("SELECT * FROM capture_sessions WHERE id = ?", (session_id,))
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone()))

    # ------------------------------------------------------------------------------------------ outputs

    def add_clip(self, session_id: int, combo: int, settings: dict[str, str], clip: Path, proxy: Path, *,
                 frames: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO capture_clips (session_id, combo, settings_json, path, proxy_path, "
                        "frames) VALUES (?,?,?,?,?,?)", (session_id, combo, json.dumps(settings),
                                                         self.relative(clip), self.relative(proxy), frames))

    def add_pair(self, session_id: int, record: dict[str, Any]) -> int:
        """Idempotent per (session, reference, target): rebuilding outputs updates the row, never duplicates."""
        key = (session_id, record["reference_combo"], record["target_combo"])
        body = json.dumps({k: v for k, v in record.items() if k != "pair_id"})
        with self.transaction():
            self.db.execute("INSERT INTO capture_pairs (session_id, reference_combo, target_combo, record_json) "
                            "VALUES (?,?,?,?) ON CONFLICT (session_id, reference_combo, target_combo) "
                            "DO UPDATE SET record_json = excluded.record_json", (*key, body))
            (pair_id,) = self.db.execute("SELECT id FROM capture_pairs WHERE session_id = ? AND reference_combo = ? "
                                         "AND target_combo = ?", key).fetchone()
        return int(pair_id)

    def pairs(self, session_id: int) -> list[dict[str, Any]]:
        return [dict(json.loads(body), pair_id=pid) for pid, body in self.db.execute(
            "SELECT id, record_json FROM capture_pairs WHERE session_id = ? ORDER BY id", (session_id,))]

    # ------------------------------------------------------------------------------------------ plumbing

    def transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _identity(camera: CameraIdentity) -> dict[str, str]:
    return {k: getattr(camera, k) for k in ("make", "model", "serial", "lens", "firmware", "port")}


def _slider(info: SliderInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"firmware": info.firmware, "build": info.build, "port": info.port, "travel_mm": list(info.travel_mm),
            "max_rate_mm_min": info.max_rate_mm_min, "accel_mm_s2": info.accel_mm_s2}
