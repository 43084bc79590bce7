"""Synthetic pairs from catalog clips (`cinectrl train synth`): each clip + random controls -> a simulated target.

A clip that cannot be used (unreadable, depth that does not fit) is skipped and reported; the rest go on. A clip
without depth still gives pairs for the effects that need none (bokeh and focus need depth: the sidecar
`<stem>.depth.npz` the simulated camera writes, or `--depth`). The result, `pairs.json`, is a data source for
`cinectrl train run` (`[data] synthetic_pairs = ["DIR/pairs.json"]`); paths inside are relative to its folder
where they can be.
"""

from __future__ import annotations

import inspect
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from rigs import controls as registry
from rigs.statistics import disparity as depth_disparity

from . import effects
from rigs.video import VideoError, read_video, write_video

#: The controls the bokeh simulator takes (K, d_f): they need the clip's depth.
DEPTH_CONTROLS = tuple(name for name in inspect.signature(effects.bokeh).parameters if name in registry.NAMES)


@dataclass
class SynthReport:
    pairs: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)      # clip -> why it gave no pair
    partial: dict[str, str] = field(default_factory=dict)      # clip -> what it could not simulate
    clips: int = 0


def random_controls(rng: random.Random, allowed: Iterable[str]) -> dict[str, float]:
    """One or two controls away from neutral (uniform in their range), the rest neutral: every control in the
    registry order."""
    allowed = sorted(allowed)
    values = dict(registry.NEUTRAL)
    for name in rng.sample(allowed, k=min(len(allowed), rng.randint(1, 2))):
        spec = registry.spec(name)
        values[name] = round(rng.uniform(spec.low, spec.high), 4)
    return values


def load_depth(path: Path, frames: np.ndarray) -> np.ndarray:
    """(T, H, W) depth in metres matching the clip, or ValueError saying why not."""
    try:
        with np.load(path) as data:
            if "depth_m" not in data:
                raise ValueError(f"{path.name} has no depth_m array")
            depth = data["depth_m"].astype(np.float32)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"depth {path.name} unreadable ({exc})") from None
    if depth.ndim == 2:
        depth = np.repeat(depth[None], len(frames), axis=0)
    if depth.ndim != 3 or depth.shape[1:] != frames.shape[1:3]:
        raise ValueError(f"depth {path.name} is {tuple(depth.shape)}; the clip's frames are {frames.shape[1:3]}")
    if len(depth) < len(frames):
        raise ValueError(f"depth {path.name} has {len(depth)} maps for {len(frames)} frames")
    return depth[: len(frames)]


def make_pairs(clips: Iterable[tuple[str, Path]], out: Path, *, per_clip: int = 4, seed: int = 0,
               depth: Path | None = None, profile_for: Callable[[Path], Any] | None = None) -> SynthReport:
    """`clips` = (scene, path) pairs. Writes `<stem>_<i>.mp4` targets and `pairs.json` into `out`.
    `profile_for(clip)`: the calibration profile of the body + lens that shot it (None: the ideal camera)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = SynthReport()
    for scene, clip in clips:
        report.clips += 1
        clip = Path(clip)
        try:
            frames, fps = read_video(clip)
        except VideoError as exc:
            report.skipped[str(clip)] = str(exc)
            continue
        sidecar = clip.with_name(clip.stem + ".depth.npz")
        depth_file = sidecar if sidecar.is_file() else depth
        disparity = None
        if depth_file is not None:
            try:
                disparity = depth_disparity(load_depth(Path(depth_file), frames))
            except ValueError as exc:
                report.skipped[str(clip)] = str(exc)
                continue
        allowed = registry.NAMES if disparity is not None else \
            tuple(n for n in registry.NAMES if n not in DEPTH_CONTROLS)
        if disparity is None:
            report.partial[str(clip)] = (f"no depth ({sidecar.name} missing, no --depth): "
                                         f"{', '.join(DEPTH_CONTROLS)} left neutral")
        profile = profile_for(clip) if profile_for is not None else None
        for i in range(per_clip):
            controls = random_controls(rng, allowed)
            target = effects.simulate_uint8(frames, controls, disparity=disparity, seed=seed + i, profile=profile)
            # clips of different sessions share stems (c000_f0000_p0000.mp4): the clip's number in this run makes
            # each target its own file (a shared name let a later session's render overwrite an earlier pair's)
            dest = write_video(out / f"{report.clips:04d}-{clip.stem}_{i}.mp4", target, fps)
            report.pairs.append({"source": _relative(clip, out), "target": _relative(dest, out), "controls": controls,
                                 "scene": scene, "depth": disparity is not None,
                                 "camera": profile.label if profile is not None else "ideal",
                                 "camera_key": profile.key if profile is not None else None})
    (out / "pairs.json").write_text(json.dumps(report.pairs, indent=1))
    return report


def _relative(path: Path, base: Path) -> str:
    path, base = Path(path).resolve(), Path(base).resolve()
    return os.path.relpath(path, base) if path.is_relative_to(base) else str(path)
