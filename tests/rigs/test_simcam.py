"""SimCamera, checked physically on rendered images (noise off unless a test is about noise)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import exifread
import numpy as np
import pytest

from rigs import optics
from rigs.camera import open_camera
from rigs.camera.protocol import Camera, CameraBusy, CameraDisconnected, Pose, UnsupportedValue
from rigs.camera.sim import SimCamera

WALL = (slice(0, 90), slice(0, 120))           # background wall at 6 m
NEAR_CARD = (slice(130, 390), slice(370, 540))  # card at 1.5 m (the default focus)
GREY_PATCH = (slice(262, 288), slice(130, 158))  # 18 % grey chart patch at 0.8 m


def _camera(**settings) -> SimCamera:
    cam = SimCamera(speed=1e6, noise=False)
    for role, value in settings.items():
        cam.set(role, value)
    return cam


def _linear(cam: SimCamera) -> np.ndarray:
    image, _ = cam.render(Pose(0.0), size=(640, 480))
    return optics.srgb_decode(image)


def _sharpness(cam: SimCamera, region) -> float:
    grey = _linear(cam)[region].mean(axis=2)
    grey = grey / grey.mean()                 # exposure-independent
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def test_satisfies_the_camera_protocol():
    assert isinstance(SimCamera(), Camera)
    assert isinstance(open_camera("sim", speed=100), SimCamera)


def test_doubling_exposure_time_doubles_the_linear_signal():
    dark = np.median(_linear(_camera(shutter="1/125"))[NEAR_CARD])
    bright = np.median(_linear(_camera(shutter="1/60"))[NEAR_CARD])
    assert bright / dark == pytest.approx(125 / 60, rel=0.03)


def test_one_stop_of_iso_doubles_signal_and_grows_noise():
    means, stds = [], []
    for iso in ("400", "800"):
        cam = SimCamera(speed=1e6, noise=True, seed=3)
        cam.set("iso", iso)
        cam.set("focus", "0.8")
        patch = _linear(cam)[GREY_PATCH][..., 1]
        means.append(patch.mean())
        stds.append(patch.std())
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.03)
    # same electrons (same t and N), twice the gain: shot and read noise both double in linear units
    sensor = optics.Sensor()
    expected = sensor.noise_std(means[1], 800) / sensor.noise_std(means[0], 400)
    assert stds[1] / stds[0] == pytest.approx(expected, rel=0.10)
    assert stds[0] == pytest.approx(sensor.noise_std(means[0], 400), rel=0.15)


def test_opening_the_aperture_blurs_what_is_off_the_focus_plane_only():
    # exposure held constant by the shutter, as a constant-exposure sweep does
    sweep = [("f/16", "1/15"), ("f/11", "1/30"), ("f/8", "1/60"), ("f/5.6", "1/125"), ("f/4", "1/250"),
             ("f/2.8", "1/500"), ("f/1.8", "1/1250")]
    off_focus = [_sharpness(_camera(aperture=a, shutter=t), WALL) for a, t in sweep]
    in_focus = [_sharpness(_camera(aperture=a, shutter=t), NEAR_CARD) for a, t in sweep]
    assert all(a > b for a, b in zip(off_focus, off_focus[1:])), off_focus
    assert max(in_focus) / min(in_focus) < 1.10, in_focus


def test_refocusing_moves_the_sharp_region():
    near_focus = _camera(aperture="f/2.8", focus="1.5")
    far_focus = _camera(aperture="f/2.8", focus="5")
    assert _sharpness(near_focus, NEAR_CARD) > 2 * _sharpness(far_focus, NEAR_CARD)
    assert _sharpness(far_focus, WALL) > 2 * _sharpness(near_focus, WALL)


def test_white_balance_below_the_scene_turns_grey_blue_above_turns_it_warm():
    ratios = []
    for kelvin in ("3000", "4000", "5500", "7000", "9000"):
        lin = _linear(_camera(white_balance="Kelvin", kelvin=kelvin, focus="0.8"))[GREY_PATCH]
        ratios.append(lin[..., 2].mean() / lin[..., 0].mean())
    assert ratios[0] > 1.1 and ratios[-1] < 0.9
    assert ratios[2] == pytest.approx(18 / 18, rel=0.05) or abs(ratios[2] - 1) < 0.05
    assert all(a > b for a, b in zip(ratios, ratios[1:])), ratios


def test_zoom_from_24_to_48_mm_doubles_feature_scale():
    widths = []
    for focal in ("24", "48"):
        _, depth = _camera(focal=focal).render(Pose(0.0), size=(640, 480))
        row = depth[300]                          # through the chart card (0.8 m)
        cols = np.flatnonzero(np.isclose(row, 0.8))
        widths.append(cols.max() - cols.min() + 1)
    assert widths[1] / widths[0] == pytest.approx(2.0, rel=0.02)


def test_values_outside_the_choices_are_refused_with_the_nearest_ones():
    cam = SimCamera()
    with pytest.raises(UnsupportedValue, match=r"f/1.2.*f/1.8"):
        cam.set("aperture", "f/1.2")
    assert cam.set("shutter", "0.0166666").readback == "1/60" or cam.get("shutter") == "1/60"


def test_exif_states_the_settings_applied(tmp_path):
    cam = SimCamera(speed=1e6, serial="SIM42")
    for role, value in {"aperture": "f/5.6", "shutter": "1/250", "iso": "400", "focus": "2", "focal": "50"}.items():
        cam.set(role, value)
    (still,) = cam.capture_still(tmp_path, stem="frame")
    with open(still.path, "rb") as fh:
        tags = exifread.process_file(fh, details=False)
    assert str(tags["EXIF FNumber"]) == "28/5"
    assert str(tags["EXIF ExposureTime"]) == "1/250"
    assert str(tags["EXIF ISOSpeedRatings"]) == "400"
    assert str(tags["EXIF FocalLength"]) == "50"
    assert str(tags["EXIF SubjectDistance"]) == "2"
    assert str(tags["EXIF BodySerialNumber"]) == "SIM42"
    assert "EXIF DateTimeOriginal" in tags and "EXIF SubSecTimeOriginal" in tags
    if shutil.which("exiftool"):
        out = json.loads(subprocess.run(["exiftool", "-j", "-n", str(still.path)], capture_output=True,
                                        text=True, check=True, timeout=60).stdout)[0]
        assert (out["FNumber"], out["ExposureTime"], out["ISO"], out["FocalLength"]) == (5.6, 0.004, 400, 50)
        assert out["SerialNumber"] == "SIM42" and out["SubjectDistance"] == 2


def test_faults_are_typed_and_disconnect_sticks(tmp_path):
    cam = SimCamera(speed=1e6, busy_rate=1.0)
    with pytest.raises(CameraBusy):
        cam.capture_still(tmp_path, stem="x")
    gone = SimCamera(speed=1e6, disconnect_after=1)
    gone.capture_still(tmp_path, stem="a")
    with pytest.raises(CameraDisconnected):
        gone.capture_still(tmp_path, stem="b")
    with pytest.raises(CameraDisconnected):
        gone.choices()


@pytest.mark.timeout(120)
def test_clip_follows_the_emulated_slider(tmp_path):
    from rigs.slider import open_slider

    slider = open_slider("emulator", speed=20)
    try:
        slider.home()
        cam = SimCamera(slider=slider, speed=20, noise=False)
        clip = cam.record_clip(tmp_path, stem="pass", frames=16, fps=8,
                               start=lambda: slider.run_trajectory(100, 180, speed_mm_s=40,
                                                                   wait=False).motion_started_at)
    finally:
        slider.close()
    xs = [p.x_mm for p in clip.poses]
    assert xs[-1] - xs[0] > 60 and all(b >= a - 0.5 for a, b in zip(xs, xs[1:])), xs
    kinds = {f.kind for f in clip.files}
    assert kinds == {"clip", "sidecar", "depth"}
    sidecar = json.loads(next(f.path for f in clip.files if f.kind == "sidecar").read_text())
    assert len(sidecar["poses"]) == 16 and sidecar["settings"]["aperture"] == cam.get("aperture")


def test_zoom_from_24_to_48_mm_doubles_feature_scale_in_the_image():
    """The 24 mm image magnified about the centre best matches the 48 mm image at a scale of 2."""
    def grey(focal: str) -> np.ndarray:
        return _linear(_camera(focal=focal, aperture="f/22", focus="3")).mean(axis=2).astype(np.float32)

    wide, tele = grey("24"), grey("48")
    centre = (slice(40, 440), slice(40, 600))

    def correlation(scale: float) -> float:
        warp = np.array([[scale, 0, (1 - scale) * 319.5], [0, scale, (1 - scale) * 239.5]])
        x = cv2.warpAffine(wide, warp, (640, 480), flags=cv2.INTER_LINEAR)[centre]
        y = tele[centre]
        x, y = x - x.mean(), y - y.mean()
        return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))

    scales = np.linspace(1.8, 2.2, 41)
    best = scales[int(np.argmax([correlation(s) for s in scales]))]
    assert best == pytest.approx(2.0, rel=0.02)


def test_the_moving_object_moves_between_frames_and_the_static_scene_does_not():
    def near_card_columns(cam: SimCamera, time_s: float) -> np.ndarray:
        _, depth = cam.render(Pose(0.0), size=(320, 240), time_s=time_s)
        return np.flatnonzero(np.isclose(depth[120], 1.5))

    moving = SimCamera(speed=1e6, noise=False, moving_object=True)
    shift = near_card_columns(moving, 1.0).min() - near_card_columns(moving, 0.0).min()   # moves to +x
    expected = optics.focal_px(35, 320) * 0.05 / 1.5          # 5 cm/s at 1.5 m for 1 s, in pixels
    assert shift == pytest.approx(expected, abs=1.5)
    still = SimCamera(speed=1e6, noise=False)
    assert np.array_equal(near_card_columns(still, 0.0), near_card_columns(still, 1.0))


@pytest.mark.timeout(120)
def test_a_still_taken_while_the_carriage_moves_is_smeared_along_x(tmp_path):
    from rigs.slider import open_slider

    def sharpness_x_y(path: Path) -> tuple[float, float]:
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float64)[NEAR_CARD]
        return float(np.var(np.diff(grey, axis=1))), float(np.var(np.diff(grey, axis=0)))

    slider = open_slider("emulator", speed=10)
    try:
        slider.home()
        slider.move_to(100)
        cam = SimCamera(slider=slider, speed=10, noise=False)
        cam.set("shutter", "1/2")
        (static,) = cam.capture_still(tmp_path, stem="static")
        slider.run_trajectory(100, 400, speed_mm_s=40, wait=False)
        time.sleep(0.2)                                   # the carriage is under way at 40 mm/s
        (moving,) = cam.capture_still(tmp_path, stem="moving")
    finally:
        slider.close()
    static_x, static_y = sharpness_x_y(static.path)
    moving_x, moving_y = sharpness_x_y(moving.path)
    assert moving_x < 0.5 * static_x                      # smeared along the direction of travel ...
    assert moving_y > 0.5 * moving_x                      # ... far more than across it


def test_varied_scenes_differ_and_repeat_per_seed():
    from rigs.scene import varied_scene
    a, b = varied_scene(3), varied_scene(3)
    assert [layer.depth_m for layer in a.layers] == [layer.depth_m for layer in b.layers]
    scenes = [varied_scene(seed) for seed in range(12)]
    assert len({tuple(round(layer.depth_m, 3) for layer in s.layers) for s in scenes}) == 12      # depth layouts
    assert len({s.illuminant_kelvin for s in scenes}) >= 3                                         # illuminants
    assert all(min(layer.depth_m for layer in s.layers) <= 1.2 for s in scenes)                    # a near card
    assert all(s.layers[0].depth_m >= 4.0 for s in scenes)                                         # a far wall


def test_supersampling_removes_aliasing_and_bad_options_are_refused():
    import numpy as np
    from rigs.camera.protocol import Pose
    plain = SimCamera(scene="varied", seed=1, noise=False)
    smooth = SimCamera(scene="varied", seed=1, noise=False, supersample=4)
    reference, _ = SimCamera(scene="varied", seed=1, noise=False).render(Pose(0), size=(768, 512))
    import cv2
    truth = cv2.resize(reference, (96, 64), interpolation=cv2.INTER_AREA)
    err_plain = np.abs(plain.render(Pose(0), size=(96, 64))[0] - truth).mean()
    err_smooth = np.abs(smooth.render(Pose(0), size=(96, 64))[0] - truth).mean()
    assert err_smooth < 0.5 * err_plain
    with pytest.raises(ValueError, match="scene 'forest' is unknown; scenes are tabletop, varied"):
        SimCamera(scene="forest")
    with pytest.raises(ValueError, match="supersample"):
        SimCamera(supersample=0)
