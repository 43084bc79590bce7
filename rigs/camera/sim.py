"""`SimCamera`: a camera through a real lens, simulated, satisfying the `Camera` protocol.

Every dry run, test and demo trusts it, so it behaves like a tethered body: discrete 1/3-stop choices,
a refusal for values it does not offer, set and capture latencies, typed faults on demand, and real
files (JPEG with EXIF; H.264 MP4 with a JSON sidecar) written atomically. Pixels come from
`rigs.scene` through `rigs.optics`: layered depth of field in linear light (so bright points become
bokeh discs), exposure with shot and read noise and clipping, white balance against the scene's
illuminant, zoom by focal length, and motion blur while the slider moves during the exposure.

`body=` picks what the body and lens are really like (`rigs/camera/bodies.py`): the ideal camera by
default, or a body that hides a non-sRGB response, a white-balance bias, its real focal lengths and
breathing, optimistic f-numbers, distortion, vignetting and a noisier sensor, for calibration to find.
`scene=` picks a scene by name (`rigs.scene.SCENES`: the tabletop, or a calibration target).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import threading
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import piexif
from PIL import Image

from .. import optics
from ..video import even_size, write_video
from ..scene import Scene, composite, default_scene, make_scene, render
from . import values
from .bodies import SimBody, body_named
from .faults import FaultSchedule, fault_error
from .protocol import (
    APERTURE, FOCAL, FOCUS, ISO, KELVIN, SHUTTER, WHITE_BALANCE, CameraBusy, CameraDisconnected,
    CameraIdentity, CameraTimeout, CapturedClip, CapturedFile, Pose, SettingResult, UnsupportedFeature,
    UnsupportedValue,
)

APERTURES = ["f/1.8", "f/2", "f/2.2", "f/2.5", "f/2.8", "f/3.2", "f/3.5", "f/4", "f/4.5", "f/5", "f/5.6",
             "f/6.3", "f/7.1", "f/8", "f/9", "f/10", "f/11", "f/13", "f/14", "f/16", "f/18", "f/20", "f/22"]
SHUTTERS = ["1/8000", "1/6400", "1/5000", "1/4000", "1/3200", "1/2500", "1/2000", "1/1600", "1/1250",
            "1/1000", "1/800", "1/640", "1/500", "1/400", "1/320", "1/250", "1/200", "1/160", "1/125",
            "1/100", "1/80", "1/60", "1/50", "1/40", "1/30", "1/25", "1/20", "1/15", "1/13", "1/10", "1/8",
            "1/6", "1/5", "1/4", "0.3", "0.4", "0.5", "0.6", "0.8", "1", "1.3", "1.6", "2", "2.5", "3.2", "4",
            "5", "6", "8", "10", "13", "15", "20", "25", "30"]
ISOS = ["100", "125", "160", "200", "250", "320", "400", "500", "640", "800", "1000", "1250", "1600",
        "2000", "2500", "3200", "4000", "5000", "6400", "8000", "10000", "12800", "16000", "20000", "25600"]
WHITE_BALANCES = ["Daylight", "Cloudy", "Shade", "Tungsten", "Fluorescent", "Flash", "Kelvin"]
KELVINS = [str(k) for k in range(2500, 10001, 100)]
FOCUS_DISTANCES = ["0.5", "0.6", "0.8", "1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "7", "10"]
FOCAL_LENGTHS = ["24", "28", "35", "40", "48", "50", "60", "70"]

#: a body's JPEG settings: "4:2:0" (most bodies' normal quality) to "4:4:4"; calibrate from the finest
JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}

CHOICES = {APERTURE: APERTURES, SHUTTER: SHUTTERS, ISO: ISOS, WHITE_BALANCE: WHITE_BALANCES,
           KELVIN: KELVINS, FOCUS: FOCUS_DISTANCES, FOCAL: FOCAL_LENGTHS}
DEFAULTS = {APERTURE: "f/8", SHUTTER: "1/60", ISO: "100", WHITE_BALANCE: "Daylight", KELVIN: "5500",
            FOCUS: "1.5", FOCAL: "35"}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _disc(diameter_px: float) -> np.ndarray | None:
    """Normalised disc kernel (the aperture's image) with an anti-aliased rim; None when sharp."""
    radius = diameter_px / 2.0
    if radius < 0.5:
        return None
    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    kernel = np.clip(radius + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    return kernel / kernel.sum()


def render_depth_of_field(layers, *, f_number: float, focal_mm: float, focus_m: float, width: int,
                          sensor_width_mm: float = optics.FULL_FRAME_WIDTH_MM) -> np.ndarray:
    """Layered gather renderer: each plane blurred by its own circle of confusion, composited far to near."""
    image = np.zeros_like(layers[0][0])
    for rgb, alpha, depth in layers:
        diameter = float(optics.coc_px(f_number, focal_mm, focus_m, depth, width_px=width,
                                       sensor_width_mm=sensor_width_mm))
        kernel = _disc(diameter)
        if kernel is not None:
            rgb = cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT)
            alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_REFLECT)
        image = image * (1.0 - alpha[..., None]) + rgb
    return image


class SimCamera:
    """A simulated body + lens. `speed` divides every latency (1.0 = real time)."""

    def __init__(self, *, slider=None, speed: float = 1.0, scene: Scene | str | None = None,
                 scene_options: dict | None = None, body: SimBody | str = "ideal", seed: int = 0,
                 width: int = 640, height: int = 480, clip_width: int = 320, clip_height: int = 240,
                 serial: str | None = None, model: str = "SimCam", lens: str = "SimLens 24-70mm f/1.8",
                 capture_latency_s: float = 0.15, set_latency_s: float = 0.03, noise: bool = True,
                 still_depth: bool = False, moving_object: bool = False, supersample: int = 1,
                 busy_rate: float = 0.0, timeout_rate: float = 0.0, disconnect_rate: float = 0.0,
                 disconnect_after: int | None = None, fault_seed: int = 0, pose: Pose | None = None,
                 schedule: FaultSchedule | None = None, jpeg_quality: int = 92, jpeg_subsampling: str = "4:2:0",
                 **unknown) -> None:
        if unknown:
            raise TypeError(f"SimCamera: unknown option(s) {', '.join(sorted(unknown))}")
        self.slider = slider
        self.speed = max(float(speed), 1e-6)
        if int(supersample) < 1:
            raise ValueError(f"SimCamera: supersample = {supersample}: give 1 (off) or more samples per pixel side")
        self.supersample = int(supersample)  # render k x k samples per pixel and average: a sensor integrates
        self.body = body_named(body)
        if isinstance(scene, str):
            self.scene = make_scene(scene, seed, **({"moving_object": moving_object} if moving_object else {}),
                                    **dict(scene_options or {}))
        elif scene_options:
            raise TypeError("SimCamera: scene_options needs scene = a scene name")
        else:
            self.scene = scene or default_scene(seed, moving_object=moving_object)   # a card sliding at 5 cm/s
        if serial is None:      # another body is another camera: it must not share the ideal one's calibration
            serial = "SIM0001" if self.body.name == "ideal" else f"SIM-{self.body.name.upper()}"
        self.width, self.height = int(width) // 2 * 2, int(height) // 2 * 2
        self.clip_size = even_size(int(clip_width), int(clip_height))   # the size rigs/video.py writes
        self.values = dict(DEFAULTS)
        self.noise = noise
        if jpeg_subsampling not in JPEG_SUBSAMPLING or not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"SimCamera: jpeg_quality {jpeg_quality!r} must be 1-100 and jpeg_subsampling "
                             f"{jpeg_subsampling!r} one of {', '.join(JPEG_SUBSAMPLING)}")
        self.jpeg = {"quality": int(jpeg_quality), "subsampling": JPEG_SUBSAMPLING[jpeg_subsampling]}
        self.still_depth = still_depth      # stills: JPEG only, as a body writes; True adds <stem>.depth.npz
        self.capture_latency_s = capture_latency_s
        self.set_latency_s = set_latency_s
        self.faults = {"busy": busy_rate, "timeout": timeout_rate, "disconnect": disconnect_rate}
        self.disconnect_after = disconnect_after
        self._fault_rng = random.Random(fault_seed)
        self.schedule = schedule            # scripted faults on set/capture, shared by reopened cameras
        self._noise_rng = np.random.default_rng(seed + 1)
        self._captures = 0
        self._gone = False
        self._pose = pose or Pose(0.0)
        self._opened_at = time.monotonic()
        self._identity = CameraIdentity("cinectrl", model, serial, lens, firmware="sim-1", port="sim")

    # ----------------------------------------------------------------- protocol
    @property
    def identity(self) -> CameraIdentity:
        return self._identity

    def choices(self) -> dict[str, list[str]]:
        self._check_alive()
        return {role: list(choices) for role, choices in CHOICES.items()}

    def get(self, role: str) -> str:
        self._check_alive()
        if role not in self.values:
            raise UnsupportedFeature(f"no setting {role!r}", camera=self._identity.label())
        return self.values[role]

    def set(self, role: str, value: str, *, timeout: float = 10.0) -> SettingResult:
        self._check_alive()
        if role not in CHOICES:
            raise UnsupportedFeature(f"cannot set {role!r}", camera=self._identity.label())
        value = str(value).strip()
        match = self._match(role, value)
        if match is None:
            raise UnsupportedValue(
                f"{role} {value!r} is not offered; nearest choices: {', '.join(self._nearest(role, value))}",
                camera=self._identity.label())
        if self.values[role] == match:
            return SettingResult(role, value, match, 0.0, changed=False)
        self._scheduled("set")
        started = time.monotonic()
        self._sleep(self.set_latency_s)
        self.values[role] = match
        return SettingResult(role, value, match, time.monotonic() - started)

    def capture_still(self, dest_dir: Path, *, stem: str) -> list[CapturedFile]:
        self._check_alive()
        self._scheduled("capture")
        self._maybe_fault()
        captured_at = time.time()
        t = values.shutter_seconds(self.values[SHUTTER])
        self._sleep(self.capture_latency_s)
        opening = self._current_pose()            # shutter opens ...
        scene_time = (time.monotonic() - self._opened_at) * self.speed
        self._sleep(t)
        pose = self._current_pose()               # ... and closes: a carriage still moving smears the frame
        image, depth = self._render_exposure(opening, pose, scene_time, t, size=(self.width, self.height))
        dest_dir.mkdir(parents=True, exist_ok=True)
        jpeg_path = dest_dir / f"{stem}.jpg"
        _atomic_write(jpeg_path, self._jpeg(image, captured_at))
        self._captures += 1
        files = [CapturedFile(jpeg_path, "still", jpeg_path.stat().st_size, f"SIM_{self._captures:04d}.JPG",
                              captured_at)]
        if self.still_depth:
            depth_path = dest_dir / f"{stem}.depth.npz"
            buf = io.BytesIO()
            np.savez_compressed(buf, depth_m=depth.astype(np.float16), x_mm=np.float64(pose.x_mm),
                                captured_at=np.float64(captured_at), settings=json.dumps(self.values))
            _atomic_write(depth_path, buf.getvalue())
            files.append(CapturedFile(depth_path, "depth", depth_path.stat().st_size, "", captured_at))
        return files

    def record_clip(self, dest_dir: Path, *, stem: str, frames: int, fps: float,
                    start: Callable[[], float | None] | None = None) -> CapturedClip:
        self._check_alive()
        self._scheduled("capture")
        self._maybe_fault()
        recording_started = time.time()
        motion_start = start() if start is not None else None
        positions = self._sample_positions(frames / fps)
        frame_times = [i / fps for i in range(frames)]
        t = values.shutter_seconds(self.values[SHUTTER])
        images, depths, poses = [], [], []
        for ft in frame_times:
            sub_times = self._sub_exposure_times(ft, t, positions)
            renders = [self.render(Pose(self._position_at(positions, st)), size=self.clip_size, time_s=st)
                       for st in sub_times]
            image = np.mean([r[0] for r in renders], axis=0) if len(renders) > 1 else renders[0][0]
            pose = Pose(self._position_at(positions, ft))
            images.append(image)
            depths.append(renders[0][1])
            poses.append(pose)
        dest_dir.mkdir(parents=True, exist_ok=True)
        mp4 = dest_dir / f"{stem}.mp4"
        write_video(mp4, ((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8) for image in images), fps, crf=18)
        sidecar = dest_dir / f"{stem}.json"
        meta = {"camera": self._identity.__dict__, "settings": dict(self.values), "fps": fps,
                "frames": frames, "recording_started_at": recording_started, "motion_started_at": motion_start,
                "scene_kelvin": self.scene.illuminant_kelvin, "depth_range_m": self.scene.depth_range_m,
                "poses": [{"frame": i, "time_s": ft, "x_mm": p.x_mm, "pan_deg": p.pan_deg}
                          for i, (ft, p) in enumerate(zip(frame_times, poses))]}
        _atomic_write(sidecar, json.dumps(meta, indent=1).encode())
        depth_path = dest_dir / f"{stem}.depth.npz"
        buf = io.BytesIO()
        np.savez_compressed(buf, depth_m=np.stack(depths).astype(np.float16),
                            recording_started_at=np.float64(recording_started), settings=json.dumps(self.values))
        _atomic_write(depth_path, buf.getvalue())
        self._captures += 1
        files = [CapturedFile(p, kind, p.stat().st_size, "", recording_started)
                 for p, kind in ((mp4, "clip"), (sidecar, "sidecar"), (depth_path, "depth"))]
        return CapturedClip(files, frames, fps, motion_start, poses)

    def live_view(self) -> bytes:
        self._check_alive()
        image, _ = self.render(self._current_pose(), size=(320, 240))
        return self._jpeg(image, time.time(), exif=False)

    def close(self) -> None:
        self._gone = True

    # ----------------------------------------------------------------- rendering
    def render(self, pose: Pose, *, size: tuple[int, int], time_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """sRGB image (H, W, 3) in [0, 1] and depth (H, W) in metres, for the current settings."""
        width, height = size
        body = self.body
        k = self.supersample
        if k > 1:
            width, height = width * k, height * k
        t = values.shutter_seconds(self.values[SHUTTER])
        iso = values.parse_iso(self.values[ISO])
        focus = values.parse_metres(self.values[FOCUS])
        focal = body.real_focal_mm(values.parse_mm(self.values[FOCAL]), focus)     # EXIF keeps the marked one
        n = body.effective_f_number(values.parse_aperture(self.values[APERTURE]))
        layers, depth = render(self.scene, x_mm=pose.x_mm, pan_deg=pose.pan_deg, focal_mm=focal, width=width,
                               height=height, time_s=time_s)
        radiance = render_depth_of_field(layers, f_number=n, focal_mm=focal, focus_m=focus, width=width)
        fpx = optics.focal_px(focal, width)
        radiance = body.distort(radiance, fpx)
        depth = body.distort(depth, fpx, nearest=True)
        if k > 1:   # the pixel integrates the light falling on it; noise arises per pixel, after integration
            radiance = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
            depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
            width, height = size
        vignette = body.vignette(height, width)
        if vignette is not None:
            radiance = radiance * vignette[..., None]
        radiance = radiance * body.white_balance_gains(self.scene.illuminant_kelvin, self.white_balance_kelvin())
        linear = body.sensor().expose(radiance, t, iso, n, self._noise_rng if self.noise else None,
                                      calibration=optics.CALIBRATION)
        return np.asarray(body.encode(linear), np.float32), depth

    def _render_exposure(self, opening: Pose, closing: Pose, scene_time_s: float, exposure_s: float, *,
                         size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Average of renders over the open shutter (camera from `opening` to `closing`, objects moving)."""
        object_mm = max(abs(layer.velocity_m_s) for layer in self.scene.layers) * exposure_s * 1000.0
        samples = [(0.0, opening.x_mm), (exposure_s, closing.x_mm + object_mm)]   # relative travel bounds blur
        count = len(self._sub_exposure_times(0.0, exposure_s, samples, width=size[0]))
        if count == 1:
            return self.render(closing, size=size, time_s=scene_time_s + exposure_s / 2.0)
        renders = []
        for k in range(count):
            frac = (k + 0.5) / count
            pose = Pose(opening.x_mm + frac * (closing.x_mm - opening.x_mm), closing.pan_deg)
            renders.append(self.render(pose, size=size, time_s=scene_time_s + frac * exposure_s))
        return np.mean([r[0] for r in renders], axis=0), renders[-1][1]

    def white_balance_kelvin(self) -> float:
        preset = self.values[WHITE_BALANCE]
        if preset == "Kelvin":
            return float(values.parse_kelvin(self.values[KELVIN]))
        return float(optics.WHITE_BALANCE_PRESETS_K[preset])

    # ----------------------------------------------------------------- helpers
    def _match(self, role: str, value: str) -> str | None:
        return values.match_label(role, value, CHOICES[role])

    def _nearest(self, role: str, value: str) -> list[str]:
        return values.nearest_labels(role, value, CHOICES[role])

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def _check_alive(self) -> None:
        if self._gone:
            raise CameraDisconnected("the camera is disconnected; open it again", camera=self._identity.label())

    def _scheduled(self, op: str) -> None:
        kind = self.schedule.next(op) if self.schedule is not None else None
        if kind is None:
            return
        if kind == "timeout":
            self._sleep(1.0)
        elif kind == "disconnect":
            self._gone = True
        raise fault_error(kind, op, self._identity.label())

    def _maybe_fault(self) -> None:
        if self.disconnect_after is not None and self._captures >= self.disconnect_after:
            self._gone = True
            raise CameraDisconnected(f"disconnected after {self._captures} captures (injected)",
                                     camera=self._identity.label())
        roll = self._fault_rng.random()
        edge = 0.0
        for kind, rate in self.faults.items():
            edge += rate
            if roll < edge:
                if kind == "busy":
                    raise CameraBusy("PTP Device Busy (injected)", camera=self._identity.label())
                if kind == "timeout":
                    self._sleep(5.0)
                    raise CameraTimeout("PTP Timeout (injected)", camera=self._identity.label())
                self._gone = True
                raise CameraDisconnected("USB device gone (injected)", camera=self._identity.label())

    def _current_pose(self) -> Pose:
        if self.slider is not None:
            return Pose(float(self.slider.status().position_mm), self._pose.pan_deg)
        return self._pose

    def _sample_positions(self, duration_s: float) -> list[tuple[float, float]]:
        """(clip time s, x mm) samples of the carriage while the clip records (speed-scaled host time)."""
        if self.slider is None:
            self._sleep(duration_s)
            return [(0.0, self._pose.x_mm)]
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                clip_time = (time.monotonic() - t0) * self.speed
                samples.append((clip_time, float(self.slider.status().position_mm)))
                if clip_time > duration_s:
                    return
                time.sleep(0.005)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        thread.join(timeout=duration_s / self.speed + 10.0)
        stop.set()
        return samples or [(0.0, float(self.slider.status().position_mm))]

    @staticmethod
    def _position_at(samples: list[tuple[float, float]], clip_time: float) -> float:
        times = [s[0] for s in samples]
        xs = [s[1] for s in samples]
        return float(np.interp(clip_time, times, xs))

    def _sub_exposure_times(self, frame_time: float, exposure_s: float,
                            samples: list[tuple[float, float]], *, width: int | None = None) -> list[float]:
        """Sub-frame instants over the exposure: enough that the blur is a smear, not a double image."""
        travel_mm = abs(self._position_at(samples, frame_time + exposure_s) - self._position_at(samples, frame_time))
        near = min(layer.depth_m for layer in self.scene.layers)
        focal = values.parse_mm(self.values[FOCAL])
        blur_px = float(optics.motion_blur_px(1.0, travel_mm, near, focal, width_px=width or self.clip_size[0]))
        count = int(min(8, max(1, math.ceil(blur_px))))
        return [frame_time + exposure_s * (k + 0.5) / count for k in range(count)] if count > 1 else [frame_time]

    def _jpeg(self, image: np.ndarray, captured_at: float, *, exif: bool = True) -> bytes:
        pil = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
        buf = io.BytesIO()
        if not exif:
            pil.save(buf, format="JPEG", quality=90)
            return buf.getvalue()
        pil.save(buf, format="JPEG", **self.jpeg, exif=self._exif(captured_at))
        return buf.getvalue()

    def _exif(self, captured_at: float) -> bytes:
        def rational(x: float | Fraction, limit: int = 10000) -> tuple[int, int]:
            fr = Fraction(x).limit_denominator(limit)
            return fr.numerator, fr.denominator

        moment = datetime.fromtimestamp(captured_at)
        stamp = moment.strftime("%Y:%m:%d %H:%M:%S").encode()
        wb_k = self.white_balance_kelvin()
        note = (f"cinectrl sim: white_balance={self.values[WHITE_BALANCE]} kelvin={wb_k:.0f} "
                f"focus_m={self.values[FOCUS]}")
        zeroth = {piexif.ImageIFD.Make: b"cinectrl", piexif.ImageIFD.Model: self._identity.model.encode(),
                  piexif.ImageIFD.DateTime: stamp, piexif.ImageIFD.ImageDescription: note.encode(),
                  piexif.ImageIFD.Software: b"cinectrl SimCamera"}
        exif_ifd = {
            piexif.ExifIFD.FNumber: rational(values.parse_aperture(self.values[APERTURE]), 100),
            piexif.ExifIFD.ExposureTime: rational(values.parse_shutter(self.values[SHUTTER]), 100000),
            piexif.ExifIFD.ISOSpeedRatings: values.parse_iso(self.values[ISO]),
            piexif.ExifIFD.FocalLength: rational(values.parse_mm(self.values[FOCAL]), 100),
            piexif.ExifIFD.WhiteBalance: 1,   # manual: a sweep never lets the body choose
            piexif.ExifIFD.ExposureProgram: 1,
            piexif.ExifIFD.ExposureMode: 1,
            piexif.ExifIFD.DateTimeOriginal: stamp,
            piexif.ExifIFD.SubSecTimeOriginal: f"{int(captured_at % 1 * 1000):03d}".encode(),
            piexif.ExifIFD.SubjectDistance: rational(values.parse_metres(self.values[FOCUS]), 1000),
            piexif.ExifIFD.BodySerialNumber: self._identity.serial.encode(),
            piexif.ExifIFD.LensModel: self._identity.lens.encode(),
            piexif.ExifIFD.LensMake: b"cinectrl",
            piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00" + note.encode(),
        }
        return piexif.dump({"0th": zeroth, "Exif": exif_ifd})
