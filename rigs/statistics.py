"""Per-frame and per-clip image statistics: the one definition QC, sweep checks and evaluation share.

Capture QC (capture/clips.py), the sweep measurement (capture/sweeps.py) and evaluation (train/metrics.py,
train/evaluate.py) all measure frames with the functions here, so a sweep that passes QC is measured the same
way when a model is scored on it. Pure numpy/OpenCV, no I/O.

Frames are uint8 RGB arrays (H, W, 3); clips are (T, H, W, 3). Every statistic is defined at the evaluation
resolution (64 px frames and up): an undefined statistic is a bug, not a 0. The controls registry
(rigs/controls.py) names the statistic of each control; `STATISTICS` maps those names to the functions here,
and an import-time check keeps the two in step.

Statistics of a clip relative to its sweep's source clip take `source`; those that need to know where the
depth says defocus changes take `depth` (metres, (T, H, W) or (H, W)) and `focus` (the sweep's d_f).
Scales are chosen so that a control's response is close to linear: log of Laplacian energy (bokeh), log
of a zoom factor, log of B/R (colour), log of the noise sigma; brightness is GenPhoto's mean grey level.

`phase_shift` is the one image-shift estimator: QC's alignment check and the translation statistic's
fallback both call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from . import controls as registry
from . import optics


def gray(frame: np.ndarray) -> np.ndarray:
    """8-bit grey levels of an RGB frame."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _gray_f(frame: np.ndarray) -> np.ndarray:
    return gray(frame).astype(np.float32)


def _frames(clip: np.ndarray) -> np.ndarray:
    clip = np.asarray(clip)
    return clip[None] if clip.ndim == 3 else clip


def _depth_frames(depth: np.ndarray | None, n: int, shape: tuple[int, int]) -> np.ndarray | None:
    """Depth resized to the frames' size, one map per frame (a single map is repeated)."""
    if depth is None:
        return None
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim == 2:
        depth = depth[None]
    maps = [cv2.resize(d, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) if d.shape != shape else d
            for d in depth[:n]]
    while len(maps) < n:
        maps.append(maps[-1])
    return np.stack(maps)


def disparity(depth: np.ndarray) -> np.ndarray:
    """1/depth (metres), with depth floored at 1 mm so a zero or missing depth reads as very near, not infinite."""
    return 1.0 / np.maximum(depth, 1e-3)


def normalised_disparity(depth: np.ndarray) -> np.ndarray:
    """1/depth min-max normalised over the whole clip (1 = nearest), as the control mapping defines d_f."""
    disp = disparity(np.asarray(depth, dtype=np.float32))
    lo, hi = float(disp.min()), float(disp.max())
    return (disp - lo) / max(hi - lo, 1e-8)


# ------------------------------------------------------------------------------------------------ per frame

def _contrast(frame: np.ndarray) -> np.ndarray:
    """Grey levels divided by their mean: detail measured this way does not change with exposure."""
    gray = _gray_f(frame)
    return gray / max(float(gray.mean()), 1.0)


def laplacian_energy(frame: np.ndarray) -> np.ndarray:
    lap = cv2.Laplacian(_contrast(frame), cv2.CV_32F)
    return lap * lap


def sharpness(frame: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Laplacian energy of the exposure-normalised frame (GenPhoto accur_bokehK uses the Laplacian's
    variance of raw grey levels, which an exposure change moves as much as blur does), over `mask` if given."""
    energy = laplacian_energy(frame)
    if mask is not None and mask.any():
        return float(energy[mask].mean())
    return float(energy.mean())


def brightness(frame: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean grayscale brightness (GenPhoto accur_shutter_speed), over `mask` if given."""
    g = gray(frame)
    return float(g[mask].mean() if mask is not None and mask.any() else g.mean())


def colour_balance(frame: np.ndarray, mask: np.ndarray | None = None) -> float:
    """log(B / R) of the linear channel means: rises as the picture turns cooler, ~linear in mired. `mask`:
    only these pixels (a real frame's clipped pixels and padding say nothing about the white balance)."""
    pixels = frame[mask] if mask is not None and mask.any() else frame.reshape(-1, 3)
    linear = optics.srgb_decode(pixels.reshape(-1, 3).astype(np.float32) / 255.0)
    r, _, b = linear.mean(axis=0)
    return float(math.log(max(float(b), 1e-6) / max(float(r), 1e-6)))


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_sigma(frame: np.ndarray) -> float:
    """Immerkær's fast noise estimate (grey levels) over the flattest third of the frame (judged on a smoothed
    copy, so the noise itself does not choose where it is measured): texture and edges are not noise."""
    gray = _gray_f(frame)
    response = np.abs(cv2.filter2D(gray, cv2.CV_32F, _NOISE_KERNEL))[1:-1, 1:-1]
    smooth = cv2.GaussianBlur(gray, (0, 0), 2.0)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    local = cv2.blur(np.sqrt(gx * gx + gy * gy), (5, 5))[1:-1, 1:-1]
    flat = local <= np.quantile(local, 1.0 / 3.0)
    return float(math.sqrt(math.pi / 2.0) / 6.0 * response[flat].mean())


# ------------------------------------------------------------------------------------------------ zoom

def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 1e-9 else 0.0


def _edges(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    return np.sqrt(gx * gx + gy * gy)


def zoom_factor(source: np.ndarray, frame: np.ndarray, *, lo: float = 0.8, hi: float = 4.0,
                step: float = 0.01) -> float:
    """Magnification of `frame` relative to `source` (1.2 = a 1.2x centre zoom), by a search over scales.

    For each candidate s the source's centre (1/s of its size) is resized to the frame's size and compared
    with the frame by normalised cross-correlation of gradient magnitudes over the central 80 %; the best s
    is refined by a parabola through its neighbours. Works on small frames where feature matching finds too
    few points (a 64 px frame has a handful of SIFT keypoints).
    """
    a, b = _gray_f(source), _gray_f(frame)
    h, w = b.shape
    my, mx = int(round(h * 0.1)), int(round(w * 0.1))
    target = _edges(b)[my:h - my, mx:w - mx]
    logs = np.arange(math.log(lo), math.log(hi) + 1e-9, step)
    scores = np.empty(len(logs))
    for i, ls in enumerate(logs):
        scores[i] = _ncc(_edges(_magnify(a, math.exp(ls), (h, w)))[my:h - my, mx:w - mx], target)
    best = int(np.argmax(scores))
    offset = 0.0
    if 0 < best < len(logs) - 1:
        y0, y1, y2 = scores[best - 1], scores[best], scores[best + 1]
        denom = y0 - 2 * y1 + y2
        if abs(denom) > 1e-12:
            offset = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return float(math.exp(logs[best] + offset * step))


def _magnify(gray: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """The centre of `gray` magnified by `scale` (< 1 shrinks, with reflected borders) at `size` (H, W)."""
    h, w = gray.shape[:2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    oh, ow = size
    matrix = np.array([[1.0 / scale * w / ow, 0, cx - (ow - 1) / 2.0 / scale * w / ow],
                       [0, 1.0 / scale * h / oh, cy - (oh - 1) / 2.0 / scale * h / oh]], dtype=np.float64)
    return cv2.warpAffine(gray, matrix, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


# ------------------------------------------------------------------------------------------------ camera path

def horizontal_shift(source: np.ndarray, frame: np.ndarray) -> float:
    """Median horizontal image translation (px) of `frame` against `source` from tracked features
    (Shi-Tomasi corners + pyramidal Lucas-Kanade, forward-backward checked); phase correlation when too few
    features survive. Positive = content moved right."""
    a, b = gray(source), gray(frame)
    points = cv2.goodFeaturesToTrack(a, maxCorners=200, qualityLevel=0.01, minDistance=3, blockSize=5)
    if points is not None and len(points) >= 6:
        lk = dict(winSize=(11, 11), maxLevel=3,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        fwd, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, points, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, fwd, None, **lk)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - points).reshape(-1, 2), axis=1) < 1.0)
        if good.sum() >= 6:
            return float(np.median((fwd - points).reshape(-1, 2)[good, 0]))
    return phase_shift(source, frame)[0]


# ------------------------------------------------------------------------------------------------ shift

def _normalised(gray: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance: an exposure difference must not read as a shift."""
    return (gray - gray.mean()) / (gray.std() + 1e-6)


def centre_zoom(rgb: np.ndarray, zoom: float) -> np.ndarray:
    """The centre 1/zoom of a frame scaled back to its size: what a lens `zoom` times longer sees."""
    if abs(zoom - 1.0) < 1e-6:
        return rgb
    h, w = rgb.shape[:2]
    ch, cw = max(2, round(h / zoom)), max(2, round(w / zoom))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(rgb[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR)


def phase_shift(a: np.ndarray, b: np.ndarray, *, zoom: float = 1.0) -> tuple[float, float]:
    """(dx, dy) px that moves `a`'s content onto `b`'s (positive = content moved right / down), by phase
    correlation of the exposure-normalised grey frames under a Hanning window. `zoom`: b was shot with a lens
    that many times longer (or magnified by focus breathing), so a's centre is scaled to b's view first.
    A zoom below 1 (b sees more) crops b's centre instead. The one shift estimator of the toolkit: QC
    alignment and the translation statistic's fallback."""
    if zoom >= 1.0:                     # b magnified: a's centre is what b sees
        a = centre_zoom(a, zoom)
    else:                               # b sees more than a (breathing the other way): b's centre is a's view
        b = centre_zoom(b, 1.0 / zoom)
    ga = _normalised(_gray_f(a))
    gb = _normalised(_gray_f(b))
    if ga.shape != gb.shape:
        gb = cv2.resize(gb, (ga.shape[1], ga.shape[0]))
    window = cv2.createHanningWindow((ga.shape[1], ga.shape[0]), cv2.CV_32F)
    (dx, dy), _response = cv2.phaseCorrelate(ga, gb, window)
    return float(dx), float(dy)


def affine_registration(a: np.ndarray, b: np.ndarray, *, width: int = 640) -> tuple[np.ndarray, float]:
    """The affine warp (2x3, in `a`'s pixels: b(x) ~ a(W x)) that registers `b` onto `a`, by OpenCV's ECC
    (zero-mean normalised intensities: an exposure or colour step does not read as motion) started from the
    magnification `zoom_factor` finds; fitted on copies at most `width` wide. Also returns the fit's scale factor to `a`'s size.
    Raises ValueError when ECC does not converge."""
    scale = min(1.0, width / a.shape[1])
    size = (max(8, round(a.shape[1] * scale)), max(8, round(a.shape[0] * scale)))
    fa = cv2.resize(a, size, interpolation=cv2.INTER_AREA) if scale < 1 else a
    fb = cv2.resize(b, size, interpolation=cv2.INTER_AREA) if scale < 1 else b
    zoom = zoom_factor(fa, fb, lo=0.8, hi=1.25, step=0.004)       # start from the magnification, about the centre
    cx, cy = (size[0] - 1) / 2.0, (size[1] - 1) / 2.0
    warp = np.array([[1 / zoom, 0, cx * (1 - 1 / zoom)], [0, 1 / zoom, cy * (1 - 1 / zoom)]], np.float32)
    ga = cv2.GaussianBlur(_gray_f(fa), (0, 0), 1.0)
    gb = cv2.GaussianBlur(_gray_f(fb), (0, 0), 1.0)
    try:
        _, warp = cv2.findTransformECC(ga, gb, warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5), None, 5)
    except cv2.error as exc:
        raise ValueError(f"the frames could not be registered (ECC: {str(exc).strip().splitlines()[-1]})") from None
    warp = warp.astype(np.float64)
    warp[:, 2] /= scale                                  # back to a's pixels
    return warp, scale


def centre_shift_and_scale(a: np.ndarray, b: np.ndarray, *, width: int = 640) -> tuple[float, float]:
    """How far (px, in `a`'s pixels) `b`'s picture centre sits from `a`'s once a change of magnification about
    the centre (focus breathing, a zoom) is allowed for, and that magnification. A pair that only breathes
    has ~0 shift; a camera that moved has its shift."""
    warp, _ = affine_registration(a, b, width=width)
    h, w = a.shape[:2]
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    moved = warp[:, :2] @ centre + warp[:, 2] - centre
    return float(np.hypot(*moved)), float(math.sqrt(abs(np.linalg.det(warp[:, :2]))))


# ------------------------------------------------------------------------------------------------ clip level

@dataclass(frozen=True)
class Context:
    """What a statistic may need beyond the clip: the sweep's source clip, its true depth and focus."""

    source: np.ndarray | None = None
    depth: np.ndarray | None = None        # metres, (T, H, W) or (H, W), of the source clip
    focus: float | None = None             # the sweep's d_f (normalised disparity of the focus plane)


def defocus_mask(depth: np.ndarray | None, focus: float | None, shape: tuple[int, int], n: int
                 ) -> np.ndarray | None:
    """Pixels whose disparity lies farthest from the focus plane (the half where defocus changes most)."""
    maps = _depth_frames(depth, n, shape)
    if maps is None:
        return None
    disp = normalised_disparity(maps)
    distance = np.abs(disp - (0.5 if focus is None else focus))
    if float(distance.max() - distance.min()) < 1e-6:
        return None
    return distance >= np.quantile(distance, 0.5)


def clip_sharpness(clip: np.ndarray, ctx: Context = Context()) -> float:
    """log mean Laplacian energy where the depth says defocus changes (the whole frame without depth)."""
    frames = _frames(clip)
    mask = defocus_mask(ctx.depth, ctx.focus, frames.shape[1:3], len(frames))
    energies = [sharpness(f, None if mask is None else mask[i]) for i, f in enumerate(frames)]
    return float(math.log(max(float(np.mean(energies)), 1e-6)))


FOCUS_BANDS = 8
EDGE_MARGIN = 1.0 / 32.0      # band pixels this far (fraction of the width) from another band are left out
FOCUS_GRID = np.linspace(-0.1, 1.1, 241)       # candidate focus planes (normalised disparity), 0.005 apart:
                                                 # a plane beyond either end of the depth range reads as -0.1/1.1


def depth_bands(disp: np.ndarray, count: int = FOCUS_BANDS) -> list[np.ndarray]:
    """Masks of pixels at similar disparity: the distinct depths when the scene has few (layered planes),
    else `count` equal-population bands."""
    levels = np.unique(np.round(disp, 3))
    if len(levels) <= count:
        return [np.abs(disp - lv) < 5e-4 for lv in levels]
    edges = np.quantile(disp, np.linspace(0, 1, count + 1))
    return [(disp >= lo) & (disp <= hi) for lo, hi in zip(edges[:-1], edges[1:])]


def band_blur(clip: np.ndarray, source: np.ndarray, disp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per depth band: its mean disparity, a blur measure and the source's detail there (its Laplacian energy
    summed: a smooth band cannot show blur, so the fit trusts it less). The blur measure is
    sqrt(E_source / E_clip - 1) of the bands' Laplacian energies, which grows ~linearly with the blur radius
    for natural texture (energy kept after a blur of radius r ~ 1 / (1 + (r / r0)^2)). Pixels near a depth edge
    or clipped in either clip are left out."""
    gen = np.stack([laplacian_energy(f) for f in clip])
    src = np.stack([laplacian_energy(f) for f in source])
    margin = max(1, int(round(disp.shape[-1] * EDGE_MARGIN)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    # clipped pixels (in either clip) have lost their detail to exposure, not to blur
    clipped = np.stack([cv2.dilate(((a.max(axis=2) >= 250) | (b.max(axis=2) >= 250)).astype(np.uint8),
                                   np.ones((3, 3), np.uint8)) > 0 for a, b in zip(clip, source)])
    centres, blur, detail = [], [], []
    for whole in depth_bands(disp):
        # away from depth edges: a defocused foreground spills over the background next to it
        band = np.stack([cv2.erode(m.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0 for m in whole])
        band &= ~clipped
        if band.sum() < 16:
            continue
        ratio = float(src[band].mean()) / max(float(gen[band].mean()), 1e-12)
        centres.append(float(disp[band].mean()))
        blur.append(math.sqrt(max(ratio - 1.0, 0.0)))
        detail.append(float(src[band].sum()))
    return np.asarray(centres), np.asarray(blur), np.asarray(detail)


def fit_focus_plane(centres: np.ndarray, blur: np.ndarray, weights: np.ndarray) -> float:
    """The focus plane d of the thin lens: a circle of confusion grows linearly with the disparity's distance
    from the focus plane, on top of the blur every band shares (the lens at its best, the codec, noise):
    blur^2 ~ c + k (disparity - d)^2 with c, k >= 0. Least squares over `FOCUS_GRID` (closed form in c and k for
    each d), so a plane at either end of the depth range (one arm of the curve) is found as well as one inside."""
    x = (centres[None, :] - FOCUS_GRID[:, None]) ** 2                      # (grid, bands)
    y = blur[None, :] ** 2
    w = weights[None, :] / weights.sum()
    mx, my = (w * x).sum(1, keepdims=True), (w * y).sum(1, keepdims=True)
    k = np.clip((w * (x - mx) * (y - my)).sum(1, keepdims=True) / np.maximum((w * (x - mx) ** 2).sum(1, keepdims=True), 1e-18), 0.0, None)
    c = np.clip(my - k * mx, 0.0, None)
    residual = (w * (y - c - k * x) ** 2).sum(1)
    best = int(np.argmin(residual))
    if 0 < best < len(FOCUS_GRID) - 1:                                        # parabola through the neighbours
        y0, y1, y2 = residual[best - 1:best + 2]
        denom = y0 - 2 * y1 + y2
        step = float(FOCUS_GRID[1] - FOCUS_GRID[0])
        if denom > 1e-24:
            return float(FOCUS_GRID[best] + step * float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)))
    return float(FOCUS_GRID[best])


def clip_focus_depth(clip: np.ndarray, ctx: Context) -> float:
    """Normalised disparity of the focus plane (0 far .. 1 near): per depth band, how much of the source's
    (deep depth of field) detail the clip lost, read as a blur size; the thin lens's V (blur linear in the
    disparity's distance from the focus plane) fitted to those bands gives the plane. Needs the source clip and
    its true depth."""
    if ctx.source is None or ctx.depth is None:
        raise ValueError("focus_depth needs the sweep's source clip and its depth (a <clip>.depth.npz sidecar)")
    frames, source = _frames(clip), _frames(ctx.source)
    n = min(len(frames), len(source))
    disp = normalised_disparity(_depth_frames(ctx.depth, n, frames.shape[1:3]))
    centres, blur, detail = band_blur(frames[:n], source[:n], disp)
    if len(centres) < 2:
        raise ValueError("focus_depth: the depth map has no spread (a flat scene has no focus plane)")
    return fit_focus_plane(centres, blur, detail)


def focus_positions(frames: Sequence[np.ndarray], mask: np.ndarray | None = None, *, grid: tuple[int, int] = (12, 16)
                    ) -> tuple[np.ndarray, float]:
    """Where each frame of a registered focus stack is focused, without a depth map: depth from focus. Each
    tile of a grid is sharpest at some frame (its depth, in frames); a frame's position is the mean of the
    tiles' depths weighted by how close to their sharpest the frame keeps them (4th power). Returns the
    positions (frame index units) and how much focus changed anything: the median over tiles of
    (max - min) / max of their detail along the stack (0 = a focus that never drove)."""
    energy = np.stack([laplacian_energy(f) for f in frames])                  # (K, H, W)
    k, h, w = energy.shape
    rows, cols = grid
    tiles, weights = [], []
    for i in range(rows):
        for j in range(cols):
            ys, xs = slice(i * h // rows, (i + 1) * h // rows), slice(j * w // cols, (j + 1) * w // cols)
            if mask is not None and mask[ys, xs].mean() < 0.9:
                continue
            tiles.append(energy[:, ys, xs].reshape(k, -1).mean(1))
    if not tiles:
        raise ValueError("focus_positions: no tile lies inside the frames' common valid area")
    e = np.stack(tiles, axis=1)                                                 # (K, tiles)
    peak = e.max(0)
    change = (peak - e.min(0)) / np.maximum(peak, 1e-12)
    depth = np.argmax(e, axis=0).astype(np.float64)
    weights = (e / np.maximum(peak, 1e-12)) ** 4 * change[None, :]
    positions = (weights * depth[None, :]).sum(1) / np.maximum(weights.sum(1), 1e-12)
    return positions, float(np.median(change))


def clip_zoom(clip: np.ndarray, ctx: Context) -> float:
    """log of the magnification against the sweep's source (middle frames)."""
    if ctx.source is None:
        raise ValueError("zoom_scale needs the sweep's source clip")
    frames, source = _frames(clip), _frames(ctx.source)
    i = min(len(frames), len(source)) // 2
    return float(math.log(zoom_factor(source[i], frames[i])))


def clip_brightness(clip: np.ndarray, ctx: Context = Context()) -> float:
    return float(np.mean([brightness(f) for f in _frames(clip)]))


def clip_colour_balance(clip: np.ndarray, ctx: Context = Context()) -> float:
    return float(np.mean([colour_balance(f) for f in _frames(clip)]))


def clip_noise(clip: np.ndarray, ctx: Context = Context()) -> float:
    """log of the mean noise sigma (grey levels)."""
    return float(math.log(max(float(np.mean([noise_sigma(f) for f in _frames(clip)])), 1e-3)))


def clip_translation(clip: np.ndarray, ctx: Context) -> float:
    """Median horizontal translation (px) against the source, averaged over frames, with the clip's magnification
    (zoom, focus breathing; `zoom_factor` on the middle frames) taken out of the source first: a centred zoom
    moves no content sideways, but its radial flow, uncompensated, reads as a shift of whichever side has more
    features, which made every zoom edit "leak" into the camera path."""
    if ctx.source is None:
        raise ValueError("translation needs the sweep's source clip")
    frames, source = _frames(clip), _frames(ctx.source)
    n = min(len(frames), len(source))
    scale = _shift_free_zoom(source[n // 2], frames[n // 2])
    return float(np.mean([horizontal_shift(_magnify(source[i], scale, source[i].shape[:2]), frames[i])
                          for i in range(n)]))


def _shift_free_zoom(source: np.ndarray, frame: np.ndarray) -> float:
    """`zoom_factor` of the frame against the source moved by the frame's raw shift first: on a small frame a
    sideways move alone otherwise reads as a few per cent of zoom (a 4 px move of a 32 px frame), and taking that
    out would bend the move it is meant to keep."""
    dx = horizontal_shift(source, frame)
    moved = cv2.warpAffine(source, np.float32([[1, 0, dx], [0, 1, 0]]), (source.shape[1], source.shape[0]),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return zoom_factor(moved, frame)


#: statistic name (as the registry names it) -> clip function
STATISTICS: dict[str, Callable[[np.ndarray, Context], float]] = {
    "sharpness": clip_sharpness,
    "focus_depth": clip_focus_depth,
    "zoom_scale": clip_zoom,
    "brightness": clip_brightness,
    "colour_balance": clip_colour_balance,
    "noise": clip_noise,
}
_MISSING = {c.statistic for c in registry.CONTROLS} - set(STATISTICS)
if _MISSING:
    raise ImportError(f"rigs/statistics.py has no statistic {sorted(_MISSING)} named by the controls registry")

#: the statistic of each control, in registry order (the disentanglement matrix's columns)
CONTROL_STATISTIC: dict[str, str] = {c.name: c.statistic for c in registry.CONTROLS}
#: the camera path is not a photographic control; its statistic is the image translation
CAMERA_PATH = "camera_path"
PATH_STATISTIC = "translation"


def measure(name: str, clip: np.ndarray, ctx: Context = Context()) -> float:
    if name == PATH_STATISTIC:
        return clip_translation(clip, ctx)
    return STATISTICS[name](clip, ctx)


def can_measure(name: str, ctx: Context) -> str | None:
    """None when `name` is defined in this context, else why not."""
    if name in ("focus_depth",) and (ctx.source is None or ctx.depth is None):
        return "needs the source clip's depth"
    if name in ("zoom_scale", PATH_STATISTIC) and ctx.source is None:
        return "needs the source clip"
    return None
