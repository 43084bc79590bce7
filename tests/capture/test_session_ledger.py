"""Runner + ledger on the simulated camera at thumbnail size (real JPEGs with EXIF, ~7 ms a frame): resume,
partial files, the fault ladder (scripted through SimCamera's FaultSchedule) and the disk suspender."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from capture.plan import parse_plan
from capture.session import RunnerOptions, SessionRunner
from rigs.camera.faults import FaultSchedule

from rigs.camera.sim import SimCamera

from .conftest import SWEEP_PLAN, TINY, sim_factory, tiny_sim

PLAN = SWEEP_PLAN


def run(tmp_path, camera_factory, plan_text=PLAN, **options):
    plan = parse_plan(plan_text)
    opts = RunnerOptions(busy_backoff_s=0.0, camera_poll_s=0.0, camera_wait_s=1.0, build_outputs=False,
                         **options)
    return SessionRunner(plan, tmp_path / "catalog.db", camera_factory=camera_factory,
                         slider_factory=lambda: None, options=opts, sleep=lambda s: None).run()


def assert_every_point_once(tmp_path, session_id=1, total=12):
    db = sqlite3.connect(tmp_path / "catalog.db")
    statuses = db.execute("SELECT status, count(*) FROM points WHERE session_id=? GROUP BY status",
                          (session_id,)).fetchall()
    assert statuses == [("done", total)]
    rows = db.execute("SELECT point_id, path, sha256 FROM assets WHERE session_id=? AND point_id IS NOT NULL",
                      (session_id,)).fetchall()
    assert len(rows) == total and len({r[0] for r in rows}) == total
    for _pid, path, sha in rows:
        assert hashlib.sha256((tmp_path / path).read_bytes()).hexdigest() == sha
    files = [p for p in (tmp_path / "sessions").rglob("*.jpg")]
    assert len(files) == total     # no orphan, no duplicate


def test_complete_session(tmp_path):
    result = run(tmp_path, tiny_sim)
    assert (result.status, result.done, result.total) == ("complete", 12, 12)
    assert_every_point_once(tmp_path)


def test_stop_and_resume_does_only_missing_points(tmp_path):
    schedule = FaultSchedule()          # no faults: it counts the captures

    first = run(tmp_path, lambda: tiny_sim(schedule=schedule), stop_after=5)
    assert (first.status, first.done) == ("paused", 5)
    second = run(tmp_path, lambda: tiny_sim(schedule=schedule))
    assert second.resumed and second.status == "complete"
    assert schedule.calls["capture"] == 12                     # 5 + the 7 missing, none shot twice
    assert_every_point_once(tmp_path)


def test_partial_and_uncommitted_files_are_redone(tmp_path):
    run(tmp_path, tiny_sim, stop_after=4)
    db = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None)
    # simulate a crash after the file was written but before its commit, and a torn write of another
    (ordinal,) = db.execute("SELECT ordinal FROM points WHERE status='pending' ORDER BY ordinal LIMIT 1").fetchone()
    db.execute("UPDATE points SET status='running' WHERE ordinal=?", (ordinal,))
    key = f"p{ordinal:04d}"
    session_dir = next((tmp_path / "sessions").iterdir())
    (session_dir / f"c000_f0000_{key}.jpg").write_bytes(b"\xff\xd8 torn")
    (session_dir / "c009_f0000_p0011.jpg.tmp").write_bytes(b"partial")
    db.close()
    result = run(tmp_path, tiny_sim)
    assert result.status == "complete"
    assert not list(session_dir.glob("*.tmp"))
    assert_every_point_once(tmp_path)


@pytest.mark.parametrize("fault", ["busy", "timeout", "disconnect"])
def test_camera_faults_climb_the_ladder_and_lose_nothing(tmp_path, fault):
    schedule = FaultSchedule({"capture": {3: [fault], 7: [fault], 9: [fault]}})   # shared by reopened cameras
    factory, opened = sim_factory(schedule=schedule)

    result = run(tmp_path, factory)
    assert result.status == "complete"
    kind = {"busy": "busy", "timeout": "timeout", "disconnect": "disconnected"}[fault]
    assert result.faults[kind] == 3 == schedule.count(fault)
    if fault == "busy":
        assert len(opened) == 1                                  # backed off and retried: no reopen
    else:
        assert len(opened) == 4 and all(c._gone for c in opened[:-1])   # reopened each time, old one closed
    assert_every_point_once(tmp_path)


def _frame_size(tmp_path) -> int:
    return max(tiny_sim(seed=i).capture_still(tmp_path / "probe", stem=f"x{i}")[0].bytes for i in range(3))


def test_disk_quota_too_small_stops_cleanly_and_resumes(tmp_path):
    size = _frame_size(tmp_path)
    plan = PLAN + f"\n[costs]\nbytes_per_still = {size}\n"   # the estimate before the first frame is measured
    first = run(tmp_path, tiny_sim, plan, disk_quota_bytes=size * 5, disk_wait_s=0)
    assert first.status == "suspended" and first.done == 0
    assert "rerun to resume" in first.message and first.faults["disk low"] == 1
    second = run(tmp_path, tiny_sim, plan, disk_quota_bytes=size * 100)
    assert second.status == "complete"
    assert_every_point_once(tmp_path)


def test_disk_estimate_uses_measured_frame_sizes(tmp_path):
    """A quota that holds the session's real frames many times over but not 12 default-sized (8 MB) stills."""
    quota = _frame_size(tmp_path) * 40
    first = run(tmp_path, tiny_sim, disk_quota_bytes=quota, disk_wait_s=0)
    assert first.status == "complete" and first.faults["disk low"] == 0
    second = run(tmp_path, tiny_sim, disk_quota_bytes=quota, disk_wait_s=0, new_take=True)   # measured costs now
    assert second.status == "complete" and second.faults["disk low"] == 0
    small = run(tmp_path / "small", tiny_sim, disk_quota_bytes=quota // 8, disk_wait_s=0)     # ~5 frames' room
    assert small.status == "suspended" and 1 <= small.done < 12 and "measured over" in small.message


class _BallastCamera(SimCamera):
    """Something else fills the disk mid-session: a ballast file appears after capture 5."""

    def capture_still(self, dest_dir, *, stem):
        files = super().capture_still(dest_dir, stem=stem)
        if self._captures == 5:
            (dest_dir / "ballast.bin").write_bytes(b"\0" * 200_000)
        return files


def test_disk_suspender_pauses_and_resumes_when_space_comes_back(tmp_path):
    size = _frame_size(tmp_path)
    plan = parse_plan(PLAN + f"\n[costs]\nbytes_per_still = {size}\n")
    waits = []

    def sleep(seconds):           # the operator frees space while the session is suspended
        waits.append(seconds)
        if len(waits) == 3:
            next((tmp_path / "sessions").rglob("ballast.bin")).unlink()

    camera = _BallastCamera(**TINY)
    result = SessionRunner(plan, tmp_path / "catalog.db", camera_factory=lambda: camera, slider_factory=lambda: None,
                           options=RunnerOptions(disk_quota_bytes=size * 40 + 100_000, disk_poll_s=1.0,
                                                 disk_wait_s=60, build_outputs=False), sleep=sleep).run()
    assert result.status == "complete" and result.faults["disk low"] == 1 and len(waits) == 3
    assert_every_point_once(tmp_path)


class _SigintCamera(SimCamera):
    """Delivers a real SIGINT to this process during capture N, as a technician's Ctrl-C would."""

    def __init__(self, at: int) -> None:
        super().__init__(**TINY)
        self.at = at
        self.sets = 0

    def set(self, role, value, *, timeout=10.0):
        self.sets += 1
        return super().set(role, value, timeout=timeout)

    def capture_still(self, dest_dir, *, stem):
        import os
        import signal

        files = super().capture_still(dest_dir, stem=stem)
        if self._captures == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return files


@pytest.mark.parametrize("answer", ["resume", "abort"])
def test_ctrl_c_pauses_at_the_next_safe_point_and_asks(tmp_path, answer):
    asked = []
    camera = _SigintCamera(at=4)
    plan = parse_plan(PLAN)
    runner = SessionRunner(plan, tmp_path / "catalog.db", camera_factory=lambda: camera,
                           slider_factory=lambda: None, options=RunnerOptions(build_outputs=False),
                           decide=lambda reason: asked.append(reason) or answer)
    result = runner.run()
    assert len(asked) == 1 and "resume or abort" in asked[0]
    if answer == "resume":
        assert result.status == "complete"
        assert camera.sets > 3          # every setting re-applied after the pause
    else:
        assert (result.status, result.done) == ("paused", 4)     # the frame in flight was finished, not lost
        assert run(tmp_path, tiny_sim).status == "complete"
    assert_every_point_once(tmp_path)


class _StaleCamera(SimCamera):
    """Capture 4 delivers the bytes of capture 3 again (a stale frame), as some bodies and the virtual camera do."""

    def capture_still(self, dest_dir, *, stem):
        files = super().capture_still(dest_dir, stem=stem)
        if self._captures == 3:
            self.previous = files[0].path.read_bytes()
        elif self._captures == 4:
            files[0].path.write_bytes(self.previous)
        return files


def test_byte_identical_stale_frame_is_refused_and_reshot(tmp_path):
    result = run(tmp_path, lambda: _StaleCamera(**TINY))
    assert result.status == "complete" and result.faults["duplicate frame"] == 1
    assert_every_point_once(tmp_path)
