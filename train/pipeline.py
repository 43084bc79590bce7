"""CineCtrlPipeline: source video + photographic controls (+ trajectory, + prompt) -> edited video.

ReCamMaster-style sampling: the target half `[target_noisy | source_clean]` is denoised with a flow-matching
scheduler while the source half stays the clean VAE latents of the input; only the target half is decoded.
Guidance is split per branch (three passes batched together when any scale != 1):
  pred = uncond + camera_guidance * (camera_only - uncond) + photo_guidance * (full - camera_only)
with the negative prompt in `uncond` (text guidance rides with the camera term, as in ReCamMaster's single CFG).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler

from .model import CineCtrlTransformer3DModel, controls_tensor, identity_trajectory


class CineCtrlPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["text_encoder", "tokenizer"]

    def __init__(self, transformer: CineCtrlTransformer3DModel, vae: AutoencoderKLWan,
                 scheduler: FlowMatchEulerDiscreteScheduler, text_encoder=None, tokenizer=None) -> None:
        super().__init__()
        self.register_modules(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer)
        self._interrupt = False

    @classmethod
    def from_pretrained(cls, path, **kwargs) -> "CineCtrlPipeline":
        """Load a directory written by `save_pretrained` (diffusers layout: model_index.json + one folder per
        component). Components are loaded by their own classes: diffusers' generic loader refuses a custom
        transformer class living outside a pipelines package."""
        import importlib
        import json
        from pathlib import Path
        root = Path(path)
        index_file = root / "model_index.json"
        if not index_file.is_file():
            raise FileNotFoundError(f"{root}: no model_index.json; give a directory written by "
                                    "CineCtrlPipeline.save_pretrained")
        index = json.loads(index_file.read_text())
        parts = {}
        for name in ("transformer", "vae", "scheduler", "text_encoder", "tokenizer"):
            library, class_name = (index.get(name) or [None, None])
            if library is None:
                parts[name] = kwargs.get(name)
                continue
            module = importlib.import_module(library if library != "diffusers" else "diffusers")
            parts[name] = kwargs.get(name) or getattr(module, class_name).from_pretrained(root / name)
        return cls(**parts)

    # ------------------------------------------------------------------ helpers
    def _video_tensor(self, video: Any) -> torch.Tensor:
        """(B,3,T,H,W) in [-1,1] from a tensor of that shape or uint8 frames (T,H,W,3) / list of them."""
        if isinstance(video, torch.Tensor) and video.ndim == 5:
            return video.float()
        arr = np.asarray(video)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"video of shape {arr.shape}: give uint8 frames (T, H, W, 3) or a (B, 3, T, H, W) "
                             "tensor in [-1, 1]")
        t = torch.from_numpy(arr.astype(np.float32) / 127.5 - 1.0)
        return t.permute(3, 0, 1, 2).unsqueeze(0)

    def _check_sizes(self, video: torch.Tensor) -> None:
        _, _, frames, h, w = video.shape
        if (frames - 1) % 4:
            raise ValueError(f"{frames} frames: Wan's VAE needs 4k+1 frames (e.g. {((frames - 1) // 4) * 4 + 1})")
        if h % 16 or w % 16:
            raise ValueError(f"frame size {h}x{w}: height and width must be multiples of 16")

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.vae.config.latents_mean, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(self.vae.config.latents_std, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
        return mean, std

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        latents = self.vae.encode(video.to(self.vae.device, self.vae.dtype)).latent_dist.mode()
        mean, std = self._latent_stats(latents)
        return (latents - mean) / std

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        mean, std = self._latent_stats(latents)
        video = self.vae.decode((latents * std + mean).to(self.vae.dtype)).sample
        return ((video.float().clamp(-1, 1) + 1) / 2)

    def encode_prompt(self, prompt: str | list[str], max_sequence_length: int = 512) -> torch.Tensor:
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("this pipeline has no text encoder/tokenizer: pass prompt_embeds instead of a prompt")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        ids = self.tokenizer(prompts, padding="max_length", max_length=max_sequence_length, truncation=True,
                             return_tensors="pt")
        out = self.text_encoder(ids.input_ids.to(self.text_encoder.device),
                                attention_mask=ids.attention_mask.to(self.text_encoder.device)).last_hidden_state
        return out * ids.attention_mask.unsqueeze(-1).to(out)   # padding tokens zeroed, as Wan does

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(self, video: Any, controls: Mapping[str, float] | torch.Tensor | None = None,
                 trajectory: torch.Tensor | None = None, prompt: str | list[str] | None = None,
                 negative_prompt: str | list[str] | None = None, prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None, num_inference_steps: int = 30,
                 camera_guidance: float = 1.0, photo_guidance: float = 1.0,
                 camera_strength: float = 1.0, photo_strength: float = 1.0,
                 generator: torch.Generator | None = None, output_type: str = "np",
                 callback_on_step_end: Callable[..., dict] | None = None, max_sequence_length: int = 512,
                 return_dict: bool = False):
        """Returns frames (B, T, H, W, 3) float in [0, 1] ("np"), a (B, 3, T, H, W) tensor ("pt") or latents."""
        self._interrupt = False
        device = self.transformer.device
        dtype = self.transformer.dtype
        source = self._video_tensor(video)
        self._check_sizes(source)
        batch = source.shape[0]
        if prompt_embeds is None:
            prompt_embeds = self.encode_prompt(prompt if prompt is not None else "", max_sequence_length)
        prompt_embeds = prompt_embeds.to(device, dtype).expand(batch, -1, -1)
        src_latents = self.encode_video(source).to(device, dtype)
        latent_frames = src_latents.shape[2]

        if controls is None:
            ctrl = None
        else:
            ctrl = (controls if isinstance(controls, torch.Tensor) else controls_tensor(dict(controls)))
            ctrl = ctrl.to(device).expand(batch, -1)
        traj = identity_trajectory(batch, latent_frames) if trajectory is None else trajectory
        if traj.ndim == 2:
            traj = traj.unsqueeze(0)
        if traj.shape[1] != latent_frames:
            raise ValueError(f"trajectory has {traj.shape[1]} poses; this clip has {latent_frames} latent frames "
                             "(one pose per 4 frames + 1)")
        traj = traj.to(device).expand(batch, -1, -1)

        guided = camera_guidance != 1.0 or photo_guidance != 1.0
        if guided:
            if negative_prompt_embeds is None:
                negative_prompt_embeds = (self.encode_prompt(negative_prompt or "", max_sequence_length)
                                          if self.text_encoder is not None and negative_prompt is not None
                                          else torch.zeros_like(prompt_embeds))
            neg = negative_prompt_embeds.to(device, dtype).expand(batch, -1, -1)
            text = torch.cat([neg, prompt_embeds, prompt_embeds])
            cam_s = torch.tensor([0.0] * batch + [camera_strength] * 2 * batch, device=device)
            photo_s = torch.tensor([0.0] * 2 * batch + [photo_strength] * batch, device=device)
            ctrl_in = None if ctrl is None else ctrl.repeat(3, 1)
            traj_in = traj.repeat(3, 1, 1)
        else:
            text, cam_s, photo_s, ctrl_in, traj_in = prompt_embeds, camera_strength, photo_strength, ctrl, traj

        latents = torch.randn(src_latents.shape, generator=generator, dtype=torch.float32).to(device, dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                if self._interrupt:
                    break
                copies = 3 if guided else 1
                hidden = torch.cat([latents, src_latents], dim=2).repeat(copies, 1, 1, 1, 1)
                pred = self.transformer(hidden_states=hidden, timestep=t.expand(hidden.shape[0]),
                                        encoder_hidden_states=text, controls=ctrl_in, trajectory=traj_in,
                                        camera_strength=cam_s, photo_strength=photo_s,
                                        return_dict=False)[0][:, :, :latent_frames]
                if guided:
                    uncond, cam_only, full = pred.chunk(3)
                    pred = uncond + camera_guidance * (cam_only - uncond) + photo_guidance * (full - cam_only)
                latents = self.scheduler.step(pred, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    result = callback_on_step_end(self, i, t, {"latents": latents}) or {}
                    latents = result.get("latents", latents)
                bar.update()

        if output_type == "latent":
            out = latents
        else:
            video_out = self.decode_latents(latents)
            out = video_out if output_type == "pt" else video_out.permute(0, 2, 3, 4, 1).cpu().numpy()
        self.maybe_free_model_hooks()
        return {"frames": out} if return_dict else out
