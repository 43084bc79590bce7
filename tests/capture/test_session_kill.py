"""kill -9 at random points of a session, ten times in a row, then resume: every planned point done exactly
once and every file's hash matches the catalog. Real processes and the real GRBL emulator on a pty; the
camera is the simulated camera when installed, else the in-process fake (crash consistency is the runner's
and the catalog's job: both cameras write their files atomically, as the Camera protocol requires)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, done_points, STILLS_PLAN, ledger_check, write_plan

import rigs.slider.emulator  # noqa: F401  (a missing project module fails, never skips)

pytestmark = [pytest.mark.slow]


def _run_cmd(plan: Path, catalog: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).parent / "_run_session.py"), str(plan), str(catalog)]


@pytest.mark.timeout(240)
def test_kill_minus_nine_ten_times_then_resume(tmp_path):
    # slow-ish rig (speed 6) so that kills land mid-session, not after it
    plan = write_plan(tmp_path, STILLS_PLAN.replace("[100, 110, 120, 130]", "[100, 105, 110, 115, 120, 125, 130, 135]"),
                      speed=6)
    catalog = tmp_path / "lab" / "catalog.db"
    rng = random.Random(1234)
    env = dict(os.environ, LANG="C", LC_ALL="C")
    kills = 0
    for _ in range(10):
        before = done_points(catalog)
        proc = subprocess.Popen(_run_cmd(plan, catalog), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None and done_points(catalog) == before:
                time.sleep(0.01)       # wait until this run commits a frame, then kill at a random instant
            time.sleep(rng.uniform(0.0, 0.3))   # anywhere: mid-move, mid-capture, mid-commit
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            proc.wait(timeout=30)
        if proc.returncode == 0:
            break      # the session finished before the kill landed
    assert kills >= 5
    final = subprocess.run(_run_cmd(plan, catalog), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    counts = ledger_check(catalog)
    assert counts["points"] == 16
