"""Lens geometry: the real focal length (and field of view) at each marked focal length and focus distance, and the
radial distortion, from views of a checkerboard with `cv2.calibrateCamera`.

A marked "50 mm" is rarely 50 mm, a zoom's error changes along its range, and most lenses *breathe*: the
focal length (the framing) changes as they focus. Each (marked focal length, focus distance) the plan shot is
one calibration; between them the real focal length is interpolated (linearly in 1/focus, then in marked
focal length), so a mapping can ask for any setting in the measured range.

Model and its limits: principal point at the image centre, square pixels, no tangential distortion, k1 and k2
radial terms. With those fixed, one view of a *tilted* board fixes the focal length (its foreshortening); the
views at several slider positions spread the corners over the frame for the distortion. A board facing the
camera squarely cannot separate focal length from distance and is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .. import optics
from ..camera.protocol import FOCAL, FOCUS
from .inputs import CalibrationInputError, Frame, require_count, require_same_size

WHAT = "geometry"
MIN_VIEWS = 2
MIN_TILT_DEG = 10.0
MAX_RMS_PX = 1.0
_FLAGS = (cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_ASPECT_RATIO
          | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3)


@dataclass(frozen=True)
class GeometryEntry:
    nominal_mm: float
    focus_m: float
    focal_mm: float              # real focal length, for a sensor `LensGeometry.sensor_width_mm` wide
    distortion: tuple[float, float]   # k1, k2
    rms_px: float
    views: int

    def to_dict(self) -> dict:
        return {"nominal_mm": self.nominal_mm, "focus_m": self.focus_m, "focal_mm": round(self.focal_mm, 4),
                "distortion": [round(v, 6) for v in self.distortion], "rms_px": round(self.rms_px, 4),
                "views": self.views}


@dataclass(frozen=True)
class LensGeometry:
    sensor_width_mm: float
    width_px: int
    height_px: int
    entries: tuple[GeometryEntry, ...]

    def focal_mm(self, nominal_mm: float, focus_m: float) -> float:
        """The real focal length at a marked focal length and focus distance."""
        return nominal_mm * self._ratio(nominal_mm, focus_m)

    def _ratio(self, nominal_mm: float, focus_m: float) -> float:
        """real / marked, interpolated in 1/focus at each measured marked length, then across marked lengths."""
        nominals = sorted({e.nominal_mm for e in self.entries})
        ratios = []
        for nominal in nominals:
            rows = sorted((1.0 / e.focus_m, e.focal_mm / e.nominal_mm) for e in self.entries if e.nominal_mm == nominal)
            ratios.append(float(np.interp(1.0 / focus_m, [r[0] for r in rows], [r[1] for r in rows])))
        return float(np.interp(nominal_mm, nominals, ratios))

    def nominal_mm(self, real_mm: float, focus_m: float) -> float:
        """The marked focal length that gives `real_mm` at `focus_m` (the inverse of `focal_mm`)."""
        low, high = real_mm / 4.0, real_mm * 4.0
        for _ in range(80):
            mid = math.sqrt(low * high)
            if self.focal_mm(mid, focus_m) < real_mm:
                low = mid
            else:
                high = mid
        return math.sqrt(low * high)

    def field_of_view_deg(self, nominal_mm: float, focus_m: float) -> float:
        return optics.field_of_view_deg(self.focal_mm(nominal_mm, focus_m), self.sensor_width_mm)

    def to_dict(self) -> dict:
        return {"sensor_width_mm": self.sensor_width_mm, "width_px": self.width_px, "height_px": self.height_px,
                "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, data: dict) -> "LensGeometry":
        entries = tuple(GeometryEntry(float(e["nominal_mm"]), float(e["focus_m"]), float(e["focal_mm"]),
                                      tuple(float(v) for v in e["distortion"]), float(e["rms_px"]),  # type: ignore[arg-type]
                                      int(e["views"])) for e in data["entries"])
        return cls(float(data["sensor_width_mm"]), int(data["width_px"]), int(data["height_px"]), entries)


def find_corners(image: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """Sub-pixel inner corners of a `board` = (columns, rows) checkerboard, or None when it is not in view."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = 2 if grey.shape[1] > 1000 else 1           # find on a smaller copy (fast), refine at full size
    small = cv2.resize(grey, None, fx=1 / scale, fy=1 / scale, interpolation=cv2.INTER_AREA) if scale > 1 else grey
    found, corners = cv2.findChessboardCorners(small, board, flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                               | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        found, corners = cv2.findChessboardCornersSB(small, board, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not found:
            return None
    corners = ((corners.reshape(-1, 1, 2) + 0.5) * scale - 0.5).astype(np.float32)
    grid = corners.reshape(board[1], board[0], 2)
    spacing = float(min(np.linalg.norm(np.diff(grid, axis=0), axis=-1).min(),
                        np.linalg.norm(np.diff(grid, axis=1), axis=-1).min()))
    half = int(np.clip(0.4 * spacing, 3, 15))   # wide enough for a defocused corner, inside its own square
    corners = cv2.cornerSubPix(grey, corners, (half, half), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 60, 1e-4))
    return corners.reshape(-1, 2).astype(np.float32)


def measure_geometry(frames: Sequence[Frame], *, board: tuple[int, int], square_mm: float,
                     sensor_width_mm: float = optics.FULL_FRAME_WIDTH_MM) -> tuple[LensGeometry, dict]:
    """One calibration per (marked focal length, focus distance) the frames were shot at."""
    columns, rows = (int(v) for v in board)
    if columns < 3 or rows < 3 or square_mm <= 0:
        raise CalibrationInputError(f"{WHAT}: board {columns}x{rows} inner corners with {square_mm:g} mm squares is not "
                                    "a checkerboard to calibrate on; give the inner corners (e.g. 9x6) and the square "
                                    "size in mm")
    require_count(frames, MIN_VIEWS, WHAT, f"shoot the tilted checkerboard from {MIN_VIEWS} or more positions at "
                                           "each focal length")
    height, width = require_same_size(frames, WHAT)
    groups: dict[tuple[float, float], list[Frame]] = {}
    for frame in frames:
        groups.setdefault((frame.setting(FOCAL, WHAT), frame.setting(FOCUS, WHAT)), []).append(frame)
    board_points = np.zeros((columns * rows, 3), np.float32)
    board_points[:, :2] = np.mgrid[0:columns, 0:rows].T.reshape(-1, 2) * square_mm
    entries, figures = [], {"groups": []}
    for (nominal, focus), group in sorted(groups.items()):
        seen = [(f, find_corners(f.image, (columns, rows))) for f in group]
        missing = [f.name for f, c in seen if c is None]
        views = [c for _, c in seen if c is not None]
        if len(views) < MIN_VIEWS:
            raise CalibrationInputError(
                f"{WHAT}: the {columns}x{rows} checkerboard was found in {len(views)} of {len(group)} frame(s) at "
                f"{nominal:g} mm, focus {focus:g} m (not in {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); "
                "keep the whole board in view and sharp (stop down, focus on it), check the board size (inner "
                f"corners), and shoot at least {MIN_VIEWS} views")
        rms, focal_px, k1 = _calibrate(board_points, views, (width, height), nominal, sensor_width_mm,
                                       where=(nominal, focus))
        focal_mm = focal_px * sensor_width_mm / width
        entries.append(GeometryEntry(nominal, focus, focal_mm, (k1, 0.0), rms, len(views)))
        figures["groups"].append({"nominal_mm": nominal, "focus_m": focus, "focal_mm": focal_mm,
                                  "ratio": focal_mm / nominal, "rms_px": rms, "views": len(views),
                                  "skipped": missing})
    geometry = LensGeometry(float(sensor_width_mm), width, height, tuple(entries))
    figures["largest_error"] = max(abs(e.focal_mm / e.nominal_mm - 1.0) for e in entries)
    return geometry, figures


def _calibrate(board_points: np.ndarray, views: list[np.ndarray], size: tuple[int, int], nominal: float,
               sensor_width_mm: float, *, where: tuple[float, float]) -> tuple[float, float, float]:
    """(rms px, focal length px, k1) of one (marked focal length, focus) group."""
    width, height = size
    guess = optics.focal_px(nominal, width, sensor_width_mm)
    matrix = np.array([[guess, 0, (width - 1) / 2.0], [0, guess, (height - 1) / 2.0], [0, 0, 1]], np.float64)
    rms, matrix, dist, rvecs, _ = cv2.calibrateCamera([board_points] * len(views), views, size, matrix, np.zeros(5),
                                                      flags=_FLAGS)
    label = f"{where[0]:g} mm, focus {where[1]:g} m"
    tilt = max(_tilt_deg(r) for r in rvecs)
    if tilt < MIN_TILT_DEG:
        raise CalibrationInputError(f"{WHAT}: at {label} the board faces the camera squarely (tilted {tilt:.0f} "
                                    "degrees); a square-on board cannot tell focal length from distance: tilt it by "
                                    "20-45 degrees and reshoot")
    if rms > MAX_RMS_PX:
        raise CalibrationInputError(f"{WHAT}: at {label} the corners fit the lens model only to {rms:.2f} px (at most "
                                    f"{MAX_RMS_PX:g} px expected): the board moved during an exposure, is not flat, "
                                    "or the frames are blurred; reshoot")
    return float(rms), float(matrix[0, 0]), float(np.ravel(dist)[0])


def _tilt_deg(rvec: np.ndarray) -> float:
    """Angle between the board's normal and the optical axis."""
    rotation, _ = cv2.Rodrigues(rvec)
    return math.degrees(math.acos(min(1.0, abs(float(rotation[2, 2])))))
