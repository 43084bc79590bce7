"""The planner checks what the camera can do: a shutter longer than a pass's frame interval is refused with
the numbers (and QC flags such pairs); a test shot too dark or too bright to predict from says so instead of
predicting; every problem of a plan comes in one report."""

from __future__ import annotations

import numpy as np
import pytest

from capture import exposure
from capture.plan import check_plan, expand, parse_plan
from capture.preview import exposure_warnings

PASSES = """
[session]
scene = "s"
operator = "o"

[rig]
camera = "sim"
slider = "emulator"

[axes]
aperture = ["f/2.8", "f/8"]
shutter = [{shutters}]
iso = ["100"]

[trajectory]
start_mm = 100
end_mm = 120
speed_mm_s = 20
frames = 16
fps = 8

[order]
mode = "passes"
"""


def test_a_shutter_longer_than_the_frame_interval_is_refused_with_the_numbers():
    plan = parse_plan(PASSES.format(shutters='"0.3", "1/60"'))
    problems = check_plan(plan, choices=None, travel=None)
    (problem,) = [p for p in problems if "frame interval" in p.message]
    assert problem.where == "axes.shutter"
    assert "shutter 0.3 (0.3 s) is longer than the frame interval 1/8 s (0.125 s) at 8 fps" in problem.message
    assert "at most 1/8 s" in problem.message and "trajectory.fps to at most 3.33" in problem.message
    assert not check_plan(parse_plan(PASSES.format(shutters='"1/8", "1/60"')), choices=None, travel=None)


def test_every_problem_of_a_plan_comes_in_one_report():
    plan = parse_plan(PASSES.format(shutters='"0.3", "1/60"'))
    choices = {"aperture": ["f/2.8", "f/4"], "shutter": ["1/60", "0.3"], "iso": ["100"]}
    problems = check_plan(plan, choices=choices, travel=(0.0, 110.0))
    messages = " | ".join(p.message for p in problems)
    assert "does not offer aperture 'f/8'" in messages           # the camera's choices
    assert "outside slider's travel" in messages                  # the travel
    assert "frame interval" in messages                           # and the shutter, all at once


def _frame(level: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(level, 3, size=(48, 64, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("level,word", [(0, "too dark"), (255, "too bright")])
def test_a_clipped_test_shot_says_so_instead_of_predicting(level, word):
    plan = parse_plan(PASSES.format(shutters='"1/15", "1/60", "1/250"').replace('"1/250"', '"1/250", "1/1000"'))
    points = expand(plan, None)
    anchor = exposure.anchor_from_rgb(_frame(level), {"shutter": "1/60", "iso": "100", "aperture": "f/8"},
                                      "a test shot at f/8 1/60 100")
    (warning,) = exposure_warnings(points, anchor)
    assert word in warning and "no exposure is predicted" in warning
    assert "predicted under" not in warning and "predicted over" not in warning


def test_qc_flags_a_pair_whose_shutter_is_longer_than_the_frame_interval():
    from capture.report import flag_long_shutters

    plan = parse_plan(PASSES.format(shutters='"0.3", "1/60"'))
    ok = {"flags": [], "failures": [], "passed": True}
    flagged = flag_long_shutters(ok, plan, {"shutter": "1/60"}, {"shutter": "0.3"})
    assert not flagged["passed"] and "longer than the frame interval 1/8 s" in flagged["failures"][0]
    assert flag_long_shutters(ok, plan, {"shutter": "1/60"}, {"shutter": "1/15"})["passed"]
