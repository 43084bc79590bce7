"""The automatic quality checks a pair carries, and the width of review proxies.

Clips and proxies are written and read by `rigs/video.py` (H.264 yuv420p MP4, exact frame rate, odd sizes
trimmed); a proxy is a clip at `PROXY_WIDTH`, for side-by-side review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from rigs import statistics as stats

from .exposure import Exposure, worst

PROXY_WIDTH = 480


# --------------------------------------------------------------------------------------------- QC

ALIGNMENT_LIMIT_PX = 2.0
ALIGNMENT_PRECISION_PX = 0.1    # shifts are judged at the precision the estimators have
BREATHING_LIMIT = 0.05          # a focus pair may change magnification by this much (real lenses: 0.4-2.3 %/step)
CLIPPED_FLAG = 0.05


@dataclass(frozen=True)
class PairQuality:
    alignment_px: float        # mean |shift| between matching frames (rigs.statistics.phase_shift); ~0 = registered
    clipped_fraction: float    # share of pixels at 0/255 in either clip (worst of the two)
    sharpness_ratio: float     # exposure-normalised Laplacian energy, target / reference
    frames: int
    reference_exposure: Exposure | None = None    # each side's worst frame (capture/exposure.py)
    target_exposure: Exposure | None = None
    path_offset_mm: float = 0.0     # the target's pass shifted along the slider by design (camera-path sweep)
    breathing_scale: float | None = None   # focus pair: the magnification change allowed for (1 = none)

    @property
    def flags(self) -> list[str]:
        flags = []
        if round(self.alignment_px / ALIGNMENT_PRECISION_PX) * ALIGNMENT_PRECISION_PX >= ALIGNMENT_LIMIT_PX \
                and not self.path_offset_mm:
            flags.append(f"misaligned by {self.alignment_px:.1f} px"
                         + (" (after the focus breathing)" if self.breathing_scale is not None else ""))
        if self.breathing_scale is not None and abs(self.breathing_scale - 1.0) > BREATHING_LIMIT:
            flags.append(f"misaligned: magnification changed by {100 * (self.breathing_scale - 1):+.1f} %, more "
                         f"than focus breathing ({100 * BREATHING_LIMIT:.0f} %)")
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


def alignment_error(a: np.ndarray, b: np.ndarray, *, zoom: float = 1.0) -> float:
    """Shift (px) between two frames of one path by the toolkit's one shift estimator
    (`rigs.statistics.phase_shift`); `zoom`: b was shot with a lens that many times longer, so a is cropped to
    b's view first (a zoom pair is registered when its centres agree)."""
    return float(np.hypot(*stats.phase_shift(a, b, zoom=zoom)))


def clipped_fraction(rgb: np.ndarray) -> float:
    return float(np.mean((rgb.max(axis=2) >= 255) | (rgb.max(axis=2) <= 0)))


def sharpness(rgb: np.ndarray) -> float:
    """The evaluation's sharpness (`rigs.statistics.sharpness`: exposure-normalised Laplacian energy), so an
    exposure pair does not read as a focus change."""
    return stats.sharpness(rgb)


def breathing_alignment(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(shift px, magnification) of a focus pair: focus breathing (a change of magnification about the
    centre) is allowed for and the shift left over is the misalignment (`rigs.statistics`)."""
    try:
        return stats.centre_shift_and_scale(a, b)
    except ValueError:
        return alignment_error(a, b), 1.0


def pair_quality(reference: Sequence[np.ndarray], target: Sequence[np.ndarray], *,
                 path_offset_mm: float = 0.0, zoom: float = 1.0, breathing: bool = False) -> PairQuality:
    """QC of one pair. A pair of a camera-path sweep (`path_offset_mm` != 0) is shifted by design: its
    alignment is reported but never flagged. A zoom pair (`zoom` = focal-length ratio) is aligned after
    cropping the reference to the target's view. A focus pair (`breathing`) may change magnification by up to
    BREATHING_LIMIT (the lens breathes); only the shift left after that counts as misalignment."""
    n = min(len(reference), len(target))
    if n == 0:
        raise ValueError("a pair needs frames on both sides")
    picks = sorted({0, n // 2, n - 1})
    scale = None
    if breathing:
        found = [breathing_alignment(reference[i], target[i]) for i in picks]
        align, scale = float(np.mean([f[0] for f in found])), float(np.mean([f[1] for f in found]))
    else:
        align = float(np.mean([alignment_error(reference[i], target[i], zoom=zoom) for i in picks]))
    clipped = max(float(np.mean([clipped_fraction(reference[i]) for i in picks])),
                  float(np.mean([clipped_fraction(target[i]) for i in picks])))
    sharp_ref = float(np.mean([sharpness(reference[i]) for i in picks]))
    sharp_tgt = float(np.mean([sharpness(target[i]) for i in picks]))
    return PairQuality(align, clipped, sharp_tgt / sharp_ref if sharp_ref > 0 else 0.0, n,
                       worst([reference[i] for i in picks]), worst([target[i] for i in picks]),
                       path_offset_mm=float(path_offset_mm), breathing_scale=scale)
