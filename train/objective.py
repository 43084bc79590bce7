"""The training objective and the latents it works on.

Shared by the training step and the validation loss so both measure the same thing: `x_t = (1-σ)x0 + σ·x1` on
the target half of `[target_t | source_clean]`, the model called with `timestep = 1000σ`, MSE against the
velocity `x1 − x0` on the target half only. The start point x1 is the model's formulation:
- "flow" (Wan / ReCamMaster / the paper): x1 = noise ε, sampling starts from noise;
- "bridge" (source-anchored, as InDI / I2SB without the noise): x1 = the source's latents, sampling starts from
  the source, and the model learns only the change (velocity = source − target; zero for neutral controls).
  With `anchor = "simulator"` the bridge starts from the effect simulator's render of the asked controls
  (`anchor_latents`): the model learns only what the simulator gets wrong (velocity = anchor − target), an
  untrained model returns the simulator's render, and neutral controls still give the source back.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from . import data as D
from . import space


def vae_id(vae: torch.nn.Module) -> str:
    return space.space_id(vae)


def latents(vae: torch.nn.Module, video: torch.Tensor, files: list[str], cache: D.LatentCache | None,
            sampling: Mapping[str, Any]) -> torch.Tensor:
    """Encode a batch; with a cache, file-backed clips are encoded once (keyed by file hash + sampling + VAE)."""
    device = vae.device
    if cache is None:
        return space.encode(vae, video)
    out = []
    for i, path in enumerate(files):
        one = lambda i=i: space.encode(vae, video[i:i + 1])  # noqa: E731
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


def conditioning(batch: Mapping[str, Any], model: torch.nn.Module | None = None,
                 latents: torch.Tensor | None = None) -> dict[str, Any]:
    """The CineCtrl transformer's condition inputs from a collated batch; for a model fed physical maps, the
    simulator's maps of the batch's controls (and the source's disparity when the batch has it) on the grid of
    `latents` (one half)."""
    out = {"controls": batch["controls"], "trajectory": batch["trajectory"]}
    if _config(model).get("num_maps") and latents is not None:
        out["maps"] = physical_maps(batch["controls"], batch.get("disparity"), tuple(batch["source"].shape[2:]),
                                    latents)
    return out


def identity_pairs(batch: Mapping[str, Any], source_latents: torch.Tensor, target_latents: torch.Tensor,
                   fraction: float, generator: torch.Generator) -> tuple[dict[str, Any], torch.Tensor]:
    """Turn about `fraction` of the batch into neutral pairs (target = source, neutral controls, the source's own
    path): the model is shown that no change asked means no change (`[train] identity_fraction`)."""
    from .model import controls_tensor, identity_trajectory
    pick = torch.rand(target_latents.shape[0], generator=generator) < fraction
    if not pick.any():
        return dict(batch), target_latents
    out = dict(batch)
    mask = pick.to(target_latents.device)
    target = torch.where(mask.view(-1, 1, 1, 1, 1), source_latents, target_latents)
    out["controls"] = torch.where(pick.view(-1, 1), controls_tensor({}).to(batch["controls"]), batch["controls"])
    traj = batch["trajectory"]
    out["trajectory"] = torch.where(pick.view(-1, 1, 1), identity_trajectory(1, traj.shape[1]).to(traj), traj)
    return out, target


def physical_maps(controls: torch.Tensor, disparity: torch.Tensor | None, video_shape: tuple[int, int, int],
                  latents: torch.Tensor) -> torch.Tensor:
    """effects.control_maps at the clip's size (T, H, W), averaged down to the latents' (F, h, w) grid."""
    from .effects import control_maps
    frames, height, width = video_shape
    maps = control_maps(controls.float(), disparity, frames, height, width)
    maps = F.adaptive_avg_pool3d(maps, tuple(latents.shape[2:]))
    return maps.to(latents.device, latents.dtype)


def _config(model: torch.nn.Module | None) -> Mapping[str, Any]:
    """The model's config through a DDP/DeepSpeed wrapper ({} for None)."""
    return getattr(model, "config", None) or getattr(getattr(model, "module", None), "config", None) or {}


def formulation(model: torch.nn.Module) -> str:
    return _config(model).get("formulation", "flow")


def anchor_kind(model: torch.nn.Module) -> str:
    """Where the model's bridge starts: "source" or "simulator" (`[model] anchor`)."""
    return _config(model).get("anchor", "source")


def simulator_anchored(model: torch.nn.Module) -> bool:
    """A bridge that starts from the simulator's render (the model learns the simulator's error)."""
    return formulation(model) == "bridge" and anchor_kind(model) == "simulator"


def anchor_video(model: torch.nn.Module, video: torch.Tensor, controls: torch.Tensor,
                 disparity: torch.Tensor | None) -> torch.Tensor:
    """The clip the bridge starts from, (B, 3, T, H, W) in [-1, 1]: the source itself, or for an anchor =
    "simulator" model the simulator's render of `controls` (its disparity where given, else the flat rule; ISO
    noise seeded 0; the camera path is not simulated). The one anchor training, the pipeline and the editor
    use."""
    if not simulator_anchored(model):
        return video
    from .effects import simulate_batch
    with torch.no_grad():
        return simulate_batch(video.float(), controls.float().to(video.device),
                              None if disparity is None else disparity.to(video.device)).to(video.dtype)


def anchor_latents(model: torch.nn.Module, vae: torch.nn.Module, batch: Mapping[str, Any],
                   source_latents: torch.Tensor) -> torch.Tensor:
    """The bridge's start point for a collated batch in the working space: the source's latents, or the encoded
    simulator render of the batch's controls (items with neutral controls, e.g. identity pairs: the source's
    latents exactly). Under no_grad; at the model's working size."""
    if not simulator_anchored(model):
        return source_latents
    with torch.no_grad():      # (simulate_batch returns items with neutral controls unchanged: the source's latents)
        video = anchor_video(model, batch["source"], batch["controls"], batch.get("disparity"))
        return space.encode(vae, video).to(source_latents)


def start_point(kind: str, noise: torch.Tensor, anchor_latents: torch.Tensor) -> torch.Tensor:
    """Where the path from the target starts at σ = 1 (and sampling begins): noise, or the bridge's anchor (the
    source's latents, or the simulator's render: `anchor_latents`)."""
    return anchor_latents if kind == "bridge" else noise


def flow_matching_loss(model: torch.nn.Module, target_latents: torch.Tensor, source_latents: torch.Tensor,
                       text: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor,
                       conditions: Mapping[str, Any], anchor: torch.Tensor | None = None) -> torch.Tensor:
    """MSE of the predicted velocity (x1 - x0) on the target half only; the source half stays clean. x1 is the
    noise ("flow") or the bridge's anchor ("bridge": `anchor`, from `anchor_latents`; the source's latents when
    not given), as the model's config says."""
    if anchor is None and simulator_anchored(model):
        raise ValueError("a model with anchor = \"simulator\" needs the anchor's latents: pass "
                         "anchor=objective.anchor_latents(model, vae, batch, source_latents)")
    start = start_point(formulation(model), noise, source_latents if anchor is None else anchor)
    s = sigmas.view(-1, 1, 1, 1, 1).to(target_latents.dtype)
    noisy = (1 - s) * target_latents + s * start
    frames = target_latents.shape[2]
    hidden = torch.cat([noisy, source_latents], dim=2)
    pred = model(hidden_states=hidden, timestep=sigmas * 1000, encoder_hidden_states=text, return_dict=False,
                 **conditions)[0]
    return F.mse_loss(pred[:, :, :frames].float(), (start - target_latents).float())
