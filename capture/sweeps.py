"""Sweep measurement and sweep QC: does the statistic of a sweep's axis move with the setting, the right way?

For every sweep (one camera role varied, captured by `capture run` or imported), the statistic the controls
registry names for that role (`rigs/statistics.py`, the one evaluation uses) is measured on every setting and
checked against the physics: it must move (a stuck aperture, a focus that never drove, a white balance the body
ignored do not), in the direction the physics says (`EXPECTED_SIGN`), and monotonically. Real sweeps need care
the simulated camera never asked for, so frames are first brought to a common ground: scaled to a working
width, registered to the reference (sub-pixel shifts, focus breathing; never for a zoom sweep, whose
magnification is the measurement), and measured only where every frame holds light (no padding, no area the
registration moved in from outside; no clipped pixels for colour).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from rigs import controls as registry
from rigs import statistics as stats
from rigs.camera.protocol import APERTURE, FOCAL, FOCUS, ISO, KELVIN, SHUTTER

WORK_WIDTH = 480            # frames are measured at this width (a real file is 1000s of px; the evaluation 96)
MIN_ABS_R = 0.95            # |Pearson r| of the statistic with the physical value a sweep must reach
FILE_NAME = "sweeps.json"   # in a session's outputs/ folder

#: the statistic of each swept role: the registry's control whose capture sweep varies that role
ROLE_STATISTIC: dict[str, str] = {c.sweep_role: c.statistic for c in registry.CONTROLS}

#: the scale on which each role's setting acts on its statistic ~linearly (the controls' own scales):
#: stops for the f-number, exposure time and ISO, log focal length, mired, disparity (1 / metres)
PHYSICAL_SCALE: dict[str, Callable[[float], float]] = {
    APERTURE: lambda n: 2.0 * math.log2(n), SHUTTER: math.log2, ISO: math.log2, FOCAL: math.log,
    KELVIN: lambda k: 1e6 / k, FOCUS: lambda m: 1.0 / m,
}

#: how the statistic moves as the role's setting rises on that scale
EXPECTED_SIGN: dict[str, int] = {
    APERTURE: +1,    # a smaller opening (more stops) blurs less: sharpness rises
    SHUTTER: +1,     # a longer exposure is brighter
    ISO: +1,         # more gain, more noise (at constant exposure)
    FOCUS: +1,       # focusing nearer (more disparity) moves the focus plane nearer: focus_depth rises;
                     # without depth the stack's own depth from focus is used, ordered by the given steps
    FOCAL: +1,       # a longer lens magnifies
    KELVIN: +1,      # more mired (a lower white-balance setting) cools the picture: log(B/R) rises
}

#: the smallest full-sweep change of each statistic that counts as "it moved" (its units: see rigs/statistics)
MIN_CHANGE: dict[str, float] = {
    "brightness": 2.0,          # grey levels
    "colour_balance": 0.03,     # log(B/R): ~5 mired
    "sharpness": 0.1,           # log Laplacian energy
    "noise": 0.1,               # log sigma
    "zoom_scale": 0.02,         # log magnification: 2 %
    "focus_depth": 0.05,        # normalised disparity
    "focus_position": 0.15,     # median share of a tile's detail that focus changed (depth from focus)
}
_MISSING = set(ROLE_STATISTIC) - (set(EXPECTED_SIGN) & set(PHYSICAL_SCALE))
if _MISSING:
    raise ImportError(f"capture/sweeps.py: no expected direction for swept role(s) {sorted(_MISSING)}")


@dataclass
class SweepResponse:
    """What one sweep's statistic did along it, and what QC makes of that."""

    role: str
    statistic: str
    values: list[float]                   # the physical values, sweep order
    measured: list[float]                 # the statistic of each setting
    pearson: float | None                 # of measured against the values on PHYSICAL_SCALE
    change: float                         # full-sweep change of the statistic (or, for focus without depth,
                                          # the share of detail focus changed)
    expected_sign: int
    registration: list[dict[str, float]] = field(default_factory=list)   # per frame: shift px, scale
    flags: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.flags

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# ------------------------------------------------------------------------------------------------ frames

def working_frames(frames: Sequence[np.ndarray], width: int = WORK_WIDTH) -> list[np.ndarray]:
    """Every frame at `width` (area-averaged), all at the reference's size."""
    h, w = frames[0].shape[:2]
    size = (min(width, w), max(2, round(h * min(width, w) / w)))
    return [np.ascontiguousarray(cv2.resize(f, size, interpolation=cv2.INTER_AREA)) if f.shape[1::-1] != size
            else np.ascontiguousarray(f) for f in frames]


def padding_mask(frame: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """True where the frame holds light: the flat rows and columns a registered, padded frame has at its
    borders (pure colour, no noise) are left out."""
    g = stats.gray(frame).astype(np.float32)
    keep = np.ones(g.shape, bool)
    h, w = g.shape
    for axis, n in ((0, h), (1, w)):
        spread = g.std(axis=1 - axis)
        for order in (range(n), range(n - 1, -1, -1)):
            for i in order:
                if spread[i] > tolerance:
                    break
                if axis == 0:
                    keep[i, :] = False
                else:
                    keep[:, i] = False
    return keep


def register(reference: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """`frame` warped onto `reference` by the toolkit's affine registration (`rigs.statistics.
    affine_registration`: ECC on zero-mean normalised intensities, so an exposure or white-balance step does not
    read as motion; shift, rotation, scale: focus breathing); returns the warped frame, where it holds
    moved-in pixels (False), and the centre's shift (px) and the scale found. A fit that does not converge leaves the frame
    as it is."""
    try:
        warp, _ = stats.affine_registration(reference, frame, width=reference.shape[1])
    except ValueError:
        warp = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    h, w = reference.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(frame, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(frame.shape[:2], np.uint8), warp, (w, h), flags=flags,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    scale = float(math.sqrt(abs(np.linalg.det(warp[:, :2]))))
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    shift = warp[:, :2] @ centre + warp[:, 2] - centre          # how far the picture centre moved
    return warped, inside, {"shift_px": float(np.hypot(*shift)), "scale": scale}


def unclipped(frame: np.ndarray) -> np.ndarray:
    """Pixels no channel of which is clipped or at the noise floor."""
    return (frame.max(axis=2) < 254) & (frame.min(axis=2) > 2)


# ------------------------------------------------------------------------------------------------ measurement

def measure_sweep(role: str, values: Sequence[float], frames: Sequence[np.ndarray], *, reference: int = 0,
                  depth: np.ndarray | None = None, focus: float | None = None,
                  width: int = WORK_WIDTH) -> SweepResponse:
    """The statistic of `role`'s sweep on every frame (one frame per setting, `reference` the index of the
    pairs' reference) and its QC against the physics. `depth` (metres, the reference's) makes a focus sweep
    measure `focus_depth` and an aperture sweep its sharpness where defocus changes; without it a focus sweep
    is measured by the stack's own depth from focus."""
    if role not in ROLE_STATISTIC:
        raise ValueError(f"no sweep statistic for role {role!r}; swept roles are {', '.join(ROLE_STATISTIC)}")
    if len(values) != len(frames) or len(frames) < 2:
        raise ValueError(f"a {role} sweep needs one frame per value and at least two: got {len(frames)} frames "
                         f"for {len(values)} values")
    statistic = ROLE_STATISTIC[role]
    work = working_frames(frames, width)
    ref = work[reference]
    valid = padding_mask(ref)
    registration = []
    if role != FOCAL:                                   # a zoom's magnification is what is measured
        aligned = []
        for i, frame in enumerate(work):
            if i == reference:
                aligned.append(frame)
                registration.append({"shift_px": 0.0, "scale": 1.0})
                continue
            warped, inside, found = register(ref, frame)
            aligned.append(warped)
            valid &= inside & padding_mask(warped)
            registration.append(found)
        work = aligned
    depth_map = None if depth is None else cv2.resize(np.asarray(depth, np.float32), ref.shape[1::-1],
                                                      interpolation=cv2.INTER_NEAREST)
    measured, change = _measure(statistic, work, reference, valid, depth_map, focus)
    if statistic == "focus_depth" and depth_map is None:
        statistic = "focus_position"
    sign = EXPECTED_SIGN[role]
    scale = PHYSICAL_SCALE[role] if statistic != "focus_position" else float   # steps, as given
    r = _pearson([scale(float(v)) for v in values], measured)
    response = SweepResponse(role, statistic, [float(v) for v in values], [float(m) for m in measured], r,
                             float(change), sign, registration)
    response.flags = _judge(response)
    return response


def _measure(statistic: str, frames: list[np.ndarray], reference: int, valid: np.ndarray,
             depth: np.ndarray | None, focus: float | None) -> tuple[list[float], float]:
    if statistic == "brightness":
        values = [stats.brightness(f, valid) for f in frames]
    elif statistic == "colour_balance":
        mask = valid.copy()
        for f in frames:
            mask &= unclipped(f)
        values = [stats.colour_balance(f, mask) for f in frames]
    elif statistic == "noise":
        values = [math.log(max(stats.noise_sigma(f), 1e-3)) for f in frames]
    elif statistic == "sharpness":
        mask = valid
        if depth is not None:
            far = stats.defocus_mask(depth, focus, depth.shape, 1)
            mask = valid & far[0] if far is not None else valid
        values = [math.log(max(stats.sharpness(f, mask), 1e-9)) for f in frames]
    elif statistic == "zoom_scale":
        values = [0.0 if i == reference else math.log(stats.zoom_factor(frames[reference], f, lo=0.5, hi=4.0))
                  for i, f in enumerate(frames)]
    elif statistic == "focus_depth" and depth is not None:
        ctx = stats.Context(source=frames[reference][None], depth=depth)
        values = [stats.clip_focus_depth(f[None], ctx) for f in frames]
    elif statistic == "focus_depth":
        positions, moved = stats.focus_positions(frames, valid)
        return [float(p) for p in positions], moved
    else:
        raise ValueError(f"no sweep measurement for statistic {statistic!r}")
    return values, float(max(values) - min(values))


def _pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) < 2 or x.std() < 1e-12 or y.std() < 1e-12:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _judge(r: SweepResponse) -> list[str]:
    """QC flags: the statistic does not move, moves the wrong way, or turns back along the sweep."""
    flags = []
    floor = MIN_CHANGE[r.statistic]
    if r.change < floor:
        flags.append(f"{r.statistic} does not move along the {r.role} sweep (change {r.change:.3g} < {floor:g}): "
                     f"check that the {r.role} really changed on the body")
        return flags
    if r.pearson is None or r.pearson * r.expected_sign < MIN_ABS_R:
        way = "rises" if r.expected_sign > 0 else "falls"
        flags.append(f"{r.statistic} does not follow the {r.role} (Pearson r {_fmt(r.pearson)}; the physics says it "
                     f"{way} with the {r.role}, |r| >= {MIN_ABS_R} expected)")
    scale = PHYSICAL_SCALE[r.role] if r.statistic != "focus_position" else float
    order = np.argsort([scale(v) for v in r.values], kind="stable")
    steps = np.diff(np.asarray(r.measured)[order]) * r.expected_sign
    tolerance = floor / 2 if r.statistic != "focus_position" else 0.5      # depth from focus: half a step
    backwards = int((steps < -tolerance).sum())
    if backwards:
        flags.append(f"{r.statistic} turns back {backwards} time(s) along the {r.role} sweep (not monotonic)")
    return flags


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.2f}"


# ------------------------------------------------------------------------------------------------ sessions

DEEP_FOCUS_F_NUMBER = 11.0   # a focus series at this f-number or smaller opening has nothing out of focus to move


def session_sweeps(settings: Mapping[int, Mapping[str, str]], frames: Mapping[int, np.ndarray],
                   reference: int, *, depth: np.ndarray | None = None, focus: float | None = None
                   ) -> list[SweepResponse]:
    """Every sweep in a session's combinations: for each swept role, each group of combinations that agree on
    every other role (the shutter may compensate exposure) with at least three values of the role, or a
    two-setting import; measured on one frame per combination (the middle of a clip)."""
    from .pairs import numeric
    out = []
    for role in ROLE_STATISTIC:
        free = {role, SHUTTER}
        groups: dict[tuple, list[int]] = {}
        for cid, s in settings.items():
            if role in numeric(s):
                key = tuple(sorted((r, v) for r, v in numeric(s).items() if r not in free))
                groups.setdefault(key, []).append(cid)
        for key, members in groups.items():
            values = {c: numeric(settings[c])[role] for c in members}
            distinct = len(set(values.values()))
            if distinct < 3 and not (distinct == 2 and len(settings) == 2):
                continue
            if role == FOCUS and dict(key).get(APERTURE, 0.0) >= DEEP_FOCUS_F_NUMBER:
                continue
            members.sort(key=lambda c: values[c])
            ref = reference if reference in members else members[0]
            try:
                out.append(measure_sweep(role, [values[c] for c in members], [frames[c] for c in members],
                                         reference=members.index(ref), depth=depth if ref == reference else None,
                                         focus=focus))
            except (ValueError, cv2.error) as exc:
                out.append(SweepResponse(role, ROLE_STATISTIC[role], [values[c] for c in members], [], None, 0.0,
                                         EXPECTED_SIGN[role], flags=[f"not measured: {exc}"]))
    return out


def save(responses: Sequence[SweepResponse], folder: Path) -> Path:
    path = Path(folder) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps([r.as_dict() for r in responses], indent=1))
    tmp.replace(path)
    return path


def load(folder: Path | None) -> list[dict[str, Any]] | None:
    """The measured responses a session's outputs/ folder holds (None: not measured)."""
    if folder is None or not (Path(folder) / FILE_NAME).is_file():
        return None
    return json.loads((Path(folder) / FILE_NAME).read_text())
