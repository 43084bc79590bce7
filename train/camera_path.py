"""A requested camera path for an edit: slider offsets in mm or 3x4 poses, as `train edit` and `serve` take it.

A path is the *target* camera's pose relative to the source camera at the same frame (identity = keep the
source's own path), the same relation a captured pair's trajectory has. Keyframes are spread evenly over the
clip and interpolated per frame; the model reads one pose per latent frame (frames 0, 4, 8, ... of a window).

    {"slider_mm": [0, 10, 20]}                      offsets along the slider (the camera's x axis), in mm
    {"poses": [[1,0,0,0, 0,1,0,0, 0,0,1,0], ...]}   3x4 [R | t] rows (t in metres), flat or nested
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

MAX_KEYFRAMES = 10_000
MAX_OFFSET_MM = 10_000.0          # a slider longer than 10 m is a typo
MM_PER_M = 1000.0
#: The unit of camera translation the model reads, in metres: the scale of a slider rig's moves between passes
#: (the lab day sweeps 0-60 mm, the demo 0-40 mm). In metres a 40 mm offset entered the pose as 0.04 beside
#: rotation entries of order 1, so camera paths did nothing; in this unit it is 0.8. `model_trajectory` is the
#: one place it is applied: training data (`train.data.offsets_trajectory`), edits (`latent_trajectory`: `train
#: edit`, `serve`, evaluation, sample edits) all reach the model through it. (ReCamMaster rescales its
#: Unreal poses the same way, by 1/100.)
TRANSLATION_SCALE_M = 0.05


class CameraPathError(ValueError):
    """A camera path that cannot be used; the message names the entry, the value and the expected form."""


@dataclass(frozen=True)
class CameraPath:
    keyframes: np.ndarray            # (K, 3, 4) float64
    kind: str                        # "slider_mm" | "poses"
    raw: dict[str, Any]

    def per_frame(self, frames: int) -> np.ndarray:
        """(frames, 3, 4): keyframes spread evenly from the first to the last frame; rotations by scipy's `Slerp`
        (constant angular speed between keyframes), translations linear."""
        from scipy.spatial.transform import Rotation, Slerp
        k = len(self.keyframes)
        if k == 1 or frames == 1:
            return np.repeat(self.keyframes[:1], frames, axis=0)
        keys, at = np.arange(k), np.linspace(0, k - 1, frames)
        poses = np.empty((frames, 3, 4))
        poses[:, :, :3] = Slerp(keys, Rotation.from_matrix(self.keyframes[:, :, :3]))(at).as_matrix()
        poses[:, :, 3] = np.stack([np.interp(at, keys, self.keyframes[:, i, 3]) for i in range(3)], axis=1)
        return poses

    def describe(self) -> str:
        if self.kind == "slider_mm":
            mm = self.keyframes[:, 0, 3] * MM_PER_M
            return f"slider path {mm.min():g}..{mm.max():g} mm over {len(mm)} keyframe(s)"
        return f"camera path of {len(self.keyframes)} pose keyframe(s)"


def parse(spec: str | Mapping[str, Any] | None) -> CameraPath | None:
    """A JSON string or a mapping -> CameraPath; None or {} -> None (the source's own path)."""
    if spec is None:
        return None
    if isinstance(spec, (str, bytes)):
        text = spec.decode() if isinstance(spec, bytes) else spec
        if not text.strip():
            return None
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CameraPathError(f"camera path {text[:60]!r} is not JSON ({exc.msg}); give "
                                  '{"slider_mm": [...]} or {"poses": [[12 numbers], ...]}') from None
    if not isinstance(spec, Mapping):
        raise CameraPathError(f"camera path {str(spec)[:60]!r}: expected an object with slider_mm or poses")
    if not spec:
        return None
    keys = set(spec)
    if keys not in ({"slider_mm"}, {"poses"}):
        raise CameraPathError(f"camera path keys {sorted(keys)}: give exactly one of slider_mm (offsets in mm) "
                              "or poses (3x4 per keyframe)")
    if "slider_mm" in spec:
        return CameraPath(_slider(spec["slider_mm"]), "slider_mm", dict(spec))
    return CameraPath(_poses(spec["poses"]), "poses", dict(spec))


def load(value: str) -> CameraPath | None:
    """A command-line value: a JSON file's path or inline JSON."""
    path = Path(value)
    if not value.lstrip().startswith("{") and path.suffix.lower() == ".json":
        if not path.is_file():
            raise CameraPathError(f"camera path file {value}: no such file")
        return parse(path.read_text())
    return parse(value)


def _entries(values: Any, what: str, kind: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise CameraPathError(f"{what} = {str(values)[:60]}: expected a non-empty list of {kind}")
    if len(values) > MAX_KEYFRAMES:
        raise CameraPathError(f"{what}: {len(values)} entries; at most {MAX_KEYFRAMES}")
    return values


def _number_list(values: Any, what: str) -> list[float]:
    _entries(values, what, "numbers")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise CameraPathError(f"{what}[{i}] = {v!r}: expected a finite number")
        out.append(float(v))
    return out


def _slider(values: Any) -> np.ndarray:
    mm = _number_list(values, "slider_mm")
    worst = max(mm, key=abs)
    if abs(worst) > MAX_OFFSET_MM:
        raise CameraPathError(f"slider_mm value {worst:g} mm is beyond ±{MAX_OFFSET_MM:g} mm; offsets are in mm")
    return np.stack([slider_pose(v) for v in mm])


def slider_pose(offset_mm: float) -> np.ndarray:
    """[I | (offset, 0, 0)] in metres: the slider moves the camera along its own x axis."""
    pose = np.zeros((3, 4))
    pose[:, :3] = np.eye(3)
    pose[0, 3] = offset_mm / MM_PER_M
    return pose


def _poses(values: Any) -> np.ndarray:
    _entries(values, "poses", "3x4 poses")
    out = []
    for i, pose in enumerate(values):
        flat = [x for row in pose for x in (row if isinstance(row, list) else [row])] if isinstance(pose, list) \
            else pose
        numbers = _number_list(flat, f"poses[{i}]")
        if len(numbers) != 12:
            raise CameraPathError(f"poses[{i}] has {len(numbers)} numbers; a pose is 3x4 = 12 ([R | t] by rows)")
        m = np.asarray(numbers).reshape(3, 4)
        rot = m[:, :3]
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
            raise CameraPathError(f"poses[{i}]: its 3x3 part is not a rotation (R Rᵀ = I, det R = +1)")
        if np.abs(m[:, 3]).max() > MAX_OFFSET_MM / MM_PER_M:
            raise CameraPathError(f"poses[{i}]: translation {m[:, 3].tolist()} is beyond ±10 m; t is in metres")
        out.append(m)
    return np.stack(out)


def model_trajectory(poses: np.ndarray, unit_m: float = TRANSLATION_SCALE_M) -> torch.Tensor:
    """(..., 3, 4) relative poses, t in metres -> (..., 12) as the model reads them: t in `unit_m` (training uses
    TRANSLATION_SCALE_M and records it in the model card; edits pass the card's, `translation_unit`)."""
    poses = np.array(poses, dtype=np.float64, copy=True)
    poses[..., :, 3] /= unit_m
    return torch.from_numpy(poses.reshape(*poses.shape[:-2], 12)).float()


def latent_trajectory(poses: np.ndarray | None, start: int, frames: int, available: int,
                      unit_m: float = TRANSLATION_SCALE_M) -> torch.Tensor:
    """(latent_frames, 12) for a window of `frames` frames from `start`: latent frame j reads the pose of frame
    start + 4j (clamped to the clip's `available` frames), t in `unit_m`; None = identity (static relative path)."""
    from .model import identity_trajectory
    latent = (frames - 1) // 4 + 1
    if poses is None:
        return identity_trajectory(1, latent)[0]
    idx = [min(start + 4 * j, available - 1) for j in range(latent)]
    return model_trajectory(poses[idx], unit_m)


def translation_unit(card_unit_m: Any, *, what: str = "model") -> float:
    """The translation unit (m) a model was trained with, from its card's `translation_unit_m`: a model trained
    with another unit is read in its own (not this code's TRANSLATION_SCALE_M); a card that records none (written
    before the card kept it) is read in TRANSLATION_SCALE_M, the unit those models were trained with."""
    if card_unit_m is None:
        return TRANSLATION_SCALE_M
    if isinstance(card_unit_m, bool) or not isinstance(card_unit_m, (int, float)) or not math.isfinite(card_unit_m) \
            or card_unit_m <= 0:
        raise CameraPathError(f"{what}: cinectrl.json translation_unit_m = {card_unit_m!r}: expected a positive "
                              f"number of metres (this cinectrl trains with {TRANSLATION_SCALE_M})")
    return float(card_unit_m)
