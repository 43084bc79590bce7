"""Frames of the simulated bodies for the calibration tests: rendered by SimCamera, encoded as its JPEGs (or
kept lossless), wrapped as `rigs.calibration.inputs.Frame` with the settings they were shot at."""

from __future__ import annotations

import io
from typing import Iterable, Mapping

import numpy as np
from PIL import Image

from rigs.calibration.inputs import Frame
from rigs.calibration.response import CODES, ResponseCurve
from rigs.camera import values
from rigs.camera.bodies import SimBody
from rigs.camera.protocol import Pose
from rigs.camera.sim import SHUTTERS, SimCamera

NUMBERS = {"aperture": values.parse_aperture, "shutter": lambda s: float(values.parse_shutter(s)),
           "iso": values.parse_iso, "kelvin": values.parse_kelvin, "focus": values.parse_metres,
           "focal": values.parse_mm}


def encode(image: np.ndarray, *, quality: int | None = 95, subsampling: int = 1) -> np.ndarray:
    """The camera's 8-bit frame: JPEG at `quality` (None = lossless)."""
    codes = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    if quality is None:
        return codes
    buf = io.BytesIO()
    Image.fromarray(codes).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def shoot(camera: SimCamera, shots: Iterable[Mapping[str, str]], *, size=(640, 480), x_mm: float = 0.0,
          quality: int | None = 95) -> list[Frame]:
    """One frame per settings mapping (role -> label), applied on top of the camera's current settings."""
    frames = []
    for i, settings in enumerate(shots):
        for role, label in settings.items():
            if role != "x_mm":
                camera.set(role, label)
        image, _ = camera.render(Pose(float(settings.get("x_mm", x_mm))), size=size)
        numbers = {role: float(NUMBERS[role](camera.values[role])) for role in NUMBERS}
        numbers["kelvin"] = camera.white_balance_kelvin()
        frames.append(Frame(encode(image, quality=quality), f"f{i:03d}-" + "-".join(str(v) for v in settings.values()), numbers))
    return frames


def bracket(body: str = "secret", *, scene: str = "step_chart", first: str = "1/250", count: int = 25,
            size=(640, 480), quality: int | None = 95, seed: int = 0) -> list[Frame]:
    """The example response plan's bracket: f/2.8, ISO 100, 1/3-stop shutter steps."""
    cam = SimCamera(speed=1e6, body=body, scene=scene, seed=seed)
    cam.set("aperture", "f/2.8")
    cam.set("focus", "1.5")
    start = SHUTTERS.index(first)
    return shoot(cam, [{"shutter": s} for s in SHUTTERS[start:start + count]], size=size, quality=quality)


def true_curve(body: SimBody) -> ResponseCurve:
    codes = np.repeat((np.arange(CODES) / (CODES - 1.0))[:, None], 3, axis=1)
    return ResponseCurve(body.decode(codes), "truth")
