"""White balance, lens geometry, defocus and noise, each measured on frames of the body with a secret and checked
against what it hides; and each refusing frames it cannot use, with a message naming them."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from simframes import shoot, true_curve  # noqa: E402

from rigs.calibration import defocus as D  # noqa: E402
from rigs.calibration import geometry as G  # noqa: E402
from rigs.calibration import noise as N  # noqa: E402
from rigs.calibration import white_balance as W  # noqa: E402
from rigs.calibration.inputs import CalibrationInputError  # noqa: E402
from rigs.camera.bodies import SECRET  # noqa: E402
from rigs.camera.sim import SimCamera  # noqa: E402

TRUTH = true_curve(SECRET)
KELVINS = ("3200", "4000", "5500", "6500", "8000")


def _camera(scene: str, **options) -> SimCamera:
    return SimCamera(speed=1e6, body="secret", scene=scene, **options)


# ------------------------------------------------------------------------------------------------ white balance

@pytest.fixture(scope="module")
def card_frames():
    cam = _camera("grey_card")
    for role, label in (("aperture", "f/4"), ("shutter", "1/15"), ("focus", "1"), ("white_balance", "Kelvin")):
        cam.set(role, label)
    return shoot(cam, [{"kelvin": k} for k in KELVINS])


def test_white_balance_gains_match_the_hidden_bias(card_frames):
    table, figures = W.measure_white_balance(card_frames, response=TRUTH)
    for kelvin, gains in table.gains:
        true = SECRET.white_balance_gains(5500, kelvin)
        assert np.allclose(np.array(gains), true / true[1], rtol=0.02), kelvin
    assert figures["largest_bias"] > 0.05          # the body is far from textbook: the measurement is not vacuous


def test_white_balance_shift_between_settings_is_the_ratio_of_gains(card_frames):
    table, _ = W.measure_white_balance(card_frames, response=TRUTH)
    true = SECRET.white_balance_gains(5500, 8000) / SECRET.white_balance_gains(5500, 3200)
    assert np.allclose(table.shift(3200, 8000), true, rtol=0.03)
    between = table.gains_for(4800)                 # interpolated in mired, between 4000 and 5500
    assert table.gains_for(4000)[2] > between[2] > table.gains_for(5500)[2]   # a higher setting cuts blue
    outside = table.bias(10000)                     # beyond the measured range: the nearest bias carried on
    assert np.allclose(outside, table.bias(8000), rtol=1e-6)
    back = W.WhiteBalanceTable.from_dict(table.to_dict())
    assert np.allclose([g for _, g in back.gains], [g for _, g in table.gains], rtol=1e-5)


def test_white_balance_refuses_a_clipped_card_and_a_textured_region(card_frames):
    bright = [replace(f, image=np.full_like(f.image, 255)) if i == 1 else f for i, f in enumerate(card_frames)]
    with pytest.raises(CalibrationInputError, match=rf"{card_frames[1].name} clips the measured region"):
        W.measure_white_balance(bright)
    with pytest.raises(CalibrationInputError, match="is not an even grey card"):
        W.measure_white_balance(card_frames, roi=(0.0, 0.0, 0.3, 0.3))
    with pytest.raises(CalibrationInputError, match=r"every frame is at 3200 K"):
        W.measure_white_balance([card_frames[0], card_frames[0]])
    with pytest.raises(CalibrationInputError, match=r"region \[0.5, 0.5, 0.4, 0.6\] must be"):
        W.measure_white_balance(card_frames, roi=(0.5, 0.5, 0.4, 0.6))


# ------------------------------------------------------------------------------------------------ geometry

@pytest.fixture(scope="module")
def board_frames():
    cam = _camera("checkerboard", width=1280, height=960)
    cam.set("aperture", "f/16")
    cam.set("shutter", "1/4")
    shots = [{"focal": f, "focus": s, "x_mm": x} for f in ("24", "70") for s in ("0.5", "10") for x in (-100, 0, 100)]
    return shoot(cam, shots, size=(1280, 960))


def test_geometry_recovers_real_focal_length_and_breathing_within_one_percent(board_frames):
    geometry, figures = G.measure_geometry(board_frames, board=(12, 9), square_mm=40)
    assert len(geometry.entries) == 4
    for e in geometry.entries:
        assert e.focal_mm == pytest.approx(SECRET.real_focal_mm(e.nominal_mm, e.focus_m), rel=0.01)
        assert e.distortion[0] == pytest.approx(SECRET.distortion_k1, abs=0.02)
    # breathing: focusing close shortens the real focal length, as the hidden lens does
    assert geometry.focal_mm(70, 0.5) < geometry.focal_mm(70, 10) * 0.98
    # in between measured settings: interpolated in marked focal length and 1/focus
    assert geometry.focal_mm(50, 1.0) == pytest.approx(SECRET.real_focal_mm(50, 1.0), rel=0.015)
    assert geometry.nominal_mm(geometry.focal_mm(35, 2.0), 2.0) == pytest.approx(35, rel=1e-6)
    assert figures["largest_error"] > 0.02           # the marked lengths are wrong: the test is not vacuous


def test_geometry_refuses_frames_without_the_board(board_frames):
    blank = [replace(f, image=np.full_like(f.image, 128)) if f.settings["focal"] == 24 else f for f in board_frames]
    with pytest.raises(CalibrationInputError, match=r"12x9 checkerboard was found in 0 of 3 frame\(s\) at 24 mm"):
        G.measure_geometry(blank, board=(12, 9), square_mm=40)
    with pytest.raises(CalibrationInputError, match="was found in 0 of"):
        G.measure_geometry(board_frames, board=(14, 10), square_mm=40)      # a board bigger than the one in view


def test_geometry_refuses_a_board_facing_the_camera():
    cam = _camera("checkerboard", width=1280, height=960, scene_options={"yaw_deg": 0.0, "pitch_deg": 0.0})
    cam.set("aperture", "f/16")
    frames = shoot(cam, [{"focal": "50", "focus": "1.5", "x_mm": x} for x in (-50, 0, 50)], size=(1280, 960))
    with pytest.raises(CalibrationInputError, match="faces the camera squarely"):
        G.measure_geometry(frames, board=(12, 9), square_mm=40)


# ------------------------------------------------------------------------------------------------ defocus

@pytest.fixture(scope="module")
def edge_frames():
    cam = _camera("edge")
    for role, label in (("focal", "50"), ("focus", "1")):
        cam.set(role, label)
    stops = (("f/1.8", "1/250"), ("f/2.5", "1/125"), ("f/3.5", "1/60"), ("f/5", "1/30"), ("f/7.1", "1/15"),
             ("f/10", "1/8"))
    return shoot(cam, [{"aperture": a, "shutter": s} for a, s in stops])


def test_defocus_scale_matches_the_lens_optimistic_f_numbers(edge_frames):
    measured, figures = D.measure_defocus(edge_frames, edge_distance_m=3.0, response=TRUTH)
    real = SECRET.real_focal_mm(50, 1.0)
    assert measured.scale(real) == pytest.approx(1.0 / SECRET.aperture_scale, rel=0.03)
    assert figures["scale_vs_marked_focal"] < 0.95     # the thin lens at the marked values is measurably off


def test_defocus_refuses_a_lens_focused_on_the_edge_and_a_short_sweep(edge_frames):
    on_edge = [replace(f, settings={**f.settings, "focus": 3.0}) for f in edge_frames]
    with pytest.raises(CalibrationInputError, match="focused at 3 m, on the edge"):
        D.measure_defocus(on_edge, edge_distance_m=3.0)
    with pytest.raises(CalibrationInputError, match=r"span 0\.9 stops; sweep at least 3 f-numbers"):
        D.measure_defocus(edge_frames[:2] * 2, edge_distance_m=3.0)
    flat = [replace(f, image=np.full_like(f.image, 90)) for f in edge_frames]
    with pytest.raises(CalibrationInputError, match="shows no high-contrast edge"):
        D.measure_defocus(flat, edge_distance_m=3.0)


def test_edge_model_is_a_disc_blurred_by_a_gaussian():
    x = np.linspace(-10, 10, 2001)
    sharp = D.edge_model(x, 4.0, 1e-4)
    assert sharp[np.searchsorted(x, -4.01)] == pytest.approx(0.0, abs=1e-3)
    assert sharp[np.searchsorted(x, 0.0)] == pytest.approx(0.5, abs=1e-3)
    lsf = np.gradient(D.edge_model(x, 4.0, 1.0), x)
    variance = float((lsf * x * x).sum() / lsf.sum())
    assert variance == pytest.approx(4.0 ** 2 / 4 + 1.0, rel=0.02)     # disc R²/4 plus the Gaussian's σ²


# ------------------------------------------------------------------------------------------------ noise

@pytest.fixture(scope="module")
def flat_frames():
    cam = _camera("flat_field")
    cam.set("aperture", "f/4")
    cam.set("focus", "1")
    shots = []
    for iso, shutters in (("100", ("1/250", "1/125", "1/60", "1/30", "1/15")),
                          ("1600", ("1/4000", "1/2000", "1/1000", "1/500", "1/250"))):
        shots += [{"iso": iso, "shutter": s} for s in shutters for _ in range(2)]
    return shoot(cam, shots, size=(320, 240), quality=None)


def test_photon_transfer_recovers_the_hidden_sensor_on_lossless_frames(flat_frames):
    curve, figures = N.measure_noise(flat_frames, response=TRUTH)
    for entry in curve.entries:
        gain = entry.iso / 100.0
        assert entry.slope == pytest.approx(gain / SECRET.full_well_e, rel=0.1)
        if entry.iso >= 1600:
            assert entry.read == pytest.approx(SECRET.read_noise_e * gain / SECRET.full_well_e, rel=0.15)
    assert figures["slope_per_stop"][0] == pytest.approx(1.0, abs=0.1)   # shot noise grows with the gain
    assert curve.at(400).slope == pytest.approx(math.sqrt(curve.entries[0].slope * curve.entries[1].slope), rel=0.01)
    corner = SECRET.vignette(240, 320)
    t = 15
    expected = np.mean([corner[:t, :t].mean(), corner[:t, -t:].mean(), corner[-t:, :t].mean(), corner[-t:, -t:].mean()])
    assert curve.vignetting_corner == pytest.approx(expected / corner[120 - t:120 + t, 160 - t:160 + t].mean(),
                                                    rel=0.03)


def test_noise_refuses_unpaired_frames_and_one_level_per_iso(flat_frames):
    with pytest.raises(CalibrationInputError, match="no two frames share ISO and shutter"):
        N.measure_noise(flat_frames[::2])
    one_level = [f for f in flat_frames if f.settings["iso"] == 100 and abs(f.settings["shutter"] - 1 / 60) < 1e-3]
    with pytest.raises(CalibrationInputError, match=r"at ISO 100 the flat frames cover levels .* only"):
        N.measure_noise(one_level)
