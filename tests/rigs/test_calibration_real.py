"""Calibration on the real brackets and the real white-balance series of tests/data/real-sweeps/ (published
files, borders and all): accepted after alignment and masks, refused when the curve is worse than the ideal
camera, and the held-out test the issue asks for (calibrate on half the frames, predict the other half's ±1-stop
neighbours — the nearest existing ones — through the effect simulator's exposure path).

Which bracket is which: `exposure-stlouis-canon-s3is` is a tripod bracket from a compact camera (4 frames about
3 stops apart); the two `exposure-rx100m6-night-*` are in-camera 0.7-stop auto brackets of a hand-held night scene
at ISO 4000-6400 from a compact. Which rule the held-out test holds a bracket to is measured, not listed here:
`rigs/calibration/ceiling.py` fits the best single curve on the held-out pairs themselves and classifies the
bracket (one curve: <= 0.5 x ideal; not one curve: within 0.1 of OpenCV's ratio) — and on every bracket a stored
profile predicts no worse than the ideal camera. Where the bracket is one curve but no half of it can measure the
curve (every half refused as underdetermined: the St. Louis bracket's halves are two frames 6 stops apart), the
held-out test is an expected failure with those figures. The figures of each run are printed (docs/calibration.md)"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from capture.calibration import frames_from_files
from rigs.calibration import bracket as B
from rigs.calibration import ceiling as C
from rigs.calibration import heldout as H
from rigs.calibration import response as R
from rigs.calibration import white_balance as W
from rigs.calibration.inputs import CalibrationInputError
from train.effects import exposure_image

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real-sweeps"
BRACKETS = ("exposure-stlouis-canon-s3is", "exposure-rx100m6-night-1", "exposure-rx100m6-night-2")


def load(folder: str):
    meta = tomllib.loads((CORPUS / folder / "sweep.toml").read_text())
    paths = [CORPUS / folder / name for name in meta["files"]]
    given = {"kelvin": meta["values"]} if meta["axis"] == "kelvin" else {}   # exposure: from each file's EXIF
    frames, _ = frames_from_files(paths, given=given)
    return frames


@pytest.fixture(scope="module", params=BRACKETS)
def real_bracket(request):
    return request.param, load(request.param)


def test_every_real_bracket_is_accepted_and_beats_the_ideal_camera_in_sample(real_bracket):
    name, frames = real_bracket
    curve, figures = R.fit_response(frames)
    print(name, {k: v for k, v in figures.items() if "mae" in k or "ratio" in k})
    assert figures["ratio"] < 1.0 and figures["ratio"] <= figures["opencv_ratio"] + 0.1
    assert np.allclose(curve.linear[255], 1.0)


@pytest.mark.timeout(900)
def test_held_out_prediction_on_every_real_bracket(real_bracket):
    name, frames = real_bracket
    result = H.held_out_error(frames, predict=exposure_image)
    top = result["ceiling"]
    print(name, {k: v for k, v in result.items() if k not in ("splits", "ceiling")},
          {k: v for k, v in top.items() if "by_brightness" not in k})
    assert result["pairs"] >= 2
    assert top["class"] in ("one-curve", "spatially varying", "noise floor")
    assert top["oracle_mae"] <= result["profile_mae"] + 1e-9        # the ceiling bounds the calibration
    assert result["ratio"] <= 1.0                                   # never worse than the ideal camera
    assert result["meets"] == C.meets(top, result["ratio"], result["opencv_ratio"])
    if not result["meets"] and all(s["refused"] == "Underdetermined" for s in result["splits"]):
        # measured, not listed: one curve describes the bracket (fitted on every frame), but no half of it can
        # measure that curve (its frames share almost no well-exposed pixel), so nothing is stored and the ideal
        # camera predicts: the 0.5 target is out of reach of any calibration from half the frames
        pytest.xfail(f"{name}: one curve reaches {top['oracle_ratio']:.2f} x ideal, but every half is "
                     f"underdetermined, so the held-out ratio is the ideal camera's {result['ratio']:.2f}")
    assert result["meets"], top["rule"]


def test_frames_too_far_apart_to_measure_the_curve_are_refused():
    """Half of the St. Louis bracket: two frames 5.9 stops apart share almost no pixel that both expose well, so
    the curve between them would be the solver's guess (forced, it predicts the other half worse than the
    ideal camera): refused with the figures, stored only with force."""
    frames = load("exposure-stlouis-canon-s3is")
    exposures = R.bracket_exposures(frames)
    half = [frames[i] for i in np.argsort(exposures)[0::2]]
    with pytest.raises(R.Underdetermined, match=r"only \d+ of the 196 codes 30-225 are measured in any channel .*"
                                               r"2 frames over 5\.9 stops .* --force"):
        R.fit_response(half, min_span=H.HELD_OUT_MIN_SPAN)
    curve, figures = R.fit_response(half, min_span=H.HELD_OUT_MIN_SPAN, force=True)
    assert max(figures["measured_codes"]) < R.MIN_MEASURED_CODES
    whole = R.prepare(frames, exposures, R.WHAT)
    rest = [int(i) for i in np.argsort(exposures)[1::2]]
    pairs = R.neighbour_pairs(exposures, (1.0,), targets=rest)
    forced = R.exposure_prediction_error(whole, curve, pairs=pairs, step=2, predict=exposure_image)
    ideal = R.exposure_prediction_error(whole, R.SRGB, pairs=pairs, step=2, predict=exposure_image)
    print(forced, ideal)
    assert forced["mae"] > ideal["mae"]


def test_a_channel_the_bracket_barely_measures_keeps_the_ideal_curve():
    """A night scene's blue: in two frames of the Sony bracket few blue codes are well exposed twice; that channel
    keeps sRGB (its fitted shape is the solver's smoothing guess), the others are fitted."""
    frames = load("exposure-rx100m6-night-1")
    exposures = R.bracket_exposures(frames)
    half = [frames[i] for i in np.argsort(exposures)[1::2]]
    curve, figures = R.fit_response(half, min_span=H.HELD_OUT_MIN_SPAN)
    print(figures["measured_codes"], figures["ideal_channels"])
    assert figures["measured_codes"][2] < R.MIN_MEASURED_CODES <= figures["measured_codes"][1]
    assert figures["ideal_channels"] == "B" and np.allclose(curve.linear[:, 2], R.SRGB.linear[:, 2])
    assert not np.allclose(curve.linear[:, 1], R.SRGB.linear[:, 1], atol=0.01)


# ------------------------------------------------------------------------------------------------ the guards

def test_a_camera_that_moved_is_aligned_not_refused():
    """One frame of a real bracket 4 px off (a hand-held bracket): MTB finds it and the fit goes on; without
    alignment the static check calls it motion."""
    frames = load("exposure-rx100m6-night-1")
    frames[1] = replace(frames[1], image=np.roll(frames[1].image, 4, axis=1))
    _, figures = R.fit_response(frames)
    assert figures["shifts"][1] == [-4, 0] and figures["ratio"] < 1.0
    with pytest.raises(CalibrationInputError, match=rf"{frames[1].name}.* moved"):
        R.fit_response(frames, aligned=False)


def test_registration_padding_is_not_light():
    """Published brackets are registered and padded with pure colour whose extent differs per frame: the padding
    is masked, so the static check does not call it motion and the fit does not sample it."""
    frames = load("exposure-rx100m6-night-1")
    padded = []
    for i, frame in enumerate(frames):
        image = frame.image.copy()
        image[: 3 + 3 * i] = (200, 30, 160)                            # top rows, deeper in every frame
        image[:, image.shape[1] - 2 - 2 * i:] = (200, 30, 160)         # and right columns
        padded.append(replace(frame, image=image))
    assert not B.border_mask(padded[4].image)[:15].any()
    _, figures = R.fit_response(padded)
    assert figures["picture_share"] < 0.9 and figures["ratio"] < 1.0


def test_a_curve_worse_than_the_ideal_camera_is_refused_with_its_figures():
    """A solver without smoothing, fed three sample pixels, bends the curve: on the real bracket it predicts
    worse than no calibration, so it is refused (with OpenCV's bare solver as the reference line) unless forced."""
    frames = load("exposure-rx100m6-night-1")
    with pytest.raises(R.WorseThanIdeal, match=r"worse than the ideal sRGB camera \(\d+\.\d+ vs \d+\.\d+ levels .*"
                                               r"OpenCV's bare CalibrateDebevec on the same frames: \d+\.\d+ levels"):
        R.fit_response(frames, samples=3, smoothness=0.0)
    _, figures = R.fit_response(frames, samples=3, smoothness=0.0, force=True)
    assert figures["ratio"] > R.WORSE_MARGIN and figures["opencv_ratio"] < 1.0


def test_iso_changes_inside_an_auto_bracket_count_as_light():
    frames = load("exposure-rx100m6-night-1")
    exposures = R.bracket_exposures(frames)
    by_name = dict(zip((f.name for f in frames), exposures))
    assert by_name["DSC08199.JPG"] == pytest.approx(1 / 30 * 4000 / 6400)   # 1/30 s at ISO 4000 of 6400


# ------------------------------------------------------------------------------------------------ white balance

def test_white_balance_series_gains_follow_the_setting():
    frames = load("kelvin-a0033-render")
    kelvins, gains = W.scene_gains(frames)
    order = np.argsort(kelvins)
    assert (np.diff(gains[order, 0]) > 0).all() and (np.diff(gains[order, 2]) < 0).all()   # warmer as K rises


def test_held_out_white_balance_on_the_real_series():
    """Renders of one raw file at five presets: the table measured on half the settings predicts the other half
    as well as the textbook gains do (the renderer's presets follow them), far better than ignoring the setting."""
    result = W.held_out_white_balance(load("kelvin-a0033-render"))
    print(result)
    assert result["ratio"] <= 1.05 and result["profile_mae"] < 0.7 * result["unchanged_mae"]


# ------------------------------------------------------------------------------------------------ breathing

FOCUS_STACKS = ("focus-focus-stack-pcb", "focus-cmcguinness")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("folder", FOCUS_STACKS)
def test_held_out_breathing_on_a_real_focus_stack(folder):
    """Focus distances are not published for these stacks (only the step order), so the profile's breathing
    (focal length against 1/focus) cannot be fitted; what can be measured is the magnification per step, and
    it predicts held-out steps far better than the ideal camera's 'no breathing'."""
    if not (CORPUS / folder).is_dir():
        pytest.skip(f"{folder} is added to the corpus by the capture-import branch")
    import cv2

    from train.calibrated import held_out_breathing

    meta = tomllib.loads((CORPUS / folder / "sweep.toml").read_text())
    names = meta.get("files") or sorted(p.name for p in (CORPUS / folder).iterdir() if p.suffix.lower() == ".jpg")
    frames = [cv2.cvtColor(cv2.imread(str(CORPUS / folder / n)), cv2.COLOR_BGR2RGB) for n in names]
    result = held_out_breathing(frames, [float(v) for v in meta["values"]])
    print(folder, result)
    assert result["per_step"] < -0.003                                   # the framing widens as focus steps on
    assert result["ratio"] <= 0.5
