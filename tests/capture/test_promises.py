"""The runner's promises about settings, checked against what the frames themselves say.

Each frame of the simulated camera carries its real settings in EXIF (what the sensor was exposed at),
so "every frame's recorded read-back equals its point's requested settings" is checked three ways: the
catalog's requested value, the camera's read-back, and the EXIF of the file. Faults come from SimCamera's
FaultSchedule (shared by every camera object a session opens), so the counts are exact.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from capture.plan import parse_plan
from capture.session import RunnerOptions, SessionRunner
from rigs.camera import values
from rigs.camera.faults import FaultSchedule
from rigs.camera.sim import DEFAULTS, SimCamera

from .conftest import SWEEP_PLAN, TINY, sim_factory, tiny_sim

pytestmark = pytest.mark.timeout(120)

PLAN = SWEEP_PLAN     # every value differs from SimCamera's power-on DEFAULTS
assert all(DEFAULTS[r] not in v for r, v in parse_plan(PLAN).axes.items())


def run(tmp_path, factory, *, sleep=None, decide=None, **options):
    opts = RunnerOptions(busy_backoff_s=0.01, camera_poll_s=0.0, camera_wait_s=5.0, build_outputs=False,
                         **options)
    return SessionRunner(parse_plan(PLAN), tmp_path / "catalog.db", camera_factory=factory,
                         slider_factory=lambda: None, options=opts, sleep=sleep or (lambda s: None),
                         decide=decide or (lambda reason: "abort")).run()


def settings_by_frame(catalog) -> list[dict]:
    """Per committed frame: role -> (requested, read back, EXIF) as stored in the catalog."""
    db = sqlite3.connect(catalog)
    try:
        rows = db.execute("SELECT a.id, s.role, s.requested_text, s.readback_text, s.exif_value "
                          "FROM assets a JOIN asset_settings s ON s.asset_id = a.id "
                          "WHERE a.point_id IS NOT NULL ORDER BY a.id").fetchall()
    finally:
        db.close()
    frames: dict[int, dict] = {}
    for asset, role, requested, readback, exif in rows:
        frames.setdefault(asset, {})[role] = (requested, readback, exif)
    return list(frames.values())


def assert_frames_as_requested(catalog, total=12):
    frames = settings_by_frame(catalog)
    assert len(frames) == total
    for frame in frames:
        for role in ("aperture", "shutter", "iso"):
            requested, readback, exif = frame[role]
            assert values.same_value(role, requested, readback), (role, requested, readback)
            wanted = values.number(role, requested)
            assert exif is not None and abs(exif - wanted) <= 0.01 * wanted, (role, requested, exif)


def test_settings_are_reapplied_after_every_reopen(tmp_path):
    """A timeout and a disconnect make the runner open new camera objects (at power-on defaults)."""
    schedule = FaultSchedule({"capture": {4: ["timeout"], 9: ["disconnect"]}})
    factory, opened = sim_factory(schedule=schedule)

    result = run(tmp_path, factory)
    assert result.status == "complete"
    assert len(opened) == 3                                   # exactly one reopen per fault
    assert (result.faults["timeout"], result.faults["disconnected"]) == (1, 1)
    assert_frames_as_requested(tmp_path / "catalog.db")


def test_busy_backs_off_before_escalating_exact_counts(tmp_path):
    """A seeded schedule of busy bursts: bursts up to busy_retries are absorbed by back-off (no reopen), only a
    longer one escalates to a reopen. Counts, reopens and back-off sleeps are exactly what the schedule implies."""
    retries = RunnerOptions().busy_retries
    schedule = FaultSchedule.seeded(11, calls={"capture": 40, "set": 40}, rate=0.25, bursts=(1, 2, 3, retries + 1))
    factory, opened = sim_factory(schedule=schedule)
    sleeps = []

    result = run(tmp_path, factory, sleep=sleeps.append)
    assert result.status == "complete"
    # the bursts whose first call happened (the schedule reaches past the session's last call)
    bursts = [len(kinds) for op, calls in schedule.script.items() for n, kinds in calls.items()
              if n <= schedule.calls[op]]
    long_bursts = sum(b > retries for b in bursts)
    assert long_bursts == 2 and sum(b <= retries for b in bursts) == 10, bursts   # seed 11: both paths exercised
    assert result.faults["busy"] == schedule.count("busy")           # every busy seen and counted once
    assert len(opened) == 1 + long_bursts                             # escalation only after the retries
    backoff = RunnerOptions(busy_backoff_s=0.01).busy_backoff_s
    expected_sleeps = sorted(backoff * 2 ** k for b in bursts for k in range(min(b, retries)))
    assert sorted(sleeps) == pytest.approx(expected_sleeps)           # doubling back-off before each retry
    assert_frames_as_requested(tmp_path / "catalog.db")


class _Sigint(SimCamera):
    """Ctrl-C arrives during capture 5, as a technician's would (a real SIGINT to this process)."""

    def capture_still(self, dest_dir, *, stem):
        files = super().capture_still(dest_dir, stem=stem)
        if self._captures == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return files


def test_settings_are_reapplied_after_a_ctrl_c_resume(tmp_path):
    """While the session is paused the operator turns the dials; after 'resume' every frame is still as asked."""
    camera = _Sigint(**TINY)

    def operator(reason: str) -> str:
        camera.values.update(aperture="f/16", shutter="1/30", iso="1600")      # hands on the body
        return "resume"

    result = run(tmp_path, lambda: camera, decide=operator)
    assert result.status == "complete"
    assert_frames_as_requested(tmp_path / "catalog.db")
