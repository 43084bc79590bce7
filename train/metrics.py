"""Per-frame statistics and comparison metrics used by evaluation (GenPhoto-style CorrCoef, PSNR/SSIM).

Frames are uint8 RGB arrays (H, W, 3). Every statistic is computed with OpenCV/numpy so it runs offline.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

STATISTICS = ("sharpness", "brightness", "colour_balance", "zoom_scale", "structure")


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def sharpness(frame: np.ndarray) -> float:
    """Variance of the Laplacian (GenPhoto accur_bokehK): falls as bokeh blur grows."""
    return float(cv2.Laplacian(_gray(frame), cv2.CV_64F).var())


def brightness(frame: np.ndarray) -> float:
    """Mean grayscale brightness (GenPhoto accur_shutter_speed)."""
    return float(_gray(frame).mean())


def channel_means(frame: np.ndarray) -> np.ndarray:
    """Mean R, G, B (GenPhoto accur_color_temperature)."""
    return frame.reshape(-1, 3).mean(axis=0).astype(np.float64)


def colour_balance(frame: np.ndarray) -> float:
    """Mean B minus mean R: one scalar that rises as the picture gets cooler (for the disentanglement matrix)."""
    r, _, b = channel_means(frame)
    return float(b - r)


_SIFT = None


def affine_scale(a: np.ndarray, b: np.ndarray) -> float:
    """Scale of b relative to a from SIFT matches + a partial affine fit (GenPhoto accur_focal_length).
    NaN when too few matches survive (flat or unrelated frames)."""
    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create()
    ka, da = _SIFT.detectAndCompute(_gray(a), None)
    kb, db = _SIFT.detectAndCompute(_gray(b), None)
    if da is None or db is None or len(ka) < 3 or len(kb) < 3:
        return math.nan
    matches = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True).match(da, db)
    if len(matches) < 3:
        return math.nan
    src = np.float32([ka[m.queryIdx].pt for m in matches]).reshape(-1, 1, 2)
    dst = np.float32([kb[m.trainIdx].pt for m in matches]).reshape(-1, 1, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    if matrix is None:
        return math.nan
    sx = math.hypot(matrix[0, 0], matrix[0, 1])
    sy = math.hypot(matrix[1, 0], matrix[1, 1])
    return float((sx + sy) / 2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Capped at 100 dB for identical frames so reports stay finite JSON."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse < 1e-8 else min(100.0, 10 * math.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Gaussian-window SSIM (Wang et al. 2004, sigma 1.5) on grayscale, mean over the image."""
    x, y = _gray(a).astype(np.float64), _gray(b).astype(np.float64)
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


def clip_statistic(name: str, clip: np.ndarray) -> float | np.ndarray:
    """A clip's statistic = mean of its per-frame statistic (channel means keep their 3 values)."""
    fn = {"sharpness": sharpness, "brightness": brightness, "colour_balance": colour_balance,
          "channel_means": channel_means}[name]
    values = [fn(frame) for frame in clip]
    return np.mean(values, axis=0) if name == "channel_means" else float(np.mean(values))


def zoom_sequence(clips: Sequence[np.ndarray]) -> np.ndarray:
    """Scale between consecutive sweep elements (middle frames), the sequence GenPhoto correlates for zoom."""
    mids = [clip[len(clip) // 2] for clip in clips]
    return np.array([affine_scale(a, b) for a, b in zip(mids, mids[1:])], dtype=np.float64)


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
