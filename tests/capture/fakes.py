"""A minimal in-process Camera for runner unit tests (a mock, said so: SimCamera renders physics and is
slower; these tests exercise the runner's ledger and fault ladder, where a deterministic fault script
matters more than pixels). End-to-end tests use the real SimCamera and the GRBL emulator on a pty."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rigs.camera.protocol import (
    CameraBusy, CameraDisconnected, CameraIdentity, CameraTimeout, CapturedFile, SettingResult,
    UnsupportedValue,
)

CHOICES = {
    "aperture": ["f/2.8", "f/4", "f/5.6", "f/8", "f/11", "f/16"],
    "shutter": ["1/1000", "1/500", "1/250", "1/125", "1/60", "1/30", "1/15"],
    "iso": ["100", "200", "400", "800", "1600"],
}


def _scene(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    coarse = rng.uniform(30, 220, (h // 4 + 1, w // 4 + 1))
    return np.kron(coarse, np.ones((4, 4)))[:h, :w]


class FakeCamera:
    def __init__(self, faults: dict[int, type] | None = None, *, position=lambda: 0.0, size=(64, 48)) -> None:
        self.faults = faults if faults is not None else {}   # capture number -> exception to raise
        self.values = {"aperture": "f/2.8", "shutter": "1/60", "iso": "100"}
        self.captures = 0
        self.sets = 0
        self.closed = False
        self.position = position
        self.size = size

    @property
    def identity(self) -> CameraIdentity:
        return CameraIdentity("Fake", "Cam", "F0001")

    def choices(self):
        return {k: list(v) for k, v in CHOICES.items()}

    def get(self, role):
        return self.values[role]

    def set(self, role, value, *, timeout=10.0):
        if value not in CHOICES.get(role, []):
            raise UnsupportedValue(f"{role} {value!r}")
        self.sets += 1
        self.values[role] = value
        return SettingResult(role, value, value)

    def capture_still(self, dest_dir: Path, *, stem: str):
        self.captures += 1
        fault = self.faults.pop(self.captures, None)
        if fault is not None:
            raise fault(f"injected at capture {self.captures}", camera="Fake Cam")
        w, h = self.size
        scene = _scene(h, w + 700)                            # a fixed random texture, seen through a window
        x0 = int(round(self.position()))                     # that moves with the slider
        noise = np.random.default_rng().normal(0, 1.5, (h, w))  # sensor noise: no two exposures are identical
        img = np.clip(scene[:, x0:x0 + w] + noise, 0, 255).astype(np.uint8)
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"{stem}.jpg"
        tmp = path.with_name(path.name + ".tmp")
        Image.fromarray(np.stack([img] * 3, axis=2)).save(tmp, format="JPEG")
        os.replace(tmp, path)
        return [CapturedFile(path, "still", path.stat().st_size, "IMG.JPG", time.time())]

    def record_clip(self, dest_dir: Path, *, stem: str, frames: int, fps: float, start=None):
        """Frames sampled at `fps` while `start` (the slider trajectory) runs; MP4 + JSON sidecar, atomically."""
        import json

        from capture.clips import write_mp4
        from rigs.camera.protocol import CapturedClip, Pose

        dest_dir.mkdir(parents=True, exist_ok=True)
        motion = start() if start is not None else None
        images, poses = [], []
        t0 = time.monotonic()
        for i in range(frames):
            time.sleep(max(0.0, t0 + i / fps - time.monotonic()))
            x = self.position()
            poses.append(Pose(x))
            w, h = self.size
            x0 = int(round(x))
            img = np.clip(_scene(h, w + 700)[:, x0:x0 + w] + np.random.default_rng().normal(0, 1.5, (h, w)), 0, 255)
            images.append(np.stack([img.astype(np.uint8)] * 3, axis=2))
        clip = write_mp4(images, dest_dir / f"{stem}.mp4", fps=fps)
        sidecar = dest_dir / f"{stem}.json"
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(json.dumps({"settings": self.values, "poses": [p.x_mm for p in poses]}))
        os.replace(tmp, sidecar)
        return CapturedClip([CapturedFile(clip, "clip", clip.stat().st_size, "", t0),
                             CapturedFile(sidecar, "sidecar", sidecar.stat().st_size, "", t0)],
                            frames, fps, motion, poses)

    def live_view(self):
        return b""

    def close(self):
        self.closed = True


class FakeSlider:
    """Slider protocol in-process with an alarm script (move number -> SliderAlarm), same caveat as above."""

    def __init__(self, alarms: set[int] | None = None) -> None:
        from rigs.slider.protocol import SliderInfo

        self.alarms = alarms if alarms is not None else set()
        self.position = 0.0
        self.moves = 0
        self.homes = 0
        self.alarmed = False
        self.held = False
        self._info = SliderInfo("Grbl 1.1h (fake)", port="fake", travel_mm=(0.0, 600.0))

    @property
    def info(self):
        return self._info

    def status(self):
        from rigs.slider.protocol import SliderStatus

        return SliderStatus("Alarm" if self.alarmed else "Idle", self.position)

    def home(self, *, timeout=120.0):
        self.homes += 1
        self.alarmed = False
        self.position = 0.0
        return self.status()

    def check_target(self, mm):
        from rigs.slider.protocol import TravelError

        if not 0 <= mm <= 600:
            raise TravelError(f"{mm} outside travel")

    def move_to(self, mm, *, feed_mm_min=None):
        from rigs.slider.protocol import MoveResult, SliderAlarm

        self.check_target(mm)
        if self.alarmed:
            raise SliderAlarm("ALARM: re-home first", code=3)
        self.moves += 1
        if self.moves in self.alarms:
            self.alarmed = True
            self.position = mm / 2          # position lost mid-move
            raise SliderAlarm("ALARM:1 hard limit (injected)", code=1)
        t = time.time()
        self.position = mm
        return MoveResult(mm, mm, t, time.time())

    def run_trajectory(self, *a, **k):
        raise NotImplementedError

    def wait_idle(self, *, timeout=60.0):
        return self.status()

    def hold(self):
        self.held = True

    def resume(self):
        self.held = False

    def reset(self):
        self.alarmed = True

    def close(self):
        pass
