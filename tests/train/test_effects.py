"""Effect simulator: each metric monotonic in its control; effects independent; deterministic with a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train import effects as E


def scene(h=64, w=96, frames=3):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, frames, 3, h, w, generator=g) * 0.6 + 0.2
    disp = torch.linspace(0, 1, w).expand(1, frames, h, w).clone()     # left far, right near
    return img, disp


def sharpness(x):   # Laplacian variance of the grey image, over its variance (gain-invariant)
    g = x.mean(2)
    g = g / g.std()
    lap = g[..., 1:-1, 2:] + g[..., 1:-1, :-2] + g[..., 2:, 1:-1] + g[..., :-2, 1:-1] - 4 * g[..., 1:-1, 1:-1]
    return float(lap.var())


def test_bokeh_sharpness_decreases_with_k():
    img, disp = scene()
    values = [sharpness(E.bokeh(img, disp, k, 0.0)[..., :, 60:]) for k in (0.0, 0.2, 0.5, 1.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_a_spreading_highlight_dims_steadily_with_k():
    """A clipped highlight's boost rises with its blur radius, so its peak dims steadily as K grows: no rise where
    the radius crosses a pixel (a boost switched on at 1 px made the simulator's sharpness jump along a bokeh
    sweep where the camera's changes smoothly; tests/train/test_statistics_see_controls.py holds the sweep)."""
    h, w = 32, 64
    img = torch.full((1, 1, 3, h, w), 0.3)
    img[..., 8::8, 8::8] = 1.0                                      # clipped specular points
    disp = torch.ones(1, 1, h, w)
    disp[..., 0, 0] = 0.0                                           # a depth range; every other pixel at delta_n = 1
    per_k = w * E.optics.K_MAX_FRACTION                             # blur radius (px) per unit K at delta_n = 1, d_f = 0
    peak = [float(E.bokeh(img, disp, r / per_k, 0.0)[..., 16, 16].mean()) for r in (0.8, 0.9, 0.99, 1.01, 1.1, 1.2)]
    assert all(a > b for a, b in zip(peak, peak[1:])), peak
    boosted = E.bokeh(img, disp, 2.0 / per_k, 0.0)[..., 16, 16].mean()
    assert float(boosted) > float(E.bokeh(img.clamp(max=0.8), disp, 2.0 / per_k, 0.0)[..., 16, 16].mean())


def test_exposure_brightness_monotonic():
    img, _ = scene()
    values = [float(E.exposure(img, s).mean()) for s in (-0.8, -0.3, 0.0, 0.3, 0.8)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_temperature_rb_ratio_monotonic():
    img, _ = scene()
    ratios = [float(o[:, :, 0].mean() / o[:, :, 2].mean()) for o in (E.colour_temperature(img, t) for t in (-0.8, 0, 0.8))]
    assert ratios[0] > ratios[1] > ratios[2]          # positive T = cooler (bluer), as in rigs.optics


def test_zoom_feature_scale_and_exact_ratio():
    h = w = 64
    img = torch.zeros(1, 1, 3, h, w)
    img[..., 24:40, 24:40] = 1.0
    widths = [float((E.zoom(img, f)[0, 0, 0, 32] > 0.5).sum()) for f in (0.0, 0.25, 0.5)]
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] == pytest.approx(16 * 2.0, abs=1.5)   # f = 0.5 -> 2x (optics.ZOOM_MAX = 3)


def test_shutter_blur_length_grows():
    img = torch.zeros(1, 2, 3, 16, 64)
    img[:, 0, :, :, 10] = 1.0
    img[:, 1, :, :, 30] = 1.0   # not a translation model: the blend spreads energy toward the next frame
    spread = [float((E.shutter_blur(img, s)[0, 0, 0, 8] > 0.05).sum()) for s in (0.0, 0.5, 1.0)]
    assert spread[0] <= spread[1] <= spread[2] and spread[2] > spread[0]


def test_effects_independent():
    img, disp = scene()
    base = E.bokeh(img, disp, 0.6, 0.2)
    for other in (E.colour_temperature(base, 0.8), E.colour_temperature(base, -0.8)):
        assert sharpness(other) == pytest.approx(sharpness(base), rel=0.02)
    # bokeh keeps mean brightness within 5 % (blurring in linear light lifts sRGB means a little); exposure leaves the R/B ratio within 2 %
    assert float(base.mean()) == pytest.approx(float(img.mean()), rel=0.05)
    rb = lambda x: float(x[:, :, 0].mean() / x[:, :, 2].mean())  # noqa: E731
    assert rb(E.exposure(img, -0.3)) == pytest.approx(rb(img), rel=0.02)


def test_deterministic_and_errors():
    img, disp = scene()
    a = E.simulate(img, disp, {"K": 0.4, "d_f": 0.5, "S": 0.2, "T": -0.3, "ISO": 0.5, "f": 0.2}, seed=3)
    b = E.simulate(img, disp, {"K": 0.4, "d_f": 0.5, "S": 0.2, "T": -0.3, "ISO": 0.5, "f": 0.2}, seed=3)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="depth file"):
        E.simulate(img, None, {"K": 0.5})
    with pytest.raises(ValueError, match="unknown control"):
        E.simulate(img, disp, {"aperture": 2})


def test_gather_matches_reference_scatter():
    img, disp = scene(48, 64, 1)
    fast, ref = E.bokeh(img, disp, 0.5, 0.3), E.reference_scatter_bokeh(img, disp, 0.5, 0.3)
    psnr = 10 * np.log10(1 / float(((fast - ref) ** 2).mean()))
    assert psnr > 28, psnr


def test_iso_noise_adds_the_ideal_sensors_variance_averaged_down_with_the_clip():
    """Without a profile, ISO adds what the ideal body's sensor (rigs.optics.Sensor, reference at base ISO) adds
    between the two gains; a clip shrunk k-fold in area carries 1/k of it."""
    import torch

    from rigs import optics
    from train import effects
    sensor = optics.Sensor()
    flat = torch.full((1, 1, 3, 96, 96), float(optics.srgb_encode(np.float64(0.2))))
    gain = 2.0 ** optics.ISO_STOPS_MAX                                   # ISO = 1: +6 stops
    expected = (0.2 * gain / sensor.full_well_e + (sensor.read_noise_e * gain / sensor.full_well_e) ** 2
                - 0.2 / sensor.full_well_e - (sensor.read_noise_e / sensor.full_well_e) ** 2)
    for area in (1.0, 4.0):
        out = effects.iso_noise(flat, 1.0, torch.Generator().manual_seed(0), pixel_area=area)
        assert float(optics.srgb_decode(out).var()) == pytest.approx(expected / area, rel=0.1)
