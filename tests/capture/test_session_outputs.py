"""Stills with slider positions on the simulated camera (thumbnail size) and the GRBL emulator on a pty:
slider alarm recovery, and the outputs (clips, pairs with QC, contact sheet, report) built from committed
frames only."""

from __future__ import annotations

import json
import sqlite3

import pytest

from capture.plan import parse_plan
from capture.session import RunnerOptions, SessionRunner
from rigs.slider import open_slider

from .conftest import tiny_sim

pytestmark = pytest.mark.timeout(120)

PLAN = """
[session]
name = "fake stills"
scene = "fake scene"
operator = "test"

[rig]
camera = "sim"
slider = "emulator"

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["100"]
slider_mm = [10, 20, 30, 40, 50]

[order]
snake = ["aperture"]

[exposure]
compensate = ["shutter"]
reference = { aperture = "f/8", shutter = "1/60", iso = "100" }
"""


def _emulated_slider():
    slider = open_slider("emulator", speed=50)
    slider.emulator.inject_alarm(after_moves=3)          # the third motion block ends in ALARM:1
    return slider


def test_slider_alarm_rehomes_and_outputs_are_built(tmp_path):
    slider = _emulated_slider()
    camera = tiny_sim(slider=slider)
    result = SessionRunner(parse_plan(PLAN), tmp_path / "catalog.db", camera_factory=lambda: camera,
                           slider_factory=lambda: slider, options=RunnerOptions()).run()
    assert (result.status, result.done) == ("complete", 10)
    assert result.faults["slider alarm"] == 1
    db = sqlite3.connect(tmp_path / "catalog.db")
    positions = db.execute("SELECT position_mm, target_mm FROM slider_positions").fetchall()
    assert len(positions) == 10 and all(abs(a - b) < 1e-3 for a, b in positions)   # every frame at its position
    from capture.catalog import Catalog

    (record,) = Catalog(tmp_path / "catalog.db").pairs(session_id=result.session_id)
    assert record["reference_settings"]["aperture"] == "f/8"
    assert record["other_settings"]["shutter"] == "1/500"                # f/2.8 compensated from 1/60 at f/8
    assert record["qc"]["alignment_px"] < 1.0 and record["qc"]["frames"] == 5
    assert abs(record["deltas"]["exposure_ev"]) < 1 / 3
    assert record["review_state"] == "unreviewed"
    assert result.contact_sheet.stat().st_size > 0
    report = result.report.read_text()
    assert "slider alarm x1" in report and "f/2.8" in report


def test_plan_estimates_come_from_measured_costs_after_a_session(tmp_path):
    from capture.ledger import Ledger
    from capture.plan import Costs

    slider = open_slider("emulator", speed=50)
    camera = tiny_sim(slider=slider)
    SessionRunner(parse_plan(PLAN), tmp_path / "catalog.db", camera_factory=lambda: camera,
                  slider_factory=lambda: slider, options=RunnerOptions(build_outputs=False)).run()
    ledger = Ledger(tmp_path / "catalog.db")
    try:
        costs = ledger.measured_costs("SimCam", "stills", Costs())
        assert costs.source.startswith("measured over 10 earlier points")
        assert costs.bytes_per_still < 10_000 and costs.capture_s < 1.0       # thumbnail frames, 1000x speed
        assert ledger.measured_costs("Other", "stills", Costs()) == Costs()     # other bodies: defaults
    finally:
        ledger.close()


PASSES = """
[session]
name = "fake passes"
scene = "fake scene"
operator = "test"

[rig]
camera = "sim"
slider = "emulator"
speed = 20

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["100"]

[trajectory]
start_mm = 100
end_mm = 130
speed_mm_s = 30
frames = 13
fps = 10

[order]
mode = "passes"
"""


@pytest.mark.timeout(120)
def test_passes_on_the_grbl_emulator_share_the_camera_path(tmp_path):
    """Passes mode on the real GRBL emulator over a pty, the simulated camera following the carriage."""
    from capture.catalog import Catalog
    from capture.ledger import Ledger
    from capture.rig import Rig

    plan = parse_plan(PASSES)
    rig = Rig(plan)
    result = SessionRunner(plan, tmp_path / "catalog.db", slider_factory=rig.open_slider,
                           camera_factory=lambda: tiny_sim(slider=rig.slider, speed=20)).run()
    assert (result.status, result.done) == ("complete", 2)
    cat = Catalog(tmp_path / "catalog.db")
    clips = cat.clips(result.session_id)
    assert len(clips) == 2 and all(c["frames"] == 13 for c in clips)
    passes = Ledger(tmp_path / "catalog.db").passes(result.session_id)
    assert len(passes) == 2 and all(p["motion_started_at"] for p in passes)
    for p in passes:
        poses = json.loads(p["poses_json"])
        assert poses[-1] > poses[0]                        # the carriage moved during the clip
    (pair,) = cat.pairs(session_id=result.session_id)
    assert pair["reference_settings"]["aperture"] == "f/8"
