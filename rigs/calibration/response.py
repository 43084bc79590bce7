"""The response curve: which relative amount of light each 8-bit code stands for, per channel.

Measured from an exposure bracket of a static scene (only the exposure time changes) with OpenCV's
Debevec & Malik (1997) or Robertson et al. (2003) solver. Both recover the curve only up to a scale per
channel; we fix each channel's scale so that code 255 (the body's clipping point) is linear 1, which is the
convention of `optics.srgb_decode` too, so a calibrated curve is a drop-in replacement for the sRGB one.

`ResponseCurve.to_linear` / `to_encoded` accept numpy arrays or torch tensors (channels on any axis), so the
simulated camera's checks, the effect simulator and evaluation all share one implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from .. import optics
from ..camera.protocol import APERTURE, ISO, SHUTTER
from .bracket import Bracket, check_static, prepare
from .inputs import (
    CalibrationInputError, Frame, black_fraction, clipped_fraction, require_count, require_same, require_same_size,
)

WHAT = "response"
METHODS = ("debevec", "robertson")
CODES = 256
MIN_FRAMES = 2           # different exposures; real auto brackets have 3, a held-out half of a 4-frame one 2
MIN_SPAN_STOPS = 2.0     # an auto bracket of +-1 EV; less, and the ends of the curve are guesses
_INVERSE_SAMPLES = 1024      # inverse table, uniform in sqrt(linear): fine steps where the curve is steep


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


@dataclass(frozen=True)
class ResponseCurve:
    """`linear[code, channel]`: relative linear light of each code, 0 at code 0 and 1 at code 255, increasing."""

    linear: np.ndarray            # (256, 3) float64
    method: str = "debevec"

    def __post_init__(self) -> None:
        table = np.asarray(self.linear, np.float64)
        if table.shape != (CODES, 3):
            raise ValueError(f"a response table has {CODES} codes x 3 channels, not {table.shape}")
        object.__setattr__(self, "linear", _monotonic(table))
        u = np.linspace(0.0, 1.0, _INVERSE_SAMPLES)
        codes = np.arange(CODES) / (CODES - 1.0)
        inverse = np.stack([np.interp(u * u, self.linear[:, c], codes) for c in range(3)], axis=1)
        object.__setattr__(self, "_inverse", inverse)

    # ------------------------------------------------------------------ apply
    def to_linear(self, encoded, *, channel_axis: int = -1):
        """Encoded values in [0, 1] (numpy or torch) → relative linear light in [0, 1]."""
        return _lookup(encoded, self.linear, channel_axis)

    def to_encoded(self, linear, *, channel_axis: int = -1):
        """Relative linear light → encoded [0, 1]; above 1 clips, as the body does."""
        if _is_torch(linear):
            import torch  # noqa: PLC0415

            u = torch.sqrt(linear.clamp(0.0, 1.0))
        else:
            u = np.sqrt(np.clip(linear, 0.0, 1.0))
        return _lookup(u, self._inverse, channel_axis)

    def to_dict(self) -> dict:
        """Channel-major: {"method", "linear": [[256 red values], [green], [blue]]}."""
        return {"method": self.method, "linear": [[float(f"{v:.6g}") for v in ch] for ch in self.linear.T]}

    @classmethod
    def from_dict(cls, data: dict) -> "ResponseCurve":
        return cls(np.asarray(data["linear"], np.float64).T, str(data.get("method", "debevec")))


def _monotonic(table: np.ndarray) -> np.ndarray:
    """Strictly increasing from 0 at code 0 to 1 at code 255 (a solver's wiggles in the flat ends removed)."""
    out = np.maximum.accumulate(np.clip(table, 0.0, None), axis=0)
    out = out - out[0]
    out = out / out[-1]
    for c in range(3):                       # flat steps get a hair of slope, so the inverse is a function
        flat = np.flatnonzero(np.diff(out[:, c]) <= 0)
        if flat.size:
            out[:, c] = np.maximum.accumulate(out[:, c] + np.arange(CODES) * 1e-9)
            out[:, c] = (out[:, c] - out[0, c]) / (out[-1, c] - out[0, c])
    return out


def _lookup(x, table: np.ndarray, channel_axis: int):
    """Per-channel linear interpolation in a table sampled uniformly over [0, 1]."""
    n = table.shape[0] - 1
    if _is_torch(x):
        import torch  # noqa: PLC0415

        t = torch.as_tensor(table, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
        pos = x.clamp(0.0, 1.0) * n
        lo = pos.floor().clamp(0, n - 1)
        frac = pos - lo
        lo = lo.long()
        moved = lo.movedim(channel_axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 3)
        cols = torch.arange(3, device=x.device).expand_as(flat)
        a = t[flat, cols].reshape(shape).movedim(-1, channel_axis)
        b = t[flat + 1, cols].reshape(shape).movedim(-1, channel_axis)
        return a + (b - a) * frac
    arr = np.asarray(x, np.float64)
    pos = np.clip(arr, 0.0, 1.0) * n
    lo = np.clip(np.floor(pos), 0, n - 1).astype(np.intp)
    frac = pos - lo
    moved = np.moveaxis(lo, channel_axis, -1)
    cols = np.arange(3)
    a = np.moveaxis(table[moved, cols], -1, channel_axis)
    b = np.moveaxis(table[moved + 1, cols], -1, channel_axis)
    return a + (b - a) * frac


SRGB = ResponseCurve(np.repeat(optics.srgb_decode(np.arange(CODES) / (CODES - 1.0))[:, None], 3, axis=1), "srgb")


# ---------------------------------------------------------------------------------------------------- fitting

def bracket_exposures(frames: Sequence[Frame]) -> list[float]:
    """Each frame's relative exposure: its time, times its ISO over the bracket's most common ISO where the ISO
    is known (bodies raise the ISO inside an auto bracket when the time runs out; to the response, gain and time
    are the same light)."""
    times = [f.setting(SHUTTER, WHAT) for f in frames]
    if any(t <= 0 for t in times):
        raise CalibrationInputError(f"{WHAT}: exposure times must be positive, got {times}")
    isos = [f.settings.get(ISO) for f in frames]
    if all(v is not None and math.isfinite(float(v)) and float(v) > 0 for v in isos):
        values = [float(v) for v in isos]                      # type: ignore[arg-type]
        common = max(set(values), key=values.count)
        return [t * v / common for t, v in zip(times, values)]
    return times


def check_bracket(frames: Sequence[Frame], *, aligned: bool = True, min_span: float = MIN_SPAN_STOPS) -> Bracket:
    """A usable bracket, aligned, with its masks; or a message saying what to reshoot."""
    require_count(frames, MIN_FRAMES, WHAT, "shoot a bracket of a static scene changing only the exposure, "
                                            "e.g. 1-stop steps over 5 stops")
    require_same_size(frames, WHAT)
    require_same(frames, (APERTURE,), WHAT, "only the exposure (time, or time and ISO) may change in a bracket: fix "
                                           "the aperture (and white balance) and reshoot")
    exposures = bracket_exposures(frames)
    if len({round(math.log2(t), 3) for t in exposures}) < MIN_FRAMES:
        raise CalibrationInputError(f"{WHAT}: only {len(set(exposures))} different exposures among {len(frames)} "
                                    f"frames; a bracket needs at least {MIN_FRAMES} different exposures")
    span = math.log2(max(exposures) / min(exposures))
    if span < min_span:
        raise CalibrationInputError(f"{WHAT}: the bracket spans {span:.1f} stops; it needs at least "
                                    f"{min_span:g} so every code is seen well exposed in some frame "
                                    "(e.g. 1-stop steps over 5 stops)")
    order = np.argsort(exposures)
    darkest, brightest = frames[order[0]], frames[order[-1]]
    if clipped_fraction(darkest.image) > 0.5:
        raise CalibrationInputError(f"{WHAT}: even the shortest exposure ({darkest.name}) clips "
                                    f"{clipped_fraction(darkest.image):.0%} of the frame; add shorter times")
    if black_fraction(brightest.image) > 0.5:
        raise CalibrationInputError(f"{WHAT}: even the longest exposure ({brightest.name}) is black over "
                                    f"{black_fraction(brightest.image):.0%} of the frame; add longer times")
    if clipped_fraction(brightest.image) < 0.005:
        raise CalibrationInputError(f"{WHAT}: no frame reaches the clipping point (the longest, {brightest.name}, "
                                    "clips nothing); add longer times so the top of the curve is measured")
    prepared = prepare(frames, exposures, WHAT, aligned=aligned)
    check_static(prepared, WHAT)
    return prepared


SMOOTHER = (10.0, 100.0)  # the stiffer smoothness priors tried besides the given one (the fit keeps the best)
TIE_MARGIN = 1.05         # in-sample errors within this factor of the best are a tie: the stiffest curve is kept ...
COARSE_STEP_STOPS = 1.0   # ... and the stiffer priors tried, when the bracket's median step is coarser than this
WORSE_MARGIN = 1.05       # a curve erring more than this times the ideal camera's error is refused (an sRGB body
                          # fits to the ideal camera's error within about 1 %: that is a calibration, not a failure)


MIN_MEASURED_CODES = 98  # of the 196 reliable codes (30-225): a channel with fewer measured keeps the ideal curve


class Underdetermined(CalibrationInputError):
    """Frames too far apart to measure the curve: too few codes are seen where another frame is well exposed too."""

    def __init__(self, measured: Sequence[int], span: float, count: int):
        self.measured = list(measured)
        reliable = RELIABLE_CODES[1] - RELIABLE_CODES[0] + 1
        super().__init__(
            f"{WHAT}: only {max(measured)} of the {reliable} codes {RELIABLE_CODES[0]}-{RELIABLE_CODES[1]} are "
            f"measured in any channel (seen at least {MEASURED_MIN_SEEN} times where another frame of the bracket "
            f"is well exposed too; at least {MIN_MEASURED_CODES} needed): {count} frames over {span:.1f} stops "
            "overlap too little, and the curve between them would be the solver's guess, which predicts worse "
            "than the ideal camera. Add exposures in between (steps of at most 3 stops); --force fits it anyway")


class WorseThanIdeal(CalibrationInputError):
    """A fitted curve that predicts the bracket's own frames worse than the ideal sRGB camera: not a calibration."""

    def __init__(self, figures: dict):
        self.figures = figures
        super().__init__(
            f"{WHAT}: the fitted curve predicts this bracket's frames worse than the ideal sRGB camera "
            f"({figures['calibrated_mae']:.2f} vs {figures['ideal_mae']:.2f} levels over {figures['pairs']} pairs, "
            f"ratio {figures['ratio']:.2f}; OpenCV's bare CalibrateDebevec on the same frames: "
            f"{figures['opencv_mae']:.2f} levels, ratio {figures['opencv_ratio']:.2f}), so it is not stored. The "
            "bracket cannot describe the body with one curve (local tone mapping, DRO / Active D-Lighting / HDR "
            "modes, or too few well-exposed pixels): switch those off and reshoot; --force stores it anyway")


def opencv_curve(frames: Sequence[Frame], exposures: Sequence[float]) -> ResponseCurve:
    """OpenCV's bare `CalibrateDebevec` on the frames as given (no alignment, no masks, no re-measuring), scaled
    so code 255 is 1: the reference a user already has."""
    raw = cv2.createCalibrateDebevec().process([np.ascontiguousarray(f.image) for f in frames],
                                               np.asarray(exposures, np.float32))[:, 0, :].astype(np.float64)
    return ResponseCurve(raw / raw[-1], "opencv-debevec")


def fit_response(frames: Sequence[Frame], *, method: str = "debevec", samples: int = 200,
                 smoothness: float = 10.0, force: bool = False, aligned: bool = True,
                 min_span: float = MIN_SPAN_STOPS) -> tuple[ResponseCurve, dict]:
    """Fit the curve to a bracket; returns it with the fit's figures (frames, span, alignment shifts, share of
    flat pixels used, in-sample exposure prediction error of the ideal sRGB camera, of the fitted curve and of
    OpenCV's bare Debevec on the same frames).

    The frames are aligned and masked first (`bracket.py`); OpenCV's solver gives the curve's shape on their
    common interior; each code's light is then re-measured where the picture is flat (see `_remeasure`), the
    table smoothed, and each channel scaled so code 255 is 1 (`_anchor_top`). A curve that predicts the
    bracket's own frames worse than the ideal camera is refused (`WorseThanIdeal`) unless `force`."""
    if method not in METHODS:
        raise CalibrationInputError(f"{WHAT}: method {method!r} is not one of {', '.join(METHODS)}")
    prepared = check_bracket(frames, aligned=aligned, min_span=min_span)
    exposures = prepared.exposures
    rows, cols = prepared.crop()
    images = [np.ascontiguousarray(f.image[rows, cols]) for f in prepared.frames]
    if method == "debevec":
        solver = cv2.createCalibrateDebevec(samples=samples, lambda_=smoothness, random=False)
    else:
        solver = cv2.createCalibrateRobertson(max_iter=60, threshold=1e-4)
    measured = measured_codes(images, prepared.valid[rows, cols])
    if not force and max(measured) < MIN_MEASURED_CODES:
        raise Underdetermined(measured, math.log2(max(exposures) / min(exposures)), len(frames))
    raw = solver.process(images, np.asarray(exposures, np.float32))[:, 0, :].astype(np.float64)   # arbitrary scale
    step = pixel_step(images[0].shape[0] * images[0].shape[1])
    table, flat_share = _remeasure(images, exposures, _fill_unseen(raw), mask=prepared.valid[rows, cols], step=step)
    pairs = neighbour_pairs(exposures)
    ideal = exposure_prediction_error(prepared, SRGB, pairs=pairs, step=step)
    reference = exposure_prediction_error(prepared, opencv_curve(frames, exposures), pairs=pairs, step=step)
    # candidates: the re-measured table (best where the bracket has flat, well-exposed areas in every channel)
    # and the solver's own shape on the aligned, masked interior (a night scene's blue channel has almost no
    # well-exposed pixels to re-measure). A channel the bracket barely measures (such a blue) keeps the ideal
    # camera's curve: the solver's smoothing guess there predicts held-out frames worse than sRGB does
    thin = [c for c in range(3) if measured[c] < MIN_MEASURED_CODES and max(measured) >= MIN_MEASURED_CODES]
    candidates = [(ResponseCurve(_keep_ideal(_anchor_top(_smooth(table)), thin), method), "re-measured"),
                  (ResponseCurve(_keep_ideal(_fill_unseen(raw) / _fill_unseen(raw)[-1], thin), method), "solver")]
    # and, where the steps are coarser than a stop, Debevec with a stiffer smoothness prior: the data pin the curve
    # only at codes a step's ratio apart and the solver's default smoothing lets it wave in between (right in
    # sample, off for a 1-stop prediction: the simulated body's held-out ratio 0.73 at lambda 10, 0.22 at 100).
    # A finer bracket measures the codes in between; there the stiff prior only bends the shoulder.
    coarse = float(np.median(np.diff(np.sort(np.log2(exposures))))) > COARSE_STEP_STOPS
    if method == "debevec" and coarse:
        for stiffer in SMOOTHER:
            solver = cv2.createCalibrateDebevec(samples=samples, lambda_=smoothness * stiffer, random=False)
            stiff = solver.process(images, np.asarray(exposures, np.float32))[:, 0, :].astype(np.float64)
            stiff = _fill_unseen(stiff)
            candidates.append((ResponseCurve(_keep_ideal(_anchor_top(stiff), thin), method),
                               f"solver, smoothness x{stiffer:g}"))
    scored = [(exposure_prediction_error(prepared, c, pairs=pairs, step=step), c, how) for c, how in candidates]
    # candidates in order of stiffness; in a coarse bracket those within TIE_MARGIN of the best in sample are a tie
    # and the stiffest wins: the data say nothing against the smoother curve, and between a step's codes the
    # wavier one is a guess (the simulated body's 2-stop half: 2.30 vs 2.35 levels in sample, 7.2 vs 2.1 held out
    # at 1 stop)
    best = min(item[0]["mae"] for item in scored)
    fitted, curve, source = [item for item in scored if item[0]["mae"] <= (TIE_MARGIN if coarse else 1) * best][-1]
    figures = {"frames": len(frames), "span_stops": math.log2(max(exposures) / min(exposures)), "method": method,
               "shifts": [list(s) for s in prepared.shifts], "picture_share": float(prepared.valid.mean()),
               "flat_share": flat_share, "curve_from": source, "measured_codes": measured,
               "ideal_channels": "".join("RGB"[c] for c in thin), "ideal_mae": ideal["mae"],
               "calibrated_mae": fitted["mae"],
               "ratio": fitted["mae"] / ideal["mae"] if ideal["mae"] else None, "opencv_mae": reference["mae"],
               "opencv_ratio": reference["mae"] / ideal["mae"] if ideal["mae"] else None,
               "pixels": fitted["pixels"], "pairs": fitted["pairs"]}
    if not force and fitted["mae"] > WORSE_MARGIN * ideal["mae"]:
        raise WorseThanIdeal(figures)
    return curve, figures


def pixel_step(pixels: int) -> int:
    """The stride the prediction error samples frames with: every other pixel of a large frame (its error is as
    well measured at a quarter of the cost), every pixel of a small one (every pixel counts)."""
    return 2 if pixels > 200_000 else 1


def _keep_ideal(table: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    out = table.copy()
    for c in channels:
        out[:, c] = SRGB.linear[:, c]
    return out


def _fill_unseen(raw: np.ndarray) -> np.ndarray:
    """Codes no frame showed come back NaN from Robertson: interpolate them (in log light) from their neighbours."""
    out = raw.copy()
    codes = np.arange(CODES)
    for c in range(3):
        seen = np.isfinite(out[:, c]) & (out[:, c] > 0)
        if seen.sum() < 16:
            raise CalibrationInputError(f"{WHAT}: the bracket shows only {int(seen.sum())} distinct codes in channel "
                                        f"{'RGB'[c]}; shoot a scene with more tones")
        out[:, c] = np.exp(np.interp(codes, codes[seen], np.log(out[seen, c])))
    return out


MEASURED_MIN_SEEN = 20   # a code is measured when seen this often in pixels well exposed in two frames or more


def measured_codes(images: Sequence[np.ndarray], mask: np.ndarray) -> list[int]:
    """Per channel, how many of the reliable codes (30-225) the bracket measures: seen at least
    `MEASURED_MIN_SEEN` times in pixels (inside `mask`) that are well exposed in at least two frames, which is
    where a ratio of exposures pins the curve down. Frames 6 stops apart share almost none."""
    lo, hi = RELIABLE_CODES
    good = np.stack([(im >= lo) & (im <= hi) for im in images])                    # (F, H, W, 3)
    shared = (good.sum(axis=0) >= 2) & mask[..., None]                              # (H, W, 3)
    out = []
    for c in range(3):
        seen = np.zeros(CODES)
        for im in images:
            seen += np.bincount(im[..., c][shared[..., c]].ravel(), minlength=CODES)
        out.append(int((seen[lo:hi + 1] >= MEASURED_MIN_SEEN).sum()))
    return out


FLAT_WINDOW = 7          # px: a pixel counts as flat when its neighbourhood ...
FLAT_RANGE = 8           # ... spans at most this many codes in every channel
MIN_FLAT_SHARE = 0.05    # below this, use every pixel (a textured scene): the top of the curve is less sure
RELIABLE_CODES = (30, 225)


def _remeasure(images: Sequence[np.ndarray], times: np.ndarray, table: np.ndarray, *, iterations: int = 2,
               step: int = 2, bins: int = 600, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Re-measure each code's light from the data, robustly.

    Each pixel's radiance is estimated from the frames where it is well exposed (codes 30-225, through the
    current table); code k's light is then the exposure at which half the observations read k or more (the
    crossing of a monotone frequency curve: immune to the outliers JPEG makes around clipped areas, and to
    noise, where the solvers' smoothed least squares bend a shouldered top of the curve). Where the picture
    has enough flat areas only they count: at edges JPEG's chroma subsampling moves codes by several levels.
    Measured on the simulated body: 2.5 % → 0.8 % of full scale on a step chart, 32 % → 5 % on a textured
    scene (8.6 % there without the flat areas)."""
    kernel = np.ones((FLAT_WINDOW, FLAT_WINDOW), np.uint8)
    codes_seen = np.stack([im[::step, ::step].reshape(-1, 3) for im in images]).astype(np.intp)      # (F, P, 3)
    flat = np.stack([((cv2.dilate(im, kernel).astype(np.int16) - cv2.erode(im, kernel)) <= FLAT_RANGE)
                     .all(axis=-1)[::step, ::step].reshape(-1) for im in images])                        # (F, P)
    picture = np.ones(flat.shape[1], bool) if mask is None else mask[::step, ::step].reshape(-1)
    flat_share = float(flat[:, picture].mean())
    if flat_share < MIN_FLAT_SHARE:
        flat[:] = True
    flat &= picture[None, :]                 # padding is perfectly flat, and not light
    lo, hi = RELIABLE_CODES
    t = times[:, None, None]
    table = table.copy()
    everything = np.arange(CODES)
    for _ in range(iterations):
        light = table[codes_seen, np.arange(3)]
        weight = ((codes_seen >= lo) & (codes_seen <= hi)).astype(np.float64)
        radiance = (weight * light / t).sum(0) / np.maximum(weight.sum(0), 1e-12)            # (P, 3)
        measured = weight.sum(0) > 0
        for c in range(3):
            keep = flat[:, measured[:, c]]
            x = (radiance[None, measured[:, c], c] * times[:, None])[keep]
            z = codes_seen[:, measured[:, c], c][keep]
            if x.size < 1000:            # nothing well exposed in this channel: keep the solver's shape
                continue
            crossings = _code_crossings(np.log(np.maximum(x, 1e-12)), z, int(np.clip(x.size / 200, 40, bins)))
            values = np.sqrt(crossings[1:CODES] * crossings[2:CODES + 1])           # code k between k-½ and k+½
            values = np.concatenate([[np.nan], values[:CODES - 2], [np.nan]])
            good = np.isfinite(values)
            if good.sum() < 16:          # a night scene's blue: too few well-exposed pixels; the solver's shape
                continue                 # stays (the fit's prediction figures, and the refusal, still judge it)
            table[:, c] = np.exp(np.interp(everything, everything[good], np.log(values[good])))
    return table, flat_share


def _code_crossings(log_x: np.ndarray, codes: np.ndarray, bins: int) -> np.ndarray:
    """For each code k (1..255): the exposure at which half the observations read k or more (NaN if unseen)."""
    edges = np.linspace(np.percentile(log_x, 0.1), np.percentile(log_x, 99.9), bins + 1)
    which = np.clip(np.searchsorted(edges, log_x) - 1, 0, bins - 1)
    counts = np.zeros((bins, CODES))
    np.add.at(counts, (which, codes), 1.0)
    total = counts.sum(axis=1)
    at_least = counts[:, ::-1].cumsum(axis=1)[:, ::-1] / np.maximum(total[:, None], 1.0)
    centres = ((edges[:-1] + edges[1:]) / 2)[total >= 10]
    at_least = at_least[total >= 10]
    out = np.full(CODES + 1, np.nan)
    for k in range(1, CODES):
        share = np.maximum.accumulate(at_least[:, k])
        i = int(np.searchsorted(share, 0.5))
        if 0 < i < len(share):
            f0, f1 = share[i - 1], share[i]
            out[k] = math.exp(centres[i - 1] + (0.5 - f0) / max(f1 - f0, 1e-12) * (centres[i] - centres[i - 1]))
    return out


def _smooth(table: np.ndarray) -> np.ndarray:
    """A local quadratic through log light (21 codes wide): the per-code crossings carry JPEG's ±1-code noise."""
    from scipy.signal import savgol_filter  # noqa: PLC0415

    out = table.copy()
    for c in range(3):
        out[1:, c] = np.exp(savgol_filter(np.log(np.maximum(table[1:, c], 1e-12)), 21, 2, mode="interp"))
    return out


def _anchor_top(table: np.ndarray) -> np.ndarray:
    """Each channel scaled so code 255 is 1. Code 255 is where the channel clips (any light above reads 255), so
    its own light is extrapolated from codes 225-254 (a quadratic in log light)."""
    out = np.empty_like(table)
    codes = np.arange(225, 255)
    for c in range(3):
        log = np.log(np.maximum(table[:, c], 1e-12))
        top = np.polyval(np.polyfit(codes, log[codes], 2), 255.0)
        out[:, c] = np.exp(log - top)
        out[255, c], out[0, c] = 1.0, 0.0
    return out


# ---------------------------------------------------------------------------------------------------- prediction

def predict_exposure(image: np.ndarray, gain: float, curve: ResponseCurve) -> np.ndarray:
    """A frame as it would look with `gain` times the exposure, through `curve` (what an exposure effect does)."""
    linear = curve.to_linear(image.astype(np.float64) / 255.0)
    return np.asarray(curve.to_encoded(linear * gain)) * 255.0


MAX_GAP_STOPS = 7.0      # farther apart than this, two frames share too few unclipped, unburied pixels


def neighbour_pairs(exposures: Sequence[float], stops: Sequence[float] = (1.0, 2.0), *,
                    targets: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """(target, source) pairs: each target frame with, for each of `stops` in each direction, the frame whose
    exposure is nearest that many stops away (brackets have uneven steps: the nearest existing neighbour, up
    to `MAX_GAP_STOPS`). On a 1/3-stop bracket these are exactly the frames 1 and 2 stops away."""
    logs = np.log2(np.asarray(exposures, np.float64))
    pairs: list[tuple[int, int]] = []
    for i in (range(len(logs)) if targets is None else targets):
        for direction in (-1.0, 1.0):
            gaps = (logs - logs[i]) * direction                      # > 0: that way
            ok = (gaps > 0.05) & (gaps <= MAX_GAP_STOPS)
            if not ok.any():
                continue
            for want in stops:
                j = int(np.flatnonzero(ok)[np.argmin(np.abs(gaps[ok] - want))])
                if (int(i), j) not in pairs:
                    pairs.append((int(i), j))
    return pairs


def exposure_prediction_error(frames: Sequence[Frame] | Bracket, curve: ResponseCurve, *,
                              stops: Sequence[float] = (1.0, 2.0), pairs: Sequence[tuple[int, int]] | None = None,
                              step: int = 1, predict: Callable | None = None) -> dict:
    """Mean absolute error (8-bit levels) of predicting each frame from its neighbours `stops` brighter and darker
    (the nearest existing ones: `neighbour_pairs`), over the pixels both frames record as light (aligned, no
    padding, no channel clipped, above the noise floor; every `step`-th pixel each way): how well a curve models
    the body, measured the way the ideal camera's shortfall on a real bracket was (docs/calibration.md).
    `predict(image, gain, curve)` is the exposure effect (default `predict_exposure`)."""
    prepared = frames if isinstance(frames, Bracket) else prepare(frames, bracket_exposures(frames), WHAT)
    exposures = prepared.exposures
    pairs = neighbour_pairs(exposures, stops) if pairs is None else pairs
    predict = predict or predict_exposure
    total, count, used = 0.0, 0, 0
    for i, j in pairs:
        keep = (prepared.light(i) & prepared.light(j))[::step, ::step]
        if not keep.any():
            continue
        src = prepared.frames[j].image[::step, ::step]
        tgt = prepared.frames[i].image[::step, ::step].astype(np.float64)
        predicted = np.asarray(predict(src, float(exposures[i] / exposures[j]), curve), np.float64)
        total += float(np.abs(predicted - tgt)[keep].sum())
        count += int(keep.sum()) * 3
        used += 1
    if not used:
        raise CalibrationInputError(f"{WHAT}: no two frames within {MAX_GAP_STOPS:g} stops of each other share "
                                    "well-exposed pixels to predict one from the other; shoot 1-stop steps")
    return {"mae": total / count, "pixels": count // 3, "pairs": used}


def curve_error(curve: ResponseCurve, truth: Callable[[np.ndarray], np.ndarray], *, low_code: int = 5,
                high_code: int = 250) -> dict:
    """How far a curve is from a known one (the simulated body's) over the codes a bracket measures: the largest
    error relative to full scale, and the largest relative error where the light is at least 5 % of full scale."""
    codes = np.arange(low_code, high_code + 1)
    fitted = curve.linear[codes]
    true = np.asarray(truth(np.repeat((codes / 255.0)[:, None], 3, axis=1)), np.float64)
    bright = true >= 0.05
    return {"max_abs": float(np.abs(fitted - true).max()),
            "max_rel_above_5pct": float((np.abs(fitted - true) / np.maximum(true, 1e-12))[bright].max())}
