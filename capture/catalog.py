"""The SQLite catalog every stage reads and writes: sessions, the point ledger, assets and their settings,
EXIF, clips, pairs, reviews and training runs.

One `Catalog` object per process. Open it, write inside `with catalog.transaction():` when several rows
must land together (a frame: asset + settings + slider + EXIF + point status), read with the query helpers
or plain SQL through `catalog.db` (a `sqlite_utils.Database`). Helpers never commit on their own inside an
open transaction; outside one, each helper is its own small transaction.

The file is in WAL mode, so readers (datasette, `cinectrl catalog show`, a second process) browse while a
session writes. Paths are stored relative to the catalog's data root (the folder holding the .db file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import sqlite_utils

from rigs.camera import values as _values

from .catalog_file import (CatalogError, CatalogVersionError, check_is_catalog, connect, connect_readonly,
                           open_problem, use_write_ahead_log)
from .schema import MIGRATIONS, SCHEMA_VERSION

ROLES = ("aperture", "shutter", "iso", "white_balance", "kelvin", "focus", "focal")
ASSET_KINDS = ("still", "clip", "proxy", "raw", "depth", "sidecar", "other")
SESSION_STATUSES = ("planned", "running", "paused", "done", "failed", "aborted")
POINT_STATUSES = ("pending", "running", "done", "failed")
REVIEW_STATES = ("unreviewed", "in_review", "accepted", "rejected", "disputed")
# what one verdict records (besides external_id, imported_at and the gate's counted / gate_note)
REVIEW_COLUMNS = ("pair_id", "annotator", "created_at", "verdict", "reasons_json", "rating", "defects_json", "notes",
                  "stage", "server", "account_id", "updated_by", "updated_at", "lead_time_s")
_KEEP = object()   # set_pair_state: leave this column as it is


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hash assets are keyed by, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def setting_number(role: str, value: Any) -> float | None:
    """The number a setting label stands for ('f/5.6' -> 5.6, '1/400' -> 0.0025), or None (e.g. 'Daylight')."""
    return _values.number(role, value)


# Prepared statements for the per-frame path: fixed text, so sqlite3's statement cache reuses them.
_INSERT_ASSET = (
    "INSERT INTO assets (path, sha256, bytes, kind, format, width, height, frames, fps, session_id, point_id, "
    "frame_index, metadata_status, metadata_source, error, mtime, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
ASSET_COLUMNS = ("id", "path", "sha256", "bytes", "kind", "format", "width", "height", "frames", "fps", "session_id",
                 "point_id", "frame_index", "metadata_status", "metadata_source", "error", "mtime", "created_at",
                 "updated_at")
_INSERT_ASSET_WITH_ID = (f"INSERT INTO assets ({', '.join(ASSET_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(ASSET_COLUMNS))})")
_UPSERT_SETTING = (
    "INSERT INTO asset_settings (asset_id, role, requested_text, requested_value, readback_text, readback_value, "
    "exif_text, exif_value) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (asset_id, role) DO UPDATE SET "
    "requested_text = coalesce(excluded.requested_text, requested_text), "
    "requested_value = coalesce(excluded.requested_value, requested_value), "
    "readback_text = coalesce(excluded.readback_text, readback_text), "
    "readback_value = coalesce(excluded.readback_value, readback_value), "
    "exif_text = coalesce(excluded.exif_text, exif_text), "
    "exif_value = coalesce(excluded.exif_value, exif_value)"
)
_INSERT_EXIF_SETTING = "INSERT INTO asset_settings (asset_id, role, exif_text, exif_value) VALUES (?,?,?,?)"
_UPSERT_SLIDER = (
    "INSERT OR REPLACE INTO slider_positions (asset_id, target_mm, position_mm, at, move_started_at, "
    "move_finished_at) VALUES (?,?,?,?,?,?)"
)
EXIF_COLUMNS = ("source", "make", "model", "lens", "serial", "f_number", "f_number_source", "exposure_s",
                "exposure_text", "exposure_source", "iso", "iso_source", "focal_mm", "focal_35mm", "white_balance",
                "kelvin", "orientation", "width", "height", "datetime_original", "duration_s", "tags_json")
# How the exif table keeps a file's full tag set (`tags_json`): one encoder for every path that writes it
# (json.dumps with options builds a new encoder per call, which shows at thousands of files a second).
tags_json = json.JSONEncoder(sort_keys=True, default=str).encode
_UPSERT_EXIF = (
    f"INSERT OR REPLACE INTO exif (asset_id, {', '.join(EXIF_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' * len(EXIF_COLUMNS))})"
)


class Catalog:
    """An open catalog file.

    `Catalog(path)` creates the file (and its folder) if missing and upgrades an older one in place;
    `create=False` requires it to exist. `readonly=True` is for commands that only read: the file is opened
    read-only (`mode=ro`; `immutable=1` where its folder cannot be written, e.g. a read-only mount), nothing
    is created or migrated, and a catalog older than this cinectrl is refused with the upgrade command.
    Whatever the mode, a file that is not a cinectrl catalog (another application's SQLite database, or no
    database at all) is refused before anything is written to it."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, durable: bool = True,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise CatalogError(f"catalog path {self.path} is a folder: pass a file such as {self.path / 'catalog.db'}")
        if not self.path.exists():
            if readonly or not create:
                raise CatalogError(f"no catalog at {self.path}: pass the right --catalog, or create one with "
                                   f"`cinectrl catalog ingest --init --catalog {self.path} FILES...`")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data_root = self.path.parent.resolve()
        self.conn = connect_readonly(self.path) if readonly else connect(self.path)
        with self._closed_on_failure():
            empty = check_is_catalog(self.conn, self.path)
            if empty and (readonly or not create):
                raise CatalogError(f"{self.path} is an empty file, not a cinectrl catalog: pass the catalog's "
                                   ".db file with --catalog")
            if readonly:
                self._check_readable_version()
                self.conn.execute("PRAGMA query_only=1")
            else:
                use_write_ahead_log(self.conn)
                self.conn.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed frame survives a power cut, not only a process crash.
        self.durable = durable and not readonly
        if not readonly:
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db = sqlite_utils.Database(self.conn)
        self._depth = 0
        self._folders: dict[str, str] = {}
        self.upgraded_from: int | None = None      # the schema version this open migrated from, if it did
        if not readonly:
            with self._closed_on_failure():
                self._migrate()
        self.station_id = self._info("station_id")

    @contextlib.contextmanager
    def _closed_on_failure(self) -> Iterator[None]:
        """A catalog that fails to open leaves no connection behind; SQLite's complaint becomes one that names
        the file and the fix."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise CatalogError(open_problem(self.path, exc)) from None
        except BaseException:
            self.conn.close()
            raise

    def _applied(self) -> set[int]:
        """Migration versions recorded in the file (`user_version` is only the highest of them)."""
        try:
            return {int(r[0]) for r in self.conn.execute("SELECT version FROM schema_migrations")}
        except sqlite3.DatabaseError:
            return set()

    def _pending(self, current: int) -> list:
        """Migrations this file lacks: every one above its version, and any below it that it skipped (a file
        written between the landing of two migrations numbered out of order)."""
        applied = self._applied() if current else set()
        return [m for m in MIGRATIONS if m.version > current or (applied and m.version not in applied)]

    def _check_readable_version(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            self._refuse_newer(current)
        if current < SCHEMA_VERSION or self._pending(current):
            raise CatalogError(
                f"catalog {self.path} has schema version {current}, older than this cinectrl's {SCHEMA_VERSION}; "
                f"reading commands never change a catalog: upgrade it once with `cinectrl catalog upgrade "
                f"--catalog {self.path}` (or any command that writes to it), then run this again")

    def _refuse_newer(self, current: int) -> None:
        raise CatalogVersionError(
            f"catalog {self.path} has schema version {current}, but this cinectrl understands versions up "
            f"to {SCHEMA_VERSION}: upgrade cinectrl-toolkit (pip install -U cinectrl-toolkit) to open it; "
            "the file was left untouched")

    # ----------------------------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            self._refuse_newer(current)
        pending = self._pending(current)
        if current and pending:
            self.upgraded_from = current
        for migration in pending:
            with self.transaction():
                # Another process may have migrated while we waited for the write lock.
                if migration.version in self._applied() or (self.schema_version >= migration.version
                                                             and not self._applied()):
                    continue
                for statement in _statements(migration.sql):
                    self.conn.execute(statement)
                self.conn.execute("INSERT INTO schema_migrations (version, description, applied_at) "
                                  "VALUES (?,?,?)", (migration.version, migration.description, time.time()))
                if migration.version == 1:
                    self.conn.execute("INSERT INTO catalog_info (key, value) VALUES ('station_id', ?)",
                                      (uuid.uuid4().hex[:12],))
                self.conn.execute(f"PRAGMA user_version = {max(migration.version, self.schema_version)}")

    def _info(self, key: str) -> str | None:
        row = next(self.db["catalog_info"].rows_where("key = ?", [key]), None)
        return row["value"] if row else None

    # ----------------------------------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Catalog"]:
        """All writes inside commit together or not at all. Nests (inner blocks are savepoints).

        The outermost block takes the write lock at once (BEGIN IMMEDIATE), so two writers queue instead of
        deadlocking on a lock upgrade; readers are never blocked (WAL)."""
        if self._depth:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    @contextlib.contextmanager
    def fast_commits(self) -> Iterator["Catalog"]:
        """Commits inside skip their fsync (still atomic and consistent: WAL); on leaving, the WAL is synced
        once, so everything committed inside is as durable as with a synced commit each. For bulk jobs
        that commit often and can be rerun: a power cut mid-run loses the last commits, nothing else."""
        if not self.durable:
            yield self
            return
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield self
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")
            wal = self.path.with_name(self.path.name + "-wal")
            try:
                fd = os.open(wal, os.O_RDONLY)
            except FileNotFoundError:   # checkpointed and removed: the database file itself was synced
                pass
            else:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # ----------------------------------------------------------------------------------------- paths

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """How a file is stored: relative to the data root, POSIX separators ('../' when outside it).
        Folders are resolved (symlinks followed) once each and remembered: bulk ingests stat less."""
        folder, name = os.path.split(os.path.abspath(path))
        stored = self._folders.get(folder)
        if stored is None:
            stored = Path(os.path.relpath(Path(folder).resolve(), self.data_root)).as_posix()
            if len(self._folders) > 10000:
                self._folders.clear()
            self._folders[folder] = stored
        return name if stored == "." else f"{stored}/{name}"

    def abspath(self, stored: str) -> Path:
        return (self.data_root / stored).resolve()

    # ----------------------------------------------------------------------------------------- sessions

    def create_session(self, name: str, *, scene: str | None = None, operator: str | None = None,
                       mode: str = "stills", plan_toml: str | None = None, plan_sha256: str | None = None,
                       notes: str | None = None, rig: Mapping[str, Any] | None = None,
                       data_dir: str | None = None, status: str = "planned", uid: str | None = None,
                       station_id: str | None = None, created_at: float | None = None) -> int:
        """A new session row; `plan_sha256` defaults to the sha256 of `plan_toml`."""
        if plan_sha256 is None and plan_toml is not None:
            plan_sha256 = hashlib.sha256(plan_toml.encode()).hexdigest()
        return int(self.db["sessions"].insert({
            "uid": uid or uuid.uuid4().hex, "station_id": station_id or self.station_id, "name": name,
            "scene": scene, "operator": operator, "notes": notes, "plan_toml": plan_toml, "plan_sha256": plan_sha256,
            "mode": mode, "rig_json": _dumps(rig), "status": status, "data_dir": data_dir,
            "created_at": created_at or time.time()}).last_pk)

    def set_session_status(self, session_id: int, status: str) -> None:
        """'running' stamps started_at (first time only); done/failed/aborted/paused stamp stopped_at."""
        now = time.time()
        if status == "running":
            sql = ("UPDATE sessions SET status = ?, started_at = coalesce(started_at, ?), stopped_at = NULL "
                   "WHERE id = ?")
        elif status == "planned":
            self.db["sessions"].update(session_id, {"status": status})
            return
        elif status in SESSION_STATUSES:
            sql = "UPDATE sessions SET status = ?, stopped_at = ? WHERE id = ?"
        else:
            raise ValueError(f"session status {status!r} is not one of {', '.join(SESSION_STATUSES)}")
        self.conn.execute(sql, (status, now, session_id))

    def session(self, session_id: int) -> dict[str, Any] | None:
        return self._where("sessions", "id = ?", [session_id])

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.db["sessions"].rows_where(order_by="id"))

    def find_session(self, *, plan_sha256: str) -> dict[str, Any] | None:
        """The latest session of this plan (a rerun resumes it)."""
        return self._where("sessions", "plan_sha256 = ?", [plan_sha256], order_by="id DESC")

    # ----------------------------------------------------------------------------------------- devices

    def add_device(self, kind: str, *, make: str | None = None, model: str | None = None,
                   serial: str | None = None, lens: str | None = None, firmware: str | None = None,
                   settings: Mapping[str, Any] | None = None) -> int:
        """Get-or-create: the same device in the same setup is one row however many sessions use it."""
        fields = (kind, make, model, serial, lens, firmware, _dumps(settings))
        identity = hashlib.sha256(json.dumps(fields).encode()).hexdigest()
        return int(self.db["devices"].lookup({"identity": identity}, dict(zip(
            ("kind", "make", "model", "serial", "lens", "firmware", "settings_json"), fields))))

    def link_device(self, session_id: int, device_id: int, role: str) -> None:
        # plain SQL: the table is WITHOUT ROWID, which sqlite-utils' insert(ignore=True) cannot handle
        self.conn.execute("INSERT OR IGNORE INTO session_devices (session_id, device_id, role) VALUES (?,?,?)",
                          (session_id, device_id, role))

    def session_devices(self, session_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT d.*, sd.role FROM session_devices sd JOIN devices d ON d.id = sd.device_id "
                         "WHERE sd.session_id = ? ORDER BY sd.role", (session_id,))

    # ----------------------------------------------------------------------------------------- points (ledger)

    def add_points(self, session_id: int, points: Iterable[Mapping[str, Any]]) -> int:
        """One ledger row per planned point. Each mapping: ordinal (required), combination_key, frame_index,
        settings (role -> label), slider_target_mm. Returns how many were added."""
        now = time.time()
        rows = [{"session_id": session_id, "ordinal": int(p["ordinal"]), "combination_key": p.get("combination_key"),
                 "frame_index": p.get("frame_index"), "settings_json": json.dumps(dict(p.get("settings") or {}),
                                                                                  sort_keys=True),
                 "slider_target_mm": p.get("slider_target_mm"), "created_at": now} for p in points]
        with self.transaction():
            self.db["points"].insert_all(rows, batch_size=500)
        return len(rows)

    def points(self, session_id: int, status: str | None = None) -> list[dict[str, Any]]:
        if status is None:
            return list(self.db["points"].rows_where("session_id = ?", [session_id], order_by="ordinal"))
        return list(self.db["points"].rows_where("session_id = ? AND status = ?", [session_id, status],
                                                 order_by="ordinal"))

    def point_id(self, session_id: int, ordinal: int) -> int | None:
        row = self._where("points", "session_id = ? AND ordinal = ?", [session_id, ordinal])
        return int(row["id"]) if row else None

    def mark_point(self, point_id: int, status: str, error: str | None = None) -> None:
        """running: attempts + 1 and started_at; done: error cleared, finished_at; failed: error kept."""
        now = time.time()
        if status == "running":
            self.conn.execute("UPDATE points SET status = 'running', attempts = attempts + 1, started_at = ? "
                              "WHERE id = ?", (now, point_id))
        elif status == "done":
            self.conn.execute("UPDATE points SET status = 'done', error = NULL, finished_at = ? WHERE id = ?",
                              (now, point_id))
        elif status in ("failed", "pending"):
            self.conn.execute("UPDATE points SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                              (status, error, now if status == "failed" else None, point_id))
        else:
            raise ValueError(f"point status {status!r} is not one of {', '.join(POINT_STATUSES)}")

    def reset_interrupted(self, session_id: int) -> int:
        """After a crash: points left 'running' go back to 'pending'. Returns how many."""
        return self.conn.execute("UPDATE points SET status = 'pending' WHERE session_id = ? AND status = 'running'",
                                 (session_id,)).rowcount

    def progress(self, session_id: int) -> dict[str, int]:
        counts = {s: 0 for s in POINT_STATUSES}
        for row in self.db.query("SELECT status, count(*) AS n FROM points WHERE session_id = ? GROUP BY status",
                                 [session_id]):
            counts[row["status"]] = row["n"]
        counts["total"] = sum(counts[s] for s in POINT_STATUSES)
        return counts

    # ----------------------------------------------------------------------------------------- assets

    def add_asset(self, path: str | os.PathLike[str], *, sha256: str | None, bytes: int | None,
                  kind: str = "still", metadata_status: str = "unparsed", metadata_source: str | None = None,
                  error: str | None = None, width: int | None = None, height: int | None = None,
                  frames: int | None = None, fps: float | None = None, session_id: int | None = None,
                  point_id: int | None = None, frame_index: int | None = None, mtime: float | None = None,
                  stored_path: str | None = None) -> int:
        """Insert one asset row and return its id. `path` is a real file path (stored relative to the data
        root) unless `stored_path` gives the stored form directly. Raises sqlite3.IntegrityError on a
        sha256 already catalogued (see `asset_by_sha256`)."""
        stored = stored_path if stored_path is not None else self.relpath(path)
        fmt = Path(stored).suffix.lower().lstrip(".") or None
        now = time.time()
        cur = self.conn.execute(_INSERT_ASSET, (stored, sha256, bytes, kind, fmt, width, height, frames, fps,
                                                session_id, point_id, frame_index, metadata_status,
                                                metadata_source, error, mtime, now, now))
        return int(cur.lastrowid)

    def next_asset_id(self) -> int:
        """The id the next asset will get. Only meaningful inside a transaction (which holds the write lock)."""
        return int(self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM assets").fetchone()[0])

    def insert_many(self, *, assets: list[tuple], exif: list[tuple]) -> None:
        """Bulk path: rows with ids already assigned (`next_asset_id`), in the column order of ASSET_COLUMNS
        and (asset_id, *EXIF_COLUMNS). One executemany per table."""
        if assets:
            self.conn.executemany(_INSERT_ASSET_WITH_ID, assets)
        if exif:
            self.conn.executemany(_UPSERT_EXIF, exif)

    def asset(self, asset_id: int) -> dict[str, Any] | None:
        return self._where("assets", "id = ?", [asset_id])

    def asset_by_sha256(self, sha256: str) -> dict[str, Any] | None:
        return self._where("assets", "sha256 = ?", [sha256])

    def asset_by_path(self, path: str | os.PathLike[str]) -> dict[str, Any] | None:
        return self._where("assets", "path = ?", [self.relpath(path)], order_by="id DESC")

    def move_asset(self, asset_id: int, path: str | os.PathLike[str]) -> None:
        """The same bytes now live elsewhere (file moved or renamed)."""
        self.db["assets"].update(asset_id, {"path": self.relpath(path), "updated_at": time.time()})

    def attach_asset(self, asset_id: int, *, session_id: int | None = None, point_id: int | None = None,
                     frame_index: int | None = None, kind: str | None = None) -> None:
        """Link an already catalogued asset to a session / point (fields left None are kept)."""
        given = {"session_id": session_id, "point_id": point_id, "frame_index": frame_index, "kind": kind}
        self.db["assets"].update(asset_id, {**{k: v for k, v in given.items() if v is not None},
                                            "updated_at": time.time()})

    def assets(self, *, session_id: int | None = None, point_id: int | None = None) -> list[dict[str, Any]]:
        table = self.db["assets"]
        if point_id is not None:
            return list(table.rows_where("point_id = ?", [point_id], order_by="id"))
        if session_id is not None:
            return list(table.rows_where("session_id = ?", [session_id], order_by="frame_index, id"))
        return list(table.rows_where(order_by="id"))

    def set_settings(self, asset_id: int, *, requested: Mapping[str, Any] | None = None,
                     readback: Mapping[str, Any] | None = None, exif: Mapping[str, Any] | None = None) -> None:
        """Per role: the value asked for, the value the camera reported, and the value EXIF recorded.
        Labels are kept as text and parsed to numbers ('f/5.6' -> 5.6, '1/400' -> 0.0025 s, focus in m,
        focal in mm). Merges with what is already there (a later EXIF pass keeps the read-back)."""
        requested, readback, exif = requested or {}, readback or {}, exif or {}
        rows = []
        for role in ROLES:
            if role not in requested and role not in readback and role not in exif:
                continue
            r, b, e = requested.get(role), readback.get(role), exif.get(role)
            rows.append((asset_id, role,
                         None if r is None else str(r), setting_number(role, r),
                         None if b is None else str(b), setting_number(role, b),
                         None if e is None else str(e), setting_number(role, e)))
        unknown = (set(requested) | set(readback) | set(exif)) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown setting role(s) {sorted(unknown)}: use {', '.join(ROLES)}")
        if rows:
            self.conn.executemany(_UPSERT_SETTING, rows)

    def add_exif_settings(self, asset_id: int, values: Mapping[str, tuple[str | None, float | None]]) -> None:
        """EXIF side of a freshly added asset's settings, text and number already known (the ingest fast
        path; `set_settings` merges with rows that may exist)."""
        self.conn.executemany(_INSERT_EXIF_SETTING, [(asset_id, role, text, value) for role, (text, value)
                                                     in values.items()])

    def settings(self, asset_id: int) -> dict[str, dict[str, Any]]:
        out = {}
        for row in self.db["asset_settings"].rows_where("asset_id = ?", [asset_id]):
            del row["asset_id"]
            out[row.pop("role")] = row
        return out

    def set_slider(self, asset_id: int, *, target_mm: float | None, position_mm: float | None,
                   at: float | None = None, move_started_at: float | None = None,
                   move_finished_at: float | None = None) -> None:
        self.conn.execute(_UPSERT_SLIDER, (asset_id, target_mm, position_mm, at if at is not None else time.time(),
                                           move_started_at, move_finished_at))

    def put_exif(self, asset_id: int, fields: Mapping[str, Any]) -> None:
        """Normalised EXIF (keys of EXIF_COLUMNS; `tags` or `tags_json` holds the full tag set)."""
        values = dict(fields)
        if values.get("tags_json") is None:
            values["tags_json"] = tags_json(values.pop("tags", {}))
        self.conn.execute(_UPSERT_EXIF, (asset_id, *(values.get(c) for c in EXIF_COLUMNS)))

    def exif(self, asset_id: int) -> dict[str, Any] | None:
        return self._where("exif", "asset_id = ?", [asset_id])

    # ----------------------------------------------------------------------------------------- clips, pairs

    def add_clip(self, session_id: int, combination_key: str, *, asset_id: int | None = None,
                 proxy_asset_id: int | None = None, frames: int | None = None, fps: float | None = None,
                 settings: Mapping[str, Any] | None = None) -> int:
        """Idempotent per (session, combination): rebuilding a clip updates its row."""
        values = {"asset_id": asset_id, "proxy_asset_id": proxy_asset_id, "frames": frames, "fps": fps,
                  "settings_json": json.dumps(dict(settings or {}), sort_keys=True)}
        with self.transaction():
            clip_id = self.db["clips"].lookup({"session_id": session_id, "combination_key": combination_key},
                                              {**values, "created_at": time.time()})
            self.db["clips"].update(clip_id, values)
        return int(clip_id)

    def clips(self, session_id: int) -> list[dict[str, Any]]:
        return list(self.db["clips"].rows_where("session_id = ?", [session_id], order_by="id"))

    def add_pair(self, session_id: int, reference_clip_id: int, other_clip_id: int, *,
                 deltas: Mapping[str, Any] | None = None, controls: Mapping[str, Any] | None = None,
                 qc: Mapping[str, Any] | None = None) -> int:
        """Idempotent per (session, reference, other): a rebuild refreshes deltas/controls/QC and keeps the
        review state and train_ready flag."""
        now = time.time()
        values = {"deltas_json": _dumps(dict(deltas or {})), "controls_json": _dumps(dict(controls or {})),
                  "qc_json": _dumps(dict(qc or {})), "updated_at": now}
        with self.transaction():
            pair_id = self.db["pairs"].lookup({"session_id": session_id, "reference_clip_id": reference_clip_id,
                                               "other_clip_id": other_clip_id}, {**values, "created_at": now})
            self.db["pairs"].update(pair_id, values)
        return int(pair_id)

    def set_pair_state(self, pair_id: int, *, review_state: str | None = None, train_ready: bool | None = None,
                       decided_by: Any = _KEEP, adjudicated_by: Any = _KEEP, decided_at: Any = _KEEP) -> None:
        """The one writer of a pair's review state (the review gate and tests alike). `decided_by` /
        `adjudicated_by` are lists of accounts (stored as JSON; None clears)."""
        changes: dict[str, Any] = {}
        if review_state is not None:
            changes["review_state"] = review_state
        if train_ready is not None:
            changes["train_ready"] = int(train_ready)
        for key, value in (("decided_by", decided_by), ("adjudicated_by", adjudicated_by)):
            if value is not _KEEP:
                changes[key] = json.dumps(list(value)) if value else None
        if decided_at is not _KEEP:
            changes["decided_at"] = decided_at
        changes["updated_at"] = time.time()
        with self.transaction():
            self.conn.execute(f"UPDATE pairs SET {', '.join(k + ' = ?' for k in changes)} WHERE id = ?",
                              (*changes.values(), pair_id))

    def pairs(self, *, session_id: int | None = None, review_state: str | None = None,
              train_ready: bool | None = None, gold: bool | None = False) -> list[dict[str, Any]]:
        """Pairs with both clips' paths and settings, the session's name, scene and camera, and the reference
        clip's fps and frames (JSON columns decoded). Gold pairs (known-bad pairs that measure reviewers,
        annotate/gold.py) are no data: left out unless `gold=True` (only them) or None (all)."""
        where, args = [], []
        if gold is not None:
            where.append("p.gold_kind IS NOT NULL" if gold else "p.gold_kind IS NULL")
        if session_id is not None:
            where.append("p.session_id = ?"), args.append(session_id)
        if review_state is not None:
            where.append("p.review_state = ?"), args.append(review_state)
        if train_ready is not None:
            where.append("p.train_ready = ?"), args.append(int(train_ready))
        sql = PAIRS_QUERY + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY p.id"
        out = []
        for row in self.rows(sql, args):
            for key in ("deltas", "controls", "qc", "reference_settings", "other_settings"):
                row[key] = _loads(row.pop(key + "_json"))
            row["train_ready"] = bool(row["train_ready"])
            out.append(row)
        return out

    def identical_takes(self, session_id: int) -> list[dict[str, Any]]:
        """The session's clips whose bytes another session also holds (a byte-identical retake, e.g. every
        retake on the deterministic simulated camera): combination, the shared asset, the other session and
        its copy. Empty when every clip of the session is its own."""
        return self.rows(
            "SELECT c.combination_key, c.asset_id, u.session_id AS other_session_id, u.path AS other_path, "
            "oc.combination_key AS other_combination FROM clips c "
            "JOIN asset_uses u ON u.asset_id = c.asset_id AND u.session_id != c.session_id "
            "LEFT JOIN clips oc ON oc.session_id = u.session_id AND oc.asset_id = c.asset_id "
            "WHERE c.session_id = ? ORDER BY c.combination_key, u.session_id", (session_id,))

    # ----------------------------------------------------------------------------------------- reviews

    def add_review(self, pair_id: int, *, annotator: str, verdict: str, reasons: Iterable[str] = (),
                   rating: float | None = None, defects: Iterable[Iterable[int]] = (), notes: str | None = None,
                   external_id: str | None = None, created_at: float | None = None, **more: Any) -> tuple[int, bool]:
        """Record one verdict. With `external_id` (e.g. the Label Studio annotation id) a repeated pull
        updates the same row instead of adding one. `more`: the other REVIEW_COLUMNS (stage, server,
        account_id, updated_by, updated_at, lead_time_s). Returns (review id, created)."""
        record = {"pair_id": pair_id, "annotator": annotator, "created_at": created_at or time.time(),
                  "verdict": verdict, "reasons_json": json.dumps(list(reasons)), "rating": rating,
                  "defects_json": json.dumps([list(r) for r in defects]), "notes": notes,
                  "external_id": external_id, **more}
        added = self.upsert_reviews([record])["added"]
        if external_id is None:
            return int(self.conn.execute("SELECT max(id) FROM reviews").fetchone()[0]), True
        return int(self._where("reviews", "external_id = ?", [external_id])["id"]), bool(added)

    def upsert_reviews(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """The one writer of verdicts: one row per record (keyed by `external_id` when it has one), written
        only when one of REVIEW_COLUMNS changed. Returns counts of rows added, updated and unchanged."""
        records = list(records)
        cols = REVIEW_COLUMNS
        existing = {r[0]: tuple(r[1:]) for r in self.conn.execute(
            f"SELECT external_id, {', '.join(cols)} FROM reviews WHERE external_id IN "
            f"(SELECT value FROM json_each(?))",
            (json.dumps([r["external_id"] for r in records if r.get("external_id") is not None]),))}
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        now = time.time()
        with self.transaction():
            for rec in records:
                values = tuple(rec.get(c) for c in cols)
                old = existing.get(rec.get("external_id")) if rec.get("external_id") is not None else None
                if old is None:
                    self.conn.execute(f"INSERT INTO reviews ({', '.join(cols)}, external_id, imported_at) "
                                      f"VALUES ({', '.join('?' * (len(cols) + 2))})",
                                      (*values, rec.get("external_id"), now))
                    counts["added"] += 1
                elif old != values:
                    self.conn.execute(f"UPDATE reviews SET {', '.join(c + ' = ?' for c in cols)}, imported_at = ? "
                                      "WHERE external_id = ?", (*values, now, rec["external_id"]))
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
        return counts

    def review_values(self, external_ids: Iterable[str]) -> dict[str, tuple]:
        """external id -> its REVIEW_COLUMNS values as stored (to tell what a pull would change)."""
        return {r[0]: tuple(r[1:]) for r in self.conn.execute(
            f"SELECT external_id, {', '.join(REVIEW_COLUMNS)} FROM reviews WHERE external_id IN "
            f"(SELECT value FROM json_each(?))", (json.dumps(list(external_ids)),))}

    def mark_review(self, review_id: int, *, counted: bool, note: str | None) -> None:
        """Whether the review gate counted a verdict, and why not."""
        with self.transaction():
            self.conn.execute("UPDATE reviews SET counted = ?, gate_note = ? WHERE id = ?",
                              (int(counted), note, review_id))

    def reviews(self, pair_id: int) -> list[dict[str, Any]]:
        out = list(self.db["reviews"].rows_where("pair_id = ?", [pair_id], order_by="created_at, id"))
        for row in out:
            row["reasons"] = _loads(row.pop("reasons_json"))
            row["defects"] = _loads(row.pop("defects_json"))
        return out

    # ----------------------------------------------------------------------------------------- training runs

    def start_training_run(self, name: str, *, config: Mapping[str, Any], code_version: str | None = None,
                           data_snapshot: str | None = None, output_dir: str | None = None,
                           pair_ids: Mapping[int, str] | Iterable[int] = ()) -> int:
        """A run row (status running) and the pairs it trains on (`{pair_id: split}` or ids = 'train')."""
        splits = dict(pair_ids) if isinstance(pair_ids, Mapping) else {int(p): "train" for p in pair_ids}
        with self.transaction():
            run_id = int(self.db["training_runs"].insert({
                "name": name, "config_json": _dumps(dict(config)), "code_version": code_version,
                "data_snapshot": data_snapshot, "output_dir": output_dir, "status": "running",
                "created_at": time.time()}).last_pk)
            self.db["training_run_pairs"].insert_all(
                [{"run_id": run_id, "pair_id": p, "split": s} for p, s in splits.items()])
        return run_id

    def update_training_run(self, run_id: int, *, status: str | None = None,
                            metrics: Mapping[str, Any] | None = None,
                            checkpoints: Iterable[Any] | None = None) -> None:
        """Merge metrics, replace the checkpoint list, set status (a final status stamps finished_at)."""
        with self.transaction():
            row = self._where("training_runs", "id = ?", [run_id])
            if row is None:
                raise CatalogError(f"no training run {run_id} in {self.path}")
            changes: dict[str, Any] = {"metrics_json": _dumps({**_loads(row["metrics_json"]), **dict(metrics or {})})}
            if checkpoints is not None:
                changes["checkpoints_json"] = _dumps(list(checkpoints))
            if status is not None:
                changes["status"] = status
            if status in ("done", "failed", "aborted") and row["finished_at"] is None:
                changes["finished_at"] = time.time()
            self.db["training_runs"].update(run_id, changes)

    def training_run(self, run_id: int) -> dict[str, Any] | None:
        row = self._where("training_runs", "id = ?", [run_id])
        if row:
            for key in ("config", "metrics", "checkpoints"):
                row[key] = _loads(row.pop(key + "_json"))
            row["pairs"] = {r["pair_id"]: r["split"]
                            for r in self.db["training_run_pairs"].rows_where("run_id = ?", [run_id])}
        return row

    # ----------------------------------------------------------------------------------------- reading

    def rows(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Any SELECT, as dicts (sqlite-utils' `db.query`)."""
        return list(self.db.query(sql, params if isinstance(params, Mapping) else list(params)))

    def _where(self, table: str, where: str, args: list[Any], *, order_by: str | None = None) -> dict[str, Any] | None:
        """The first row of `table` matching `where` (sqlite-utils' `rows_where`), or None."""
        return next(self.db[table].rows_where(where, args, order_by=order_by, limit=1), None)

    def counts(self) -> dict[str, int]:
        """Rows per table (the catalog's own tables only)."""
        tables = ("sessions", "devices", "points", "assets", "asset_settings", "slider_positions", "exif", "clips",
                  "pairs", "reviews", "training_runs")
        return {t: self.db[t].count for t in tables}

    def summary(self) -> dict[str, Any]:
        """What `cinectrl catalog stats` prints."""
        def grouped(sql: str) -> dict[str, int]:
            return {str(r["k"]): int(r["n"]) for r in self.db.query(sql)}
        return {
            "catalog": str(self.path), "schema_version": self.schema_version, "station_id": self.station_id,
            "rows": self.counts(),
            "bytes": int(next(self.db.query("SELECT coalesce(sum(bytes), 0) AS n FROM assets"))["n"]),
            "assets_by_status": grouped("SELECT metadata_status AS k, count(*) AS n FROM assets GROUP BY 1 "
                                        "ORDER BY 1"),
            "assets_by_kind": grouped("SELECT kind AS k, count(*) AS n FROM assets GROUP BY 1 ORDER BY 2 DESC"),
            "assets_by_format": grouped("SELECT coalesce(format, 'unknown') AS k, count(*) AS n FROM assets "
                                        "GROUP BY 1 ORDER BY 2 DESC"),
            "cameras": grouped(f"SELECT {CAMERA_NAME_SQL} AS k, count(*) AS n FROM exif GROUP BY 1 ORDER BY 2 DESC "
                               "LIMIT 10"),
            "sessions_by_status": grouped("SELECT status AS k, count(*) AS n FROM sessions GROUP BY 1"),
            "points_by_status": grouped("SELECT status AS k, count(*) AS n FROM points GROUP BY 1"),
            "pairs_by_review_state": grouped("SELECT review_state AS k, count(*) AS n FROM pairs GROUP BY 1"),
            "train_ready_pairs": self.db["pairs"].count_where("train_ready = 1"),
        }

    def find_asset(self, ref: str) -> dict[str, Any] | None:
        """An asset by id, sha256 (or a unique prefix of 8+ hex digits) or file path."""
        if ref.isdigit():
            found = self.asset(int(ref))
            if found:
                return found
        if len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref.lower()):
            rows = list(self.db["assets"].rows_where("sha256 LIKE ?", [ref.lower() + "%"], limit=2))
            if len(rows) == 1:
                return rows[0]
        if Path(ref).exists():
            return self.asset_by_path(ref)
        return self._where("assets", "path = ? OR path LIKE ?", [ref, "%/" + ref], order_by="id DESC")

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


# A camera as people name it: "Canon EOS 40D" (not "Canon Canon EOS 40D"); a missing make or model says "unknown".
CAMERA_NAME_SQL = (
    "CASE WHEN make IS NULL AND model IS NULL THEN 'unknown' "
    "WHEN model IS NULL THEN make || ' (model unknown)' WHEN make IS NULL THEN model "
    "WHEN lower(model) LIKE lower(make) || '%' THEN model ELSE make || ' ' || model END"
)

def _own_copy(asset: str, alias: str) -> str:
    """SQL for the pair's session's own copy of an asset (migration 7's asset_uses), else the asset's path."""
    return (f"coalesce((SELECT u.path FROM asset_uses u WHERE u.session_id = p.session_id AND u.asset_id = {asset} "
            f"ORDER BY u.created_at LIMIT 1), {alias}.path)")


PAIRS_QUERY = f"""
SELECT p.id AS pair_id, p.session_id, s.name AS session, s.scene, rc.fps, rc.frames, p.review_state, p.train_ready,
       p.deltas_json, p.controls_json, p.qc_json,
       p.reference_clip_id, rc.combination_key AS reference_combination, {_own_copy('rc.asset_id', 'ra')} AS reference_path,
       {_own_copy('rc.proxy_asset_id', 'rp')} AS reference_proxy_path, rc.settings_json AS reference_settings_json,
       p.other_clip_id, oc.combination_key AS other_combination, {_own_copy('oc.asset_id', 'oa')} AS other_path,
       {_own_copy('oc.proxy_asset_id', 'op')} AS other_proxy_path, oc.settings_json AS other_settings_json,
       (SELECT trim(coalesce(d.make, '') || ' ' || coalesce(d.model, '')) FROM session_devices sd
          JOIN devices d ON d.id = sd.device_id WHERE sd.session_id = p.session_id AND sd.role = 'camera'
          ORDER BY d.id LIMIT 1) AS camera
FROM pairs p
JOIN sessions s ON s.id = p.session_id
JOIN clips rc ON rc.id = p.reference_clip_id
JOIN clips oc ON oc.id = p.other_clip_id
LEFT JOIN assets ra ON ra.id = rc.asset_id
LEFT JOIN assets rp ON rp.id = rc.proxy_asset_id
LEFT JOIN assets oa ON oa.id = oc.asset_id
LEFT JOIN assets op ON op.id = oc.proxy_asset_id"""


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (so they all run inside one transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]}")
    return out


def open_catalog(path: str | os.PathLike[str], *, create: bool = True, durable: bool = True,
                 readonly: bool = False) -> Catalog:
    """The one way to open a catalog (the same as `Catalog(...)`; see there for the modes)."""
    return Catalog(path, create=create, durable=durable, readonly=readonly)
