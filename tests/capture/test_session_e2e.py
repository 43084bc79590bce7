"""End to end on the simulated rig (SimCamera + GRBL emulator on a pty): stills and passes."""

from __future__ import annotations

import json
import sqlite3

import pytest

from capture.clips import probe
from capture.plan import load_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRunner

from .conftest import PASSES_PLAN, STILLS_PLAN, ledger_check

pytest.importorskip("rigs.camera.sim", reason="the simulated camera (issue 3) is not installed")
pytest.importorskip("rigs.slider.emulator", reason="the GRBL emulator (issue 5) is not installed")
pytestmark = [pytest.mark.slow]


def _run(plan_path, catalog, **options):
    plan = load_plan(plan_path)
    rig = Rig(plan)
    runner = SessionRunner(plan, catalog, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                           options=RunnerOptions(**options))
    return runner.run()


@pytest.mark.timeout(180)
def test_stills_session_end_to_end(plan_factory, tmp_path):
    catalog = tmp_path / "lab" / "catalog.db"
    result = _run(plan_factory(STILLS_PLAN), catalog)
    assert (result.status, result.done, result.total) == ("complete", 8, 8)
    assert ledger_check(catalog)["points"] == 8
    db = sqlite3.connect(catalog)
    rows = db.execute("SELECT requested_json, readback_json, slider_mm, slider_target_mm FROM capture_frames").fetchall()
    for requested, readback, slider_mm, target in rows:
        requested, readback = json.loads(requested), json.loads(readback)
        assert set(requested) == {"aperture", "shutter", "iso"} and all(readback.values())
        assert abs(slider_mm - target) < 0.5          # read-back machine position recorded per frame
    clips = db.execute("SELECT path, proxy_path, frames FROM capture_clips").fetchall()
    assert len(clips) == 2 and all(frames == 4 for *_, frames in clips)
    info = probe(catalog.parent / clips[0][0])
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 4
    pairs = db.execute("SELECT record_json FROM capture_pairs").fetchall()
    assert len(pairs) == 1
    pair = json.loads(pairs[0][0])
    assert pair["reference_settings"]["aperture"] == "f/8"      # deepest depth of field by default
    assert pair["quality"]["alignment_px"] < 2.0                 # same positions -> registered frames
    assert result.contact_sheet.exists() and result.report.exists()
    again = _run(plan_factory(STILLS_PLAN), catalog)        # rerun of a finished plan: nothing to do
    assert again.status == "complete" and again.session_id == result.session_id and again.resumed
    assert ledger_check(catalog)["frames"] == 8


@pytest.mark.timeout(180)
def test_passes_session_end_to_end(plan_factory, tmp_path):
    catalog = tmp_path / "lab" / "catalog.db"
    result = _run(plan_factory(PASSES_PLAN, speed=20), catalog)
    assert (result.status, result.done, result.total) == ("complete", 2, 2)
    ledger_check(catalog)
    db = sqlite3.connect(catalog)
    clips = db.execute("SELECT path, proxy_path, frames FROM capture_clips").fetchall()
    assert len(clips) == 2
    for path, proxy, frames in clips:
        assert frames == 6
        assert probe(catalog.parent / proxy)["codec"] == "h264"
    motion = [json.loads(c)["motion_start"] for (c,) in
              db.execute("SELECT clip_json FROM capture_frames WHERE clip_json IS NOT NULL")]
    assert motion and all(m is not None for m in motion)
    assert len(db.execute("SELECT * FROM capture_pairs").fetchall()) == 1
