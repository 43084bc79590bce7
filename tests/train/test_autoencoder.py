"""The autoencoder trainer at tiny size: it learns (held-out PSNR rises), stops at its target or its time
budget, saves a diffusers VAE carrying its latent statistics, and says why when the target is missed."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKLWan

from train import autoencoder as A
from rigs.video import write_video

from .conftest import textured_clip


@pytest.fixture
def clips(tmp_path):
    paths = [write_video(tmp_path / f"c{i}.mp4", textured_clip(seed=i, frames=9, size=48), 6) for i in range(3)]
    return paths[:2], paths[2:]


@pytest.mark.timeout(300)
def test_training_improves_reconstruction_and_saves_a_usable_vae(tmp_path, clips):
    train, heldout = clips
    cfg = A.AutoencoderConfig(size=(16, 16), batch_size=2, minutes=30.0, max_steps=45, eval_every=15,
                              target_psnr=99.0, vae=dict(A.CONFIGS["tiny"]))
    torch.manual_seed(cfg.seed)               # the same start the trainer makes
    untrained = A.psnr_batch(AutoencoderKLWan(**cfg.vae).eval(), A._clip_tensors(heldout, cfg), 9)
    report = A.train_autoencoder(train, heldout, tmp_path / "vae", cfg)
    assert report.steps == 45 and not report.reached
    assert report.heldout_psnr > untrained + 1.5                      # it learned something real
    assert "PSNR" in report.why_not and "99 dB" in report.why_not
    vae = AutoencoderKLWan.from_pretrained(tmp_path / "vae")
    assert len(vae.config.latents_mean) == 16 and all(s > 0 for s in vae.config.latents_std)
    saved = json.loads((tmp_path / "vae" / "autoencoder.json").read_text())
    assert saved["report"]["heldout_psnr"] == pytest.approx(report.heldout_psnr)
    assert [h["step"] for h in saved["report"]["history"]] == [15, 30, 45]


@pytest.mark.timeout(300)
def test_training_stops_once_the_target_is_reached(tmp_path, clips):
    train, heldout = clips
    cfg = A.AutoencoderConfig(size=(16, 16), batch_size=2, minutes=30.0, max_steps=200, eval_every=10,
                              target_psnr=5.0, vae=dict(A.CONFIGS["tiny"]))
    report = A.train_autoencoder(train, heldout, tmp_path / "vae", cfg)
    assert report.reached and report.steps == 10 and report.why_not == ""


def test_no_usable_clip_is_a_clear_error(tmp_path):
    short = write_video(tmp_path / "short.mp4", textured_clip(frames=3, size=32), 6)
    with pytest.raises(ValueError, match="no readable training clip"):
        A.train_autoencoder([short], [], tmp_path / "vae", A.AutoencoderConfig(size=(32, 32)))
