"""A real exposure bracket made usable: its frames aligned, and the pixels that are not light masked.

Real brackets are not the simulated body's: a tripod bracket still shifts by a fraction of a pixel between
frames, a hand-held one by several pixels; published brackets are often registered and padded with pure
colour whose extent differs per frame; the darkest frames are noise, the brightest clip in one channel before
the others (docs/calibration.md, "Real data"). Every measurement that compares the frames of a bracket pixel by
pixel — the "did the scene move?" check, the response fit, the exposure prediction error — works on a
`Bracket`: frames shifted onto each other with OpenCV's median-threshold-bitmap alignment (`createAlignMTB`,
made for exposure brackets: the bitmaps do not depend on the exposure), and masks of what is light.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import cv2
import numpy as np

from .inputs import CLIPPED_CODE, CalibrationInputError, Frame

NOISE_FLOOR_CODE = 8       # at or below (any channel): dark noise, where the order of two exposures is random
BORDER_RANGE = 2           # an edge row/column whose codes span at most this (every channel) is padding, not light
ALIGN_MAX_BITS = 6         # MTB pyramid depth: shifts up to 2**6 px are found
ALIGN_EXCLUDE = 4          # MTB ignores pixels within this many codes of the median (noise)
STATIC_DROP_CODES = 20     # a pixel "fell" when the darker frame reads this much above the brighter one ...
STATIC_MAX_SHARE = 0.005   # ... and more than this share of the compared pixels fell: something moved


@dataclass
class Bracket:
    """Frames (aligned; order as given), their relative exposures, and where every frame shows the picture."""

    frames: list[Frame]
    exposures: np.ndarray            # relative exposure of each frame (time x ISO gain)
    valid: np.ndarray                # (H, W) bool: picture in every frame (not padding, not shifted in)
    shifts: list[tuple[int, int]]    # (dx, dy) each frame was moved by

    def light(self, i: int) -> np.ndarray:
        """Where frame i records light: inside `valid`, no channel clipped, every channel above the noise floor."""
        return self.valid & light_mask(self.frames[i].image)

    def crop(self) -> tuple[slice, slice]:
        """The bounding box of `valid`: the common interior that every frame shows."""
        rows, cols = np.flatnonzero(self.valid.any(axis=1)), np.flatnonzero(self.valid.any(axis=0))
        return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def light_mask(image: np.ndarray, *, floor: int = NOISE_FLOOR_CODE) -> np.ndarray:
    """Pixels of one frame that record light: no channel clipped, no channel in the noise floor."""
    return (image < CLIPPED_CODE).all(axis=-1) & (image > floor).all(axis=-1)


def border_mask(image: np.ndarray, *, span: int = BORDER_RANGE) -> np.ndarray:
    """False on the constant rows and columns at a frame's edges (registration padding, pure-colour borders).
    A row that is all clipped or all black is not counted as padding: the light masks drop it in the frames
    where it is so, and the other frames keep it."""
    h, w = image.shape[:2]
    img = image.astype(np.int16)
    # saturated or black rows are light (or its absence) the light masks handle, not padding
    extreme = (img.min(axis=-1) >= CLIPPED_CODE) | (img.max(axis=-1) <= NOISE_FLOOR_CODE)
    row_span = np.where(extreme.all(axis=1), 255, (img.max(axis=1) - img.min(axis=1)).max(axis=-1))   # (H,)
    col_span = np.where(extreme.all(axis=0), 255, (img.max(axis=0) - img.min(axis=0)).max(axis=-1))   # (W,)

    def run(spans: np.ndarray) -> int:
        flat = spans <= span
        return int(np.argmin(flat)) if not flat.all() else len(spans)

    top, bottom = run(row_span), run(row_span[::-1])
    left, right = run(col_span), run(col_span[::-1])
    mask = np.zeros((h, w), bool)
    if top + bottom < h and left + right < w:
        mask[top:h - bottom, left:w - right] = True
    return mask


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (image.shape[1], image.shape[0]),
                          flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align(images: Sequence[np.ndarray], exposures: Sequence[float]) -> list[tuple[int, int]]:
    """Integer (dx, dy) moving each image onto the middle exposure: MTB between neighbouring exposures (their
    bitmaps agree best), chained outwards from the middle. A shift is kept only where it makes the two bitmaps
    agree better than no shift (dark frames are mostly noise: MTB then returns an arbitrary shift)."""
    h, w = images[0].shape[:2]
    bits = int(np.clip(np.floor(np.log2(min(h, w) / 8)), 1, ALIGN_MAX_BITS))   # search up to 2**bits px
    mtb = cv2.createAlignMTB(max_bits=bits, exclude_range=ALIGN_EXCLUDE, cut=False)
    grey = [cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY) for im in images]
    order = list(np.argsort(exposures))
    middle = len(order) // 2
    shifts: dict[int, tuple[int, int]] = {int(order[middle]): (0, 0)}
    for path in (order[middle:], order[middle::-1]):
        for a, b in zip(path, path[1:]):
            dx, dy = (int(v) for v in mtb.calculateShift(grey[a], grey[b]))   # moves b onto a
            if (dx or dy) and not _better(mtb, grey[a], grey[b], dx, dy):
                dx, dy = 0, 0
            sx, sy = shifts[int(a)]
            shifts[int(b)] = (sx + dx, sy + dy)
    return [shifts[i] for i in range(len(images))]


def _better(mtb, fixed: np.ndarray, moving: np.ndarray, dx: int, dy: int) -> bool:
    """Does shifting `moving` by (dx, dy) make its median-threshold bitmap agree with `fixed`'s clearly better
    than no shift, over the same pixels (those the shift keeps inside the frame, that both bitmaps trust)?"""
    inside = _shift(np.ones_like(moving), dx, dy).astype(bool) & _shift(np.ones_like(moving), -dx, -dy).astype(bool)
    tb0, eb0 = (b > 0 for b in mtb.computeBitmaps(fixed))
    before_t, before_e = (b > 0 for b in mtb.computeBitmaps(moving))
    after_t, after_e = (b > 0 for b in mtb.computeBitmaps(_shift(moving, dx, dy)))
    trusted = eb0 & before_e & after_e & inside
    if trusted.sum() < 100:
        return False
    before = float((tb0 != before_t)[trusted].mean())
    after = float((tb0 != after_t)[trusted].mean())
    return after < 0.8 * before


def prepare(frames: Sequence[Frame], exposures: Sequence[float], what: str, *, aligned: bool = True) -> Bracket:
    """Align the frames (unless `aligned=False`) and find where every one of them shows the picture."""
    shifts = align([f.image for f in frames], exposures) if aligned else [(0, 0)] * len(frames)
    moved, valid = [], np.ones(frames[0].image.shape[:2], bool)
    for frame, (dx, dy) in zip(frames, shifts):
        picture = border_mask(frame.image).astype(np.uint8)
        if dx or dy:
            frame = replace(frame, image=_shift(frame.image, dx, dy))
            picture = _shift(picture, dx, dy)
        moved.append(frame)
        valid &= picture.astype(bool)
    if valid.mean() < 0.25:
        worst = max(range(len(frames)), key=lambda i: abs(shifts[i][0]) + abs(shifts[i][1]))
        raise CalibrationInputError(f"{what}: the frames share only {valid.mean():.0%} of the picture "
                                    f"({frames[worst].name} "
                                    f"is {shifts[worst][0]:+d},{shifts[worst][1]:+d} px off, or padded); shoot from a "
                                    "tripod and keep the framing")
    return Bracket(moved, np.asarray(exposures, np.float64), valid, list(shifts))


def check_static(bracket: Bracket, what: str, *, drop_codes: int = STATIC_DROP_CODES,
                 max_share: float = STATIC_MAX_SHARE) -> None:
    """Refuse a bracket whose scene moved (after alignment). In a static bracket a pixel's code can only rise with
    the exposure; a darker frame reading `drop_codes` above everything its brighter neighbour shows within one
    pixel is motion, not the sub-pixel shift alignment leaves or noise. Compared where the darker frame records
    light (not padding, not clipped, above the noise floor)."""
    frames = bracket.frames
    order = np.argsort(bracket.exposures)
    kernel = np.ones((3, 3), np.uint8)
    for a, b in zip(order, order[1:]):
        darker, brighter = frames[a], frames[b]
        where = bracket.light(int(a))
        if not where.any():
            continue
        ceiling = cv2.dilate(brighter.image, kernel).astype(np.int16)
        fell = ((darker.image.astype(np.int16) - ceiling) > drop_codes).any(axis=-1)
        share = float(fell[where].mean())
        if share > max_share:
            raise CalibrationInputError(
                f"{what}: {brighter.name} is darker than {darker.name} at {share:.1%} of the pixels both show, after "
                "aligning the frames, although it had more light: something in the scene moved (or the camera "
                "turned). Shoot a static scene from a locked-off camera (tripod, remote release) and reshoot")
