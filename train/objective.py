"""The training objective (Wan / ReCamMaster flow matching) and the latents it works on.

Shared by the training step and the validation loss so both measure the same thing: `x_t = (1-σ)x0 + σε`
on the target half of `[target_noisy | source_clean]`, the model called with `timestep = 1000σ`, MSE against the
velocity `ε − x0` on the target half only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from . import data as D


def encode(vae: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Normalised VAE latents (argmax of the posterior, as Wan pipelines do)."""
    latents = vae.encode(video.to(vae.dtype)).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean, dtype=latents.dtype).view(1, -1, 1, 1, 1).to(latents.device)
    std = torch.tensor(vae.config.latents_std, dtype=latents.dtype).view(1, -1, 1, 1, 1).to(latents.device)
    return (latents - mean) / std


def vae_id(vae: torch.nn.Module) -> str:
    return hashlib.sha256(json.dumps(dict(vae.config), sort_keys=True, default=str).encode()).hexdigest()[:12]


def latents(vae: torch.nn.Module, video: torch.Tensor, files: list[str], cache: D.LatentCache | None,
            sampling: Mapping[str, Any]) -> torch.Tensor:
    """Encode a batch; with a cache, file-backed clips are encoded once (keyed by file hash + sampling + VAE)."""
    device = next(vae.parameters()).device
    if cache is None:
        return encode(vae, video.to(device))
    out = []
    for i, path in enumerate(files):
        one = lambda i=i: encode(vae, video[i:i + 1].to(device))  # noqa: E731
        out.append(cache.get_or_compute(path, one, **sampling).to(device) if path else one())
    return torch.cat(out)


def shift_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * u / (1 + (shift - 1) * u)


def sample_sigmas(batch: int, weighting_scheme: str, shift: float, generator: torch.Generator) -> torch.Tensor:
    from diffusers.training_utils import compute_density_for_timestep_sampling
    u = compute_density_for_timestep_sampling(weighting_scheme, batch, logit_mean=0.0, logit_std=1.0,
                                              mode_scale=1.29, generator=generator)
    return shift_sigmas(u, shift)


def fixed_sigmas(points: int, shift: float) -> torch.Tensor:
    """Evenly spaced noise levels (midpoints of `points` bins, shifted): the validation loss's fixed grid."""
    return shift_sigmas((torch.arange(points, dtype=torch.float32) + 0.5) / points, shift)


def conditioning(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The CineCtrl transformer's condition inputs from a collated batch."""
    return {"controls": batch["controls"], "trajectory": batch["trajectory"]}


def flow_matching_loss(model: torch.nn.Module, target_latents: torch.Tensor, source_latents: torch.Tensor,
                       text: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor,
                       conditions: Mapping[str, Any]) -> torch.Tensor:
    """MSE of the predicted velocity (noise - x0) on the target half only; the source half stays clean."""
    s = sigmas.view(-1, 1, 1, 1, 1).to(target_latents.dtype)
    noisy = (1 - s) * target_latents + s * noise
    frames = target_latents.shape[2]
    hidden = torch.cat([noisy, source_latents], dim=2)
    pred = model(hidden_states=hidden, timestep=sigmas * 1000, encoder_hidden_states=text, return_dict=False,
                 **conditions)[0]
    return F.mse_loss(pred[:, :, :frames].float(), (noise - target_latents).float())
