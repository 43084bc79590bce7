"""Is a frame exposed well enough to be a training example, and will a planned point's frame be?

One test, used by pair QC (`capture.clips.pair_quality`) and by `capture plan`'s warnings: a frame fails
when its mean level is near black or near white, or when a large share of its pixels is crushed to black
or blown to white. `capture plan` predicts a point's frame from a measured one (a test shot, or a frame of
an earlier session of the same scene) by scaling its pixels in linear light by the exposure difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from rigs import optics, video

UNDER_MEAN = 0.08          # mean level, 0..1 of full scale: below ~20/255 a frame is essentially black
OVER_MEAN = 0.92           # above ~235/255, essentially white
CLIPPED_LIMIT = 0.25       # more than a quarter of the pixels crushed (<= 2/255) or blown (>= 253/255)
SAMPLE_WIDTH = 160         # predictions work on a small copy of the measured frame


@dataclass(frozen=True)
class Exposure:
    mean: float            # mean level of the luminance, 0..1
    dark: float            # share of pixels at black
    bright: float          # share of pixels at white

    @property
    def problem(self) -> str | None:
        """'under-exposed (mean level 6/255, 71 % of pixels black)', or None for a usable frame."""
        levels = f"mean level {self.mean * 255:.0f}/255"
        if self.mean < UNDER_MEAN or self.dark > CLIPPED_LIMIT:
            return f"under-exposed ({levels}, {self.dark:.0%} of pixels black)"
        if self.mean > OVER_MEAN or self.bright > CLIPPED_LIMIT:
            return f"over-exposed ({levels}, {self.bright:.0%} of pixels white)"
        return None

    def as_dict(self) -> dict[str, float]:
        return {"mean": round(self.mean, 4), "dark": round(self.dark, 4), "bright": round(self.bright, 4)}


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance levels 0..1 of an 8-bit RGB (or gray) frame."""
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., 0] * 0.2126 + x[..., 1] * 0.7152 + x[..., 2] * 0.0722
    return x


def _measure_luma(luma: np.ndarray) -> Exposure:
    return Exposure(float(luma.mean()), float(np.mean(luma <= 2 / 255)), float(np.mean(luma >= 253 / 255)))


def measure(rgb: np.ndarray) -> Exposure:
    return _measure_luma(_luma(rgb))


def worst(frames: list[np.ndarray]) -> Exposure:
    """The frame of a clip furthest from a usable exposure (the one QC judges the clip by)."""
    measured = [measure(f) for f in frames]
    failing = [m for m in measured if m.problem]
    pool = failing or measured
    return max(pool, key=lambda m: abs(m.mean - 0.5) + max(m.dark, m.bright))


@dataclass(frozen=True)
class Anchor:
    """A measured frame and the settings it was shot at: what predictions scale from."""

    settings: Mapping[str, str]
    linear: np.ndarray        # small luminance copy in linear light
    source: str               # "test shot" or "session 3, p0004 (frame.jpg)"

    @property
    def exposure(self) -> Exposure:
        return _measure_luma(np.asarray(optics.srgb_encode(self.linear), dtype=np.float32))


def anchor_from_rgb(rgb: np.ndarray, settings: Mapping[str, str], source: str) -> Anchor:
    luma = _luma(rgb)
    step = max(1, luma.shape[1] // SAMPLE_WIDTH)
    small = luma[::step, ::step]
    return Anchor(dict(settings), np.asarray(optics.srgb_decode(small), dtype=np.float32), source)


def anchor_from_file(path: Path, settings: Mapping[str, str], source: str) -> Anchor:
    if path.suffix.lower() in (".mp4", ".mov", ".mkv", ".avi"):
        return anchor_from_rgb(video.read_frames(path, max_frames=1)[0], settings, source)
    return anchor_from_rgb(video.read_still(path), settings, source)


def predict(anchor: Anchor, stops: float) -> Exposure:
    """The anchor frame shot `stops` brighter (negative: darker): linear light scaled, clipped, re-encoded."""
    scaled = np.clip(anchor.linear * (2.0 ** stops), 0.0, 1.0)
    return _measure_luma(np.asarray(optics.srgb_encode(scaled), dtype=np.float32))
