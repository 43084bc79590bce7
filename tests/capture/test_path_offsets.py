"""Camera-path sweeps: `[trajectory] offsets_mm` shoots each combination once per offset, each pass shifted
along the slider, on the simulated rig (SimCamera + GRBL emulator on a pty)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from capture.catalog import open_catalog
from capture.plan import PlanError, expand, parse_plan
from cinectrl.main import app

PLAN = """
[session]
name = "path sweep"
scene = "bench"
operator = "pytest"
[rig]
camera = "sim"
slider = "emulator"
speed = 50
camera_options = {{ clip_width = 96, clip_height = 64 }}
[axes]
aperture = ["f/4"{extra_aperture}]
shutter = ["1/60"]
iso = ["400"]
[trajectory]
start_mm = 100
end_mm = 140
speed_mm_s = 40
frames = 9
fps = 6
offsets_mm = {offsets}
[order]
mode = "passes"
[pairs]
reference = {{ aperture = "f/4" }}
"""


def test_offsets_expand_to_one_pass_per_offset_with_its_own_start():
    plan = parse_plan(PLAN.format(offsets="[0, 20, 40]", extra_aperture=', "f/8"'))
    points = expand(plan)
    assert [(p.settings["aperture"], p.slider_mm, p.combo) for p in points] == [
        ("f/4", 100.0, 0), ("f/4", 120.0, 1), ("f/4", 140.0, 2), ("f/8", 100.0, 3), ("f/8", 120.0, 4),
        ("f/8", 140.0, 5)]
    single = expand(parse_plan(PLAN.format(offsets="[0]", extra_aperture="").replace("offsets_mm = [0]\n", "")))
    assert [(p.slider_mm, p.combo) for p in single] == [(None, 0)]      # no offsets: a plain pass, as before


@pytest.mark.parametrize("offsets, message", [("[0, 20, 20]", "repeats an offset"), ('["far"]', "takes numbers"),
                                              ("[]", "at least one offset")])
def test_bad_offsets_are_refused_with_the_line(offsets, message):
    with pytest.raises(PlanError, match=message) as err:
        parse_plan(PLAN.format(offsets=offsets, extra_aperture=""))
    assert "[trajectory.offsets_mm]" in str(err.value)


@pytest.mark.timeout(240)
def test_passes_start_at_their_offsets_and_pairs_record_the_shift(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(offsets="[0, 30, 60]", extra_aperture=""))
    result = CliRunner().invoke(app, ["capture", "run", str(plan), "--catalog", str(tmp_path / "lab" / "catalog.db"),
                                      "--quiet", "--init"])
    assert result.exit_code == 0, result.output
    with open_catalog(tmp_path / "lab" / "catalog.db", readonly=True) as cat:
        passes = {r["path"].split("/")[-1]: r for r in cat.rows(
            "SELECT a.path, c.poses_json FROM capture_passes c JOIN assets a ON a.id = c.asset_id")}
        pairs = cat.pairs()
    import json
    starts = sorted(json.loads(r["poses_json"])[0] for r in passes.values())
    assert [round(s) for s in starts] == pytest.approx([100, 130, 160], abs=3)     # each pass on its own path
    assert sorted(p["deltas"]["path_offset_mm"] for p in pairs) == [30.0, 60.0]
    assert all(not any(f.startswith("misaligned") for f in p["qc"]["flags"]) for p in pairs)
    assert all(p["qc"]["alignment_px"] > 0.5 for p in pairs)                        # the shift is really there
