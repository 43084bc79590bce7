"""Editing a whole clip of any length and size with a CineCtrl model: the one inference path.

`train edit`, `train eval`, `serve` and the sample edits during training all come here; sampling itself is
`CineCtrlPipeline.__call__` (one implementation). The model was trained on clips of `card.num_frames` frames at
`card.size`; a clip is fitted to that and back:
- space: fitted to the model's own frame size by `rigs.video.fit_frames`, the one fit training data and
  evaluation use too (aspect kept, the rest edge-padded: the model sees the geometry it was trained on, never a
  stretched picture), and edited there; the clip's own box is cut back out, and what comes back to the clip's own size is the edit's *change*, not the model's picture: the difference
  (model output − model input) upsampled and added to the full-resolution input (`transfer = "difference"`), or
  the per-pixel gains (output / input) upsampled and multiplied in (`"gain"`, for edits that scale light), so
  the clip keeps its own detail and a neutral edit gives the input back. `"resize"` (the model's output
  upscaled) is kept for comparison only;
- anchor: for a model whose bridge starts from the effect simulator (`[model] anchor = "simulator"`), the
  simulator renders the asked controls at the clip's OWN resolution and only the model's learned correction
  (its output − the simulator's render at the model's size) is upsampled and carried over, so bokeh, zoom and
  exposure act on the clip's own detail (`objective.simulator_anchored`);
- time: a clip longer than the model's window is edited in overlapping windows of the model's length, blended
  linearly across each overlap; a shorter one is padded to the next 4k+1 length by repeating its last frame and
  trimmed back.
What cannot work (no frames, sides under 16 px, an extreme aspect ratio, more frames than allowed) is refused by
`plan()` with the reason before any work. `EditPlan.describe()` says what was done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from . import objective
from .camera_path import CameraPath, latent_trajectory, translation_unit
from .pipeline import CineCtrlPipeline, load_pipeline
from rigs.statistics import disparity as depth_disparity
from rigs.video import Fit, fit_box, fit_frames, resize_frames

MIN_SIDE = 16
MAX_ASPECT = 8.0
#: how an edit made at the model's size reaches the clip's own resolution
TRANSFERS = ("difference", "gain", "resize")


def transfer(frames: np.ndarray, work: np.ndarray, edited: np.ndarray, mode: str = "difference") -> np.ndarray:
    """Carry an edit made at the model's size (`work` -> `edited`, float or uint8 (T, h, w, 3)) to `frames`
    (T, H, W, 3) uint8 at full resolution; returns uint8."""
    if mode not in TRANSFERS:
        raise ValueError(f"transfer {mode!r}: use one of {', '.join(TRANSFERS)}")
    height, width = frames.shape[1:3]
    edited = np.asarray(edited, dtype=np.float32)
    if mode == "resize" or (height, width) == tuple(work.shape[1:3]):
        out = resize_frames(edited, height, width)
    elif mode == "difference":
        out = frames.astype(np.float32) + resize_frames(edited - work.astype(np.float32), height, width)
    else:
        gain = (edited + 1.0) / (work.astype(np.float32) + 1.0)
        out = (frames.astype(np.float32) + 1.0) * resize_frames(gain, height, width) - 1.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def simulated(pipe: CineCtrlPipeline, frames: np.ndarray, controls: Mapping[str, float],
              disparity: np.ndarray | None) -> np.ndarray:
    """`objective.anchor_video` (the bridge's start: the source, or the simulator's render) of uint8 frames
    (T, H, W, 3) at their own size, with the clip's disparity (T, H, W) or the flat rule; uint8 back."""
    from .model import controls_tensor
    video = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0).permute(3, 0, 1, 2)[None]
    disp = None if disparity is None else torch.as_tensor(np.asarray(disparity, np.float32))[None]
    out = objective.anchor_video(pipe.transformer, video, controls_tensor(dict(controls)), disp)
    return ((out[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


class EditRefused(ValueError):
    """A clip this model cannot edit; the message says why (raised before any work)."""


class Cancelled(Exception):
    """The edit was cancelled between sampling steps."""


@dataclass
class EditPlan:
    frames: int
    height: int
    width: int
    work_height: int
    work_width: int
    window: int                              # frames per model call
    windows: list[tuple[int, int]] = field(default_factory=list)   # [start, end) in input frames
    padded_to: int | None = None             # a short clip padded to this 4k+1 length (repeating its last frame)
    content: list[int] = field(default_factory=list)   # the clip's box in the work frame: top, left, height, width

    @property
    def fit(self) -> Fit:
        return Fit(self.work_height, self.work_width, *self.content) if self.content else \
            fit_box(self.height, self.width, (self.work_height, self.work_width))

    @property
    def resized(self) -> bool:
        return (self.work_height, self.work_width) != (self.height, self.width)

    @property
    def overlap(self) -> int:
        return 0 if len(self.windows) < 2 else self.windows[0][1] - self.windows[1][0]

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        parts = [f"{self.frames} frames at {size} edited whole"]
        if len(self.windows) > 1:
            parts[0] += f" in {len(self.windows)} windows of {self.window} frames overlapping by {self.overlap}"
        elif self.padded_to:
            parts[0] += f" (padded to {self.padded_to} frames by repeating the last, then trimmed back)"
        if self.resized:
            fit = self.fit
            where = (f" (the clip at {fit.box_w}x{fit.box_h}, edge-padded; aspect kept)" if fit.padded else "")
            parts.append(f"edited at {self.work_width}x{self.work_height}{where} and the change carried back to {size}")
        else:
            parts.append("at the model's own size")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["windows"] = [list(w) for w in self.windows]
        out["description"] = self.describe()
        return out


def work_size(height: int, width: int, model_size: tuple[int, int] | None) -> tuple[int, int]:
    """The frame size edits are made at: the model's own (what it was trained on; the clip is fitted into it by
    `rigs.video.fit_frames`), or, for a model that records none, the clip's sides rounded to multiples of 16."""
    if model_size:
        return int(model_size[0]), int(model_size[1])
    return max(MIN_SIDE, round(height / 16) * 16), max(MIN_SIDE, round(width / 16) * 16)


def windows(frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) windows of exactly `window` frames covering `frames` (the last one aligned to the end)."""
    if frames <= window:
        return [(0, frames)]
    step = max(1, window - overlap)
    starts = list(range(0, frames - window, step)) + [frames - window]
    return [(s, s + window) for s in sorted(set(starts))]


def _blend_weights(start: int, end: int, total: int, overlap_before: int, overlap_after: int) -> np.ndarray:
    """Per-frame weights of one window: a linear ramp over each overlap with a neighbour, 1 elsewhere."""
    t = np.arange(start, end, dtype=np.float64)
    w = np.ones(end - start)
    if overlap_before > 0 and start > 0:
        w = np.minimum(w, (t - start + 1) / (overlap_before + 1))
    if overlap_after > 0 and end < total:
        w = np.minimum(w, (end - t) / (overlap_after + 1))
    return w


class ClipEditor:
    """A loaded model + the clip fitting around it. Not thread-safe (one per worker)."""

    def __init__(self, pipe: CineCtrlPipeline, *, steps: int = 8, seed: int = 0, overlap: int | None = None,
                 max_frames: int | None = None, transfer: str = "difference") -> None:
        if transfer not in TRANSFERS:
            raise ValueError(f"transfer {transfer!r}: use one of {', '.join(TRANSFERS)}")
        self.pipe, self.steps, self.seed, self.max_frames = pipe, steps, seed, max_frames
        self.transfer = transfer
        card = pipe.card
        self.window = card.num_frames
        self.model_size = tuple(card.size) if card.size else None
        if overlap is None:
            overlap = (self.window - 1) // 4 if self.window else 0
        if self.window is not None and not 0 <= overlap < self.window:
            raise ValueError(f"overlap {overlap}: must be between 0 and {self.window - 1} (the model's window - 1)")
        self.overlap = overlap
        self.translation_unit_m = translation_unit(card.translation_unit_m)   # camera paths in the model's unit
        self._context: dict[str, torch.Tensor] = {}

    @property
    def card(self):
        return self.pipe.card

    # ------------------------------------------------------------------ planning (cheap, before any work)
    def plan(self, frames: int, height: int, width: int) -> EditPlan:
        if frames < 1:
            raise EditRefused("the clip has no frames")
        if self.max_frames is not None and frames > self.max_frames:
            raise EditRefused(f"the clip has {frames} frames; this server edits at most {self.max_frames}")
        if min(height, width) < MIN_SIDE:
            raise EditRefused(f"frames of {width}x{height}: both sides must be at least {MIN_SIDE} px")
        aspect = max(height, width) / min(height, width)
        if aspect > MAX_ASPECT:
            raise EditRefused(f"frames of {width}x{height}: aspect ratio {aspect:.1f}:1 is beyond "
                              f"{MAX_ASPECT:g}:1; crop the clip first")
        wh, ww = work_size(height, width, self.model_size)
        box = fit_box(height, width, (wh, ww))
        content = [box.top, box.left, box.box_h, box.box_w]
        if self.window is not None and frames > self.window:
            return EditPlan(frames, height, width, wh, ww, self.window, windows(frames, self.window, self.overlap),
                            content=content)
        length = ((frames - 1 + 3) // 4) * 4 + 1            # the next 4k+1 (Wan's VAE)
        return EditPlan(frames, height, width, wh, ww, length, [(0, frames)], length if length != frames else None,
                        content=content)

    # ------------------------------------------------------------------ editing
    def context(self, prompt: str | None) -> torch.Tensor:
        key = prompt or ""
        if key not in self._context:
            self._context[key] = self.pipe.context(key, self.card.text_tokens)
        return self._context[key]

    def remember_context(self, prompt: str | None, embedding: torch.Tensor) -> None:
        """Use precomputed prompt embeddings (training keeps them; its text encoder is not loaded)."""
        self._context[prompt or ""] = embedding

    @torch.no_grad()
    def edit(self, frames: np.ndarray, controls: Mapping[str, float], *, camera_path: CameraPath | None = None,
             prompt: str | None = None, progress: Callable[[float], None] = lambda p: None,
             cancelled: Callable[[], bool] = lambda: False, plan: EditPlan | None = None,
             depth: np.ndarray | None = None) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, H, W, 3) uint8, the same length and size. `depth` (T, H, W), when the clip
        has one, feeds the blur map of a model trained with physical maps."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise EditRefused(f"frames of shape {frames.shape}: expected (T, H, W, 3) RGB")
        plan = plan or self.plan(*frames.shape[:3])
        poses = camera_path.per_frame(plan.frames) if camera_path is not None else None
        work, fit = fit_frames(frames, (plan.work_height, plan.work_width))
        disparity = None
        if depth is not None:
            disparity = depth_disparity(fit_frames(np.asarray(depth, np.float32), (plan.work_height, plan.work_width),
                                                   nearest=True)[0])
        # the clip the change is measured from, at the model's size and at the clip's own: the source, or for a
        # simulator-anchored model the simulator's render of the asked controls (rendered on the clip's own box,
        # then edge-padded as the clip was, so zoom and blur see the clip's geometry)
        reference, work_reference = frames, fit.content(work)
        anchored = objective.simulator_anchored(self.pipe.transformer)
        if anchored:
            reference = simulated(self.pipe, frames, controls, None if depth is None else
                                  depth_disparity(np.asarray(depth, np.float32)[: len(frames)]))
            work_reference = simulated(self.pipe, work_reference, controls,
                                       None if disparity is None else fit.content(disparity))
        work_anchor = fit_frames(work_reference, (plan.work_height, plan.work_width))[0] if anchored else None
        context = self.context(prompt)
        total_steps = len(plan.windows) * self.steps
        done = [0]

        def on_step(pipe, i, t, kwargs):
            done[0] += 1
            progress(min(1.0, done[0] / (total_steps + 1)))
            if cancelled():
                pipe._interrupt = True
            return {}

        acc = np.zeros(work.shape, dtype=np.float64)
        weight = np.zeros(plan.frames, dtype=np.float64)
        for k, (start, end) in enumerate(plan.windows):
            chunk = work[start:end]
            anchor = None if work_anchor is None else work_anchor[start:end]
            if plan.padded_to:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], plan.padded_to - len(chunk), axis=0)])
                if anchor is not None:
                    anchor = np.concatenate([anchor, np.repeat(anchor[-1:], plan.padded_to - len(anchor), axis=0)])
            trajectory = latent_trajectory(poses, start, len(chunk), plan.frames, self.translation_unit_m).unsqueeze(0)
            disp = None
            if disparity is not None:
                disp = disparity[[min(i, len(disparity) - 1) for i in range(start, start + len(chunk))]]
            out = self.pipe(video=chunk, controls=dict(controls), trajectory=trajectory, prompt_embeds=context,
                            num_inference_steps=self.steps, generator=torch.Generator().manual_seed(self.seed),
                            output_type="np", callback_on_step_end=on_step, disparity=disp, anchor=anchor)[0]
            if cancelled():
                raise Cancelled
            out = out[: end - start] * 255.0
            before = plan.windows[k - 1][1] - start if k > 0 else 0
            after = end - plan.windows[k + 1][0] if k + 1 < len(plan.windows) else 0
            w = _blend_weights(start, end, plan.frames, before, after)
            acc[start:end] += out * w[:, None, None, None]
            weight[start:end] += w
        edited = fit.content(acc / weight[:, None, None, None])
        result = transfer(reference, work_reference, edited, self.transfer)
        progress(1.0)
        return result

    def __call__(self, frames: np.ndarray, controls: Mapping[str, float], *,
                 camera_path: CameraPath | None = None, depth: np.ndarray | None = None) -> np.ndarray:
        """The `Editor` form train/evaluate.py calls (depth reaches only a model fed physical maps)."""
        return self.edit(frames, controls, camera_path=camera_path, depth=depth)


def load_editor(model_dir: str | Path, device: str = "cpu", *, steps: int = 8, seed: int = 0,
                overlap: int | None = None, max_frames: int | None = None, transfer: str = "difference") -> ClipEditor:
    """A `ClipEditor` over the one loader (`train.pipeline.load_pipeline`)."""
    return ClipEditor(load_pipeline(model_dir, device), steps=steps, seed=seed, overlap=overlap,
                      max_frames=max_frames, transfer=transfer)
