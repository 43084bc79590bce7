"""Plans: parsing, every problem with its line, loop order and snaking, constant exposure, summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture.plan import (
    PlanError, check_plan, count_setting_changes, expand, exposure_stops, load_plan, parse_plan, summarize,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHOICES = {
    "aperture": ["f/2.8", "f/4", "f/5.6", "f/8", "f/11", "f/16"],
    "shutter": ["1/1000", "1/500", "1/250", "1/125", "1/60", "1/50", "1/30", "1/15", "1/8", "1/4", "0.0100s"],
    "iso": ["100", "200", "400", "800", "1600", "3200", "6400", "12800"],
}

BASE = """
[session]
scene = "desk"
operator = "ana"

[rig]
camera = "sim"
slider = "emulator"

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60", "1/125"]
slider_mm = [0, 50, 100]
"""


def test_examples_parse_and_expand():
    for path in sorted(p for p in EXAMPLES.glob("*.toml") if not p.name.startswith("train-")):
        plan = load_plan(path)
        points = expand(plan, CHOICES)
        assert points, path
        assert len({p.key for p in points}) == len(points)


def test_every_problem_is_reported_with_its_line():
    text = """[session]
operator = "ana"

[rig]
camera = "sim"
slider = "none"

[axes]
aperture = ["f/2.8", "x/9"]
bogus = ["1"]
slider_mm = [0, "left"]

[order]
mode = "sideways"
"""
    with pytest.raises(PlanError) as info:
        parse_plan(text, source="bad.toml")
    problems = info.value.problems
    by_where = {p.where: p for p in problems}
    assert by_where["session.scene"].line == 1          # missing key -> its section's line
    assert by_where["axes.aperture"].line == 9
    assert "x/9" in by_where["axes.aperture"].message
    assert by_where["axes.bogus"].line == 10
    assert by_where["axes.slider_mm"].line == 11
    assert by_where["order.mode"].line == 14
    assert by_where["rig.slider"].line == 6              # moves the slider with slider = "none"
    assert "bad.toml" in str(info.value)


def test_invalid_toml_names_the_line():
    with pytest.raises(PlanError) as info:
        parse_plan("[session]\nscene = \n")
    assert info.value.problems[0].line == 2


def test_loop_order_and_snaking():
    plan = parse_plan(BASE + '\n[order]\nloop = ["slider", "aperture", "shutter"]\nsnake = ["shutter"]\n')
    points = expand(plan, CHOICES)
    assert len(points) == 12
    seq = [(p.slider_mm, p.settings["aperture"], p.settings["shutter"]) for p in points[:4]]
    assert seq == [(0, "f/2.8", "1/60"), (0, "f/2.8", "1/125"), (0, "f/8", "1/125"), (0, "f/8", "1/60")]
    # same combination -> same combo id at every position, frame index = position index
    by_combo = {}
    for p in points:
        by_combo.setdefault(p.combo, []).append(p.frame_index)
    assert all(sorted(v) == [0, 1, 2] for v in by_combo.values())


def test_snaking_reduces_setting_changes():
    straight = expand(parse_plan(BASE + '\n[order]\nloop = ["slider", "aperture", "shutter"]\n'), CHOICES)
    snaked = expand(parse_plan(BASE + '\n[order]\nloop = ["slider", "aperture", "shutter"]\n'
                               'snake = ["aperture", "shutter"]\n'), CHOICES)
    assert count_setting_changes(snaked) < count_setting_changes(straight)


def test_constant_exposure_chooses_only_offered_values_within_a_third_stop():
    plan = parse_plan(BASE.replace('shutter = ["1/60", "1/125"]', 'shutter = ["1/250"]\niso = ["100"]')
                      + '\n[exposure]\nconstant = true\ncompensate = ["shutter", "iso"]\n')
    offered = dict(CHOICES, aperture=["f/2.8", "f/8", "f/16"], shutter=["1/250", "1/60", "1/30"])
    reference = {"aperture": "f/2.8", "shutter": "1/250", "iso": "100"}
    for point in expand(plan, offered):
        assert point.settings["shutter"] in offered["shutter"]
        assert point.settings["iso"] in offered["iso"]
        assert abs(exposure_stops(point.settings, reference)) <= 1 / 3 + 1e-9
    f8 = next(p for p in expand(plan, offered) if p.settings["aperture"] == "f/8")
    assert f8.settings["shutter"] == "1/30" and f8.settings["iso"] == "100"   # shutter first, ISO untouched


def test_constant_exposure_impossible_is_a_problem():
    plan = parse_plan(BASE.replace('shutter = ["1/60", "1/125"]', 'shutter = ["1/250"]\niso = ["100"]')
                      + '\n[exposure]\ncompensate = ["shutter"]\n')
    problems = check_plan(plan, choices=dict(CHOICES, shutter=["1/250", "1/125"]), travel=None)
    assert any("cannot hold exposure" in p.message for p in problems)


def test_check_against_camera_and_travel():
    plan = parse_plan(BASE.replace('"f/8"]', '"f/1.2"]').replace("100]", "900]"))
    problems = check_plan(plan, choices=CHOICES, travel=(0.0, 600.0), camera_label="SimCam")
    messages = " | ".join(p.message for p in problems)
    assert "SimCam does not offer aperture 'f/1.2'" in messages
    assert "900 mm is outside" in messages
    assert all(p.line for p in problems)


def test_numeric_labels_resolve_to_camera_labels():
    plan = parse_plan(BASE.replace('"1/125"]', '"1/100"]'))
    points = expand(plan, CHOICES)
    assert {p.settings["shutter"] for p in points} == {"1/60", "0.0100s"}


def test_summary_estimates_time_and_disk():
    plan = parse_plan(BASE + "\n[costs]\ncapture_s = 2.0\nset_s = 0.5\nbytes_per_still = 1000000\n")
    points = expand(plan, CHOICES)
    summary = summarize(plan, points)
    assert summary.points == 12
    assert summary.bytes == 12e6
    assert summary.seconds >= 12 * 2.0 + summary.setting_changes * 0.5
    assert summary.moves == 3   # one move per position change, the first one from home included
