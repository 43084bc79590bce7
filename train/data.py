"""Training pairs: (source clip, target clip, controls, relative trajectory, prompt) as tensors.

Real pairs come from the catalog's train-ready pairs (or, with `reviewed_only = false`, also unreviewed pairs
whose QC passed); synthetic pairs are pre-rendered by `cinectrl train synth` (its pairs.json) or made on the fly
by the effect simulator from source clips. Clips are decoded with PyAV, `4k+1` frames are sampled, both clips get the same fit to the model's size (`rigs.video.fit_frames`) and
are normalised to [-1, 1]. A missing or corrupt clip is skipped with a logged reason and counted, never a crash.
"""

from __future__ import annotations

import functools

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from capture.catalog import sha256_file
from rigs import controls as registry
from rigs.statistics import CAMERA_PATH
from rigs.statistics import disparity as depth_disparity
from rigs.video import VideoError, fit_frames, probe, read_video

log = logging.getLogger(__name__)
CONTROL_NAMES = registry.NAMES
NEUTRAL = registry.NEUTRAL
#: (frames (T,H,W,3) uint8, controls, *, disparity (T,H,W) or None) -> frames: train/effects.simulate_uint8
Simulator = Callable[..., np.ndarray]
#: Review states of a pair nobody has ruled on yet (capture/schema.py's pairs.review_state).
UNREVIEWED = ("unreviewed", "in_review")


class PairWithoutControls(ValueError):
    """A catalog pair with no stored controls: its settings could not be mapped (capture QC fails it). Filling
    the registry's neutral values would train it as "no change" while its clips differ, so it is refused."""


@dataclass
class PairRecord:
    source: Path
    target: Path | None              # None: synthetic, made from `source` by the simulator
    controls: dict[str, float]
    scene: str
    prompt: str = ""
    kind: str = "real"               # "real" | "synthetic"
    pair_id: int | None = None
    source_poses_mm: list[float] | None = None   # slider x of each source frame, as recorded
    target_poses_mm: list[float] | None = None   # ... and of each target frame (None: the source's path)
    depth: Path | None = None        # true-depth sidecar of the source (bokeh and focus need it)
    reviewed: bool = True            # False: admitted by `[data] reviewed_only = false` (QC passed, not reviewed)
    shard: Any = None                # train.shards.ShardSample: the clips are in a shard, fetched when loaded
    frames: int = 0                  # frames of the shorter clip, as the export probed them (shard records)


def check_num_frames(num_frames: int) -> None:
    if num_frames < 1 or num_frames % 4 != 1:
        raise ValueError(f"num_frames={num_frames}: Wan needs 4k+1 frames (e.g. 9, 17, 33, 81)")


def sample_indices(available: int, num_frames: int, stride: int = 1, start: int = 0) -> list[int]:
    """`num_frames` indices spaced by `stride` from `start`; the stride shrinks when the clip is too short."""
    check_num_frames(num_frames)
    if available < num_frames:
        raise VideoError(f"clip has {available} frames; {num_frames} needed")
    stride = max(1, min(stride, (available - 1 - start) // max(1, num_frames - 1)))
    if start + (num_frames - 1) * stride >= available:
        start = 0
    return [start + i * stride for i in range(num_frames)]


def fit_clip(frames: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """A clip (or depth maps, `nearest`) fitted to the model's (H, W) by `rigs.video.fit_frames`: the one fit
    training, evaluation and the editor share (aspect kept, edge-padded, never stretched or cropped)."""
    return fit_frames(frames, size, nearest=nearest)[0]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1], the VAE's input layout."""
    frames = frames if frames.flags.writeable else frames.copy()      # cached clips are read-only
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def load_clip(path: Path, num_frames: int, size: tuple[int, int], stride: int = 1) -> np.ndarray:
    return _sampled_clip(str(path), _stamp(path), num_frames, tuple(size), stride)[0]


def _stamp(path: str | Path) -> tuple[int, ...]:
    """(inode, mtime, ctime, size) of a file: a changed or replaced file is a new cache key."""
    st = Path(path).stat()
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


@functools.lru_cache(maxsize=2048)
def _sampled_clip(path: str, stamp: tuple[int, ...], num_frames: int, size: tuple[int, int],
                  stride: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """A clip decoded, sampled and resized once per process (a training run reads each pair many times; the
    decode, not the model, was most of a CPU step): (frames, read-only; the sampled indices)."""
    frames, _ = read_video(path, max_frames=None)
    idx = sample_indices(len(frames), num_frames, stride)
    out = fit_clip(frames[idx], size)
    out.flags.writeable = False
    return out, tuple(idx)


# ------------------------------------------------------------------------------------------------ records

def session_scenes(catalog: Any) -> dict[int, str]:
    """Session id -> scene name (the session's scene, or "session-N"): the unit of the train/eval split."""
    return {row["id"]: row["scene"] or f"session-{row['id']}" for row in catalog.sessions()}


def clip_poses(catalog: Any) -> dict[str, list[float]]:
    """Catalog path of each recorded clip -> slider x (mm) of each of its frames, from the runner's pass log
    (empty when no pass was recorded, e.g. a catalog without capture sessions)."""
    tables = {r["name"] for r in catalog.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "capture_passes" not in tables:
        return {}
    out = {}
    for row in catalog.rows("SELECT a.path, c.poses_json FROM capture_passes c JOIN assets a ON a.id = c.asset_id"):
        try:
            poses = json.loads(row["poses_json"] or "null")
        except ValueError:
            continue
        if poses:
            out[row["path"]] = [float(x) for x in poses]
    return out


@functools.lru_cache(maxsize=2048)
def _sampled_disparity(clip: str, depth_file: str, stamp: tuple[int, ...], indices: tuple[int, ...],
                       size: tuple[int, int]) -> np.ndarray:
    """1/depth of the sampled frames at the training size (the clip's sidecar, else `depth_file`), once."""
    depth = clip_depth(clip)
    if depth is None:
        with np.load(depth_file) as data:
            depth = data["depth_m"].astype(np.float32)
    out = depth_disparity(fit_clip(depth[[min(i, len(depth) - 1) for i in indices]], size, nearest=True))
    out.flags.writeable = False
    return out


def depth_sidecar(clip: str | Path) -> Path | None:
    """`<stem>.depth.npz` beside a clip (the simulated camera writes true depth there)."""
    path = Path(clip)
    sidecar = path.with_name(path.stem + ".depth.npz")
    return sidecar if sidecar.is_file() else None


def clip_depth(clip: str | Path) -> np.ndarray | None:
    """The true depth (metres, (T, H, W) float32) beside a clip, or None."""
    sidecar = depth_sidecar(clip)
    if sidecar is None:
        return None
    with np.load(sidecar) as data:
        return data["depth_m"].astype(np.float32)


def records_from_catalog(catalog: Any, *, train_ready_only: bool = True,
                         skipped: dict[str, str] | None = None) -> list[PairRecord]:
    """Pairs with both clip files; scene = the session's scene or id. `train_ready_only` (the review gate's flag,
    `[data] reviewed_only`): else also pairs not reviewed yet whose QC passed (no QC flags); rejected and
    disputed pairs never. `record.reviewed` tells which kind each is; `skipped` collects why others were left.
    Each record carries both clips' recorded slider poses (the pair's real relative camera path) and the
    source's depth sidecar."""
    scenes = session_scenes(catalog)
    poses = clip_poses(catalog)
    skipped = {} if skipped is None else skipped
    out = []
    from annotate.review import train_ready_pairs       # the review gate's door: what training may read
    ready = train_ready_pairs(catalog)
    others = [] if train_ready_only else [p for p in catalog.pairs(train_ready=False)]
    for pair in sorted(ready + others, key=lambda p: p["pair_id"]):
        name = f"pair {pair['pair_id']}"
        reviewed = bool(pair["train_ready"])
        if not reviewed:
            qc = pair.get("qc") or {}
            if pair["review_state"] not in UNREVIEWED:
                skipped[name] = f"review state {pair['review_state']} (not train-ready)"
                continue
            if not qc or qc.get("flags"):
                skipped[name] = "unreviewed and " + ("has no QC result" if not qc else
                                                     f"QC flagged it: {'; '.join(qc['flags'])}")
                continue
        if not pair.get("reference_path") or not pair.get("other_path"):
            skipped[name] = "a clip has no video file"
            log.warning("%s skipped: a clip has no video file", name)
            continue
        stored = pair.get("controls") or {}
        if not any(k in CONTROL_NAMES for k in stored):
            raise PairWithoutControls(
                f"{name} ({pair.get('reference_path')} -> {pair.get('other_path')}) has no controls: "
                f"{stored.get('_source') or 'none were stored'}; it would train as 'no change' while its clips "
                "differ. Reject it in review, or fix the settings' labels and rebuild the session's pairs")
        controls = {**NEUTRAL, **{k: float(v) for k, v in stored.items()
                                  if k in CONTROL_NAMES and isinstance(v, (int, float))}}
        outside = registry.out_of_range(controls)
        if outside:
            skipped[name] = "; ".join(outside.values())
            log.warning("%s skipped: %s", name, "; ".join(outside.values()))
            continue
        source = Path(catalog.abspath(pair["reference_path"]))
        out.append(PairRecord(source, Path(catalog.abspath(pair["other_path"])), controls,
                              scenes.get(pair["session_id"], str(pair["session_id"])), kind="real",
                              pair_id=pair["pair_id"], reviewed=reviewed,
                              source_poses_mm=poses.get(pair["reference_path"]),
                              target_poses_mm=poses.get(pair["other_path"]), depth=depth_sidecar(source)))
    return out


def records_from_synthetic_pairs(path: str | Path) -> list[PairRecord]:
    """The `pairs.json` that `cinectrl train synth` writes: pre-rendered (source, target, controls, scene) pairs.
    Paths inside are relative to the file's folder (or absolute)."""
    path = Path(path)
    try:
        items = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"synthetic pairs {path}: no such file; make it with `cinectrl train synth --out DIR`") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"synthetic pairs {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(items, dict):
        items = items.get("pairs", [])
    if not isinstance(items, list):
        raise ValueError(f"synthetic pairs {path}: expected a list of pairs (or {{\"pairs\": [...]}})")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"source", "target", "controls"} <= set(item):
            raise ValueError(f"synthetic pairs {path}: entry {i} needs source, target and controls")
        try:
            controls = registry.complete(item["controls"])
        except registry.ControlError as exc:
            raise ValueError(f"synthetic pairs {path}: entry {i}: {exc}") from None
        source, target = (Path(item[k]) if Path(item[k]).is_absolute() else path.parent / item[k]
                          for k in ("source", "target"))
        out.append(PairRecord(source, target, controls, str(item.get("scene") or source.stem),
                              prompt=str(item.get("prompt") or ""), kind="synthetic", depth=depth_sidecar(source)))
    return out


def pair_members(catalog: Any, *, train_ready_only: bool = False) -> list[dict[str, Any]]:
    """Per session and reference clip: the reference and every clip paired with it, each with all its controls
    and its camera-path offset against the reference (mean per-frame slider difference, mm) -- what
    evaluation cuts into sweeps. Pairs whose controls leave the registry's ranges, or that have none (their
    settings could not be mapped: neutral values would place them at "no change"), are left out."""
    scenes = session_scenes(catalog)
    poses = clip_poses(catalog)
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    from annotate.review import train_ready_pairs       # the review gate's door: what training may read
    ready = train_ready_pairs(catalog)
    others = [] if train_ready_only else [p for p in catalog.pairs(train_ready=False)]
    for pair in sorted(ready + others, key=lambda p: p["pair_id"]):
        if not pair.get("reference_path") or not pair.get("other_path"):
            continue
        stored = pair.get("controls") or {}
        if not any(k in CONTROL_NAMES for k in stored):
            log.warning("pair %s left out of the sweeps: no controls (%s)", pair["pair_id"], stored.get("_source"))
            continue
        controls = registry.complete({k: float(v) for k, v in stored.items() if k in CONTROL_NAMES}, check=False)
        if registry.out_of_range(controls):
            continue
        key = (pair["session_id"], pair["reference_clip_id"])
        group = groups.get(key)
        if group is None:
            own = stored.get("_reference") or {}
            reference = registry.complete({k: float(v) for k, v in own.items() if k in CONTROL_NAMES}, check=False)
            group = groups[key] = {
                "session": f"session-{pair['session_id']}", "scene": scenes.get(pair["session_id"], ""),
                "reference_path": str(catalog.abspath(pair["reference_path"])),
                "members": [{**reference, CAMERA_PATH: 0.0, "path": str(catalog.abspath(pair["reference_path"])),
                             "label": pair.get("reference_combination", "")}]}
        offset = path_offset_mm(poses.get(pair["reference_path"]), poses.get(pair["other_path"]))
        group["members"].append({**controls, CAMERA_PATH: offset, "path": str(catalog.abspath(pair["other_path"])),
                                 "label": pair.get("other_combination", ""), "pair_id": pair["pair_id"]})
    return list(groups.values())


def path_offset_mm(source: Sequence[float] | None, target: Sequence[float] | None) -> float:
    """Mean per-frame slider offset of the target's pass against the source's (0 without poses)."""
    if not source or not target:
        return 0.0
    n = min(len(source), len(target))
    return float(np.mean(np.asarray(target[:n], float) - np.asarray(source[:n], float)))


#: controls the effect simulator can only make with the source's depth
NEEDS_DEPTH = ("K", "d_f")


def synthetic_records(sources: Iterable[tuple[str, Path] | tuple[str, Path, Path | None]], count: int, *,
                      seed: int = 0, ranges: Mapping[str, tuple[float, float]] | None = None) -> list[PairRecord]:
    """`count` synthetic pairs over (scene, clip[, depth sidecar]) sources with seeded random controls, one or
    two effects per pair. Bokeh and focus are drawn only for sources with depth (d_f only together with K:
    without blur the focus plane changes nothing)."""
    ranges = dict(ranges or {c.name: (c.low, c.high) for c in registry.CONTROLS})
    sources = [tuple(s) + (None,) * (3 - len(s)) for s in sources]
    if not sources or count <= 0:
        return []
    rng = random.Random(seed)
    out = []
    for i in range(count):
        scene, path, depth = sources[i % len(sources)]
        if depth is None:
            depth = depth_sidecar(path)
        names = sorted(n for n in ranges if depth is not None or n not in NEEDS_DEPTH)
        chosen = rng.sample(names, k=min(len(names), rng.randint(1, 2)))
        if "d_f" in chosen and "K" not in chosen:
            chosen.append("K")
        controls = dict(NEUTRAL)
        for name in chosen:
            lo, hi = ranges[name]
            controls[name] = round(rng.uniform(lo, hi), 4)
        out.append(PairRecord(Path(path), None, controls, scene, kind="synthetic",
                              depth=None if depth is None else Path(depth)))
    return out


def catalog_clips(catalog: Any, *, with_session: bool = False) -> list[tuple]:
    """(scene, file) -- with `with_session`, (scene, file, session id) -- of every captured clip in the catalog
    (what an autoencoder learns from and `train synth` simulates from), scenes named as the split names them."""
    scenes = session_scenes(catalog)
    out = []
    for asset in catalog.assets():
        if asset["kind"] != "clip":
            continue
        sid = asset.get("session_id")
        scene = scenes.get(sid, f"session-{sid}") if sid is not None else "no session"
        path = Path(catalog.abspath(asset["path"]))
        out.append((scene, path, sid) if with_session else (scene, path))
    return out


def catalog_sources(catalog: Any) -> list[tuple[str, Path, Path | None]]:
    """(scene, clip, depth sidecar) for every reference clip of the catalog's pairs: the sources synthetic
    pairs are made from, named by the same scene as the captured pairs so a scene stays on one side of the
    split for real and synthetic pairs alike."""
    scenes = session_scenes(catalog)
    seen: dict[str, tuple[str, Path, Path | None]] = {}
    for pair in catalog.pairs():
        if pair.get("reference_path") and pair["reference_path"] not in seen:
            path = Path(catalog.abspath(pair["reference_path"]))
            seen[pair["reference_path"]] = (scenes.get(pair["session_id"], ""), path, depth_sidecar(path))
    return list(seen.values())


def mix(real: Sequence[PairRecord], synthetic: Sequence[PairRecord], ratio: tuple[int, int], *,
        seed: int = 0) -> list[PairRecord]:
    """Real:synthetic at `ratio` (e.g. (1, 3)), using all real pairs and as many synthetic as the ratio asks
    (all synthetic when there is no real pair)."""
    r, s = ratio
    if r < 0 or s < 0 or r + s == 0:
        raise ValueError(f"real:synthetic ratio {r}:{s} must be non-negative and not 0:0")
    if not real or r == 0:
        chosen_real, n_synth = ([] if r == 0 else list(real)), len(synthetic)
    else:
        chosen_real, n_synth = list(real), min(len(synthetic), round(len(real) * s / r))
    items = chosen_real + list(synthetic[:n_synth])
    random.Random(seed).shuffle(items)
    return items


def eval_scenes(scenes: Iterable[str], eval_fraction: float = 0.2, *, salt: str = "cinectrl") -> set[str]:
    """The held-out scenes: a scene's side is fixed by a hash of its name, so it never moves between runs or
    between real and synthetic pairs; at least one scene goes to each side when there are two or more."""
    scenes = sorted(set(scenes))
    score = {s: int(hashlib.sha256(f"{salt}:{s}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for s in scenes}
    held_out = {s for s in scenes if score[s] < eval_fraction}
    if len(scenes) >= 2 and eval_fraction > 0:
        if not held_out:
            held_out = {min(scenes, key=score.get)}
        if held_out == set(scenes):
            held_out.discard(max(scenes, key=score.get))
    return held_out


def split_by_scene(records: Sequence[PairRecord], eval_fraction: float = 0.2, *, salt: str = "cinectrl",
                   scenes: Iterable[str] | None = None) -> tuple[list[PairRecord], list[PairRecord]]:
    """Train/eval split with disjoint scenes (see `eval_scenes`). Give `scenes` (every scene of the data
    source, e.g. all catalog sessions) so the split does not depend on which pairs happen to be present."""
    held_out = eval_scenes(scenes if scenes is not None else {r.scene for r in records}, eval_fraction, salt=salt)
    return ([r for r in records if r.scene not in held_out], [r for r in records if r.scene in held_out])


# ------------------------------------------------------------------------------------------------ dataset

@dataclass
class SkipLog:
    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, what: str, reason: str) -> None:
        if what not in self.reasons:
            log.warning("skipped %s: %s", what, reason)
        self.reasons[what] = reason

    @property
    def count(self) -> int:
        return len(self.reasons)


class PairDataset(Dataset):
    """Items: {"source", "target": (3,T,H,W) in [-1,1], "controls": (len(registry),), "trajectory", "prompt",
    "kind"}.
    Unreadable clips are found by a probe at construction (and, if they break later, while loading): they are
    dropped, logged and counted in `skipped`."""

    def __init__(self, records: Sequence[PairRecord], *, num_frames: int, size: tuple[int, int],
                 simulate: Simulator | None = None, stride: int = 1, latent_frames: int | None = None) -> None:
        check_num_frames(num_frames)
        self.num_frames, self.size, self.simulate, self.stride = num_frames, tuple(size), simulate, stride
        self.latent_frames = latent_frames or (num_frames - 1) // 4 + 1
        self.skipped = SkipLog()
        self.records = [r for r in records if self._usable(r)]

    def _usable(self, record: PairRecord) -> bool:
        if record.shard is not None:                 # probed by the export; fetched only when loaded
            if record.frames < self.num_frames:
                self.skipped.add(str(record.source), f"{record.frames} frames < {self.num_frames}")
                return False
            return True
        if record.target is None and self.simulate is None:
            self.skipped.add(str(record.source), "synthetic pair but no simulator given")
            return False
        for path in (record.source, record.target):
            if path is None:
                continue
            if not Path(path).is_file():
                self.skipped.add(str(path), "file missing")
                return False
            try:
                info = probe(path)
            except VideoError as exc:
                self.skipped.add(str(path), f"corrupt: {exc}")
                return False
            if info.frames < self.num_frames:
                self.skipped.add(str(path), f"{info.frames} frames < {self.num_frames}")
                return False
        return True

    def __len__(self) -> int:
        return len(self.records)

    def load(self, record: PairRecord) -> dict[str, Any]:
        if record.shard is not None:
            record = record.shard.materialise(record)
        source, indices = _sampled_clip(str(record.source), _stamp(record.source), self.num_frames, self.size,
                                        self.stride)
        indices = list(indices)
        disparity = None
        if record.depth is not None:
            disparity = _sampled_disparity(str(record.source), str(record.depth), _stamp(record.depth),
                                           tuple(indices), self.size)
        if record.target is None:
            target = np.asarray(self.simulate(source, record.controls, disparity=disparity), dtype=np.uint8)
        else:
            target = load_clip(record.target, self.num_frames, self.size, self.stride)
        trajectory = relative_trajectory(record.source_poses_mm, record.target_poses_mm, indices,
                                         self.latent_frames)
        return {"source": to_tensor(source), "target": to_tensor(target),
                "controls": torch.tensor(registry.vector(record.controls)),
                "trajectory": trajectory, "prompt": record.prompt, "kind": record.kind,
                # the source's disparity (1/depth) where it has depth: the blur map of models fed physical maps
                "disparity": None if disparity is None else torch.tensor(disparity),
                # files behind each clip, for the latent cache ("" = made on the fly, not cacheable)
                "source_file": str(record.source), "target_file": str(record.target or "")}

    def __getitem__(self, index: int) -> dict[str, Any]:
        for offset in range(len(self.records)):
            record = self.records[(index + offset) % len(self.records)]
            try:
                return self.load(record)
            except (VideoError, OSError, ValueError) as exc:
                self.skipped.add(f"{record.source} -> {record.target or 'simulated'}", f"failed while loading: {exc}")
        raise RuntimeError(f"every one of {len(self.records)} pairs failed to load; see the logged reasons")


def identity_trajectory(latent_frames: int) -> torch.Tensor:
    """Target on the source's path: the 3x4 identity pose (ReCamMaster's 12 numbers) for every latent frame."""
    return torch.eye(4)[:3].reshape(1, 12).repeat(latent_frames, 1)


def latent_frame_indices(num_frames: int) -> list[int]:
    """The clip frame each latent frame stands for: Wan's VAE keeps frame 0, then one latent per 4 frames
    (latent j covers frames 4j-3 .. 4j; its last frame represents it)."""
    check_num_frames(num_frames)
    return [0] + [4 * j for j in range(1, (num_frames - 1) // 4 + 1)]


def offsets_trajectory(offsets_mm: Sequence[float]) -> torch.Tensor:
    """Per latent frame, the target camera's pose relative to the source camera at the same instant:
    train.camera_path.slider_pose of each slider offset (the slider moves the camera along its x axis), the
    relation `train edit` and `serve` take a requested camera path in, in the model's translation unit
    (`train.camera_path.model_trajectory`)."""
    from .camera_path import model_trajectory, slider_pose
    return model_trajectory(np.stack([slider_pose(float(o)) for o in offsets_mm]))


def relative_trajectory(source_mm: Sequence[float] | None, target_mm: Sequence[float] | None,
                        frame_indices: Sequence[int], latent_frames: int) -> torch.Tensor:
    """The real relative pose of the target to the source from both passes' recorded slider positions,
    per latent frame of the sampled frames; identity where no pose was recorded (stills, uploads)."""
    if not source_mm or not target_mm:
        return identity_trajectory(latent_frames)
    picks = [frame_indices[i] for i in latent_frame_indices(len(frame_indices))][:latent_frames]
    offsets = [float(target_mm[min(i, len(target_mm) - 1)]) - float(source_mm[min(i, len(source_mm) - 1)])
               for i in picks]
    return offsets_trajectory(offsets)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: torch.stack([i[k] for i in items]) for k in ("source", "target", "controls", "trajectory")}
    out["prompt"] = [i["prompt"] for i in items]
    if any(i.get("disparity") is not None for i in items):     # NaN where an item has no depth
        like = next(i["disparity"] for i in items if i.get("disparity") is not None)
        out["disparity"] = torch.stack([i["disparity"] if i.get("disparity") is not None
                                        else torch.full_like(like, float("nan")) for i in items])
    for key in ("kind", "source_file", "target_file"):
        out[key] = [i[key] for i in items]
    return out


# ------------------------------------------------------------------------------------------------ latent cache

class LatentCache:
    """VAE latents on disk keyed by the clip file's sha256 plus how it was sampled and the VAE's id, so an
    edited file or a different VAE never reuses stale latents."""

    def __init__(self, directory: str | Path, vae_id: str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vae_id = vae_id
        self.hits = self.misses = 0

    @staticmethod
    def file_hash(path: str | Path) -> str:
        return sha256_file(path)

    def key(self, path: str | Path, **sampling: Any) -> str:
        spec = ",".join(f"{k}={sampling[k]}" for k in sorted(sampling))
        return hashlib.sha256(f"{self.file_hash(path)}|{spec}|{self.vae_id}".encode()).hexdigest()

    def get_or_compute(self, path: str | Path, compute: Callable[[], torch.Tensor], **sampling: Any) -> torch.Tensor:
        from safetensors.torch import load_file, save_file
        target = self.dir / f"{self.key(path, **sampling)}.safetensors"
        if target.is_file():
            self.hits += 1
            return load_file(str(target))["latents"]
        self.misses += 1
        latents = compute().detach().cpu().contiguous()
        tmp = target.with_suffix(".tmp")
        save_file({"latents": latents}, str(tmp))
        tmp.replace(target)
        return latents
