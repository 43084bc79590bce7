"""Defocus scale: how much the real lens blurs per unit of 1/N, against the thin lens the control K assumes.

A thin lens focused at s blurs a point at distance d into a disc of radius

    r_px = A / N,    A = F² / (2 (s − F)) · |d − s| / d · W_px / W_sensor

(`optics.bokeh_k_px` is the same formula per unit disparity). A real lens departs from it: its marked
f-numbers are rounded and often optimistic, its focal length is not the marked one (see `geometry`). Shooting
a high-contrast edge at a known distance d, focused at s ≠ d, over an aperture sweep, and fitting every
frame's edge profile with one model

    edge(x) = dark + (light − dark) · ESF(x; disc of radius A/N, blurred by a Gaussian σ₀)

gives the lens's real A (σ₀ is what blurs even a focused edge: pixels, demosaicing, JPEG). The profile keeps
A with the conditions it was measured at; `scale(real focal length)` is A over the thin lens's A, the factor
the control mapping multiplies K_px by.

The edge is slanted (ISO 12233 style) so its rows sample it at every sub-pixel phase; rows are aligned on a
straight-line fit of their 50 % crossings and binned at 0.1 px into one super-resolved profile per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import optics
from ..camera.protocol import APERTURE, FOCAL, FOCUS
from .inputs import CalibrationInputError, Frame, require_count, require_same, require_same_size
from .response import SRGB, ResponseCurve

WHAT = "defocus"
MIN_FRAMES = 4
MIN_SPAN_STOPS = 1.5
BIN_PX = 0.1


@dataclass(frozen=True)
class DefocusMeasurement:
    nominal_focal_mm: float
    focus_m: float
    edge_distance_m: float
    width_px: int
    sensor_width_mm: float
    radius_px_times_n: float          # A: blur radius (px) = A / N
    sharp_sigma_px: float             # σ₀

    def ideal_radius_px_times_n(self, focal_mm: float) -> float:
        s, d, f = self.focus_m * 1000.0, self.edge_distance_m * 1000.0, focal_mm
        return f * f / (2.0 * (s - f)) * abs(d - s) / d * self.width_px / self.sensor_width_mm

    def scale(self, focal_mm: float | None = None) -> float:
        """Measured blur over the thin lens's, at the real focal length when known (else the marked one)."""
        return self.radius_px_times_n / self.ideal_radius_px_times_n(focal_mm or self.nominal_focal_mm)

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "DefocusMeasurement":
        return cls(float(data["nominal_focal_mm"]), float(data["focus_m"]), float(data["edge_distance_m"]),
                   int(data["width_px"]), float(data["sensor_width_mm"]), float(data["radius_px_times_n"]),
                   float(data["sharp_sigma_px"]))


def disc_esf(x: np.ndarray, radius: float) -> np.ndarray:
    """Edge spread of a uniform disc: the share of the disc left of the line at x."""
    if radius < 1e-3:
        return (x >= 0).astype(np.float64)
    u = np.clip(x / radius, -1.0, 1.0)
    return 0.5 + (u * np.sqrt(1.0 - u * u) + np.arcsin(u)) / math.pi


_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(24)


def edge_model(x: np.ndarray, radius: float, sigma: float) -> np.ndarray:
    """A disc's edge spread blurred by a Gaussian σ (Gauss-Hermite quadrature: smooth in both parameters, which
    the fit's numerical derivatives need)."""
    shifts = math.sqrt(2.0) * sigma * _NODES
    return (_WEIGHTS[:, None] * disc_esf(x[None, :] - shifts[:, None], radius)).sum(axis=0) / math.sqrt(math.pi)


def edge_profile(frame: Frame, curve: ResponseCurve, window_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions relative to the edge, mean linear light) of one frame's super-resolved edge profile."""
    linear = np.asarray(curve.to_linear(frame.image.astype(np.float64) / 255.0)).mean(axis=-1)
    h, w = linear.shape
    band = linear[h // 4: 3 * h // 4]
    column = band.mean(axis=0)
    dark, light = np.percentile(column, 5), np.percentile(column, 95)
    if light < 3.0 * max(dark, 1e-6):
        raise CalibrationInputError(f"{WHAT}: {frame.name} shows no high-contrast edge (its light side is only "
                                    f"{light / max(dark, 1e-6):.1f}x its dark side); put a black/white edge in the "
                                    "middle of the frame")
    if (frame.image[h // 4: 3 * h // 4] >= 254).any(axis=-1).mean() > 0.01:
        raise CalibrationInputError(f"{WHAT}: {frame.name} clips the light side of the edge; lower the exposure by a "
                                    "stop and reshoot")
    middle = (dark + light) / 2.0
    rows, crossings = [], []
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    for i, row in enumerate(band):
        smooth = np.convolve(row, kernel / kernel.sum(), mode="same")
        above = np.flatnonzero((smooth[:-1] < middle) & (smooth[1:] >= middle))
        above = above[(above > 8) & (above < w - 9)]
        if len(above) == 1:
            j = above[0]
            rows.append(i)
            crossings.append(j + (middle - smooth[j]) / (smooth[j + 1] - smooth[j]))
    if len(rows) < band.shape[0] // 2:
        raise CalibrationInputError(f"{WHAT}: no single dark-to-light edge runs down the middle of {frame.name} (found in "
                                    f"{len(rows)} of {band.shape[0]} rows); put one vertical edge, dark on the left, in "
                                    "view")
    slope, offset = np.polyfit(rows, crossings, 1)
    xs, ys = [], []
    for i, row in enumerate(band):
        centre = offset + slope * i
        lo, hi = int(max(0, centre - window_px)), int(min(w, centre + window_px + 1))
        xs.append(np.arange(lo, hi) - centre)
        ys.append(row[lo:hi])
    x, y = np.concatenate(xs), np.concatenate(ys)
    bins = np.round(x / BIN_PX).astype(np.intp)
    order = np.argsort(bins)
    bins, y = bins[order], y[order]
    unique, start = np.unique(bins, return_index=True)
    sums = np.add.reduceat(y, start)
    counts = np.diff(np.append(start, len(y)))
    keep = counts >= 3
    return unique[keep] * BIN_PX, sums[keep] / counts[keep]


def measure_defocus(frames: Sequence[Frame], *, edge_distance_m: float, response: ResponseCurve | None = None,
                    sensor_width_mm: float = optics.FULL_FRAME_WIDTH_MM) -> tuple[DefocusMeasurement, dict]:
    """The lens's blur per unit 1/N from an aperture sweep on an edge `edge_distance_m` away."""
    from scipy.optimize import least_squares  # noqa: PLC0415

    require_count(frames, MIN_FRAMES, WHAT, "sweep the aperture over 4 or more f-numbers (e.g. f/1.8 to f/8) with "
                                            "the lens focused in front of the edge")
    _, width = require_same_size(frames, WHAT)
    require_same(frames, (FOCAL, FOCUS), WHAT, "only the aperture may change (and shutter or ISO to hold exposure)")
    if edge_distance_m <= 0:
        raise CalibrationInputError(f"{WHAT}: edge distance {edge_distance_m:g} m must be positive (measure it from "
                                    "the sensor plane mark)")
    n_values = np.array([f.setting(APERTURE, WHAT) for f in frames])
    span = 2.0 * math.log2(n_values.max() / n_values.min())
    if len(set(n_values.round(3))) < 3 or span < MIN_SPAN_STOPS:
        raise CalibrationInputError(f"{WHAT}: the f-numbers ({', '.join(f'f/{n:g}' for n in sorted(set(n_values)))}) "
                                    f"span {span:.1f} stops; sweep at least 3 f-numbers over {MIN_SPAN_STOPS:g} stops "
                                    "or more (e.g. f/1.8 to f/8)")
    focal = frames[0].setting(FOCAL, WHAT)
    focus = frames[0].setting(FOCUS, WHAT)
    if abs(1.0 / focus - 1.0 / edge_distance_m) < 0.05:
        raise CalibrationInputError(f"{WHAT}: the lens is focused at {focus:g} m, on the edge ({edge_distance_m:g} m): "
                                    "there is no blur to measure; focus well in front of it (e.g. at a third of its "
                                    "distance)")
    curve = response or SRGB
    probe = DefocusMeasurement(focal, focus, edge_distance_m, width, sensor_width_mm, 1.0, 0.0)
    guess_a = probe.ideal_radius_px_times_n(focal)
    window = int(min(width // 4, 2.5 * guess_a / n_values.min() + 20))
    profiles = [edge_profile(f, curve, window) for f in frames]

    def residuals(p: np.ndarray) -> np.ndarray:
        a, sigma = p[0], p[1]
        out = []
        for i, (x, y) in enumerate(profiles):
            shift, dark, light = p[2 + 3 * i: 5 + 3 * i]
            model = dark + (light - dark) * edge_model(x - shift, a / n_values[i], sigma)
            out.append((model - y) / max(light - dark, 1e-6))
        return np.concatenate(out)

    start = [guess_a, 0.7]
    for x, y in profiles:
        start += [0.0, float(np.percentile(y, 5)), float(np.percentile(y, 95))]
    fit = least_squares(residuals, np.array(start), bounds=([0.0, 0.05] + [-5, 0, 0] * len(frames),
                                                             [np.inf, 20.0] + [5, np.inf, np.inf] * len(frames)),
                        diff_step=1e-3)
    rms = float(np.sqrt(np.mean(fit.fun ** 2)))
    if rms > 0.05:
        raise CalibrationInputError(f"{WHAT}: the edge profiles do not fit a defocused lens (rms {rms:.1%} of the edge "
                                    "contrast): check the edge is straight, evenly lit, and that nothing moved; reshoot")
    a, sigma = float(fit.x[0]), float(fit.x[1])
    measurement = DefocusMeasurement(focal, focus, edge_distance_m, width, sensor_width_mm, a, sigma)
    figures = {"frames": len(frames), "f_numbers": sorted(set(n_values.tolist())), "radius_px_times_n": a,
               "ideal_radius_px_times_n": guess_a, "scale_vs_marked_focal": a / guess_a, "sharp_sigma_px": sigma,
               "fit_rms": rms, "response": curve.method}
    return measurement, figures
