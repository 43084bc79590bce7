"""Response curve: recovered from a bracket of the body with a secret, applied identically to numpy and torch,
and refused with a clear message when the bracket cannot measure it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from simframes import bracket, true_curve  # noqa: E402

from rigs import optics  # noqa: E402
from rigs.calibration import response as R  # noqa: E402
from rigs.calibration.inputs import CalibrationInputError  # noqa: E402
from rigs.camera.bodies import IDEAL, SECRET  # noqa: E402


@pytest.fixture(scope="module")
def secret_bracket():
    return bracket("secret")


@pytest.fixture(scope="module")
def fitted(secret_bracket):
    return R.fit_response(secret_bracket)


def test_recovers_the_hidden_response_within_two_percent(fitted):
    curve, figures = fitted
    error = R.curve_error(curve, SECRET.decode, low_code=1, high_code=254)
    assert error["max_abs"] <= 0.02, error                # of full scale, at every unclipped code
    assert error["max_rel_above_5pct"] <= 0.03, error
    assert figures["frames"] == 25 and figures["span_stops"] == pytest.approx(8.0, abs=0.1)


def test_a_textured_scene_gives_the_curve_less_surely_but_usefully():
    """Any static scene works (the curve's shape and the exposure prediction), a step chart pins it best: on
    the textured tabletop the solvers alone are 25-32 % off at the shoulder, the re-measured curve about 5 %."""
    frames = bracket("secret", scene="tabletop")
    curve, figures = R.fit_response(frames)
    assert R.curve_error(curve, SECRET.decode, low_code=1, high_code=254)["max_abs"] <= 0.06
    assert figures["ratio"] <= 0.5


def test_calibrated_exposure_prediction_beats_the_ideal_camera_by_half(fitted, secret_bracket):
    curve, figures = fitted
    ideal = R.exposure_prediction_error(secret_bracket, R.SRGB)["mae"]
    calibrated = R.exposure_prediction_error(secret_bracket, curve)["mae"]
    assert calibrated <= 0.5 * ideal
    assert figures["ratio"] == pytest.approx(calibrated / ideal, rel=0.1)


def test_an_ideal_body_comes_out_as_srgb():
    curve, _ = R.fit_response(bracket("ideal", count=25))
    error = R.curve_error(curve, IDEAL.decode, low_code=1, high_code=254)
    assert error["max_abs"] <= 0.02, error


def test_robertson_solver_also_recovers_it(secret_bracket):
    curve, figures = R.fit_response(secret_bracket, method="robertson")
    assert figures["method"] == "robertson"
    assert R.curve_error(curve, SECRET.decode, low_code=1, high_code=254)["max_abs"] <= 0.02


def test_each_channel_is_anchored_at_its_clipping_point(fitted):
    curve, _ = fitted
    assert np.allclose(curve.linear[255], 1.0) and np.allclose(curve.linear[0], 0.0)
    assert (np.diff(curve.linear, axis=0) > 0).all()


def test_numpy_and_torch_apply_the_same_curve(fitted):
    torch = pytest.importorskip("torch")
    curve, _ = fitted
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 5, 7)).astype(np.float32)              # channels on axis 1
    a = np.asarray(curve.to_linear(x, channel_axis=1))
    b = curve.to_linear(torch.from_numpy(x), channel_axis=1).numpy()
    assert np.allclose(a, b, atol=1e-5)
    back = curve.to_encoded(torch.from_numpy(a.astype(np.float32)), channel_axis=1).numpy()
    assert np.abs(back - x).max() < 2e-3                          # the inverse table inverts the forward one
    assert np.allclose(np.asarray(curve.to_encoded(a, channel_axis=1)), back, atol=1e-5)


def test_the_srgb_curve_is_the_ideal_camera():
    codes = np.linspace(0, 1, 256)
    assert np.allclose(R.SRGB.to_linear(np.repeat(codes[:, None], 3, 1))[:, 0], optics.srgb_decode(codes), atol=1e-6)
    lin = np.linspace(0, 1, 97)
    assert np.allclose(R.SRGB.to_encoded(np.repeat(lin[:, None], 3, 1))[:, 1], optics.srgb_encode(lin), atol=2e-3)


def test_json_round_trip_keeps_the_curve(fitted):
    curve, _ = fitted
    back = R.ResponseCurve.from_dict(curve.to_dict())
    assert np.allclose(back.linear, curve.linear, rtol=1e-5, atol=1e-8) and back.method == curve.method


def test_true_curve_helper_matches_the_body():
    assert R.curve_error(true_curve(SECRET), SECRET.decode, low_code=1, high_code=254)["max_abs"] < 1e-6


# ------------------------------------------------------------------------------------------------ refusals

def test_too_few_frames_are_refused(secret_bracket):
    with pytest.raises(CalibrationInputError, match=r"response: 1 frame\(s\) given, at least 2"):
        R.fit_response(secret_bracket[:1])


def test_a_narrow_bracket_is_refused(secret_bracket):
    with pytest.raises(CalibrationInputError, match=r"spans 1\.\d stops; it needs at least 2"):
        R.fit_response(secret_bracket[10:15])


def test_a_bracket_that_never_clips_is_refused(secret_bracket):
    with pytest.raises(CalibrationInputError, match="no frame reaches the clipping point"):
        R.fit_response(secret_bracket[:14])


def test_something_that_moved_in_the_scene_is_refused_by_name(secret_bracket):
    """A shifted camera is aligned (tests/rigs/test_calibration_real.py); a part of the scene that moved is not."""
    frames = list(secret_bracket)
    image = frames[12].image.copy()
    image[100:300, 200:400] = np.roll(image[100:300, 200:400], 12, axis=1)
    frames[12] = replace(frames[12], image=image)
    with pytest.raises(CalibrationInputError, match=rf"{frames[12].name} .* moved"):
        R.fit_response(frames)


def test_a_changing_aperture_is_refused(secret_bracket):
    frames = list(secret_bracket)
    frames[3] = replace(frames[3], settings={**frames[3].settings, "aperture": 4.0})
    with pytest.raises(CalibrationInputError,
                       match=r"differ in aperture .* only the exposure \(time, or time and ISO\) may change"):
        R.fit_response(frames)


def test_a_frame_without_exposure_time_is_named(secret_bracket):
    frames = list(secret_bracket)
    frames[0] = replace(frames[0], settings={k: v for k, v in frames[0].settings.items() if k != "shutter"})
    with pytest.raises(CalibrationInputError, match=rf"{frames[0].name} has no shutter setting"):
        R.fit_response(frames)


def test_an_unknown_method_is_refused(secret_bracket):
    with pytest.raises(CalibrationInputError, match="method 'mitsunaga' is not one of debevec, robertson"):
        R.fit_response(secret_bracket, method="mitsunaga")
