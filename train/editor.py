"""A clip editor over a model directory written by train/finetune.py (transformer/, vae/, scheduler/).

Sampling: VAE-encode the source, start the target half from noise, Euler flow-matching steps on
`[target | source]`, decode the target half. Serves as the `EditPipeline` for train/serve.py and the editor
for train/evaluate.py; when train/pipeline.py (CineCtrlPipeline) is present, `load_editor` prefers it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from .data import identity_trajectory, offsets_trajectory, resize_crop, to_tensor
from .finetune import conditioning_kwargs, encode
from .model import CineCtrlTransformer3DModel, check_controls, controls_tensor


class ModelEditor:
    def __init__(self, model_dir: str | Path, device: str = "cpu", *, steps: int = 8, seed: int = 0) -> None:
        from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
        root = Path(model_dir)
        if not (root / "transformer" / "config.json").is_file() or not (root / "vae").is_dir():
            raise FileNotFoundError(f"{root}: not a cinectrl model directory (needs transformer/ and vae/); "
                                    "train one with `cinectrl train run CONFIG.toml`")
        meta = json.loads((root / "cinectrl.json").read_text()) if (root / "cinectrl.json").is_file() else {}
        self.num_frames = int(meta.get("num_frames", 9))
        self.size = tuple(meta.get("size", [32, 32]))
        self.text_tokens = int(meta.get("text_tokens", 16))
        self.device, self.steps, self.seed = torch.device(device), steps, seed
        self.transformer = CineCtrlTransformer3DModel.from_pretrained(root / "transformer").to(self.device).eval()
        check_controls(self.transformer, what=f"model {root}")
        self.vae = AutoencoderKLWan.from_pretrained(root / "vae").to(self.device).eval()
        self.scheduler_config = FlowMatchEulerDiscreteScheduler.load_config(root / "scheduler") \
            if (root / "scheduler").is_dir() else {"shift": 3.0}

    def _frames_to_use(self, available: int) -> int:
        n = min(self.num_frames, available)
        return n - (n - 1) % 4

    @torch.no_grad()
    def edit(self, frames: np.ndarray, controls: Mapping[str, float], *,
             progress: Callable[[float], None] = lambda p: None,
             cancelled: Callable[[], bool] = lambda: False, trajectory: Mapping[str, float] | None = None
             ) -> np.ndarray:
        from diffusers import FlowMatchEulerDiscreteScheduler
        from .serve import Cancelled
        n = self._frames_to_use(len(frames))
        clip = resize_crop(np.asarray(frames[:n]), self.size)
        video = to_tensor(clip).unsqueeze(0).to(self.device)
        source = encode(self.vae, video)
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler_config)   # one per call: not shared
        scheduler.set_timesteps(self.steps, device=self.device)
        g = torch.Generator().manual_seed(self.seed)
        latents = torch.randn(source.shape, generator=g).to(self.device)
        text = torch.zeros(1, self.text_tokens, self.transformer.config.text_dim, device=self.device)
        batch = {"controls": controls_tensor(controls).to(self.device),
                 "trajectory": (offsets_trajectory([float(trajectory["offset_mm"])] * source.shape[2])
                                if trajectory else identity_trajectory(source.shape[2])).unsqueeze(0).to(self.device)}
        cond = conditioning_kwargs(self.transformer, batch)
        frames_lat = source.shape[2]
        for i, t in enumerate(scheduler.timesteps):
            if cancelled():
                raise Cancelled
            hidden = torch.cat([latents, source], dim=2)
            pred = self.transformer(hidden_states=hidden, timestep=t.expand(1), encoder_hidden_states=text,
                                    return_dict=False, **cond)[0][:, :, :frames_lat]
            latents = scheduler.step(pred, t, latents, return_dict=False)[0]
            progress((i + 1) / (len(scheduler.timesteps) + 1))
        mean = torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1).to(latents)
        std = torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1).to(latents)
        video = self.vae.decode(latents * std + mean, return_dict=False)[0]
        progress(1.0)
        out = ((video[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()
        return out

    def __call__(self, frames: np.ndarray, controls: Mapping[str, float], *,
                 trajectory: Mapping[str, float] | None = None, depth: np.ndarray | None = None) -> np.ndarray:
        return self.edit(frames, controls, trajectory=trajectory)


def load_editor(model_dir: str | Path, device: str = "cpu", **kw) -> ModelEditor:
    return ModelEditor(model_dir, device, **kw)
