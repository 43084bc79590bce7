"""QC and planning that catch bad pairs: too dark / too bright frames fail QC, a control outside the model's
range is flagged, `capture plan` warns before shooting, the report lists read-back mismatches, a pass must
record the whole move."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from capture import clips, exposure
from capture.pairs import quality_record
from capture.plan import PlanError, check_plan, expand, parse_plan
from capture.preview import control_warnings, exposure_warnings
from capture.session import RunnerOptions, SessionRunner
from rigs.camera.protocol import SettingResult
from rigs.camera.sim import SimCamera

from .conftest import TINY

pytestmark = pytest.mark.timeout(120)


def _scene(gain: float = 1.0, w: int = 96, h: int = 64) -> np.ndarray:
    rng = np.random.default_rng(1)
    base = np.asarray(Image.fromarray(rng.integers(40, 200, (h // 4, w // 4, 3), dtype=np.uint8)).resize((w, h)))
    return np.clip(base.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def test_too_dark_and_too_bright_frames_fail_qc():
    good = [_scene() for _ in range(3)]
    black = [_scene(0.03) for _ in range(3)]                 # nearly black: mean level ~4/255
    white = [_scene(8.0) for _ in range(3)]
    assert clips.pair_quality(good, good).failures == []
    dark = clips.pair_quality(black, good)
    assert any(f.startswith("reference under-exposed (mean level") for f in dark.failures), dark.flags
    bright = clips.pair_quality(good, white)
    assert any(f.startswith("target over-exposed") for f in bright.failures), bright.flags
    assert exposure.measure(black[0]).problem and not exposure.measure(good[0]).problem


def test_a_control_outside_the_models_range_is_flagged_on_the_pair():
    quality = clips.pair_quality([_scene()] * 3, [_scene()] * 3)
    ok = quality_record(quality, {"S": 0.4, "K": 0.2})
    assert ok["passed"] and ok["controls_out_of_range"] == []
    record = quality_record(quality, {"S": 3.35, "K": 0.2})
    assert not record["passed"] and record["controls_out_of_range"] == ["S"]
    assert any("S (" in f and "3.35" in f and "outside the model's range" in f for f in record["failures"])


SWEEP = """
[session]
scene = "bench"
operator = "qc"

[rig]
camera = "sim"
slider = "none"

[axes]
shutter = ["1/1000", "1/15"]
iso = ["100", "800"]

[pairs]
reference = {{ shutter = "{ref}", iso = "100" }}
"""


def test_plan_warns_about_pairs_the_model_cannot_take_and_frames_that_will_be_black():
    plan = parse_plan(SWEEP.format(ref="1/1000"))
    points = expand(plan, None)
    warnings = control_warnings(plan, points)
    assert warnings and all("outside the model's range" in w for w in warnings)     # 1/1000 -> 1/15 x8 = 9 stops
    anchor = exposure.anchor_from_rgb(_scene(), {"shutter": "1/15", "iso": "100", "aperture": "f/8"},
                                      "a test frame")                               # well exposed at 1/15
    predicted = exposure_warnings(points, anchor)
    assert any(w.startswith("1/1000 100 ") and "-6.1 stops" in w and "under-exposed" in w for w in predicted)
    assert any(w.startswith("1/15 800 ") and "over-exposed" in w for w in predicted)
    assert not any(w.startswith("1/15 100 ") for w in predicted), predicted         # the anchor itself: fine


def test_the_report_lists_read_back_mismatches(tmp_path):
    class Rounding(SimCamera):
        """A body that reads back a neighbouring shutter value (as the virtual camera rounds 1/4000 to 0.0001s)."""

        def set(self, role, value, *, timeout=10.0):
            result = super().set(role, value, timeout=timeout)
            if role == "shutter" and value == "1/125":
                return SettingResult(role, value, "1/100", result.seconds)
            return result

    plan = parse_plan('[session]\nscene = "s"\noperator = "o"\n[rig]\nslider = "none"\n'
                      '[axes]\naperture = ["f/2.8", "f/4"]\nshutter = ["1/125"]\n')
    result = SessionRunner(plan, tmp_path / "catalog.db", camera_factory=lambda: Rounding(**TINY),
                           slider_factory=lambda: None, options=RunnerOptions()).run()
    report = result.report.read_text()
    assert "Read-back mismatches (2)" in report and "<td>1/125</td><td>1/100</td>" in report


def test_a_pass_must_record_the_whole_move():
    text = ('[session]\nscene = "s"\noperator = "o"\n[rig]\nslider = "emulator"\n[axes]\naperture = ["f/8"]\n'
            '[order]\nmode = "passes"\n[trajectory]\nstart_mm = 50\nend_mm = 350\nspeed_mm_s = 40\n'
            'frames = {frames}\nfps = 24\n')
    short = parse_plan(text.format(frames=48))
    (problem,) = check_plan(short, choices=None, travel=None)      # offline: at constant speed, and says so
    assert problem.where == "trajectory.frames" and problem.line == 14
    assert "48 frames at 24 fps record 2.00 s" in problem.message and "takes 7.50 s" in problem.message
    assert "at least 180 frames" in problem.message and "at constant speed" in problem.message
    # against the slider the one report already includes the acceleration ramps: no second round at 180
    (problem,) = check_plan(short, choices=None, travel=(0, 600), accel_mm_s2=250.0)
    need = int(problem.message.split("at least ")[1].split()[0])
    assert need > 180 and "acceleration 250 mm/s² included" in problem.message
    assert check_plan(parse_plan(text.format(frames=need)), choices=None, travel=(0, 600), accel_mm_s2=250.0) == []


def test_capture_plan_predicts_exposure_from_a_test_shot_or_an_earlier_session(tmp_path):
    from typer.testing import CliRunner

    from cinectrl.main import app

    cli = CliRunner()
    plan = tmp_path / "plan.toml"
    plan.write_text(SWEEP.format(ref="1/1000").replace('slider = "none"', 'slider = "none"\nspeed = 1000\n'
                                                       'camera_options = { width = 64, height = 48 }'))
    catalog = tmp_path / "lab" / "catalog.db"
    shot = cli.invoke(app, ["capture", "plan", str(plan), "--catalog", str(catalog), "--test-shot"])
    assert shot.exit_code == 0, shot.output
    text = " ".join(shot.output.split())
    # the scene at 1/1000 is nearly black: a black frame scaled stays black, so nothing is predicted from it
    assert "exposure not predicted: a test shot at 1/1000 100 is too dark or too bright" in text
    assert "a test shot at 1/1000 100 is under-exposed" in text and "too dark to predict" in text
    assert "predicted under-exposed" not in text and "predicted over-exposed" not in text
    assert "outside the model's range" in text
    assert not catalog.exists() and not list(tmp_path.glob("**/test-shot*"))              # nothing kept
    ran = cli.invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet", "--init"])
    assert ran.exit_code == 0, ran.output
    again = " ".join(cli.invoke(app, ["capture", "plan", str(plan), "--catalog", str(catalog)]).output.split())
    assert "exposure predicted from session 1's p" in again
