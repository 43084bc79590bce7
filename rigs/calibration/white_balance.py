"""White balance: what each white-balance setting of the body really does to a neutral grey.

The ideal camera multiplies linear RGB by rgb(K_scene) / rgb(K_wb) (`optics.white_balance_gains`). A body
adds its own bias (a warm or green-magenta cast that can drift with the setting). Shot under one light, a
grey card's linear (R/G, 1, B/G) at each setting *is* that setting's gains under that light; between two
settings the ratio of their gains is what the setting change does, whatever the light (white balance is a
per-channel gain). Measured kelvins are interpolated in mired, log-gain linear, like the control T itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .. import optics
from ..camera.protocol import APERTURE, ISO, KELVIN, SHUTTER
from .bracket import light_mask
from .inputs import CalibrationInputError, Frame, check_region_exposed, require_count, require_same, require_same_size
from .response import SRGB, ResponseCurve

WHAT = "white balance"
DEFAULT_ROI = (0.4, 0.4, 0.6, 0.6)          # x0, y0, x1, y1 as fractions of the frame: the card in the middle
MAX_CARD_VARIATION = 0.06                   # relative std of the region's grey: above it, it is not one card


@dataclass(frozen=True)
class WhiteBalanceTable:
    """Green-normalised linear gains of a neutral grey at each measured kelvin setting, under `illuminant_kelvin`."""

    illuminant_kelvin: float
    gains: tuple[tuple[float, tuple[float, float, float]], ...]      # (kelvin, (r, 1, b)), ascending kelvin

    def gains_for(self, kelvin: float) -> np.ndarray:
        """Gains at any setting: log-gains interpolated linearly in mired; outside the measured range the nearest
        measured setting's bias over the ideal gains is carried on."""
        kelvins = np.array([k for k, _ in self.gains])
        logs = np.log(np.array([g for _, g in self.gains]))
        mired = 1e6 / np.asarray(kelvins)
        m = 1e6 / kelvin
        if mired.min() <= m <= mired.max():
            order = np.argsort(mired)
            return np.exp([np.interp(m, mired[order], logs[order, c]) for c in range(3)])
        nearest = int(np.argmin(np.abs(mired - m)))
        bias = np.exp(logs[nearest]) / _ideal(self.illuminant_kelvin, kelvins[nearest])
        return bias * _ideal(self.illuminant_kelvin, kelvin)

    def shift(self, from_kelvin: float, to_kelvin: float) -> np.ndarray:
        """Per-channel gains that turn a frame shot at `from_kelvin` into one shot at `to_kelvin` (same light)."""
        return self.gains_for(to_kelvin) / self.gains_for(from_kelvin)

    def bias(self, kelvin: float) -> np.ndarray:
        """The body's gains over the ideal camera's at a setting (1, 1, 1 for a textbook body)."""
        return self.gains_for(kelvin) / _ideal(self.illuminant_kelvin, kelvin)

    def to_dict(self) -> dict:
        return {"illuminant_kelvin": self.illuminant_kelvin,
                "gains": {f"{k:g}": [round(float(v), 6) for v in g] for k, g in self.gains}}

    @classmethod
    def from_dict(cls, data: dict) -> "WhiteBalanceTable":
        gains = sorted((float(k), tuple(float(v) for v in g)) for k, g in data["gains"].items())
        return cls(float(data["illuminant_kelvin"]), tuple(gains))   # type: ignore[arg-type]


def _ideal(scene_kelvin: float, camera_kelvin: float) -> np.ndarray:
    return np.asarray(optics.white_balance_gains(scene_kelvin, camera_kelvin), np.float64)


def region(image: np.ndarray, roi: Sequence[float]) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi
    return image[int(round(y0 * h)):int(round(y1 * h)), int(round(x0 * w)):int(round(x1 * w))]


def check_roi(roi: Sequence[float]) -> tuple[float, float, float, float]:
    values = tuple(float(v) for v in roi)
    if len(values) != 4 or not (0 <= values[0] < values[2] <= 1 and 0 <= values[1] < values[3] <= 1):
        raise CalibrationInputError(f"{WHAT}: region {list(roi)} must be [x0, y0, x1, y1] fractions of the frame with "
                                    "x0 < x1 and y0 < y1, e.g. [0.4, 0.4, 0.6, 0.6] for the middle")
    return values   # type: ignore[return-value]


def measure_white_balance(frames: Sequence[Frame], *, response: ResponseCurve | None = None,
                          illuminant_kelvin: float = 5500.0, roi: Sequence[float] = DEFAULT_ROI
                          ) -> tuple[WhiteBalanceTable, dict]:
    """Gains per kelvin setting from frames of a grey card (in `roi`) under one light; returns the table and
    its figures (settings, the body's largest bias over the ideal gains, which response linearised)."""
    roi = check_roi(roi)
    require_count(frames, 2, WHAT, "shoot the grey card at two or more white-balance settings (e.g. 3200 K to "
                                   "8000 K in 6 steps) under one light")
    require_same_size(frames, WHAT)
    require_same(frames, (APERTURE, SHUTTER, ISO), WHAT, "hold the exposure while the white balance changes")
    curve = response or SRGB
    by_kelvin: dict[float, list[np.ndarray]] = {}
    for frame in frames:
        kelvin = frame.setting(KELVIN, WHAT)
        card = region(frame.image, roi)
        check_region_exposed(frame, card, WHAT)
        linear = np.asarray(curve.to_linear(card.astype(np.float64) / 255.0))
        grey = cv2.blur(linear.mean(axis=-1), (9, 9))[4:-4, 4:-4]      # local means: noise is not texture
        variation = float(grey.std() / max(grey.mean(), 1e-9))
        if variation > MAX_CARD_VARIATION:
            raise CalibrationInputError(f"{WHAT}: the region {list(roi)} of {frame.name} is not an even grey card (its "
                                        f"brightness varies by {variation:.0%}); fill that part of the frame with the "
                                        "card, or give the card's region")
        means = linear.reshape(-1, 3).mean(axis=0)
        by_kelvin.setdefault(kelvin, []).append(means / means[1])
    if len(by_kelvin) < 2:
        raise CalibrationInputError(f"{WHAT}: every frame is at {next(iter(by_kelvin)):g} K; sweep the white-balance "
                                    "setting (kelvin) over two or more values")
    gains = tuple((k, tuple(float(v) for v in np.mean(g, axis=0))) for k, g in sorted(by_kelvin.items()))
    table = WhiteBalanceTable(float(illuminant_kelvin), gains)   # type: ignore[arg-type]
    biases = [table.bias(k) for k, _ in gains]
    figures = {"settings": len(gains), "kelvins": [k for k, _ in gains], "illuminant_kelvin": illuminant_kelvin,
               "response": curve.method,
               "largest_bias": float(max(abs(math.log(float(v))) for b in biases for v in b))}
    return table, figures


# ---------------------------------------------------------------------------------------------------- real series

def scene_gains(frames: Sequence[Frame], *, response: ResponseCurve | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A white-balance series of one static scene without a grey card (or renders of one raw file at several
    presets): each frame's per-channel linear gain over the first frame's, green-normalised — the median ratio
    over the pixels every frame records as light (no channel clipped, above the noise floor). White balance is a
    per-channel gain, so any pixel of a static scene measures it; a card is needed only for the absolute gains."""
    require_count(frames, 2, WHAT, "give two or more frames of the same scene at different white-balance settings")
    require_same_size(frames, WHAT)
    curve = response or SRGB
    kelvins = np.array([f.setting(KELVIN, WHAT) for f in frames])
    light = np.logical_and.reduce([light_mask(f.image) for f in frames])
    if light.mean() < 0.05:
        raise CalibrationInputError(f"{WHAT}: the frames share only {light.mean():.1%} well-exposed pixels; expose so "
                                    "most of the scene is neither clipped nor black")
    linear = [np.asarray(curve.to_linear(f.image.astype(np.float64) / 255.0))[light] for f in frames]   # (P, 3)
    gains = np.array([np.median(lin / np.maximum(linear[0], 1e-6), axis=0) for lin in linear])
    return kelvins, gains / gains[:, 1:2]


def held_out_white_balance(frames: Sequence[Frame], *, response: ResponseCurve | None = None,
                           illuminant_kelvin: float = 5500.0) -> dict:
    """The held-out test of a real white-balance series: measure the gains of half the settings (every other
    kelvin), build the profile's table from them, and predict each other setting's frame from the nearest measured
    setting's frame (linearise, multiply by `table.shift`, encode); the ideal camera predicts with the textbook
    gains (`optics.white_balance_gains`). Mean absolute error in 8-bit levels over pixels both frames record as
    light; pooled over both halves."""
    curve = response or SRGB
    kelvins, gains = scene_gains(frames, response=curve)
    order = [int(i) for i in np.argsort(kelvins)]
    sums, count, used = {"profile": 0.0, "ideal": 0.0, "none": 0.0}, 0, 0
    for half in (order[0::2], order[1::2]):
        if len(half) < 2:
            continue
        ref = half[0]
        base = _ideal(illuminant_kelvin, kelvins[ref])
        table = WhiteBalanceTable(float(illuminant_kelvin), tuple(sorted(   # type: ignore[arg-type]
            (float(kelvins[i]), tuple(float(v) for v in gains[i] / gains[ref] * base / base[1])) for i in half)))
        for t in (i for i in order if i not in half):
            s = min(half, key=lambda i: abs(1e6 / kelvins[i] - 1e6 / kelvins[t]))
            keep = light_mask(frames[s].image) & light_mask(frames[t].image)
            source = np.asarray(curve.to_linear(frames[s].image.astype(np.float64) / 255.0))
            target = frames[t].image.astype(np.float64)
            shifts = {"profile": table.shift(kelvins[s], kelvins[t]),
                      "ideal": _ideal(illuminant_kelvin, kelvins[t]) / _ideal(illuminant_kelvin, kelvins[s]),
                      "none": np.ones(3)}
            for name, shift in shifts.items():
                predicted = np.asarray(curve.to_encoded(source * shift)) * 255.0
                sums[name] += float(np.abs(predicted - target)[keep].sum())
            count += int(keep.sum()) * 3
            used += 1
    if not used:
        raise CalibrationInputError(f"{WHAT}: a held-out test needs 3 or more white-balance settings")
    profile, ideal, none = (sums[k] / count for k in ("profile", "ideal", "none"))
    return {"profile_mae": profile, "ideal_mae": ideal, "unchanged_mae": none, "ratio": profile / ideal,
            "pairs": used, "kelvins": sorted(float(k) for k in kelvins)}
