"""What one response curve can do on a bracket at best, and why not more: the held-out test's ceiling.

A response curve is a function of the code alone (per channel), so how well it predicts frame i from frame j
depends only on which (source code, target code) pairs the two frames show where both record light. `PairStats`
keeps exactly that — per pair and channel, the joint histogram of (source, target) codes over the same masked
pixels the held-out test scores — and `mae` scores any curve from it, through any pointwise prediction path
(the effect simulator's included: it is sampled once per code), equal to `response.exposure_prediction_error`.

Three figures bound a bracket, in this order:
- `oracle_curve`: one curve fitted on the scored pairs themselves (the best any one-curve calibration of this
  body could score on them, as far as the search finds; never worse than any curve it starts from, and it starts
  from every calibration it is compared with);
- `pointwise_floor`: the best any per-code mapping could do with a *different* mapping per pair (the median
  target code of each source code): below it nothing that reads one pixel at a time goes;
- `residual_structure` of that floor: where the error no mapping of codes removes sits — how much of it is
  spatially coherent (a local tone mapping such as Sony DRO / Canon i-Contrast brightens regions, not codes;
  noise and JPEG do not) and how it spreads over brightness.

`classify` turns them into the rule the held-out test applies: a bracket whose oracle reaches the target is
describable by one curve (target: <= 0.5 x the ideal camera); one whose oracle cannot is not — `spatially
varying` or `noise floor` — and there the rule is within 0.1 of OpenCV's ratio and never worse than ideal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy.optimize import minimize

from .bracket import Bracket
from .response import CODES, SRGB, ResponseCurve, predict_exposure

ONE_CURVE_TARGET = 0.5     # the held-out target on a bracket one curve can describe: <= this x the ideal camera
OPENCV_MARGIN = 0.1        # on one it cannot: within this of OpenCV's bare solver's ratio on the same pairs
COHERENT_SHARE = 0.15      # of the pointwise floor's residual surviving a blur over 1/16 of the frame: regions,
                           # not pixels (simulated body: 0.06, with heavy noise 0.11, with light changing across
                           # the frame 0.84: benchmarks/calibration.py "simulated_ceiling")
KNOTS = np.array([0, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 255])   # the oracle's curve, per channel
_RAMP = np.repeat(np.arange(CODES, dtype=np.uint8)[None, :, None], 3, axis=2)    # (1, 256, 3): every code


@dataclass
class PairStats:
    """(target, source) pairs of a bracket, each with its gain and (3, 256, 256) histogram of (source, target)."""

    pairs: list[tuple[int, int]]
    gains: np.ndarray                 # (P,) exposure of target / exposure of source
    joint: np.ndarray                 # (P, 3, 256, 256) counts: [pair, channel, source code, target code]

    @property
    def pixels(self) -> int:
        return int(self.joint[:, 0].sum())


def pair_stats(bracket: Bracket, pairs: Sequence[tuple[int, int]], *, step: int = 1) -> PairStats:
    """The joint code histograms of `pairs` over the pixels both frames record as light (the prediction's mask)."""
    joint = np.zeros((len(pairs), 3, CODES, CODES))
    gains = np.zeros(len(pairs))
    for p, (i, j) in enumerate(pairs):
        keep = (bracket.light(i) & bracket.light(j))[::step, ::step]
        src = bracket.frames[j].image[::step, ::step][keep].astype(np.intp)
        tgt = bracket.frames[i].image[::step, ::step][keep].astype(np.intp)
        for c in range(3):
            np.add.at(joint[p, c], (src[:, c], tgt[:, c]), 1.0)
        gains[p] = bracket.exposures[i] / bracket.exposures[j]
    return PairStats(list(pairs), gains, joint)


def merge(*stats: PairStats) -> PairStats:
    """Pool the pairs of several splits (the held-out test pools both halves)."""
    return PairStats([p for s in stats for p in s.pairs], np.concatenate([s.gains for s in stats]),
                     np.concatenate([s.joint for s in stats]))


def predicted_codes(curve: ResponseCurve, gains: Sequence[float], predict: Callable | None = None) -> np.ndarray:
    """(P, 3, 256): the code `predict` turns each code into at each gain (the prediction path, sampled per code)."""
    predict = predict or predict_exposure
    return np.stack([np.asarray(predict(_RAMP, float(g), curve), np.float64)[0].T for g in gains])


def mae(curve: ResponseCurve, stats: PairStats, predict: Callable | None = None) -> float:
    """Mean absolute error (8-bit levels, all channels) of predicting the pairs' targets through `curve`."""
    return table_mae(predicted_codes(curve, stats.gains, predict), stats)


def pointwise_tables(stats: PairStats) -> np.ndarray:
    """(P, 3, 256): each pair's own best per-code mapping, the median target code of each source code."""
    cum = np.cumsum(stats.joint, axis=-1)
    return np.argmax(cum >= cum[..., -1:] / 2, axis=-1).astype(np.float64)


def table_mae(tables: np.ndarray, stats: PairStats) -> float:
    """Mean absolute error of predicting with per-pair code tables (P, C, 256), over the C channels `stats` holds."""
    err = np.abs(tables[..., :, None] - np.arange(CODES, dtype=np.float64))
    return float((err * stats.joint).sum() / (tables.shape[1] * stats.pixels))


def pointwise_floor(stats: PairStats) -> float:
    """The error left when each pair may use its own best per-code mapping (`pointwise_tables`): what no function
    of the source code can remove — noise, JPEG, and light that is not a function of the code (a local tone
    mapping, a moved scene)."""
    return table_mae(pointwise_tables(stats), stats)


def _from_knots(params: np.ndarray, knots: np.ndarray = KNOTS) -> np.ndarray:
    """Monotone log-light at the knots from unconstrained steps (code 255 at 0), interpolated to 256 codes."""
    steps = np.logaddexp(0.0, params)                    # softplus: every step down is positive
    logs = -np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])   # at KNOTS[1:] ... 255
    codes = np.arange(CODES)
    out = np.exp(np.interp(codes, knots[1:], logs))
    out[0] = 0.0
    return out


def _to_knots(column: np.ndarray, knots: np.ndarray = KNOTS) -> np.ndarray:
    logs = np.log(np.maximum(column[knots[1:]], 1e-9))
    steps = np.maximum(-np.diff(logs), 1e-4)
    return np.log(np.expm1(steps))                       # inverse softplus


def oracle_curve(stats: PairStats, starts: Sequence[ResponseCurve], predict: Callable | None = None,
                 *, iterations: int = 1500, knots: np.ndarray = KNOTS) -> tuple[ResponseCurve, float]:
    """The one curve that predicts these pairs best (per channel, 13 monotone knots in log light, Powell on the
    exact error from the histograms), started from each of `starts`; never worse than the best start."""
    best = min(starts, key=lambda c: mae(c, stats, predict))
    table = best.linear.copy()
    for c in range(3):
        one = PairStats(stats.pairs, stats.gains, stats.joint[:, c:c + 1])

        def loss(params: np.ndarray, c: int = c) -> float:
            trial = table.copy()
            trial[:, c] = _from_knots(params, knots)
            return table_mae(predicted_codes(ResponseCurve(trial), one.gains, predict)[:, c:c + 1], one)

        start = min((_to_knots(s.linear[:, c], knots) for s in starts), key=loss)
        result = minimize(loss, start, method="Powell", options={"maxfev": iterations, "xtol": 1e-3, "ftol": 1e-5})
        if result.fun < loss(start):
            table[:, c] = _from_knots(result.x, knots)
        else:
            table[:, c] = _from_knots(start, knots)
    candidate = ResponseCurve(table, "oracle")
    fitted = mae(candidate, stats, predict)
    best_start = mae(best, stats, predict)
    return (candidate, fitted) if fitted <= best_start else (best, best_start)


def residual_structure(bracket: Bracket, stats: PairStats, tables: np.ndarray, *, step: int = 1) -> dict:
    """Where the error of per-pair code tables (`predicted_codes` of a curve, or `pointwise_tables`) sits:
    `coherent_share`, the share of the mean absolute residual that survives a blur over 1/16 of the frame (a
    local tone mapping leaves whole regions too bright or too dark; noise, JPEG and sub-pixel shifts average
    out), and the mean error per band of target brightness (codes 9-63, 64-127, 128-191, 192-253), with each
    band's share of the pixels. `step` must be the one `stats` was measured with."""
    bands = ((9, 64), (64, 128), (128, 192), (192, 254))
    abs_sum, coherent_sum = 0.0, 0.0
    band_err, band_n = np.zeros(len(bands)), np.zeros(len(bands))
    channels = np.arange(3)
    for p, (i, j) in enumerate(stats.pairs):
        keep = (bracket.light(i) & bracket.light(j))[::step, ::step]
        if not keep.any():
            continue
        src = bracket.frames[j].image[::step, ::step].astype(np.intp)
        tgt = bracket.frames[i].image[::step, ::step].astype(np.float64)
        res = (tables[p][channels, src] - tgt).mean(axis=-1)                        # (H, W): mean over channels
        sigma = max(keep.shape) / 16.0
        weight = cv2.GaussianBlur(keep.astype(np.float64), (0, 0), sigma)
        local = cv2.GaussianBlur(np.where(keep, res, 0.0), (0, 0), sigma) / np.maximum(weight, 1e-6)
        abs_sum += float(np.abs(res[keep]).sum())
        coherent_sum += float(np.abs(local[keep]).sum())
        level = tgt.mean(axis=-1)
        for b, (lo, hi) in enumerate(bands):
            inside = keep & (level >= lo) & (level < hi)
            band_err[b] += float(np.abs(res[inside]).sum())
            band_n[b] += int(inside.sum())
    return {"coherent_share": coherent_sum / max(abs_sum, 1e-12),
            "by_brightness": [{"codes": f"{lo}-{hi - 1}", "mae": float(e / n) if n else None,
                               "share": float(n / max(band_n.sum(), 1))}
                              for (lo, hi), e, n in zip(bands, band_err, band_n)]}


def classify(oracle_ratio: float, coherent_share: float) -> dict:
    """The rule the held-out test applies to a bracket, from what was measured on it.

    - `one-curve`: the oracle reaches the target, so a calibration must too (<= 0.5 x ideal).
    - otherwise the bracket is not describable by one curve, and the rule is "within 0.1 of OpenCV's ratio, and
      never worse than the ideal camera"; why: `spatially varying` when the error that even a per-pair mapping
      of codes leaves is spatially coherent (regions, not pixels: a local tone mapping such as DRO /
      i-Contrast, or light that changed in part of the scene between frames; the files do not tell which),
      `noise floor` when it is not (noise, JPEG, sub-pixel shifts)."""
    if oracle_ratio <= ONE_CURVE_TARGET:
        kind = "one-curve"
    elif coherent_share >= COHERENT_SHARE:
        kind = "spatially varying"
    else:
        kind = "noise floor"
    rule = (f"ratio <= {ONE_CURVE_TARGET}" if kind == "one-curve"
            else f"ratio <= OpenCV's + {OPENCV_MARGIN}, and <= 1")
    return {"class": kind, "rule": rule}


def measure(bracket: Bracket, stats: PairStats, starts: Sequence[ResponseCurve], *, predict: Callable | None = None,
            step: int = 1) -> dict:
    """The ceiling of one curve on these pairs, the pointwise floor, where the error sits, and the classification."""
    ideal = mae(SRGB, stats, predict)
    _, oracle = oracle_curve(stats, starts, predict)
    tables = pointwise_tables(stats)
    floor = table_mae(tables, stats)
    floor_structure = residual_structure(bracket, stats, tables, step=step)
    ideal_structure = residual_structure(bracket, stats, predicted_codes(SRGB, stats.gains, predict), step=step)
    return {"ideal_mae": ideal, "oracle_mae": oracle, "oracle_ratio": oracle / ideal, "floor_mae": floor,
            "floor_ratio": floor / ideal, "floor_coherent_share": floor_structure["coherent_share"],
            "floor_by_brightness": floor_structure["by_brightness"],
            "ideal_by_brightness": ideal_structure["by_brightness"],
            **classify(oracle / ideal, floor_structure["coherent_share"])}


def meets(classification: dict, ratio: float, opencv_ratio: float) -> bool:
    """Does a held-out ratio meet the rule its bracket's classification sets?"""
    if classification["class"] == "one-curve":
        return ratio <= ONE_CURVE_TARGET
    return ratio <= opencv_ratio + OPENCV_MARGIN and ratio <= 1.0
