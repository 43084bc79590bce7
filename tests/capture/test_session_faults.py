"""Faults on the simulated rig: camera busy / timeout / disconnect at 5 % of captures (a seeded FaultSchedule
on the simulated camera, shared by every camera object the session reopens) and a slider alarm mid-session
(the GRBL emulator's own fault injection, over the pty); the session completes with nothing lost."""

from __future__ import annotations

import pytest

from capture.plan import load_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRunner
from rigs.camera.faults import FaultSchedule
from rigs.camera.sim import SimCamera

from .conftest import STILLS_PLAN, ledger_check, write_plan

import rigs.slider.emulator  # noqa: F401  (a missing project module fails, never skips)

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(240)
def test_camera_faults_at_five_percent_and_a_slider_alarm_lose_nothing(tmp_path):
    positions = "[" + ", ".join(str(100 + 4 * i) for i in range(30)) + "]"
    plan_path = write_plan(tmp_path, STILLS_PLAN.replace("[100, 110, 120, 130]", positions))
    plan = load_plan(plan_path)
    rig = Rig(plan)
    schedule = FaultSchedule.seeded(7, calls={"capture": 60}, rate=0.05, bursts=(1,),
                                    kinds=("busy", "timeout", "disconnect"))
    assert schedule.script["capture"], "the seed must inject something"

    def camera_factory():
        return SimCamera(slider=rig.slider, speed=plan.speed, width=160, height=120, schedule=schedule)

    def slider_factory():
        slider = rig.open_slider()
        slider.emulator.inject_alarm(after_moves=12)     # mid-session: the 12th move ends in ALARM
        return slider

    runner = SessionRunner(plan, tmp_path / "lab" / "catalog.db", camera_factory=camera_factory,
                           slider_factory=slider_factory,
                           options=RunnerOptions(busy_backoff_s=0.01, camera_poll_s=0.05, build_outputs=False))
    result = runner.run()
    assert (result.status, result.done) == ("complete", 60)
    injected = schedule.count()
    assert injected >= 2
    assert result.faults["busy"] + result.faults["timeout"] + result.faults["disconnected"] == injected
    assert result.faults.get("slider alarm", 0) >= 1
    counts = ledger_check(tmp_path / "lab" / "catalog.db")
    assert counts == {"points": 60, "frames": 60}
