"""The physics and the control mapping: identities a lens and a sensor obey, and exact round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rigs import optics
from rigs.optics import MappingContext, PhysicalSettings, to_controls, to_physical

REFERENCE = PhysicalSettings(f_number=8.0, focus_m=1.5, exposure_s=1 / 60, iso=100, wb_kelvin=5500, focal_mm=35)
CTX = MappingContext(REFERENCE, d_near_m=0.5, d_far_m=10.0, scene_kelvin=5500, width_px=640)


def test_circle_of_confusion_vanishes_at_focus_and_scales_with_one_over_n():
    assert optics.coc_mm(2.8, 50, 2.0, 2.0) == pytest.approx(0.0)
    wide = optics.coc_mm(2.0, 50, 2.0, 5.0)
    assert optics.coc_mm(4.0, 50, 2.0, 5.0) == pytest.approx(wide / 2)
    depths = np.array([1.0, 2.0, 5.0])
    assert np.allclose(optics.coc_mm(2.0, 50, 2.0, depths), [optics.coc_mm(2.0, 50, 2.0, d) for d in depths])


def test_depth_of_field_widens_when_stopping_down():
    near2, far2 = optics.depth_of_field_m(2.0, 50, 3.0)
    near16, far16 = optics.depth_of_field_m(16.0, 50, 3.0)
    assert near16 < near2 < 3.0 < far2 < far16


def test_kelvin_colours_run_from_warm_to_cool():
    warm, cool = optics.kelvin_to_rgb(3000), optics.kelvin_to_rgb(9000)
    assert warm[0] > 1 > warm[2] and cool[2] > cool[0]
    assert optics.white_balance_gains(5500, 5500) == pytest.approx((1.0, 1.0, 1.0))
    low = optics.white_balance_gains(5500, 3200)     # camera set below the scene: image turns blue
    assert low[2] > 1 > low[0]


def test_zoom_halves_the_frame_when_focal_length_doubles():
    assert optics.crop_ratio(24, 48) == pytest.approx(0.5)
    assert math.tan(math.radians(optics.field_of_view_deg(48)) / 2) == pytest.approx(
        math.tan(math.radians(optics.field_of_view_deg(24)) / 2) / 2)


def test_equal_exposure_changes_s_not_k():
    """Compensated exposure (same ΔEV from other t/N/ISO) gives the same S; K and ISO differ."""
    base = to_controls(PhysicalSettings(8, 1.5, 1 / 60, 100, 5500, 35), CTX)
    opened = to_controls(PhysicalSettings(4, 1.5, 1 / 240, 100, 5500, 35), CTX)
    gained = to_controls(PhysicalSettings(8, 1.5, 1 / 240, 400, 5500, 35), CTX)
    assert base["S"] == pytest.approx(0) and opened["S"] == pytest.approx(0) and gained["S"] == pytest.approx(0)
    assert opened["K"] == pytest.approx(2 * base["K"])
    assert gained["ISO"] > 0 == base["ISO"]


@settings(max_examples=200, deadline=None)
@given(n=st.floats(1.4, 22), focus=st.floats(0.6, 9.0), t=st.floats(1 / 8000, 30), iso=st.floats(50, 25600),
       kelvin=st.floats(2500, 10000), focal=st.floats(35, 105))
def test_physical_to_controls_round_trips(n, focus, t, iso, kelvin, focal):
    physical = PhysicalSettings(n, focus, t, iso, kelvin, focal)
    back = to_physical(to_controls(physical, CTX), CTX)
    for name in ("f_number", "focus_m", "exposure_s", "iso", "wb_kelvin", "focal_mm"):
        assert getattr(back, name) == pytest.approx(getattr(physical, name), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(k=st.floats(0.01, 1), d_f=st.floats(0, 0.99), f=st.floats(0, 1), s=st.floats(-1, 1),
       t=st.floats(-1, 1), i=st.floats(-1, 1))
def test_controls_to_physical_round_trips(k, d_f, f, s, t, i):
    controls = {"K": k, "d_f": d_f, "f": f, "S": s, "T": t, "ISO": i}
    back = to_controls(to_physical(controls, CTX), CTX)
    assert list(back) == list(controls)
    for name in controls:
        assert back[name] == pytest.approx(controls[name], rel=1e-7, abs=1e-9)


def test_per_pixel_formulas_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    depth = torch.tensor([1.0, 2.0, 5.0])
    assert torch.allclose(optics.coc_px(2.0, 50, 2.0, depth, width_px=640),
                          torch.tensor([float(optics.coc_px(2.0, 50, 2.0, d, width_px=640)) for d in (1.0, 2.0, 5.0)]))


def test_srgb_and_white_balance_give_the_same_numbers_for_numpy_and_torch():
    torch = pytest.importorskip("torch")
    linear = np.linspace(0.0, 1.0, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    tensor = torch.from_numpy(linear.copy())
    assert np.allclose(optics.srgb_encode(tensor).numpy(), optics.srgb_encode(linear), atol=1e-6)
    assert np.allclose(optics.srgb_decode(optics.srgb_encode(tensor)).numpy(), linear, atol=1e-5)
    balanced = optics.apply_white_balance(tensor.permute(2, 0, 1), 5500, 3200, channel_axis=0)
    assert np.allclose(balanced.permute(1, 2, 0).numpy(), optics.apply_white_balance(linear, 5500, 3200),
                       atol=1e-6)


def test_sensor_noise_matches_its_model():
    rng = np.random.default_rng(7)
    sensor = optics.Sensor()
    for level, iso in ((0.0005, 100), (0.05, 100), (0.05, 800), (0.04, 1600)):
        radiance = np.full((200, 200), level, np.float32)
        # radiance chosen so that the expected linear mean at base ISO is `level`: t = N² = calibration = 1
        out = sensor.expose(radiance, 1.0, iso, 1.0, rng)
        expected_mean = level * iso / sensor.base_iso
        assert out.mean() == pytest.approx(expected_mean, rel=0.03)
        assert out.std() == pytest.approx(sensor.noise_std(expected_mean, iso), rel=0.05)
