"""Each statistic can see its control: the ideal effect simulator, applied to the captured reference, follows the
captured lab-day sweeps (examples/lab-day/*.toml shot on SimCamera(scene="varied"), three scenes, evaluated at
96x64 as the lab day is) with CorrCoef >= 0.95 and a response slope ratio within 0.8-1.2.

Where the check is not met yet the test is a strict xfail that names the measured figure and the reason, so the
day it is met the xfail fails and is removed."""

from __future__ import annotations

import pytest

from train import simcheck

pytestmark = pytest.mark.timeout(600)

SEEDS = (0, 2, 7)
CORR, SLOPE = 0.95, (0.8, 1.2)
#: plan, frames per clip (the noise estimate needs the lab day's 9 frames; 3 suffice elsewhere)
AXES = {"S": ("exposure", 3), "T": ("colour", 3), "f": ("zoom", 3), "ISO": ("iso", 9), "K": ("bokeh", 3),
        "d_f": ("focus", 3)}
GAPS = {
    "ISO": "CorrCoef 0.92-0.94 (slope 1.09-1.13): the captured clips went through H.264 (crf 18), which smooths "
           "noise, the simulator's edits did not; and it re-applies the reference's own K (0.07-0.12) to it. With "
           "both removed the check reads 0.979 / 1.06",
}


@pytest.mark.parametrize("axis", list(AXES))
def test_the_ideal_simulator_follows_the_captured_sweep(axis, request):
    if axis in GAPS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=GAPS[axis]))
    plan, frames = AXES[axis]
    result = simcheck.simulator_check(simcheck.lab_sweeps([plan], SEEDS, frames=frames))
    got = result["axes"][axis]
    assert got["sweeps"] == len(SEEDS), got                      # one sweep of the axis per scene
    assert got["corrcoef"] >= CORR, got
    assert SLOPE[0] <= got["slope_ratio"] <= SLOPE[1], got
