"""The calibration profile: JSON round trip and refusals, the ideal camera where a section is missing, and the
control mapping through a measured lens (rigs/optics.py MappingContext.profile). Also the simulated bodies and
calibration scenes the measurements are tested on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from simframes import true_curve  # noqa: E402

from rigs import optics  # noqa: E402
from rigs.calibration.defocus import DefocusMeasurement  # noqa: E402
from rigs.calibration.geometry import GeometryEntry, LensGeometry  # noqa: E402
from rigs.calibration.inputs import CalibrationInputError  # noqa: E402
from rigs.calibration.noise import NoiseCurve, NoiseEntry  # noqa: E402
from rigs.calibration.profile import CalibrationProfile  # noqa: E402
from rigs.calibration.white_balance import WhiteBalanceTable  # noqa: E402
from rigs.camera.bodies import SECRET  # noqa: E402
from rigs.camera.protocol import Pose  # noqa: E402
from rigs.camera.sim import SimCamera  # noqa: E402
from rigs.scene import make_scene  # noqa: E402

REFERENCE = optics.PhysicalSettings(f_number=8, focus_m=1.5, exposure_s=1 / 60, iso=100, wb_kelvin=5500, focal_mm=24)


def secret_profile() -> CalibrationProfile:
    """A profile holding exactly what the secret body hides (what a perfect calibration would measure)."""
    entries = tuple(GeometryEntry(n, s, SECRET.real_focal_mm(n, s), (SECRET.distortion_k1, 0.0), 0.1, 3)
                    for n in (24.0, 35.0, 50.0, 70.0) for s in (0.5, 1.5, 10.0))
    geometry = LensGeometry(36.0, 640, 480, entries)
    probe = DefocusMeasurement(50.0, 1.0, 3.0, 640, 36.0, 1.0, 0.3)
    a = probe.ideal_radius_px_times_n(SECRET.real_focal_mm(50.0, 1.0)) / SECRET.aperture_scale
    gains = tuple((k, tuple(float(v) for v in SECRET.white_balance_gains(5500, k) / SECRET.white_balance_gains(5500, k)[1]))
                  for k in (3200.0, 5500.0, 8000.0))
    noise = NoiseCurve((NoiseEntry(100.0, 1 / 18000, 6 / 18000), NoiseEntry(1600.0, 16 / 18000, 96 / 18000)), 0.6)
    return CalibrationProfile("cinectrl", "SimCam", "SIM-SECRET", "SimLens 24-70mm f/1.8", version=3,
                              response=true_curve(SECRET), white_balance=WhiteBalanceTable(5500.0, gains),
                              geometry=geometry, defocus=DefocusMeasurement(50.0, 1.0, 3.0, 640, 36.0, a, 0.3),
                              noise=noise, sources={"response": {"sessions": ["abc"], "figures": {"ratio": 0.3}}})


# ------------------------------------------------------------------------------------------------ JSON

def test_json_round_trip_keeps_every_section():
    profile = secret_profile()
    back = CalibrationProfile.from_json(profile.to_json())
    assert back.key == profile.key and back.version == 3 and back.measured() == profile.measured()
    assert np.allclose(back.response.linear, profile.response.linear, atol=1e-6)
    assert back.focal_mm(35, 1.5) == pytest.approx(profile.focal_mm(35, 1.5))
    assert back.defocus_scale() == pytest.approx(profile.defocus_scale(), rel=1e-5)
    assert np.allclose(back.white_balance_shift(5500, 5500, 3200), profile.white_balance_shift(5500, 5500, 3200))
    assert back.noise_variance(0.5, 400) == pytest.approx(profile.noise_variance(0.5, 400))
    assert back.sessions() == ["abc"]
    assert sum(len(line) > 1000 for line in profile.to_json().splitlines()) == 3   # a response table: 3 lines


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"format": "other/1"}', "not a cinectrl calibration profile"),
    ('{"format": "cinectrl.calibration/1", "sections": {"lens_shading": {}}}', "unknown section"),
    ('{"format": "cinectrl.calibration/1", "sections": {"response": {"linear": [1, 2]}}}', "section 'response' is damaged"),
])
def test_bad_profile_files_are_refused_with_what_to_do(text, message):
    with pytest.raises(CalibrationInputError, match=message):
        CalibrationProfile.from_json(text, where="p.json")


def test_missing_sections_are_the_ideal_camera():
    empty = CalibrationProfile("Canon", "EOS R5", "0123", "RF 50mm")
    codes = np.linspace(0, 1, 11)[:, None].repeat(3, 1)
    assert np.allclose(empty.to_linear(codes), optics.srgb_decode(codes), atol=1e-6)
    assert empty.focal_mm(50, 2.0) == 50 and empty.defocus_scale() == 1.0 and empty.noise_variance(0.5, 100) is None
    assert np.allclose(empty.white_balance_shift(5500, 5500, 3200), optics.white_balance_gains(5500, 3200))
    assert all(v.startswith("ideal") for v in empty.describe_use().values())
    assert empty.label == "Canon EOS R5 #0123 + RF 50mm"


def test_with_section_makes_an_unstored_copy():
    profile = secret_profile()
    again = profile.with_section("defocus", profile.defocus, {"files": [{"name": "a.jpg"}]})
    assert again.version == 0 and profile.version == 3 and again.sources["defocus"]["files"][0]["name"] == "a.jpg"
    with pytest.raises(ValueError, match="unknown calibration section 'vignette'"):
        profile.with_section("vignette", None, {})


# ------------------------------------------------------------------------------------------------ mapping

def test_zoom_control_uses_the_real_focal_lengths():
    profile = secret_profile()
    long = optics.PhysicalSettings(8, 1.5, 1 / 60, 100, 5500, 48)
    ideal = optics.to_controls(long, optics.MappingContext(REFERENCE))
    measured = optics.to_controls(long, optics.MappingContext(REFERENCE, profile=profile))
    assert ideal["f"] == pytest.approx(0.5)                     # 48 / 24 = 2x
    true_ratio = SECRET.real_focal_mm(48, 1.5) / SECRET.real_focal_mm(24, 1.5)
    assert measured["f"] == pytest.approx((true_ratio - 1) / (optics.ZOOM_MAX - 1), rel=1e-3)
    assert abs(measured["f"] - ideal["f"]) > 0.02


def test_breathing_moves_the_zoom_control_with_focus():
    ctx = optics.MappingContext(REFERENCE, profile=secret_profile())
    near = optics.to_controls(optics.PhysicalSettings(8, 0.5, 1 / 60, 100, 5500, 24), ctx)
    assert near["f"] < -0.005                                   # focusing close widens the view of this lens


def test_bokeh_control_uses_real_focal_length_and_defocus_scale():
    profile = secret_profile()
    ctx = optics.MappingContext(REFERENCE, profile=profile)
    k_px = optics.bokeh_k_px(2.0, 50, 1.5, ctx)
    thin = optics.bokeh_k_px(2.0, SECRET.real_focal_mm(50, 1.5), 1.5, optics.MappingContext(REFERENCE))
    assert k_px == pytest.approx(thin * profile.defocus_scale(), rel=1e-9)
    assert profile.defocus_scale() == pytest.approx(1 / SECRET.aperture_scale, rel=1e-6)


@pytest.mark.parametrize("n, focus, t, iso, kelvin, focal", [
    (2.8, 1.5, 1 / 60, 100, 5500, 24), (5.6, 0.8, 1 / 250, 800, 3200, 35), (1.8, 3.0, 1 / 30, 400, 6500, 50),
    (11, 5.0, 1 / 15, 1600, 4000, 70)])
def test_mapping_round_trips_through_a_profile(n, focus, t, iso, kelvin, focal):
    ctx = optics.MappingContext(REFERENCE, profile=secret_profile())
    physical = optics.PhysicalSettings(n, focus, t, iso, kelvin, focal)
    back = optics.to_physical(optics.to_controls(physical, ctx), ctx)
    for name in ("f_number", "focus_m", "exposure_s", "iso", "wb_kelvin", "focal_mm"):
        assert getattr(back, name) == pytest.approx(getattr(physical, name), rel=1e-6), name


def test_an_empty_profile_maps_like_no_profile():
    physical = optics.PhysicalSettings(4, 1.0, 1 / 125, 400, 4000, 50)
    plain = optics.to_controls(physical, optics.MappingContext(REFERENCE))
    empty = optics.to_controls(physical, optics.MappingContext(REFERENCE, profile=CalibrationProfile("a", "b", "c", "d")))
    assert plain == empty


# ------------------------------------------------------------------------------------------------ bodies, scenes

def test_the_ideal_body_renders_as_before():
    a, _ = SimCamera(speed=1e6, noise=False).render(Pose(0.0), size=(160, 120))
    b, _ = SimCamera(speed=1e6, noise=False, body="ideal").render(Pose(0.0), size=(160, 120))
    assert np.array_equal(a, b)


def test_the_secret_body_reframes_but_keeps_marked_exif(tmp_path):
    import exifread

    ideal = SimCamera(speed=1e6, noise=False, scene="checkerboard", scene_options={"yaw_deg": 0, "pitch_deg": 0})
    secret = SimCamera(speed=1e6, noise=False, body="secret", scene="checkerboard",
                       scene_options={"yaw_deg": 0, "pitch_deg": 0})
    for cam in (ideal, secret):
        cam.set("focal", "70")
        cam.set("aperture", "f/16")
    widths = []
    for cam in (ideal, secret):
        image, _ = cam.render(Pose(0.0), size=(640, 480))
        dark = (image.mean(axis=2) < 0.6 * image.mean()).any(axis=0)
        cols = np.flatnonzero(dark)
        widths.append(cols[-1] - cols[0])
    assert widths[1] / widths[0] == pytest.approx(SECRET.real_focal_mm(70, 1.5) / 70, rel=0.02)
    path = secret.capture_still(tmp_path, stem="s")[0].path
    with open(path, "rb") as fh:
        tags = exifread.process_file(fh, details=False)
    assert str(tags["EXIF FocalLength"]) == "70" and str(tags["EXIF BodySerialNumber"]) == "SIM-SECRET"


def test_scenes_are_chosen_by_name_with_checked_options():
    assert make_scene("edge", distance_m=2.0).meta["distance_m"] == 2.0
    with pytest.raises(ValueError, match="scene 'desk' is unknown; scenes are tabletop, varied, step_chart"):
        make_scene("desk")
    with pytest.raises(ValueError, match="scene 'checkerboard' has no option\\(s\\) squares; it takes columns"):
        make_scene("checkerboard", squares=3)
    with pytest.raises(ValueError, match="SimCamera body 'vintage' is unknown"):
        SimCamera(body="vintage")


def test_profile_json_is_plain_json():
    data = json.loads(secret_profile().to_json())
    assert data["format"] == "cinectrl.calibration/1" and len(data["sections"]["response"]["linear"]) == 3
