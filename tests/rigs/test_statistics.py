"""Each image statistic (rigs/statistics.py) on known transforms at the evaluation resolution (96x64 frames).

Frames come from the simulated camera rendered at 4x and downsampled with area averaging (as a lens and
sensor do), so scale, defocus and depth are known exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from rigs import controls as registry
from rigs import optics
from rigs.camera.protocol import Pose
from rigs.camera.sim import SimCamera
from rigs import statistics as M
from train import metrics

SIZE = (96, 64)
DATA = Path(__file__).resolve().parents[1] / "data"


def shot(cam: SimCamera, size=SIZE, supersample: int = 4, x_mm: float = 0.0):
    image, depth = cam.render(Pose(x_mm), size=(size[0] * supersample, size[1] * supersample))
    image = cv2.resize((image * 255 + 0.5).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    return image, cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)


@pytest.fixture
def camera():
    cam = SimCamera(noise=False, seed=2, speed=1e6)
    for role, value in (("focal", "35"), ("shutter", "1/60"), ("iso", "400"), ("aperture", "f/16"),
                        ("focus", "1.5")):
        cam.set(role, value)
    return cam


def test_every_registry_statistic_is_implemented():
    assert {c.statistic for c in registry.CONTROLS} <= set(M.STATISTICS)


@pytest.mark.parametrize("focal, expected", [("40", 40 / 35), ("48", 48 / 35), ("70", 2.0), ("28", 0.8)])
def test_zoom_scale_of_a_longer_lens_within_2_percent(camera, focal, expected):
    source, _ = shot(camera)
    camera.set("focal", focal)
    zoomed, _ = shot(camera)
    assert M.zoom_factor(source, zoomed) == pytest.approx(expected, rel=0.02)
    ctx = M.Context(source=source[None])
    assert M.clip_zoom(zoomed[None], ctx) == pytest.approx(math.log(expected), abs=0.02)


def test_a_1_2x_centre_zoom_measures_1_2(camera):
    big, _ = camera.render(Pose(0), size=(SIZE[0] * 8, SIZE[1] * 8))
    big = (big * 255 + 0.5).astype(np.uint8)
    h, w = big.shape[:2]
    ch, cw = round(h / 1.2), round(w / 1.2)
    crop = big[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
    source = cv2.resize(big, SIZE, interpolation=cv2.INTER_AREA)
    zoomed = cv2.resize(crop, SIZE, interpolation=cv2.INTER_AREA)
    assert M.zoom_factor(source, zoomed) == pytest.approx(1.2, rel=0.02)


def test_sharpness_falls_as_the_aperture_opens_and_ignores_exposure(camera):
    source, depth = shot(camera)
    ctx = M.Context(source=source[None], depth=depth, focus=0.5)
    values = []
    for n in ("f/16", "f/8", "f/4", "f/2"):
        camera.set("aperture", n)
        values.append(M.clip_sharpness(shot(camera)[0][None], ctx))
    assert all(b < a - 0.2 for a, b in zip(values, values[1:])), values
    brighter = np.clip(source.astype(np.float32) * 1.6, 0, 255).astype(np.uint8)
    assert M.clip_sharpness(brighter[None], ctx) == pytest.approx(values[0], abs=0.15)


def test_focus_depth_follows_the_focus_distance(camera):
    """Focus at 0.8, 1.5 and 3 m of a 0.8-6 m scene (true d_f 1.0, 0.46, 0.15), exposure kept as a capture plan
    keeps it (clipped highlights lose their detail to exposure, not to blur)."""
    source, depth = shot(camera)
    camera.set("aperture", "f/1.8")
    camera.set("shutter", "1/4000")
    measured = []
    for focus in ("0.8", "1.5", "3"):
        camera.set("focus", focus)
        measured.append(M.clip_focus_depth(shot(camera)[0][None], M.Context(source=source[None], depth=depth)))
    assert all(b < a - 0.1 for a, b in zip(measured, measured[1:])), measured
    assert measured[0] > 0.6 and measured[-1] < 0.25
    with pytest.raises(ValueError, match="depth"):
        M.clip_focus_depth(source[None], M.Context(source=source[None]))


def test_noise_sigma_matches_added_gaussian_noise():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96]
    base = (110 + 30 * np.sin(xx / 9.0) + 20 * np.cos(yy / 7.0)).astype(np.float32)
    frame = np.repeat(base[..., None], 3, axis=2)
    estimates = []
    for sigma in (1.0, 2.0, 4.0, 8.0):
        noisy = np.clip(frame + rng.normal(0, sigma, frame.shape[:2])[..., None], 0, 255).round().astype(np.uint8)
        estimates.append(M.noise_sigma(noisy))
        assert estimates[-1] == pytest.approx(sigma, rel=0.25, abs=0.3)
    steps = np.diff(np.log(estimates))
    assert np.all(steps > math.log(2) * 0.7)         # doubling the noise doubles the estimate


def test_colour_balance_is_linear_in_the_white_balance_shift(camera):
    source, _ = shot(camera)
    linear = optics.srgb_decode(source.astype(np.float32) / 255.0)
    values = []
    for t in (-0.6, -0.3, 0.0, 0.3, 0.6):
        kelvin = 1e6 / (1e6 / 5500 + t * optics.MIRED_MAX)
        shifted = optics.apply_white_balance(linear, 5500, kelvin)
        values.append(M.colour_balance((optics.srgb_encode(shifted) * 255 + 0.5).astype(np.uint8)))
    assert all(b > a for a, b in zip(values, values[1:]))
    assert metrics.pearson([-0.6, -0.3, 0.0, 0.3, 0.6], values) > 0.99


def test_brightness_and_translation(camera):
    source, _ = shot(camera)
    assert M.brightness(np.clip(source * 1.5, 0, 255).astype(np.uint8)) > M.brightness(source)
    moved, depth = shot(camera, x_mm=-60.0)      # camera 60 mm left: the scene moves right in the image
    parallax = optics.focal_px(35, SIZE[0]) * 0.060 / depth                 # px per layer
    shift = M.horizontal_shift(source, moved)
    assert parallax.min() * 0.9 < shift < parallax.max() * 1.1
    rolled = np.roll(source, 3, axis=1)
    assert M.horizontal_shift(source, rolled) == pytest.approx(3.0, abs=0.3)


def test_a_centred_zoom_is_not_a_camera_move_and_a_camera_move_still_is(camera):
    """The translation statistic takes the clip's magnification out first: a centred zoom of a real photograph
    reads no shift (uncompensated, its radial flow reads as one), a slider move through the simulated
    rig and a sideways shift still read as before."""
    photo = cv2.imread(str(DATA / "camera-files" / "jpeg" / "Canon_40D.jpg"))[:, :, ::-1]
    source = cv2.resize(photo, (96, 64), interpolation=cv2.INTER_AREA)
    for zoom in (1.2, 1.5, 1.8):
        zoomed = M._magnify(source, zoom, source.shape[:2])
        assert abs(M.clip_translation(zoomed, M.Context(source=source))) < 0.25, zoom
    wide = cv2.resize(photo, (144, 64), interpolation=cv2.INTER_AREA)
    for dx in (-4, 2, 4):
        moved = wide[:, 24 - dx:120 - dx]
        assert M.clip_translation(moved, M.Context(source=wide[:, 24:120])) == pytest.approx(dx, abs=0.25)
    rig_source, _ = shot(camera)
    rig_moved, depth = shot(camera, x_mm=-60.0)
    parallax = optics.focal_px(35, SIZE[0]) * 0.060 / depth
    assert parallax.min() * 0.9 < M.clip_translation(rig_moved, M.Context(source=rig_source)) < parallax.max() * 1.1


def test_corrcoef_slope_ratio_and_their_undefined_cases():
    values = [0.0, 0.25, 0.5, 0.75, 1.0]
    captured = [0.0, 1.0, 2.5, 3.0, 4.5]
    assert metrics.first_differences_corr(captured, [2 * c for c in captured]) == pytest.approx(1.0)
    assert metrics.slope_ratio(values, captured, [0.5 * c for c in captured]) == pytest.approx(0.5)
    assert metrics.first_differences_corr(captured, [7.0] * 5) is None        # a constant output has no r
    assert metrics.slope_ratio(values, [1.0] * 5, captured) is None           # nothing captured to compare with
    # CorrCoef ignores amplitude: a response 10,000 times too small still has r = 1; the slope ratio sees it
    tiny = [1e-4 * c for c in captured]
    assert metrics.first_differences_corr(captured, tiny) == pytest.approx(1.0)
    assert metrics.slope_ratio(values, captured, tiny) == pytest.approx(1e-4)
