"""What every measurement receives, and the checks that refuse bad input with a message saying how to reshoot.

A `Frame` is one decoded image (uint8 RGB, H x W x 3) with the settings it was shot at (role -> number:
aperture f-number, shutter seconds, iso, kelvin, focus metres, focal millimetres) and a name for messages
(its file name). Measurements call the checks below before fitting anything, so a clipped card, a bumped
tripod or a bracket of two frames is reported as that, not as a bad curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

CLIPPED_CODE = 254       # at or above: the channel is saturated
BLACK_CODE = 2           # at or below: the channel is crushed to black


class CalibrationInputError(ValueError):
    """Frames a measurement cannot use; the message names the frames, what is wrong and how to reshoot."""


@dataclass
class Frame:
    image: np.ndarray                               # uint8 RGB (H, W, 3)
    name: str
    settings: Mapping[str, float] = field(default_factory=dict)

    def setting(self, role: str, what: str) -> float:
        value = self.settings.get(role)
        if value is None or not math.isfinite(float(value)):
            raise CalibrationInputError(f"{what}: {self.name} has no {role} setting (neither in the catalog nor "
                                        f"in its EXIF); give it on the command line")
        return float(value)


def require_count(frames: Sequence[Frame], minimum: int, what: str, hint: str) -> None:
    if len(frames) < minimum:
        raise CalibrationInputError(f"{what}: {len(frames)} frame(s) given, at least {minimum} needed; {hint}")


def require_same_size(frames: Sequence[Frame], what: str) -> tuple[int, int]:
    shapes = {f.image.shape for f in frames}
    for f in frames:
        if f.image.ndim != 3 or f.image.shape[2] != 3 or f.image.dtype != np.uint8:
            raise CalibrationInputError(f"{what}: {f.name} is not an 8-bit RGB image ({f.image.dtype}, shape "
                                        f"{f.image.shape}); give the camera's JPEGs (or 8-bit TIFF/PNG)")
    if len(shapes) > 1:
        first = frames[0]
        odd = next(f for f in frames if f.image.shape != first.image.shape)
        raise CalibrationInputError(f"{what}: {odd.name} is {odd.image.shape[1]}x{odd.image.shape[0]} but "
                                    f"{first.name} is {first.image.shape[1]}x{first.image.shape[0]}; every frame "
                                    "must come from the same body at the same image size")
    h, w = frames[0].image.shape[:2]
    return h, w


def require_same(frames: Sequence[Frame], roles: Sequence[str], what: str, why: str) -> None:
    """The roles that must not change across the frames (e.g. aperture and ISO in a shutter bracket)."""
    for role in roles:
        seen = {round(float(f.settings[role]), 6) for f in frames if f.settings.get(role) is not None}
        if len(seen) > 1:
            raise CalibrationInputError(f"{what}: the frames differ in {role} ({', '.join(f'{v:g}' for v in sorted(seen))}); "
                                        f"{why}")


def clipped_fraction(image: np.ndarray) -> float:
    """Share of pixels with any channel saturated."""
    return float((image >= CLIPPED_CODE).any(axis=-1).mean())


def black_fraction(image: np.ndarray) -> float:
    return float((image <= BLACK_CODE).all(axis=-1).mean())


def check_region_exposed(frame: Frame, region: np.ndarray, what: str, *, low: float = 0.08,
                         high: float = 0.92) -> None:
    """A region (e.g. the grey card) must sit inside the codes a camera renders faithfully."""
    mean = float(region.mean()) / 255.0
    if (region >= CLIPPED_CODE).any(axis=-1).mean() > 0.01 or mean > high:
        raise CalibrationInputError(f"{what}: {frame.name} clips the measured region (mean code {mean * 255:.0f} of "
                                    f"255); lower the exposure by 1-2 stops and reshoot")
    if mean < low:
        raise CalibrationInputError(f"{what}: {frame.name} is too dark in the measured region (mean code "
                                    f"{mean * 255:.0f} of 255); raise the exposure by 1-2 stops and reshoot")


def check_static_bracket(frames: Sequence[Frame], exposures: Sequence[float], what: str, *,
                         drop_codes: int = 20, max_share: float = 0.001) -> None:
    """Refuse a bracket whose scene or camera moved. In a static bracket every pixel's code can only rise with
    the exposure (noise aside); where the picture shifted, codes at edges fall. A shift of one pixel makes
    0.5-4 % of pixels fall by more than 20 levels between neighbouring frames; a static one, none."""
    order = np.argsort(exposures)
    for a, b in zip(order, order[1:]):
        darker, brighter = frames[a], frames[b]
        fell = ((darker.image.astype(np.int16) - brighter.image) > drop_codes).any(axis=-1).mean()
        if fell > max_share:
            raise CalibrationInputError(
                f"{what}: {brighter.name} is darker than {darker.name} at {fell:.1%} of its pixels although it "
                "had more light: the scene or the camera moved between them. Shoot a static scene from a "
                "locked-off camera (tripod, remote release) and reshoot")
