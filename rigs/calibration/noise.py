"""Sensor noise: a photon-transfer curve per ISO, from pairs of flat frames.

In linear light a sensor's noise variance grows with the signal: var = slope · L + read², where the slope is
the light one electron stands for after the ISO gain (shot noise) and read is the noise with no light. Two
frames of the same flat field at the same settings differ by noise alone, so half the variance of their
difference, tile by tile, against the tiles' mean level, traces the curve (EMVA 1288's method, on the
delivered frames: what JPEG leaves of the noise is what the effect simulator should add). Flat frames at
several exposures per ISO spread the levels; only tiles without structure (and without clipped or crushed
pixels) count, so a not-quite-flat target still works. The flat frames also give the lens's vignetting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..camera.protocol import APERTURE, ISO, SHUTTER
from .inputs import BLACK_CODE, CLIPPED_CODE, CalibrationInputError, Frame, require_count, require_same_size
from .response import SRGB, ResponseCurve

WHAT = "noise"
TILE = 32
MIN_LEVEL_SPAN = 4.0          # brightest / darkest tile level per ISO


@dataclass(frozen=True)
class NoiseEntry:
    iso: float
    slope: float          # linear variance per unit of linear light (shot noise)
    read: float           # linear standard deviation at no light

    def variance(self, linear):
        return self.slope * linear + self.read ** 2


@dataclass(frozen=True)
class NoiseCurve:
    entries: tuple[NoiseEntry, ...]          # ascending ISO
    vignetting_corner: float | None = None   # light in the corners over the centre (flat frames)

    def at(self, iso: float) -> NoiseEntry:
        """Interpolated in log ISO (slope and read noise scale with the gain; outside the range, proportionally)."""
        isos = np.array([e.iso for e in self.entries])
        log_slope = np.log([e.slope for e in self.entries])
        log_read = np.log([max(e.read, 1e-9) for e in self.entries])
        x = math.log(iso)
        if len(isos) == 1 or not isos.min() <= iso <= isos.max():
            nearest = self.entries[int(np.argmin(np.abs(np.log(isos) - x)))]
            factor = iso / nearest.iso
            return NoiseEntry(iso, nearest.slope * factor, nearest.read * factor)
        return NoiseEntry(iso, float(np.exp(np.interp(x, np.log(isos), log_slope))),
                          float(np.exp(np.interp(x, np.log(isos), log_read))))

    @property
    def base_iso(self) -> float:
        return self.entries[0].iso

    def to_dict(self) -> dict:
        return {"entries": [{"iso": e.iso, "slope": float(f"{e.slope:.6g}"), "read": float(f"{e.read:.6g}")}
                            for e in self.entries],
                "vignetting_corner": None if self.vignetting_corner is None else round(self.vignetting_corner, 4)}

    @classmethod
    def from_dict(cls, data: dict) -> "NoiseCurve":
        entries = tuple(NoiseEntry(float(e["iso"]), float(e["slope"]), float(e["read"])) for e in data["entries"])
        corner = data.get("vignetting_corner")
        return cls(entries, None if corner is None else float(corner))


def _pairs(frames: Sequence[Frame]) -> dict[float, list[tuple[Frame, Frame]]]:
    """Frames at identical settings, paired in order, grouped by ISO."""
    groups: dict[tuple, list[Frame]] = {}
    for frame in frames:
        key = (frame.setting(ISO, WHAT), frame.setting(SHUTTER, WHAT), frame.settings.get(APERTURE))
        groups.setdefault(key, []).append(frame)
    pairs: dict[float, list[tuple[Frame, Frame]]] = {}
    for (iso, _, _), members in groups.items():
        pairs.setdefault(iso, []).extend(zip(members[0::2], members[1::2]))
    return pairs


def _tiles(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    th, tw = h // TILE, w // TILE
    return image[:th * TILE, :tw * TILE].reshape(th, TILE, tw, TILE, *image.shape[2:]).swapaxes(1, 2)


def measure_noise(frames: Sequence[Frame], *, response: ResponseCurve | None = None) -> tuple[NoiseCurve, dict]:
    """Slope and read noise per ISO, and the vignetting, from pairs of flat frames."""
    from scipy.optimize import least_squares  # noqa: PLC0415

    require_count(frames, 2, WHAT, "shoot two flat frames (same settings) per exposure, at several exposures per ISO")
    require_same_size(frames, WHAT)
    curve = response or SRGB
    pairs = _pairs(frames)
    if not any(pairs.values()):
        raise CalibrationInputError(f"{WHAT}: no two frames share ISO and shutter speed; shoot each flat-field "
                                    "setting twice (a plan's [order] repeat = 2)")
    entries, figures = [], {"isos": {}, "response": curve.method}
    for iso in sorted(pairs):
        levels, variances = [], []
        for a, b in pairs[iso]:
            la = np.asarray(curve.to_linear(a.image.astype(np.float64) / 255.0))
            lb = np.asarray(curve.to_linear(b.image.astype(np.float64) / 255.0))
            ok = ((a.image < CLIPPED_CODE) & (b.image < CLIPPED_CODE) & (a.image > BLACK_CODE)
                  & (b.image > BLACK_CODE)).all(axis=-1)
            ta, tb, tok = _tiles(la), _tiles(lb), _tiles(ok)             # (rows, cols, TILE, TILE, 3)
            mean = (ta + tb).mean(axis=(2, 3, 4)) / 2.0
            # one frame's noise variance, per channel (the noise of each channel is its own), averaged
            diff_var = ((ta - tb).var(axis=(2, 3)) / 2.0).mean(axis=-1)
            structure = (((ta + tb) / 2.0).var(axis=(2, 3)).mean(axis=-1) - diff_var / 2.0)   # the scene's own
            keep = tok.all(axis=(2, 3)) & (structure < 0.5 * diff_var) & (diff_var > 0)
            levels.extend(mean[keep].ravel())
            variances.extend(diff_var[keep].ravel())
        levels_arr, var_arr = np.asarray(levels), np.asarray(variances)
        if len(levels_arr) < 8:
            raise CalibrationInputError(f"{WHAT}: at ISO {iso:g} too few flat, unclipped areas to measure ({len(levels_arr)} "
                                        "tiles); shoot an evenly lit, untextured target filling the frame, not clipped")
        span = levels_arr.max() / max(levels_arr.min(), 1e-9)
        if span < MIN_LEVEL_SPAN:
            raise CalibrationInputError(f"{WHAT}: at ISO {iso:g} the flat frames cover levels {levels_arr.min():.3f}-"
                                        f"{levels_arr.max():.3f} of full scale only ({span:.1f}x); shoot flat pairs at "
                                        "several exposures (e.g. 4 shutter speeds, 1 stop apart)")

        def residuals(p: np.ndarray) -> np.ndarray:
            return (p[0] * levels_arr + p[1] ** 2 - var_arr) / np.maximum(var_arr, 1e-12)

        slope0 = float(np.median(var_arr / np.maximum(levels_arr, 1e-6)))
        fit = least_squares(residuals, [slope0, math.sqrt(max(var_arr.min(), 1e-12))], loss="soft_l1",
                            bounds=([0.0, 0.0], [np.inf, np.inf]))
        entries.append(NoiseEntry(iso, float(fit.x[0]), float(fit.x[1])))
        figures["isos"][f"{iso:g}"] = {"tiles": len(levels_arr), "levels": [float(levels_arr.min()),
                                                                           float(levels_arr.max())],
                                       "slope": float(fit.x[0]), "read": float(fit.x[1])}
    if len(entries) > 1:
        figures["slope_per_stop"] = [math.log2(b.slope / a.slope) / math.log2(b.iso / a.iso)
                                     for a, b in zip(entries, entries[1:])]
    corner = _vignetting_corner(frames, curve)
    figures["vignetting_corner"] = corner
    return NoiseCurve(tuple(entries), corner), figures


def _vignetting_corner(frames: Sequence[Frame], curve: ResponseCurve) -> float | None:
    """Mean light in the four corner tiles over the centre tile, on the best-exposed unclipped flat frame."""
    best, level = None, 0.0
    for frame in frames:
        if (frame.image >= CLIPPED_CODE).any():
            continue
        mean = float(frame.image.mean())
        if mean > level:
            best, level = frame, mean
    if best is None:
        return None
    linear = np.asarray(curve.to_linear(best.image.astype(np.float64) / 255.0)).mean(axis=-1)
    h, w = linear.shape
    t = max(4, min(h, w) // 16)
    centre = linear[h // 2 - t:h // 2 + t, w // 2 - t:w // 2 + t].mean()
    corners = np.mean([linear[:t, :t].mean(), linear[:t, -t:].mean(), linear[-t:, :t].mean(), linear[-t:, -t:].mean()])
    return float(corners / centre)
