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
        x = np.arange(w)[None, :] + int(self.position())
        img = ((np.sin(x / 3.0) + 1) * 100 + np.arange(h)[:, None]).astype(np.uint8)
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"{stem}.jpg"
        tmp = path.with_name(path.name + ".tmp")
        Image.fromarray(np.stack([img] * 3, axis=2)).save(tmp, format="JPEG")
        os.replace(tmp, path)
        return [CapturedFile(path, "still", path.stat().st_size, "IMG.JPG", time.time())]

    def record_clip(self, *a, **k):
        raise NotImplementedError

    def live_view(self):
        return b""

    def close(self):
        self.closed = True
