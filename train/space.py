"""The model's working space: where clips become the tensors the transformer sees, and back.

Two spaces, one interface (`encode`, `decode`, `load`, `space_id`), used by training, validation and the
pipeline alike, so the latent normalisation is written once (here):
- `AutoencoderKLWan` latents (Wan's VAE, or one trained by `cinectrl train autoencoder`): the posterior's mode,
  normalised per channel by the VAE config's `latents_mean` / `latents_std`. A CPU-size autoencoder caps what
  any model on its latents can give back (the lab day's measured 23.7 dB held out).
- `PixelSpace`: the frames themselves, space-to-depth by `factor` in space (pixel_unshuffle: H/f x W/f) and by
  `temporal` in time, causal as Wan's VAE (4k+1 frames -> k+1 latent frames: the first frame alone, repeated to
  fill its group, then groups of `temporal` frames), 3·temporal·f² channels. Exact round trip, so nothing caps
  the picture, and at f = 8, temporal = 4 the transformer sees as many tokens as on the VAE's latents. This is
  what the CPU-scale configurations use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

#: `[model] space` values
SPACES = ("vae", "pixel")
#: frames per latent frame in pixel space (4k+1 clips group evenly)
TEMPORAL = (1, 2, 4)


class PixelSpace(ModelMixin, ConfigMixin):
    """Pixels in [-1, 1], space-to-depth by `factor`. Parameter-free; saved and loaded like a VAE so a model
    directory keeps its space in `vae/` and the one loader reads it."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, factor: int = 8, temporal: int = 4) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelSpace factor {factor}: must be at least 1")
        if temporal not in TEMPORAL:
            raise ValueError(f"PixelSpace temporal {temporal}: use one of {TEMPORAL} (4k+1 frames group evenly)")
        # a (saved) buffer: gives the module a device/dtype and a weights file diffusers' loader expects
        self.register_buffer("scale", torch.ones(()))

    @property
    def channels(self) -> int:
        return 3 * self.config.temporal * self.config.factor ** 2

    def to_latents(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 3·n·f², (T-1)/n + 1, H/f, W/f) for temporal n."""
        b, c, t, h, w = video.shape
        f, n = self.config.factor, self.config.temporal
        if h % f or w % f:
            raise ValueError(f"frame size {h}x{w}: pixel space with factor {f} needs sides divisible by {f}")
        if (t - 1) % n:
            raise ValueError(f"{t} frames: pixel space with temporal {n} needs {n}k+1 frames")
        video = torch.cat([video[:, :, :1].expand(-1, -1, n - 1, -1, -1), video], dim=2)   # first frame fills its group
        groups = video.shape[2] // n
        x = video.reshape(b, c, groups, n, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b * groups, n * c, h, w)
        x = F.pixel_unshuffle(x, f)
        return x.reshape(b, groups, -1, h // f, w // f).permute(0, 2, 1, 3, 4)

    def to_video(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, groups, h, w = latents.shape
        f, n = self.config.factor, self.config.temporal
        x = F.pixel_shuffle(latents.permute(0, 2, 1, 3, 4).reshape(b * groups, -1, h, w), f)
        x = x.reshape(b, groups, n, 3, h * f, w * f).permute(0, 3, 1, 2, 4, 5).reshape(b, 3, groups * n, h * f, w * f)
        first = x[:, :, :n].mean(dim=2, keepdim=True)       # the first frame's group holds n copies of it
        return torch.cat([first, x[:, :, n:]], dim=2)


def channels(space: torch.nn.Module) -> int:
    """Channels of the space's latents (what the transformer's in/out channels must be)."""
    return space.channels if isinstance(space, PixelSpace) else int(space.config.z_dim)


def _stats(vae: torch.nn.Module, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(vae.config.latents_mean, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=like.dtype, device=like.device).view(1, -1, 1, 1, 1)
    return mean, std


def encode(space: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> the transformer's input latents (normalised VAE latents, or pixels)."""
    video = video.to(space.device, space.dtype)
    if isinstance(space, PixelSpace):
        return space.to_latents(video)
    latents = space.encode(video).latent_dist.mode()        # the posterior's argmax, as Wan pipelines do
    mean, std = _stats(space, latents)
    return (latents - mean) / std


def decode(space: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Latents -> (B, 3, T, H, W) in [0, 1]."""
    if isinstance(space, PixelSpace):
        video = space.to_video(latents.to(space.dtype))
    else:
        mean, std = _stats(space, latents)
        video = space.decode((latents * std + mean).to(space.dtype)).sample
    return (video.float().clamp(-1, 1) + 1) / 2


def latent_frames(space: torch.nn.Module, frames: int) -> int:
    """How many latent frames a clip of `frames` (4k+1) frames becomes."""
    return (frames - 1) // (space.config.temporal if isinstance(space, PixelSpace) else 4) + 1


def space_id(space: torch.nn.Module) -> str:
    """A short hash of the space's config: latent caches are keyed by it."""
    config = {"_class": type(space).__name__, **dict(space.config)}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load(path: str | Path) -> torch.nn.Module:
    """A saved space (a model directory's `vae/`): the class its config names."""
    path = Path(path)
    config = json.loads((path / "config.json").read_text())
    if config.get("_class_name") == PixelSpace.__name__:
        return PixelSpace.from_pretrained(path)
    return AutoencoderKLWan.from_pretrained(path)
