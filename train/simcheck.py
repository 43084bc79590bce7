"""Can each statistic see its control? The lab day's sweep plans shot on the simulated camera at a small size,
without the CLI, and the ideal effect simulator scored on them as `train eval` scores it.

`cinectrl train eval` measures a model with one statistic per control; a statistic (or a plan) that the ideal
simulator, applied to the captured reference, cannot follow makes that control's target unmeetable. This
module shoots each plan of `examples/lab-day/` (the same settings, exposure compensation, pair reference and
control mapping as `capture run`; clips recorded by `SimCamera.record_clip`, H.264 and depth sidecar) for a few
varied scenes and returns the sweeps, so tests and `benchmarks/statistics.py` can hold every statistic to the
simulator check in seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from capture.pairs import SceneContext, form_pairs
from capture.plan import expand, load_plan
from rigs import controls as registry
from rigs.camera.sim import SimCamera

from . import evaluate as E
from rigs.video import read_video

PLANS = Path(__file__).resolve().parents[1] / "examples" / "lab-day"


#: (H, W) the lab day's model works at: every clip and edit is measured fitted to it, as `train eval` measures
EVAL_SIZE = (64, 96)


def shoot_plan(plan_path: str | Path, seed: int, *, frames: int = 3, clip_size: tuple[int, int] = (192, 128)
               ) -> list[E.Sweep]:
    """Every sweep of one plan on `varied` scene `seed`, at the captured size clip_size (W x H)."""
    plan = load_plan(plan_path)
    options = dict(plan.camera_options)
    options.update(seed=seed, clip_width=clip_size[0], clip_height=clip_size[1])
    camera = SimCamera(**options, speed=1e6)
    combos: dict[int, dict[str, str]] = {}
    clips: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for point in expand(plan):
            if point.combo in combos:
                continue
            combos[point.combo] = point.settings_dict()
            for role, label in point.settings.items():
                camera.set(role, label)
            clip = camera.record_clip(Path(tmp), stem=f"combo{point.combo:03d}", frames=frames, fps=6)
            mp4 = next(f.path for f in clip.files if f.kind == "clip")
            with np.load(mp4.with_name(mp4.stem + ".depth.npz")) as data:
                depth = data["depth_m"].astype(np.float32)
            clips[point.combo] = (read_video(mp4, max_frames=frames)[0], depth)

    def scene(cid: int) -> SceneContext:
        depth = clips[cid][1]
        return SceneContext(float(depth.min()), float(depth.max()), clip_size[0], "depth sidecar")

    pairs = form_pairs(combos, plan.pair_reference, scene=scene)
    reference = pairs[0].reference
    # as train.data.pair_members: the reference first, pairs whose controls leave the model's range left out
    members: list[dict[str, Any]] = [{**pairs[0].reference_controls, "combo": reference}]
    members += [{**p.controls, "combo": p.target} for p in pairs if not registry.out_of_range(p.controls)]
    sweeps = []
    for axis in E.AXES:
        for idx in E.find_series(members, axis):
            chosen = [E.Member(float(members[i][axis]), {k: float(members[i][k]) for k in registry.NAMES},
                               clips[members[i]["combo"]][0]) for i in idx]
            sweeps.append(E.Sweep(axis, clips[reference][0], chosen, clips[reference][1], f"varied {seed}",
                                  plan.session.get("name", ""), focus=float(members[0]["d_f"])))
    return sweeps


def lab_sweeps(plans: Iterable[str], seeds: Sequence[int], **kwargs: Any) -> list[E.Sweep]:
    """The sweeps of the named lab-day plans (e.g. "focus") over the varied scenes `seeds`."""
    return [s for name in plans for seed in seeds for s in shoot_plan(PLANS / f"{name}.toml", seed, **kwargs)]


def simulator_check(sweeps: Sequence[E.Sweep], size: tuple[int, int] | None = EVAL_SIZE) -> dict[str, Any]:
    """`train.evaluate.evaluate` of the ideal simulator on the sweeps: per axis CorrCoef and slope ratio. The
    simulator edits each reference at its captured size (as `train eval` has every method edit), and clips and
    edits are measured fitted to `size` (H, W)."""
    return E.evaluate(sweeps, {"simulator": E.simulator_editor()}, size=size)["methods"]["simulator"]
