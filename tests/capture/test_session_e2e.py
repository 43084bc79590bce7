"""End to end on the simulated rig (SimCamera + GRBL emulator on a pty): stills and passes."""

from __future__ import annotations

import pytest

from capture.catalog import Catalog
from rigs.video import probe
from capture.plan import load_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRunner

from .conftest import PASSES_PLAN, STILLS_PLAN, ledger_check

import rigs.camera.sim  # noqa: F401  (a missing project module fails, never skips)
import rigs.slider.emulator  # noqa: F401

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
    cat = Catalog(catalog)
    assets = [a for a in cat.assets(session_id=result.session_id) if a["point_id"] is not None]
    assert len(assets) == 8
    for asset in assets:
        settings = cat.settings(asset["id"])
        assert {"aperture", "shutter", "iso"} <= set(settings)
        assert all(settings[r]["requested_text"] and settings[r]["readback_text"] for r in ("aperture", "shutter", "iso"))
        slider = cat.rows("SELECT * FROM slider_positions WHERE asset_id = ?", (asset["id"],))[0]
        assert abs(slider["position_mm"] - slider["target_mm"]) < 0.5   # read-back machine position per frame
    clips = cat.clips(result.session_id)
    assert len(clips) == 2 and all(c["frames"] == 4 for c in clips)
    info = probe(cat.abspath(cat.asset(clips[0]["asset_id"])["path"]))
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.frames == 4
    (pair,) = cat.pairs(session_id=result.session_id)
    assert pair["reference_settings"]["aperture"] == "f/8"      # deepest depth of field by default
    assert pair["qc"]["alignment_px"] < 2.0                      # same positions -> registered frames
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
    cat = Catalog(catalog)
    clips = cat.clips(result.session_id)
    assert len(clips) == 2
    for clip in clips:
        assert clip["frames"] == 9
        assert probe(cat.abspath(cat.asset(clip["proxy_asset_id"])["path"])).codec == "h264"
        recorded = cat.asset(clip["asset_id"])
        assert recorded["point_id"] is not None and recorded["kind"] == "clip"   # the pass's own clip
    assert len(cat.pairs(session_id=result.session_id)) == 1
    from capture.ledger import Ledger

    passes = Ledger(catalog).passes(result.session_id)
    assert len(passes) == 2 and all(p["motion_started_at"] for p in passes)
