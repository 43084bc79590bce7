"""What a run shows while it trains: the validation loss on the eval split and sample edits of fixed clips.

- Validation loss: the training objective on held-out pairs at a fixed grid of noise levels with fixed noise,
  so two evaluations differ only because the model changed. Pairs are spread over the processes (every process
  runs the same number of forwards, as sharded models need) and the sums reduced.
- Sample edits: the same few validation clips edited at every sampling point through the one inference path
  (`train.editor.ClipEditor`), saved as MP4 plus a contact strip PNG (source / edit / target rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from . import data as D
from . import objective as O
from rigs.video import write_video

SIGMA_POINTS = 4
STRIP_FRAMES = 5
STRIP_MIN_HEIGHT = 96


@torch.no_grad()
def validation_loss(accelerator: Any, model: torch.nn.Module, vae: torch.nn.Module, dataset: D.PairDataset,
                    text_for: Callable[[list[str]], torch.Tensor], *, shift: float, seed: int,
                    cache: D.LatentCache | None, sampling: dict[str, Any]) -> float | None:
    """Mean flow-matching loss over the dataset's pairs x SIGMA_POINTS noise levels (None when it is empty)."""
    n = len(dataset)
    if n == 0:
        return None
    rank, world = accelerator.process_index, accelerator.num_processes
    sigmas = O.fixed_sigmas(SIGMA_POINTS, shift)
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    was_training = model.training
    model.eval()
    for slot in range(math.ceil(n / world)):
        index = slot * world + rank
        real = index < n
        batch = D.collate([dataset[index if real else 0]])
        src = O.latents(vae, batch["source"], batch["source_file"], cache, sampling)
        tgt = O.latents(vae, batch["target"], batch["target_file"], cache, sampling)
        k = len(sigmas)                                   # all noise levels of one pair in one batch
        g = torch.Generator().manual_seed(seed * 100_003 + index)
        noise = torch.randn((k, *tgt.shape[1:]), generator=g).to(tgt.device, tgt.dtype)
        conditions = {name: value.repeat(k, *[1] * (value.ndim - 1))
                      for name, value in O.conditioning(batch, model, tgt).items()}
        start = O.anchor_latents(model, vae, batch, src)
        with accelerator.autocast():
            loss = O.flow_matching_loss(model, tgt.repeat(k, 1, 1, 1, 1), src.repeat(k, 1, 1, 1, 1),
                                        text_for(batch["prompt"] * k), sigmas.to(tgt.device), noise, conditions,
                                        anchor=start.repeat(k, 1, 1, 1, 1))
        if real:
            total += torch.tensor([loss.item(), 1.0], dtype=torch.float64, device=total.device)
    model.train(was_training)
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1]) if total[1] > 0 else None


@dataclass
class Sample:
    """One fixed validation clip: what the strip shows and what the edit is asked for."""

    name: str
    source: np.ndarray                    # (T, H, W, 3) uint8
    target: np.ndarray | None
    controls: dict[str, float]
    prompt: str


def fixed_samples(records: Sequence[D.PairRecord], count: int, dataset_kw: dict[str, Any]) -> list[Sample]:
    """The first `count` usable records (in a stable order), loaded once at the training size."""
    if count <= 0:
        return []
    ordered = sorted(records, key=lambda r: (r.scene, str(r.source), str(r.target), sorted(r.controls.items())))
    dataset = D.PairDataset(ordered, **dataset_kw)
    out = []
    for i, record in enumerate(dataset.records[:count]):
        item = dataset.load(record)
        to_uint8 = lambda t: ((t.permute(1, 2, 3, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)  # noqa: E731
        name = f"{i:02d}-{_slug(record.scene)}"
        out.append(Sample(name, to_uint8(item["source"]), to_uint8(item["target"]), dict(record.controls),
                          record.prompt))
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "clip"


def save_samples(editor: Any, samples: Sequence[Sample], out_dir: Path, *, fps: float = 8.0) -> list[dict[str, Any]]:
    """Edit every sample; write `<name>.mp4` (the edit) and `<name>.png` (contact strip) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in samples:
        edited = editor.edit(sample.source, sample.controls, prompt=sample.prompt)
        video = write_video(out_dir / f"{sample.name}.mp4", edited, fps)
        rows = [("source", sample.source), ("edit", edited)]
        if sample.target is not None:
            rows.append(("target", sample.target))
        strip = contact_strip(rows)
        png = out_dir / f"{sample.name}.png"
        Image.fromarray(strip).save(png)
        written.append({"name": sample.name, "video": str(video), "strip": str(png), "image": strip})
    return written


def contact_strip(rows: Sequence[tuple[str, np.ndarray]], frames: int = STRIP_FRAMES) -> np.ndarray:
    """One row per clip (label column + up to `frames` evenly spaced frames), upscaled to be readable."""
    import cv2
    length = min(len(clip) for _, clip in rows)
    picks = np.unique(np.linspace(0, length - 1, min(frames, length)).round().astype(int))
    h, w = rows[0][1].shape[1:3]
    scale = max(1, math.ceil(STRIP_MIN_HEIGHT / h))
    th, tw = h * scale, w * scale
    label_w = 80
    out = []
    for label, clip in rows:
        tiles = [cv2.resize(clip[i], (tw, th), interpolation=cv2.INTER_NEAREST) for i in picks]
        cell = np.full((th, label_w, 3), 255, np.uint8)
        cv2.putText(cell, label, (6, th // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        gap = np.full((th, 2, 3), 255, np.uint8)
        out.append(np.concatenate([cell] + [x for t in tiles for x in (t, gap)], axis=1))
        out.append(np.full((2, out[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(out[:-1], axis=0)
