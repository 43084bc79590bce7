"""Evaluation aggregates over the image statistics: CorrCoef, slope ratio, leakage, PSNR/SSIM, LPIPS.

The per-frame and per-clip statistics themselves (brightness, colour balance, sharpness, focus depth, zoom
scale, noise, the camera path's translation) live in `rigs/statistics.py`, shared with capture QC and the
sweep checks; this module compares the series those statistics give along a sweep.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import cv2
import numpy as np

from rigs.statistics import gray


# ------------------------------------------------------------------------------------------------ comparison

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Capped at 100 dB for identical frames so reports stay finite JSON."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse < 1e-8 else min(100.0, 10 * math.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Gaussian-window SSIM (Wang et al. 2004, sigma 1.5) on grayscale, mean over the image."""
    x, y = gray(a).astype(np.float64), gray(b).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda img: cv2.GaussianBlur(img, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def clip_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([psnr(x, y) for x, y in zip(a, b)]))


def clip_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([ssim(x, y) for x, y in zip(a, b)]))


def pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pearson r, or None when it is undefined (a constant or too-short sequence, NaNs)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.std(x) < 1e-12 or np.std(y) < 1e-12:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def first_differences_corr(reference: Sequence[float], generated: Sequence[float]) -> float | None:
    """CineCtrl/GenPhoto CorrCoef: Pearson r of the first differences of the statistic along the sweep."""
    return pearson(np.diff(np.asarray(reference, float)), np.diff(np.asarray(generated, float)))


def slope(values: Sequence[float], statistic: Sequence[float]) -> float | None:
    """Least-squares slope of the statistic against the control value."""
    x, y = np.asarray(values, dtype=np.float64), np.asarray(statistic, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.std(x) < 1e-12:
        return None
    return float(np.polyfit(x, y, 1)[0])


def slope_ratio(values: Sequence[float], reference: Sequence[float], generated: Sequence[float]) -> float | None:
    """Response slope ratio: generated change / captured change along the sweep (1 = the right amount;
    CorrCoef cannot see amplitude). None when the captured statistic does not move."""
    ref, gen = slope(values, reference), slope(values, generated)
    if ref is None or gen is None or abs(ref) < 1e-9:
        return None
    return gen / ref


#: along a sweep of one control, another statistic may move by at most this fraction of its own captured effect
LEAKAGE_LIMIT = 0.2
#: a neutral edit may shift the picture by at most this much (px): the camera path is the source's
NEUTRAL_TRANSLATION_LIMIT_PX = 0.5


def leakage(generated: Sequence[float], captured: Sequence[float], yardstick: float | None) -> float | None:
    """Amplitude-aware leakage of one statistic along a sweep of another control: how much further the output's
    statistic moves along the sweep than the captured sweep's own statistic does (physics couples some effects:
    a longer lens also magnifies the noise, so that much is allowed), as a fraction of the statistic's typical
    change along its own captured sweep (`yardstick`). 0 = moves no more than the capture; 1 = as much as its
    own control does. None when there is no yardstick (the statistic's own axis was not captured)."""
    if not yardstick or yardstick <= 0:
        return None
    gen = np.asarray(generated, dtype=np.float64)
    cap = np.asarray(captured, dtype=np.float64)
    excess = float(np.ptp(gen)) - float(np.ptp(cap))
    return max(0.0, excess) / yardstick


def leakage_max(matrix: Mapping[str, Mapping[str, float]], own: Mapping[str, str]) -> tuple[float, str] | None:
    """The largest off-diagonal leakage and where ("K -> noise"); `own`: each axis's own statistic."""
    cells = [(v, f"{axis} -> {stat}") for axis, row in matrix.items() for stat, v in row.items()
             if stat != own.get(axis)]
    return max(cells) if cells else None


def lpips_status() -> tuple[object | None, str]:
    """An LPIPS scorer when the `lpips` package AND its trunk weights are already on disk; else (None, why).
    Never downloads: LPIPS pulls torchvision weights at run time, which this environment cannot reach."""
    try:
        import lpips  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"LPIPS skipped: package 'lpips' not importable ({type(exc).__name__})"
    try:
        import torch
        hub = torch.hub.get_dir()
        from pathlib import Path
        if not any(Path(hub, "checkpoints").glob("alexnet-*.pth")):
            return None, f"LPIPS skipped: AlexNet trunk weights not found under {hub}/checkpoints"
        return lpips.LPIPS(net="alex", verbose=False), "LPIPS (alex) computed"
    except Exception as exc:  # noqa: BLE001
        return None, f"LPIPS skipped: {exc}"
