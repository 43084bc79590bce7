"""A job queue persisted in SQLite, so edit jobs survive a server restart (or fail with a reason).

Statuses: queued -> running -> succeeded | failed | cancelled. A job found `running` when the server starts
was interrupted: it is queued again (up to `max_attempts` starts), else failed with the reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from capture.catalog_file import use_write_ahead_log

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    source TEXT NOT NULL,            -- 'upload' or 'catalog:<clip id>'
    input_path TEXT NOT NULL,
    output_path TEXT,
    controls_json TEXT NOT NULL,
    camera_path_json TEXT,           -- the requested camera path (train/camera_path.py), NULL = the source's
    prompt TEXT,
    plan_json TEXT,                  -- how the clip is fitted to the model (train/editor.py EditPlan)
    result_json TEXT,                -- what came out: frames, width, height, fps
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    device TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
"""
FINAL = ("succeeded", "failed", "cancelled")
#: Columns added after the first release, with their types: added to an older jobs.db when it is opened.
ADDED_COLUMNS = {"camera_path_json": "TEXT", "prompt": "TEXT", "plan_json": "TEXT", "result_json": "TEXT"}
JSON_COLUMNS = ("controls", "camera_path", "plan", "result")


class JobQueue:
    def __init__(self, path: str | Path, *, max_attempts: int = 2) -> None:
        self.path = Path(path)
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        use_write_ahead_log(self._conn)     # a second process opening a new jobs.db waits its turn
        self._conn.execute("PRAGMA synchronous=NORMAL")   # WAL: survives a process crash; fsync at checkpoints
        # per-step progress and cancel flags live in memory (a commit per sampling step cost ~5 ms each);
        # progress reaches the database at most every `persist_every_s`
        self._live: dict[str, float] = {}
        self._persisted_at: dict[str, float] = {}
        self._cancel: set[str] = set()
        self.persist_every_s = 1.0
        self._changed = threading.Condition()
        self._conn.executescript(SCHEMA)
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in present:
                self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, args)

    def submit(self, *, input_path: str | Path, controls: Mapping[str, Any], source: str = "upload",
               job_id: str | None = None, camera_path: Mapping[str, Any] | None = None, prompt: str | None = None,
               plan: Mapping[str, Any] | None = None) -> str:
        job_id = job_id or uuid.uuid4().hex
        self._exec("INSERT INTO jobs (id, status, source, input_path, controls_json, camera_path_json, prompt, "
                   "plan_json, created_at) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                   (job_id, source, str(input_path), json.dumps(dict(controls), sort_keys=True),
                    _dumps(camera_path), prompt, _dumps(plan), time.time()))
        return job_id

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = dict(row)
        if job["status"] == "running" and job_id in self._live:
            job["progress"] = self._live[job_id]
        for name in JSON_COLUMNS:
            raw = job.pop(f"{name}_json")
            job[name] = json.loads(raw) if raw is not None else None
        job["cancel_requested"] = bool(job["cancel_requested"])
        return job

    def claim(self, device: str) -> dict[str, Any] | None:
        """Atomically take the oldest queued job for this device's worker."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid "
                                         "LIMIT 1").fetchone()
                if row is None:
                    self._conn.execute("COMMIT")
                    return None
                self._conn.execute("UPDATE jobs SET status = 'running', device = ?, started_at = ?, progress = 0, "
                                   "attempts = attempts + 1 WHERE id = ?", (device, time.time(), row[0]))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self.get(row[0])

    def set_progress(self, job_id: str, progress: float) -> None:
        value = max(0.0, min(1.0, float(progress)))
        self._live[job_id] = value
        now = time.monotonic()
        if now - self._persisted_at.get(job_id, 0.0) >= self.persist_every_s:
            self._persisted_at[job_id] = now
            self._exec("UPDATE jobs SET progress = ? WHERE id = ? AND status = 'running'", (value, job_id))

    def _forget(self, job_id: str) -> None:
        self._live.pop(job_id, None)
        self._persisted_at.pop(job_id, None)
        self._cancel.discard(job_id)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_final(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Block until the job reaches a final status or `timeout` passes (long polling); returns the job."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                job = self.get(job_id)
                left = deadline - time.monotonic()
                if job is None or job["status"] in FINAL or left <= 0:
                    return job
                self._changed.wait(min(left, 1.0))

    def cancel_requested(self, job_id: str) -> bool:
        if job_id in self._cancel:
            return True
        with self._lock:
            row = self._conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def finish(self, job_id: str, output_path: str | Path, result: Mapping[str, Any] | None = None) -> None:
        self._forget(job_id)
        self._exec("UPDATE jobs SET status = 'succeeded', progress = 1, output_path = ?, result_json = ?, "
                   "finished_at = ? WHERE id = ?", (str(output_path), _dumps(result), time.time(), job_id))
        self._notify()

    def fail(self, job_id: str, reason: str) -> None:
        self._forget(job_id)
        self._exec("UPDATE jobs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                   (reason, time.time(), job_id))
        self._notify()

    def mark_cancelled(self, job_id: str) -> None:
        self._forget(job_id)
        self._exec("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?", (time.time(), job_id))
        self._notify()

    def cancel(self, job_id: str) -> str | None:
        """Queued jobs are cancelled at once; running ones are flagged and stop at the next step.
        Returns the status after the request (None for an unknown id)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            row = self._conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                self._conn.execute("COMMIT")
                return None
            status = row[0]
            if status == "queued":
                self._conn.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ? "
                                   "WHERE id = ?", (time.time(), job_id))
                status = "cancelled"
            elif status == "running":
                self._conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._cancel.add(job_id)
            self._conn.execute("COMMIT")
        self._notify()
        return status

    def recover(self) -> dict[str, int]:
        """At startup: jobs left running by a dead server are re-queued, or failed once out of attempts;
        queued jobs whose input vanished are failed with that reason."""
        counts = {"requeued": 0, "failed": 0}
        with self._lock:
            rows = self._conn.execute("SELECT id, status, attempts, input_path FROM jobs "
                                      "WHERE status IN ('running', 'queued')").fetchall()
        for job_id, status, attempts, input_path in rows:
            if not Path(input_path).is_file():
                self.fail(job_id, f"input {Path(input_path).name} is missing after a server restart")
                counts["failed"] += 1
            elif status == "running" and attempts >= self.max_attempts:
                self.fail(job_id, f"interrupted by a server restart {attempts} time(s); not retried again")
                counts["failed"] += 1
            elif status == "running":
                self._exec("UPDATE jobs SET status = 'queued', progress = 0, device = NULL WHERE id = ?", (job_id,))
                counts["requeued"] += 1
        return counts

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


def _dumps(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True)
