"""The automatic quality checks a pair carries, and the width of review proxies.

Clips and proxies are written and read by `rigs/video.py` (H.264 yuv420p MP4, exact frame rate, odd sizes
trimmed); a proxy is a clip at `PROXY_WIDTH`, for side-by-side review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .exposure import Exposure, worst

PROXY_WIDTH = 480


# --------------------------------------------------------------------------------------------- QC

ALIGNMENT_LIMIT_PX = 2.0
CLIPPED_FLAG = 0.05


@dataclass(frozen=True)
class PairQuality:
    alignment_px: float        # mean |shift| between matching frames (phase correlation); ~0 = registered
    clipped_fraction: float    # share of pixels at 0/255 in either clip (worst of the two)
    sharpness_ratio: float     # variance of Laplacian, target / reference
    frames: int
    reference_exposure: Exposure | None = None    # each side's worst frame (capture/exposure.py)
    target_exposure: Exposure | None = None
    path_offset_mm: float = 0.0     # the target's pass shifted along the slider by design (camera-path sweep)

    @property
    def flags(self) -> list[str]:
        flags = []
        if self.alignment_px > ALIGNMENT_LIMIT_PX and not self.path_offset_mm:
            flags.append(f"misaligned by {self.alignment_px:.1f} px")
        if self.clipped_fraction > CLIPPED_FLAG:
            flags.append(f"{self.clipped_fraction:.0%} clipped")
        for side, exposure in (("reference", self.reference_exposure), ("target", self.target_exposure)):
            if exposure is not None and exposure.problem:
                flags.append(f"{side} {exposure.problem}")
        return flags

    @property
    def failures(self) -> list[str]:
        """The flags that make the pair unusable: misaligned frames, or a side too dark or too bright."""
        return [f for f in self.flags if f.startswith(("misaligned", "reference ", "target "))]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _normalised(gray: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance: exposure differences must not read as misalignment."""
    return (gray - gray.mean()) / (gray.std() + 1e-6)


def centre_zoom(rgb: np.ndarray, zoom: float) -> np.ndarray:
    """The centre 1/zoom of a frame scaled back to its size: what a lens `zoom` times longer sees."""
    if abs(zoom - 1.0) < 1e-6:
        return rgb
    h, w = rgb.shape[:2]
    ch, cw = max(2, round(h / zoom)), max(2, round(w / zoom))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(rgb[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def alignment_error(a: np.ndarray, b: np.ndarray, *, zoom: float = 1.0) -> float:
    """Shift (px) between two frames of one path; `zoom`: b was shot with a lens that many times longer, so a is
    cropped to b's view first (a zoom pair is registered when its centres agree)."""
    ga, gb = _normalised(_gray(centre_zoom(a, zoom))), _normalised(_gray(b))
    if ga.shape != gb.shape:
        gb = cv2.resize(gb, (ga.shape[1], ga.shape[0]))
    window = cv2.createHanningWindow((ga.shape[1], ga.shape[0]), cv2.CV_32F)
    (dx, dy), _response = cv2.phaseCorrelate(ga, gb, window)
    return float(np.hypot(dx, dy))


def clipped_fraction(rgb: np.ndarray) -> float:
    return float(np.mean((rgb.max(axis=2) >= 255) | (rgb.max(axis=2) <= 0)))


def sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(_gray(rgb), cv2.CV_32F).var())


def pair_quality(reference: Sequence[np.ndarray], target: Sequence[np.ndarray], *,
                 path_offset_mm: float = 0.0, zoom: float = 1.0) -> PairQuality:
    """QC of one pair. A pair of a camera-path sweep (`path_offset_mm` != 0) is shifted by design: its
    alignment is reported but never flagged. A zoom pair (`zoom` = focal-length ratio) is aligned after
    cropping the reference to the target's view."""
    n = min(len(reference), len(target))
    if n == 0:
        raise ValueError("a pair needs frames on both sides")
    picks = sorted({0, n // 2, n - 1})
    align = float(np.mean([alignment_error(reference[i], target[i], zoom=zoom) for i in picks]))
    clipped = max(float(np.mean([clipped_fraction(reference[i]) for i in picks])),
                  float(np.mean([clipped_fraction(target[i]) for i in picks])))
    sharp_ref = float(np.mean([sharpness(reference[i]) for i in picks]))
    sharp_tgt = float(np.mean([sharpness(target[i]) for i in picks]))
    return PairQuality(align, clipped, sharp_tgt / sharp_ref if sharp_ref > 0 else 0.0, n,
                       worst([reference[i] for i in picks]), worst([target[i] for i in picks]),
                       path_offset_mm=float(path_offset_mm))
