"""Evaluation in a calibrated camera's linear space: the hook `train/evaluate.py` runs through.

Evaluation statistics (brightness, colour balance, ...) in `rigs/statistics.py` read 8-bit frames as if an
ideal sRGB camera had made them. Frames from a calibrated body are first *re-rendered* through the ideal
camera: linearised with the body's measured response, then encoded as sRGB. Every statistic computed on the
re-rendered frames is therefore a statistic of calibrated linear light, and the metrics code needs no change.

`evaluate(sweeps, methods, view=view_for(profile))` applies that view to every reference, source and method
output before measuring them (methods still edit the body's own frames); `camera_note(profile)` is the line
the report prints. Without a profile nothing changes and the note says the ideal camera was assumed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from rigs import optics

Editor = Callable[[np.ndarray, Mapping[str, float]], np.ndarray]

IDEAL_NOTE = "camera model: ideal (sRGB response, textbook white balance); no calibration profile given"


def camera_note(profile: Any) -> str:
    """The line a report prints about the camera model its statistics assumed."""
    if profile is None:
        return IDEAL_NOTE
    used = ", ".join(f"{k} {v}" for k, v in profile.describe_use().items())
    return f"camera model: calibration profile {profile.label}; statistics in its linear space ({used})"


def linear_frames(frames: np.ndarray, profile: Any) -> np.ndarray:
    """uint8 frames (..., 3) of the profiled body → relative linear light (float32)."""
    encoded = np.asarray(frames, np.float32) / 255.0
    return np.asarray(profile.to_linear(encoded) if profile is not None else optics.srgb_decode(encoded), np.float32)


def calibrated_view(frames: np.ndarray, profile: Any) -> np.ndarray:
    """The frames as the ideal sRGB camera would have recorded the same light (uint8)."""
    if profile is None:
        return np.asarray(frames)
    srgb = optics.srgb_encode(linear_frames(frames, profile))
    return (np.clip(srgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def view_for(profile: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """What `train.evaluate.evaluate(..., view=)` applies to every frame it measures (None: no profile)."""
    if profile is None:
        return None
    return lambda frames: calibrated_view(frames, profile)


def profiled_simulator(profile: Any) -> Editor:
    """The effect simulator working in the profile's linear space (uint8 frames in and out)."""
    from .effects import simulate_uint8

    def simulate(frames: np.ndarray, controls: Mapping[str, float], **kwargs: Any) -> np.ndarray:
        return simulate_uint8(frames, controls, profile=profile, **kwargs)

    return simulate


# ------------------------------------------------------------------------------------------------ breathing

def breathing_scales(frames: list[np.ndarray], *, height: int = 480) -> np.ndarray:
    """Magnification of every frame of a real focus stack against its first (`metrics.zoom_factor` on copies
    `height` px tall): the focus breathing a real lens shows, 1-2 % per step."""
    import cv2  # noqa: PLC0415

    from rigs.statistics import zoom_factor  # noqa: PLC0415

    small = [cv2.resize(f, (round(f.shape[1] * height / f.shape[0]), height), interpolation=cv2.INTER_AREA)
             if f.shape[0] > height else f for f in frames]
    return np.array([zoom_factor(small[0], f, lo=0.85, hi=1.2, step=0.002) for f in small])


def held_out_breathing(frames: list[np.ndarray], steps: list[float]) -> dict:
    """The held-out test of breathing on a real focus stack whose focus distances are not published (only the
    order of the steps): log magnification fitted linearly in the focus step on every other frame, predicted for
    the others; the ideal camera (a thin lens at its marked focal length) predicts no change. Errors as relative
    magnification and as pixels at the frame's corner."""
    scales = breathing_scales(frames)
    logs, x = np.log(scales), np.asarray(steps, np.float64)
    order = list(np.argsort(x))
    errors: dict[str, list[float]] = {"profile": [], "ideal": []}
    for half in (order[0::2], order[1::2]):
        rest = [i for i in order if i not in half]
        slope, offset = np.polyfit(x[half], logs[half], 1)
        for i in rest:
            errors["profile"].append(abs(math.exp(slope * x[i] + offset) / scales[i] - 1))
            errors["ideal"].append(abs(1.0 / scales[i] - 1))
    corner = math.hypot(*frames[0].shape[:2]) / 2
    profile, ideal = float(np.mean(errors["profile"])), float(np.mean(errors["ideal"]))
    return {"scales": [float(s) for s in scales], "per_step": float(np.exp(np.polyfit(x, logs, 1)[0]) - 1),
            "profile_error": profile, "ideal_error": ideal, "ratio": profile / ideal if ideal else None,
            "profile_error_px_at_corner": profile * corner, "ideal_error_px_at_corner": ideal * corner}
