"""Train a Wan video autoencoder (diffusers' `AutoencoderKLWan`) on captured clips, until it is good enough to
measure with.

No pretrained weights can be downloaded here, and a random VAE turns every clip into noise: a fine-tuned
model can only be as faithful as its autoencoder's reconstruction. So the lab trains one on its own captured
frames (training scenes only) and checks held-out scenes' reconstruction PSNR against a target (30 dB by
default) before anything is trained on its latents. On a machine with a local Wan2.1 checkpoint its own VAE is
used instead (`[model] pretrained`), and this step is skipped.

The finished autoencoder is saved with `save_pretrained` and carries the per-channel latent mean and standard
deviation of the training clips in its config (`latents_mean`, `latents_std`, as Wan's VAE does), so the
transformer sees unit-variance latents.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import tiny
from .data import fit_clip, sample_indices, to_tensor
from .metrics import psnr
from rigs.video import VideoError, read_video

log = logging.getLogger(__name__)

#: a small Wan VAE that trains on a CPU in minutes (the tiny test config has 3 base channels: too few to
#: reconstruct textured frames)
SMALL_VAE: dict[str, Any] = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                                 temperal_downsample=[False, True, True])
CONFIGS = {"tiny": tiny.VAE, "small": SMALL_VAE}


@dataclass
class AutoencoderConfig:
    size: tuple[int, int] = (64, 96)          # (H, W) the clips are resized/cropped to, as the training data
    num_frames: int = 5                       # 4k+1 frames per training sample
    batch_size: int = 4
    lr: float = 1e-3
    kl_weight: float = 1e-6
    target_psnr: float = 30.0                 # dB on held-out clips
    minutes: float = 5.0                      # stop after this long even if the target is not reached
    max_steps: int = 100_000
    eval_every: int = 50
    seed: int = 0
    vae: dict[str, Any] = field(default_factory=lambda: dict(SMALL_VAE))


@dataclass
class AutoencoderReport:
    steps: int
    seconds: float
    heldout_psnr: float
    train_psnr: float
    target_psnr: float
    reached: bool
    train_clips: int
    heldout_clips: int
    history: list[dict[str, float]]
    parameters: int
    output_dir: str
    why_not: str = ""


def _clip_tensors(paths: Sequence[Path], cfg: AutoencoderConfig) -> list[np.ndarray]:
    """Every readable clip resized/cropped to the training size (uint8 (T, H, W, 3))."""
    out = []
    for path in paths:
        try:
            frames, _ = read_video(path)
        except VideoError as exc:
            log.warning("autoencoder: %s skipped: %s", path, exc)
            continue
        if len(frames) < cfg.num_frames:
            log.warning("autoencoder: %s skipped: %d frames < %d", path, len(frames), cfg.num_frames)
            continue
        out.append(fit_clip(frames, cfg.size))
    return out


def _batch(clips: Sequence[np.ndarray], cfg: AutoencoderConfig, rng: np.random.Generator) -> torch.Tensor:
    items = []
    for _ in range(cfg.batch_size):
        clip = clips[int(rng.integers(len(clips)))]
        start = int(rng.integers(0, len(clip) - cfg.num_frames + 1))
        frames = clip[sample_indices(len(clip), cfg.num_frames, 1, start)]
        if rng.random() < 0.5:
            frames = frames[:, :, ::-1]          # mirror: free variety for a small data set
        items.append(to_tensor(np.ascontiguousarray(frames)))
    return torch.stack(items)


def psnr_batch(vae, clips: Sequence[np.ndarray], num_frames: int) -> float:
    """Mean reconstruction PSNR (dB, 8-bit) over the first `num_frames` 4k+1 frames of each clip."""
    values = []
    with torch.no_grad():
        for clip in clips:
            n = (min(len(clip), num_frames) - 1) // 4 * 4 + 1
            video = to_tensor(np.ascontiguousarray(clip[:n])).unsqueeze(0)
            rec = vae.decode(vae.encode(video).latent_dist.mode()).sample
            a = ((video.clamp(-1, 1) + 1) * 127.5).round().numpy()
            b = ((rec.clamp(-1, 1) + 1) * 127.5).round().numpy()
            values.append(psnr(a, b))
    return float(np.mean(values)) if values else float("nan")


def latent_statistics(vae, clips: Sequence[np.ndarray], num_frames: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the latents (posterior modes) of the training clips."""
    latents = []
    with torch.no_grad():
        for clip in clips:
            n = (min(len(clip), num_frames) - 1) // 4 * 4 + 1
            z = vae.encode(to_tensor(np.ascontiguousarray(clip[:n])).unsqueeze(0)).latent_dist.mode()
            latents.append(z.permute(1, 0, 2, 3, 4).reshape(z.shape[1], -1))
    stacked = torch.cat(latents, dim=1)
    return stacked.mean(dim=1).tolist(), stacked.std(dim=1).clamp_min(1e-4).tolist()


WARMUP_STEPS = 50
BUDGET_PROBE_STEPS = 20


def lr_schedule(optimizer: torch.optim.Optimizer, steps: int, *, done: int = 0):
    """diffusers' cosine schedule with warmup (WARMUP_STEPS, at most a fifth of the run) over `steps` optimizer
    steps, advanced past the `done` ones (a schedule rebuilt once the step budget is known)."""
    import warnings

    from diffusers.optimization import get_scheduler
    for group in optimizer.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=min(WARMUP_STEPS, steps // 5),
                              num_training_steps=max(1, steps))
    with warnings.catch_warnings():          # advancing a fresh schedule: no optimizer step belongs in between
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(done):
            scheduler.step()
    return scheduler


def step_budget(cfg: "AutoencoderConfig", steps: int, seconds: float) -> int:
    """How many steps fit `cfg.minutes` at the speed of the first `steps` (never more than `max_steps`)."""
    per_step = max(seconds / max(steps, 1), 1e-6)
    return max(steps + 1, min(cfg.max_steps, int(cfg.minutes * 60.0 / per_step)))


def train_autoencoder(train_clips: Sequence[Path], heldout_clips: Sequence[Path], out_dir: str | Path,
                      cfg: AutoencoderConfig | None = None, *,
                      progress: Callable[[dict[str, float]], None] | None = None) -> AutoencoderReport:
    """Train until the held-out PSNR reaches the target or the time is up; save the VAE and a report."""
    from diffusers import AutoencoderKLWan
    cfg = cfg or AutoencoderConfig()
    out = Path(out_dir)
    train = _clip_tensors(train_clips, cfg)
    heldout = _clip_tensors(heldout_clips, cfg)
    if not train:
        raise ValueError("no readable training clip for the autoencoder (need clips of at least "
                         f"{cfg.num_frames} frames)")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vae = AutoencoderKLWan(**cfg.vae)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    scheduler = lr_schedule(optimizer, cfg.max_steps)
    started = time.time()
    deadline = started + cfg.minutes * 60.0
    history: list[dict[str, float]] = []
    eval_set = heldout[:8] or train[:4]
    step, best = 0, -math.inf
    best_state = None
    while step < cfg.max_steps and time.time() < deadline:
        if step == BUDGET_PROBE_STEPS:      # the time budget in steps, from the speed so far: the cosine spans it
            scheduler = lr_schedule(optimizer, step_budget(cfg, step, time.time() - started), done=step)
        x = _batch(train, cfg, rng)
        posterior = vae.encode(x).latent_dist
        rec = vae.decode(posterior.mode()).sample        # the posterior's mode: what training and editing encode
        loss = (rec - x).abs().mean() + 0.5 * ((rec - x) ** 2).mean() + cfg.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        lr = optimizer.param_groups[0]["lr"]                 # the LR this step runs at
        optimizer.step()
        scheduler.step()
        step += 1
        if step % cfg.eval_every == 0:
            vae.eval()
            score = psnr_batch(vae, eval_set, 9)
            vae.train()
            entry = {"step": step, "seconds": time.time() - started, "loss": loss.item(), "heldout_psnr": score,
                     "lr": lr}
            history.append(entry)
            if progress is not None:
                progress(entry)
            if score > best:
                best, best_state = score, {k: v.detach().clone() for k, v in vae.state_dict().items()}
            if score >= cfg.target_psnr:
                break
    if best_state is not None:
        vae.load_state_dict(best_state)
    vae.eval()
    heldout_psnr = psnr_batch(vae, (heldout or train[:4])[:24], 9)
    train_psnr = psnr_batch(vae, train[:8], 9)
    mean, std = latent_statistics(vae, train[:48], 9)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    out.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(out)
    reached = heldout_psnr >= cfg.target_psnr
    why = "" if reached else (
        f"held-out PSNR {heldout_psnr:.1f} dB < {cfg.target_psnr:.0f} dB after {step} steps in "
        f"{(time.time() - started) / 60:.1f} min (train {train_psnr:.1f} dB): a {sum(p.numel() for p in vae.parameters()):,}"
        "-parameter VAE compresses each 8x8x4 block of pixels to 16 numbers; more minutes, a larger base_dim, "
        "or a pretrained Wan VAE close the gap")
    report = AutoencoderReport(step, time.time() - started, heldout_psnr, train_psnr, cfg.target_psnr, reached,
                               len(train), len(heldout), history, sum(p.numel() for p in vae.parameters()),
                               str(out), why)
    (out / "autoencoder.json").write_text(json.dumps({"report": asdict(report), "config": {
        **asdict(cfg), "size": list(cfg.size)}}, indent=2))
    return report
