"""Training pairs: (source clip, target clip, controls, relative trajectory, prompt) as tensors.

Real pairs come from the catalog's train-ready pairs (or, with `reviewed_only = false`, also unreviewed pairs
whose QC passed); synthetic pairs are pre-rendered by `cinectrl train synth` (its pairs.json) or made on the fly
by the effect simulator from source clips. Clips are decoded with PyAV, `4k+1` frames are sampled, both clips get the same resize/crop and
are normalised to [-1, 1]. A missing or corrupt clip is skipped with a logged reason and counted, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from capture.catalog import sha256_file
from rigs import controls as registry

from .videoio import VideoError, probe, read_video

log = logging.getLogger(__name__)
CONTROL_NAMES = registry.NAMES
NEUTRAL = registry.NEUTRAL
Simulator = Callable[[np.ndarray, Mapping[str, float]], np.ndarray]
#: Review states of a pair nobody has ruled on yet (capture/schema.py's pairs.review_state).
UNREVIEWED = ("unreviewed", "in_review")


@dataclass
class PairRecord:
    source: Path
    target: Path | None              # None: synthetic, made from `source` by the simulator
    controls: dict[str, float]
    scene: str
    prompt: str = ""
    trajectory: list[list[float]] | None = None   # per latent frame, 12 numbers (3x4 relative pose)
    kind: str = "real"               # "real" | "synthetic"
    pair_id: int | None = None
    reviewed: bool = True            # False: admitted by `[data] reviewed_only = false` (QC passed, not reviewed)


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


def resize_crop(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale so the clip covers (H, W), then centre-crop: the same box for every clip of the same shape."""
    h, w = size
    src_h, src_w = frames.shape[1:3]
    scale = max(h / src_h, w / src_w)
    new_h, new_w = max(h, round(src_h * scale)), max(w, round(src_w * scale))
    y0, x0 = (new_h - h) // 2, (new_w - w) // 2
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_AREA)[y0:y0 + h, x0:x0 + w]
                     for f in frames])


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1], the VAE's input layout."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def load_clip(path: Path, num_frames: int, size: tuple[int, int], stride: int = 1) -> np.ndarray:
    frames, _ = read_video(path, max_frames=None)
    idx = sample_indices(len(frames), num_frames, stride)
    return resize_crop(frames[idx], size)


# ------------------------------------------------------------------------------------------------ records

def records_from_catalog(catalog: Any, *, train_ready_only: bool = True,
                         skipped: dict[str, str] | None = None) -> list[PairRecord]:
    """Pairs with both clip files; scene = the session's scene or id. `train_ready_only` (the review gate's flag,
    `[data] reviewed_only`): else also pairs not reviewed yet whose QC passed (no QC flags); rejected and
    disputed pairs never. `record.reviewed` tells which kind each is; `skipped` collects why others were left."""
    scenes = {row["id"]: row["scene"] or f"session-{row['id']}" for row in catalog.sessions()}
    skipped = {} if skipped is None else skipped
    out = []
    for pair in catalog.pairs(train_ready=True if train_ready_only else None):
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
        controls = {**NEUTRAL, **{k: float(v) for k, v in (pair.get("controls") or {}).items()
                                  if k in CONTROL_NAMES and isinstance(v, (int, float))}}
        outside = registry.out_of_range(controls)
        if outside:
            skipped[name] = "; ".join(outside.values())
            log.warning("%s skipped: %s", name, "; ".join(outside.values()))
            continue
        out.append(PairRecord(Path(catalog.abspath(pair["reference_path"])), Path(catalog.abspath(pair["other_path"])),
                              controls, scenes.get(pair["session_id"], str(pair["session_id"])),
                              kind="real", pair_id=pair["pair_id"], reviewed=reviewed))
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
                              prompt=str(item.get("prompt") or ""), kind="synthetic"))
    return out


def synthetic_records(sources: Iterable[tuple[str, Path]], count: int, *, seed: int = 0,
                      ranges: Mapping[str, tuple[float, float]] | None = None) -> list[PairRecord]:
    """`count` synthetic pairs over the given (scene, clip) sources with seeded random controls."""
    ranges = dict(ranges or {c.name: (c.low, c.high) for c in registry.CONTROLS})
    sources = list(sources)
    if not sources or count <= 0:
        return []
    rng = random.Random(seed)
    out = []
    for i in range(count):
        scene, path = sources[i % len(sources)]
        controls = dict(NEUTRAL)
        for name in rng.sample(sorted(ranges), k=rng.randint(1, 2)):   # one or two effects per pair
            lo, hi = ranges[name]
            controls[name] = round(rng.uniform(lo, hi), 4)
        out.append(PairRecord(Path(path), None, controls, scene, kind="synthetic"))
    return out


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


def split_by_scene(records: Sequence[PairRecord], eval_fraction: float = 0.2, *, salt: str = "cinectrl"
                   ) -> tuple[list[PairRecord], list[PairRecord]]:
    """Train/eval split with disjoint scenes: a scene's side is fixed by a hash, so it never moves between runs;
    at least one scene goes to each side when there are two or more."""
    scenes = sorted({r.scene for r in records})
    score = {s: int(hashlib.sha256(f"{salt}:{s}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for s in scenes}
    eval_scenes = {s for s in scenes if score[s] < eval_fraction}
    if len(scenes) >= 2 and eval_fraction > 0:
        if not eval_scenes:
            eval_scenes = {min(scenes, key=score.get)}
        if eval_scenes == set(scenes):
            eval_scenes.discard(max(scenes, key=score.get))
    return ([r for r in records if r.scene not in eval_scenes], [r for r in records if r.scene in eval_scenes])


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
        source = load_clip(record.source, self.num_frames, self.size, self.stride)
        if record.target is None:
            target = np.asarray(self.simulate(source, record.controls), dtype=np.uint8)
        else:
            target = load_clip(record.target, self.num_frames, self.size, self.stride)
        trajectory = torch.tensor(record.trajectory, dtype=torch.float32) if record.trajectory else \
            identity_trajectory(self.latent_frames)
        return {"source": to_tensor(source), "target": to_tensor(target),
                "controls": torch.tensor(registry.vector(record.controls)),
                "trajectory": trajectory, "prompt": record.prompt, "kind": record.kind,
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
    """A static camera: the 3x4 identity pose (ReCamMaster's 12 numbers) for every latent frame."""
    return torch.eye(4)[:3].reshape(1, 12).repeat(latent_frames, 1)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: torch.stack([i[k] for i in items]) for k in ("source", "target", "controls", "trajectory")}
    out["prompt"] = [i["prompt"] for i in items]
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
