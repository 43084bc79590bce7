"""The session ledger on top of the catalog: one `points` row per planned point, and the one-transaction
commit of a frame (asset + EXIF + settings + slider rows + point done).

This module is the runner's only door into the catalog, so the durability rule lives in one place. Besides
the catalog's own tables it keeps three small tables of its own in the same file: `capture_events` (faults
survived, resumes, takeovers, stops: the report's "faults survived"), `capture_passes` (per recorded pass)
and `capture_timings` (per-point costs: the plan's measured ETA).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from rigs.camera import values
from rigs.camera.protocol import CameraIdentity, CapturedFile
from rigs.slider.protocol import SliderInfo

from . import status as words
from .catalog import Catalog
from .ingest import ingest_file
from .plan import Costs, Plan, PlanError, Point, parse_plan, plan_key

EXTRA_SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS capture_passes (
    asset_id INTEGER PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    motion_started_at REAL,         -- host time the carriage left start_mm: aligns clips of one path
    frames INTEGER, fps REAL,
    poses_json TEXT,                -- slider x (mm) per frame, as the camera recorded it
    trajectory_json TEXT            -- [start_mm, end_mm, speed_mm_s]
);
CREATE TABLE IF NOT EXISTS capture_timings (
    point_id INTEGER PRIMARY KEY REFERENCES points(id) ON DELETE CASCADE,
    seconds REAL, capture_s REAL, set_s REAL, sets INTEGER, move_s REAL, move_mm REAL
);
"""

# events that are not faults: the report and `capture status` count the others as "faults survived"
NOT_FAULTS = ("resume", "stopped", "takeover", "start", "outputs", "import")


class DuplicateFrame(Exception):
    """The camera delivered bytes identical to an already catalogued frame (a stale frame): shoot again."""


@dataclass(frozen=True)
class PointRow:
    key: str
    status: str
    attempts: int


def combination_key(combo: int) -> str:
    return f"c{combo:03d}"


def _ordinal(key: str) -> int:
    return int(key.lstrip("p"))


class Ledger:
    """The runner's door into the catalog. `readonly=True` (for `capture status`, `capture plan`) opens the file
    read-only (a read-only mount or another user's lab works) and so can change nothing."""

    def __init__(self, catalog: Path, *, readonly: bool = False) -> None:
        self.catalog = Catalog(catalog, create=not readonly, readonly=readonly)
        self.conn = self.catalog.conn
        self.data_root = self.catalog.data_root
        self.readonly = readonly
        if not readonly:
            self.conn.executescript(EXTRA_SCHEMA)
        self._point_ids: dict[tuple[int, str], int] = {}

    def close(self) -> None:
        self.catalog.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it (frees disk when a full disk refused a write)."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    @property
    def keyed(self) -> bool:
        """Whether the catalog has migration 4's session columns (a catalog opened read-only may not)."""
        return any(r[1] == "plan_key" for r in self.conn.execute("PRAGMA table_info(sessions)"))

    # ------------------------------------------------------------------------------------------ sessions

    def sessions_of_plan(self, key: str) -> list[dict[str, Any]]:
        """Sessions whose normalised plan is `key`, latest first (sessions from before plan keys get theirs)."""
        if not self.keyed:
            return []
        self._backfill_plan_keys()
        return [self._live_word(r) for r in self.catalog.rows(
            "SELECT * FROM sessions WHERE plan_key = ? ORDER BY id DESC", (key,))]

    def sessions_from_file(self, plan_path: str) -> list[dict[str, Any]]:
        """Sessions run from this plan file (whatever its content was then), latest first."""
        if not self.keyed:
            return []
        return [self._live_word(r) for r in self.catalog.rows(
            "SELECT * FROM sessions WHERE plan_path = ? ORDER BY id DESC", (plan_path,))]

    def _backfill_plan_keys(self) -> None:
        """Sessions written before plan keys existed: key them by their stored plan text, once."""
        if self.readonly:
            return
        for sid, text in self.conn.execute("SELECT id, plan_toml FROM sessions WHERE plan_key IS NULL AND "
                                           "plan_toml IS NOT NULL").fetchall():
            try:
                key = plan_key(parse_plan(text))
            except PlanError:
                key = "unparsable"
            self.conn.execute("UPDATE sessions SET plan_key = ?, take = coalesce(take, 1) WHERE id = ?", (key, sid))

    def next_take(self, key: str) -> int:
        if not self.keyed:
            return 1
        row = self.conn.execute("SELECT coalesce(max(take), 0) FROM sessions WHERE plan_key = ?", (key,)).fetchone()
        return int(row[0]) + 1

    def create_session(self, plan: Plan, points: list[Point], *, camera: CameraIdentity,
                       slider: SliderInfo | None, plan_path: str | None = None,
                       claim: Callable[[Path], Any] | None = None) -> int:
        """A new take of this plan: the session row, its devices and every point as a ledger row, in ONE
        transaction that also runs `claim(session_dir)` (make the folder, take the owner lock) before it
        commits: a folder that cannot be written leaves no session behind."""
        key = plan_key(plan)
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in plan.title.lower()).strip("-")[:40]
        cat = self.catalog
        with cat.transaction():
            take = self.next_take(key)
            sid = cat.create_session(plan.title, scene=plan.session["scene"], operator=plan.session["operator"],
                                     notes=plan.session.get("notes", ""), mode=plan.mode, plan_toml=plan.text,
                                     plan_sha256=key,
                                     rig={"camera": _identity(camera), "slider": _slider(slider),
                                          "plan_camera": plan.camera, "plan_slider": plan.slider})
            data_dir = f"sessions/{sid:04d}-{slug or 'session'}"
            self.conn.execute("UPDATE sessions SET data_dir = ?, plan_key = ?, plan_path = ?, take = ?, state = ? "
                              "WHERE id = ?", (data_dir, key, plan_path, take, words.PLANNED, sid))
            cam = cat.add_device("camera", make=camera.make, model=camera.model, serial=camera.serial,
                                 lens=camera.lens, firmware=camera.firmware)
            cat.link_device(sid, cam, "camera")
            if slider is not None:
                sl = cat.add_device("slider", make="GRBL", model=slider.firmware, firmware=slider.build,
                                    settings=dict(slider.settings) or None)
                cat.link_device(sid, sl, "slider")
            cat.add_points(sid, [{"ordinal": p.index, "combination_key": combination_key(p.combo),
                                  "frame_index": p.frame_index, "settings": p.settings_dict(),
                                  "slider_target_mm": p.slider_mm} for p in points])
            if claim is not None:
                claim(self.data_root / data_dir)
        return sid

    def session_dir(self, session_id: int) -> Path:
        return self.data_root / self.catalog.session(session_id)["data_dir"]

    def set_status(self, session_id: int, word: str) -> None:
        """Store a word of capture/status.py (its coarse form in `status`, the word itself in `state`). On a
        full disk one retry follows a WAL checkpoint, which frees room."""
        for attempt in range(2):
            try:
                with self.catalog.transaction():
                    self.catalog.set_session_status(session_id, words.stored(word))
                    self.conn.execute("UPDATE sessions SET state = ? WHERE id = ?", (word, session_id))
                return
            except sqlite3.OperationalError:
                if attempt:
                    raise
                self.checkpoint()

    def event(self, session_id: int, kind: str, message: str) -> None:
        self.conn.execute("INSERT INTO capture_events (session_id, at, kind, message) VALUES (?,?,?,?)",
                          (session_id, time.time(), kind, message))

    # ------------------------------------------------------------------------------------------ points

    def _pid(self, session_id: int, key: str) -> int:
        cached = self._point_ids.get((session_id, key))
        if cached is None:
            cached = self.catalog.point_id(session_id, _ordinal(key))
            self._point_ids[(session_id, key)] = cached
        return cached

    def points(self, session_id: int) -> list[PointRow]:
        return [PointRow(f"p{r[0]:04d}", r[1], r[2]) for r in self.conn.execute(
            "SELECT ordinal, status, attempts FROM points WHERE session_id = ? ORDER BY ordinal", (session_id,))]

    def stored_points(self, session_id: int, kind: str) -> list[Point]:
        """The session's points as the ledger holds them: what a resume shoots (the ledger is the truth)."""
        return [Point(r[0], f"p{r[0]:04d}", json.loads(r[1]), r[2], kind, int(str(r[3]).lstrip("c") or 0),
                      int(r[4] or 0))
                for r in self.conn.execute("SELECT ordinal, settings_json, slider_target_mm, combination_key, "
                                           "frame_index FROM points WHERE session_id = ? ORDER BY ordinal",
                                           (session_id,))]

    def reset_running(self, session_id: int) -> None:
        self.catalog.reset_interrupted(session_id)
        self.conn.execute("UPDATE points SET status = 'pending' WHERE session_id = ? AND status = 'failed'",
                          (session_id,))

    def mark_running(self, session_id: int, key: str) -> None:
        """The attempt marker is advice (a crash turns `running` back to pending either way), so its commit
        skips the fsync; the frame's own commit, synced, makes it durable with everything else."""
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self.catalog.mark_point(self._pid(session_id, key), "running")
        finally:
            self.conn.execute(f"PRAGMA synchronous={'FULL' if self.catalog.durable else 'NORMAL'}")

    def mark_failed(self, session_id: int, key: str, error: str) -> None:
        self.catalog.mark_point(self._pid(session_id, key), "failed", error)

    def done_count(self, session_id: int) -> int:
        return self.catalog.progress(session_id)["done"]

    def progress(self, session_id: int) -> tuple[int, int]:
        counts = self.catalog.progress(session_id)
        return counts["total"], counts["done"]

    def commit_frame(self, session_id: int, point: Point, files: Iterable[tuple[CapturedFile, str, int]], *,
                     requested: dict[str, str], readback: dict[str, str], slider: dict[str, Any],
                     clip: dict[str, Any] | None, seconds: float, attempts: int,
                     timing: dict[str, float] | None = None) -> None:
        """Asset, EXIF, settings and slider rows + point done, in ONE transaction: all of them or none."""
        cat = self.catalog
        pid = self._pid(session_id, point.key)
        files = list(files)
        for _captured, sha, _size in files:
            clash = cat.asset_by_sha256(sha)
            if clash is not None:
                raise DuplicateFrame(f"the camera delivered a byte-identical copy of {clash['path']} "
                                     f"(a stale frame) for {point.key}")
        t = timing or {}
        slider_row = None
        if slider.get("slider_target_mm") is not None or slider.get("slider_mm") is not None:
            slider_row = {"target_mm": slider.get("slider_target_mm"), "position_mm": slider.get("slider_mm"),
                          "move_started_at": slider.get("move_started_at"),
                          "move_finished_at": slider.get("move_finished_at")}
        with cat.transaction():
            for captured, sha, size in files:
                kind = captured.kind if captured.kind in ("still", "clip", "raw", "depth", "sidecar") else "other"
                # EXIF etc. through the catalog's own ingestion; maker notes skipped (7x slower; the PTP
                # read-back is the primary record, `cinectrl catalog ingest` can add them later).
                aid = ingest_file(cat, captured.path, kind=kind, session_id=session_id, point_id=pid,
                                  frame_index=point.frame_index, requested=requested,
                                  readback={k: v for k, v in readback.items() if v},
                                  slider=dict(slider_row, at=captured.captured_at or None) if slider_row else None,
                                  maker_notes=False)
                if clip and kind == "clip":
                    if clip.get("frames"):
                        self.conn.execute("UPDATE assets SET frames = coalesce(frames, ?), fps = coalesce(fps, ?) "
                                          "WHERE id = ?", (clip.get("frames"), clip.get("fps"), aid))
                    self.conn.execute("INSERT OR REPLACE INTO capture_passes (asset_id, motion_started_at, frames, "
                                      "fps, poses_json, trajectory_json) VALUES (?,?,?,?,?,?)",
                                      (aid, clip.get("motion_start"), clip.get("frames"), clip.get("fps"),
                                       json.dumps(clip.get("poses")), json.dumps(clip.get("trajectory"))))
            cat.mark_point(pid, "done")
            self.conn.execute("INSERT OR REPLACE INTO capture_timings (point_id, seconds, capture_s, set_s, sets, "
                              "move_s, move_mm) VALUES (?,?,?,?,?,?,?)",
                              (pid, seconds, t.get("capture_s"), t.get("set_s"), t.get("sets"), t.get("move_s"),
                               t.get("move_mm")))

    # ------------------------------------------------------------------------------------------ files

    def relative(self, path: Path) -> str:
        return self.catalog.relpath(path)

    def asset_paths(self, session_id: int) -> set[Path]:
        return {self.catalog.abspath(r[0]) for r in self.conn.execute(
            "SELECT path FROM assets WHERE session_id = ?", (session_id,))}

    def point_sizes(self, session_id: int) -> list[int]:
        """Bytes of each committed point of the session (all its files: RAW+JPEG, clip + sidecars)."""
        return [int(r[0] or 0) for r in self.conn.execute(
            "SELECT sum(bytes) FROM assets WHERE session_id = ? AND point_id IS NOT NULL GROUP BY point_id",
            (session_id,))]

    def measured_costs(self, camera_model: str | None, mode: str, defaults: Costs, *,
                       plan_camera: str | None = None) -> Costs:
        """Per-operation costs measured in earlier sessions (calibration sessions included) of this camera
        model, or, when the model is not known (an offline check), of sessions whose plan named the same
        camera (`plan_camera`, e.g. 'sim' or a serial number): the plan's ETA and disk source."""
        if not self.has_table("capture_timings") or not (camera_model or plan_camera):
            return defaults
        which, key = (("$.camera.model", camera_model) if camera_model else ("$.plan_camera", plan_camera))
        row = self.conn.execute(
            "SELECT count(*), avg(t.capture_s), sum(t.set_s), sum(t.sets), sum(t.move_mm), sum(t.move_s), "
            "avg((SELECT sum(a.bytes) FROM assets a WHERE a.point_id = p.id)) "
            "FROM capture_timings t JOIN points p ON p.id = t.point_id JOIN sessions s ON s.id = p.session_id "
            "WHERE s.mode = ? AND json_extract(s.rig_json, ?) = ?", (mode, which, key)).fetchone()
        n, capture_s, set_s, sets, move_mm, move_s, size = row
        if not n:
            return defaults
        costs = replace(defaults, capture_s=capture_s or defaults.capture_s,
                        source=f"measured over {n} earlier points of {camera_model or 'camera ' + repr(key)}")
        if sets:
            costs = replace(costs, set_s=set_s / sets)
        if move_s and move_mm:
            costs = replace(costs, move_mm_s=move_mm / move_s, settle_s=0.0)
        if size:
            if mode == "stills":
                costs = replace(costs, bytes_per_still=size)
            else:
                costs = replace(costs, bytes_per_clip_frame=size / max(1, _frames_per_pass(self.conn)))
        return costs

    def frames(self, session_id: int) -> list[dict[str, Any]]:
        """Committed point files, in plan order, with what the outputs need (requested settings as JSON)."""
        rows = self.catalog.rows(
            "SELECT a.id AS asset_id, a.path, a.kind, a.sha256, a.bytes, p.combination_key, p.frame_index, "
            "p.ordinal AS idx, p.settings_json AS requested_json, p.slider_target_mm FROM assets a "
            "JOIN points p ON p.id = a.point_id "
            "WHERE a.session_id = ? ORDER BY p.ordinal, a.id", (session_id,))
        for r in rows:
            r["combo"] = int(r["combination_key"].lstrip("c"))
        return rows

    def events(self, session_id: int) -> list[dict[str, Any]]:
        if not self.has_table("capture_events"):
            return []
        return self.catalog.rows("SELECT at, kind, message FROM capture_events WHERE session_id = ? ORDER BY id",
                                 (session_id,))

    def faults(self, session_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for event in self.events(session_id):
            if event["kind"] not in NOT_FAULTS:
                counts[event["kind"]] = counts.get(event["kind"], 0) + 1
        return counts

    def _live_word(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its word, a dead owner noticed: never `running` for a session nobody runs."""
        self._with_word(row)
        row["word"] = self.word(row)
        return row

    @staticmethod
    def _with_word(row: dict[str, Any]) -> dict[str, Any]:
        row["word"] = words.word(row.get("status"), row.get("state"))
        return row

    def session(self, session_id: int) -> dict[str, Any] | None:
        """The session row with `word` (capture/status.py) and `dir`; None when there is no such session."""
        row = self.catalog.session(session_id)
        if row is None:
            return None
        row = self._live_word(dict(row))
        row["dir"] = row.get("data_dir")
        return row

    def owner(self, session: dict[str, Any]):
        """The live process holding the session's lock (capture/owner.py), or None."""
        from .owner import holder

        return holder(self.data_root / session["data_dir"]) if session.get("data_dir") else None

    def word(self, session: dict[str, Any]) -> str:
        """The session's word with a dead owner noticed: 'running' (or 'building outputs') without a live owner
        is INTERRUPTED (OUTPUTS_INTERRUPTED)."""
        if session["word"] not in words.ACTIVE:
            return session["word"]
        return words.word(session["status"], session.get("state"), owner_alive=self.owner(session) is not None)

    def summaries(self) -> list[dict[str, Any]]:
        """One row per capture session for `cinectrl capture status`: word, owner, points, files, clips, pairs."""
        events = self.has_table("capture_events")
        rows = self.catalog.rows(
            "SELECT s.*, "
            "(SELECT count(*) FROM points p WHERE p.session_id = s.id) AS points, "
            "(SELECT count(*) FROM points p WHERE p.session_id = s.id AND p.status = 'done') AS done, "
            "(SELECT count(*) FROM points p WHERE p.session_id = s.id AND p.status = 'failed') AS failed_points, "
            "(SELECT count(*) FROM assets a WHERE a.session_id = s.id AND a.point_id IS NOT NULL) AS files, "
            "(SELECT coalesce(sum(bytes), 0) FROM assets a WHERE a.session_id = s.id AND a.point_id IS NOT NULL) "
            "AS bytes, "
            "(SELECT count(*) FROM clips c WHERE c.session_id = s.id) AS clips, "
            "(SELECT count(*) FROM pairs c WHERE c.session_id = s.id) AS pairs, "
            + ("(SELECT count(*) FROM capture_events e WHERE e.session_id = s.id AND e.kind NOT IN "
               f"({', '.join(repr(k) for k in NOT_FAULTS)})) AS faults "
               if events else "0 AS faults ")
            + "FROM sessions s WHERE s.plan_toml IS NOT NULL ORDER BY s.id")
        for row in rows:
            self._with_word(row)
            row["dir"] = row.get("data_dir")
            owner = self.owner(row) if row["word"] in words.ACTIVE else None
            row["owner"] = owner
            row["word"] = words.word(row["status"], row.get("state"), owner_alive=owner is not None) \
                if row["word"] in words.ACTIVE else row["word"]
        return rows

    def readback_mismatches(self, session_id: int) -> list[dict[str, Any]]:
        """Frames whose camera read-back differs from the setting their point asked for (or was not read)."""
        rows = self.catalog.rows(
            "SELECT p.ordinal, a.path, s.role, s.requested_text, s.readback_text FROM asset_settings s "
            "JOIN assets a ON a.id = s.asset_id JOIN points p ON p.id = a.point_id "
            "WHERE a.session_id = ? AND s.requested_text IS NOT NULL ORDER BY p.ordinal, s.role", (session_id,))
        out = []
        for r in rows:
            if r["readback_text"] is None or not values.same_value(r["role"], r["requested_text"], r["readback_text"]):
                out.append({"point": f"p{r['ordinal']:04d}", "path": r["path"], "role": r["role"],
                            "requested": r["requested_text"], "readback": r["readback_text"]})
        return out

    # ------------------------------------------------------------------------------------------ outputs

    def _output_asset(self, session_id: int, path: Path, kind: str, *, frames: int | None = None,
                      fps: float | None = None, width: int | None = None, height: int | None = None) -> int:
        """An output file (clip, proxy) as an asset, and the session's own copy of it (asset_uses). Bytes
        already catalogued (an earlier take's identical clip) share that asset, but the session's rows
        point at its own file; a rebuilt file with new bytes replaces the session's row for that path."""
        from .catalog import sha256_file

        cat = self.catalog
        sha = sha256_file(path)
        rel = cat.relpath(path)
        with cat.transaction():
            existing = cat.asset_by_path(path)
            if existing is not None and existing["sha256"] != sha:
                self._drop_output_asset(session_id, existing)
            self.conn.execute("DELETE FROM asset_uses WHERE session_id = ? AND path = ?", (session_id, rel))
            same = cat.asset_by_sha256(sha)
            if same is not None:   # identical bytes catalogued (this file, or another take's identical one)
                aid = int(same["id"])
            else:
                aid = cat.add_asset(path, sha256=sha, bytes=path.stat().st_size, kind=kind,
                                    metadata_status="unparsed",
                                    error="rendered by cinectrl; settings are in clips.settings_json",
                                    frames=frames, fps=fps, width=width, height=height, session_id=session_id,
                                    mtime=path.stat().st_mtime)
            self.conn.execute("INSERT INTO asset_uses (session_id, asset_id, path, created_at) VALUES (?,?,?,?)",
                              (session_id, aid, rel, time.time()))
            return aid

    def _drop_output_asset(self, session_id: int, asset: dict[str, Any]) -> None:
        """This session's file at `asset`'s path now holds other bytes. When other sessions hold copies of the
        old bytes the asset moves to one of them (their rows stay whole); otherwise it goes."""
        aid = int(asset["id"])
        other = self.conn.execute("SELECT session_id, path FROM asset_uses WHERE asset_id = ? AND session_id != ? "
                                  "ORDER BY created_at LIMIT 1", (aid, session_id)).fetchone()
        if other is not None:
            self.conn.execute("UPDATE assets SET path = ?, session_id = ? WHERE id = ?", (other[1], other[0], aid))
            return
        self.conn.execute("UPDATE clips SET asset_id = NULL WHERE asset_id = ?", (aid,))
        self.conn.execute("UPDATE clips SET proxy_asset_id = NULL WHERE proxy_asset_id = ?", (aid,))
        self.conn.execute("DELETE FROM assets WHERE id = ?", (aid,))

    def own_files(self, session_id: int) -> set[Path]:
        """Every file the catalog says this session holds: its frames, its outputs (own copies included)."""
        return self.asset_paths(session_id) | {self.catalog.abspath(r[0]) for r in self.conn.execute(
            "SELECT path FROM asset_uses WHERE session_id = ?", (session_id,))}

    def clip_path(self, session_id: int, asset_id: int | None) -> Path | None:
        """Where the session's copy of a clip or proxy asset lives."""
        if asset_id is None:
            return None
        own = self.conn.execute("SELECT path FROM asset_uses WHERE session_id = ? AND asset_id = ? "
                                "ORDER BY created_at LIMIT 1", (session_id, int(asset_id))).fetchone()
        if own is not None:
            return self.catalog.abspath(own[0])
        row = self.catalog.asset(int(asset_id))
        return self.catalog.abspath(row["path"]) if row else None

    def intact(self, asset_id: int | None, path: Path) -> bool:
        """The file is there with the bytes its asset row records."""
        from .catalog import sha256_file

        row = self.catalog.asset(int(asset_id)) if asset_id is not None else None
        return (row is not None and path.is_file() and path.stat().st_size == row["bytes"]
                and sha256_file(path) == row["sha256"])

    def add_clip(self, session_id: int, combo: int, settings: dict[str, str], clip: Path, proxy: Path, *,
                 frames: int, fps: float | None = None, width: int | None = None, height: int | None = None) -> int:
        clip_asset = self.catalog.asset_by_path(clip)
        if clip_asset is None or clip_asset.get("point_id") is None:
            clip_id = self._output_asset(session_id, clip, "clip", frames=frames, fps=fps, width=width, height=height)
        else:
            clip_id = int(clip_asset["id"])     # a recorded pass: the point's own clip asset
        proxy_id = self._output_asset(session_id, proxy, "proxy", frames=frames, fps=fps)
        return self.catalog.add_clip(session_id, combination_key(combo), asset_id=clip_id, proxy_asset_id=proxy_id,
                                     frames=frames, fps=fps, settings=settings)

    def add_pair(self, session_id: int, reference_clip: int, other_clip: int, record: dict[str, Any]) -> int:
        controls = dict(record["controls"]) if record["controls"] else {"_source": record["controls_source"]}
        if record.get("reference_controls"):
            controls["_reference"] = record["reference_controls"]
        if record.get("mapping"):
            controls["_mapping"] = record["mapping"]
        return self.catalog.add_pair(session_id, reference_clip, other_clip, deltas=record["deltas"],
                                     controls=controls, qc=record["quality"])

    def pairs(self, session_id: int) -> list[dict[str, Any]]:
        return self.catalog.pairs(session_id=session_id)

    def passes(self, session_id: int) -> list[dict[str, Any]]:
        return self.catalog.rows("SELECT c.* FROM capture_passes c JOIN assets a ON a.id = c.asset_id "
                                 "WHERE a.session_id = ?", (session_id,))


def _frames_per_pass(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT avg(frames) FROM assets WHERE kind = 'clip' AND point_id IS NOT NULL").fetchone()
    return int(row[0] or 1)


def _identity(camera: CameraIdentity) -> dict[str, str]:
    return {k: getattr(camera, k) for k in ("make", "model", "serial", "lens", "firmware", "port")}


def _slider(info: SliderInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"firmware": info.firmware, "build": info.build, "port": info.port, "travel_mm": list(info.travel_mm),
            "max_rate_mm_min": info.max_rate_mm_min, "accel_mm_s2": info.accel_mm_s2}
