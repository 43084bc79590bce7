"""The autoencoder's LR schedule is diffusers' `get_scheduler("cosine")` with warmup, spanning the run's step
budget (max_steps, or the steps that fit `minutes` at the speed of the first steps); each history entry records
the LR its step ran at."""

from __future__ import annotations

import pytest
import torch
from diffusers.optimization import get_scheduler

from train import autoencoder as A
from rigs.video import write_video

from .conftest import textured_clip


def _reference(steps: int, lr: float, total: int) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = get_scheduler("cosine", opt, num_warmup_steps=min(A.WARMUP_STEPS, total // 5), num_training_steps=total)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_budget_from_the_time_budget():
    cfg = A.AutoencoderConfig(minutes=1.0, max_steps=100_000)
    assert A.step_budget(cfg, 20, 2.0) == 600                 # 0.1 s a step, 60 s
    assert A.step_budget(A.AutoencoderConfig(minutes=60.0, max_steps=300), 20, 2.0) == 300


def test_a_rebuilt_schedule_continues_where_the_steps_are():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = A.lr_schedule(opt, 200, done=70)
    assert opt.param_groups[0]["lr"] == pytest.approx(_reference(71, 1e-3, 200)[70], rel=1e-12)
    assert sched.get_last_lr()[0] == pytest.approx(opt.param_groups[0]["lr"])


@pytest.mark.timeout(600)
def test_training_runs_diffusers_cosine_schedule(tmp_path):
    clips = [write_video(tmp_path / f"c{i}.mp4", textured_clip(seed=i, frames=9, size=48), 6) for i in range(2)]
    cfg = A.AutoencoderConfig(size=(16, 16), batch_size=1, minutes=30.0, max_steps=40, eval_every=10,
                              target_psnr=99.0, vae=dict(A.CONFIGS["tiny"]))
    report = A.train_autoencoder(clips[:1], clips[1:], tmp_path / "vae", cfg)
    expected = _reference(40, cfg.lr, 40)                    # 30 min fit far more than 40 steps: budget = 40
    assert [h["lr"] for h in report.history] == pytest.approx([expected[s - 1] for s in (10, 20, 30, 40)],
                                                              rel=1e-9)
    assert report.history[1]["lr"] > report.history[3]["lr"]          # it decays
