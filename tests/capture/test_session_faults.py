"""Faults on the simulated rig: camera busy / timeout / disconnect at 5 % of captures and a slider alarm
mid-session; the session completes with nothing lost. Camera faults come from a seeded wrapper around the
camera (the runner sees exactly the typed errors a real backend raises) -- the simulated camera when
installed, else the in-process fake; the slider alarm comes from the GRBL emulator's own fault injection,
over the pty."""

from __future__ import annotations

import random

import pytest

from capture.plan import load_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRunner
from rigs.camera.protocol import CameraBusy, CameraDisconnected, CameraTimeout

from ._run_session import camera_factory as rig_camera_factory
from .conftest import STILLS_PLAN, ledger_check, write_plan

import rigs.slider.emulator  # noqa: F401  (a missing project module fails, never skips)

pytestmark = [pytest.mark.slow]


class FlakyCamera:
    """Delegates to a real camera; before a capture, raises busy/timeout/disconnect with probability `rate`."""

    def __init__(self, camera, rng: random.Random, rate: float, log: list[str]) -> None:
        self._camera, self._rng, self._rate, self._log = camera, rng, rate, log

    def __getattr__(self, name):
        return getattr(self._camera, name)

    @property
    def identity(self):
        return self._camera.identity

    def capture_still(self, dest_dir, *, stem):
        if self._rng.random() < self._rate:
            fault = self._rng.choice([CameraBusy, CameraTimeout, CameraDisconnected])
            self._log.append(fault.__name__)
            raise fault(f"injected before {stem}", camera="SimCamera")
        return self._camera.capture_still(dest_dir, stem=stem)

    def close(self):
        self._camera.close()


@pytest.mark.timeout(240)
def test_camera_faults_at_five_percent_and_a_slider_alarm_lose_nothing(tmp_path):
    positions = "[" + ", ".join(str(100 + 4 * i) for i in range(30)) + "]"
    plan_path = write_plan(tmp_path, STILLS_PLAN.replace("[100, 110, 120, 130]", positions))
    plan = load_plan(plan_path)
    rig = Rig(plan)
    rng = random.Random(7)
    injected: list[str] = []
    opened = []

    open_camera = rig_camera_factory(rig)

    def camera_factory():
        opened.append(FlakyCamera(open_camera(), rng, 0.05, injected))
        return opened[-1]

    def slider_factory():
        slider = rig.open_slider()
        slider.emulator.inject_alarm(after_moves=12)     # mid-session: the 12th move ends in ALARM
        return slider

    runner = SessionRunner(plan, tmp_path / "lab" / "catalog.db", camera_factory=camera_factory,
                           slider_factory=slider_factory,
                           options=RunnerOptions(busy_backoff_s=0.01, camera_poll_s=0.05, build_outputs=False))
    result = runner.run()
    assert (result.status, result.done) == ("complete", 60)
    assert len(injected) >= 2, injected                        # ~5 % of ~60 captures
    assert result.faults.get("slider alarm", 0) >= 1
    counts = ledger_check(tmp_path / "lab" / "catalog.db")
    assert counts == {"points": 60, "frames": 60}
