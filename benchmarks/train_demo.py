"""The <= 30-minute CPU demonstration (not run in CI): does a tiny CineCtrl model, fine-tuned briefly on
simulated-camera data, beat the identity baseline on exposure and colour-temperature CorrCoef?

    .venv/bin/python benchmarks/train_demo.py [--minutes 30] [--out runs/demo]

Steps (budget split ~15 % VAE, ~70 % fine-tune, rest evaluation):
1. Procedural source clips (textured scenes seen through a drifting window), split by scene.
2. A small Wan VAE (AutoencoderKLWan, tiny config) trained briefly as an autoencoder on those frames — no
   pretrained weights exist here; on a GPU with a local Wan2.1 checkpoint use its VAE instead.
3. `train.finetune` on synthetic pairs made by the effect simulator (train/effects.py) with the CineCtrl
   transformer (train/model.py), tiny config.
4. `train.evaluate` on held-out scenes with simulated sweeps: model vs identity vs simulator; report + plots.
Needs train/model.py and train/effects.py (issue 8); exits with a clear message without them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train import evaluate as E  # noqa: E402
from train import finetune as FT  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.videoio import write_video  # noqa: E402


def scene_clip(seed: int, frames: int = 17, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    canvas = np.full((size * 3, size * 3, 3), rng.integers(60, 200, 3), np.uint8)
    for _ in range(25):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = (int(v) for v in rng.integers(0, size * 3, 2))
        if rng.random() < 0.5:
            cv2.circle(canvas, (x, y), int(rng.integers(2, 10)), colour, -1)
        else:
            cv2.rectangle(canvas, (x, y), (x + int(rng.integers(3, 14)), y + int(rng.integers(3, 14))), colour, -1)
    dx, dy = rng.integers(-1, 2, 2)
    return np.stack([canvas[size + dy * i: 2 * size + dy * i, size + dx * i: 2 * size + dx * i] for i in range(frames)])


def train_vae(clips: list[np.ndarray], seconds: float, cfg: FT.RunConfig):
    from diffusers import AutoencoderKLWan
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**cfg.model.tiny_vae)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    data = [torch.from_numpy(c).permute(3, 0, 1, 2).float().div(127.5).sub(1) for c in clips]
    t0, step = time.time(), 0
    while time.time() - t0 < seconds:
        batch = torch.stack([data[i] for i in np.random.default_rng(step).integers(0, len(data), 4)])
        post = vae.encode(batch).latent_dist
        recon = vae.decode(post.sample(), return_dict=False)[0]
        loss = (recon - batch).abs().mean() + 1e-6 * post.kl().mean()
        opt.zero_grad(), loss.backward(), opt.step()
        step += 1
        if step % 50 == 0:
            print(f"  vae step {step}: L1 {loss.item():.4f}", flush=True)
    return vae.eval().requires_grad_(False), step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "demo")
    args = parser.parse_args()
    try:
        from train.model import CineCtrlTransformer3DModel  # noqa: F401
        simulate = FT.default_simulator()
        assert simulate is not None
    except (ImportError, AssertionError):
        sys.exit("train_demo needs train/model.py (CineCtrlTransformer3DModel) and train/effects.py (simulator)")
    budget, started = args.minutes * 60, time.time()
    out = args.out.resolve()
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clips = {f"scene{s:02d}": scene_clip(s) for s in range(24)}
    for name, clip in clips.items():
        write_video(clips_dir / f"{name}.mkv", clip, 8.0, codec="ffv1")       # lossless sources
    eval_scenes = sorted(clips)[-4:]
    for name in eval_scenes:
        (clips_dir / f"{name}.mkv").rename(out / f"heldout-{name}.mkv")
    cfg = FT.RunConfig(name="demo", output_dir=str(out / "run"))
    cfg.data.synthetic_sources = [str(clips_dir / "*.mkv")]
    cfg.data.synthetic_count, cfg.data.num_frames, cfg.data.size, cfg.data.eval_fraction = 2000, 17, [32, 32], 0.0
    cfg.train.trainable, cfg.train.checkpoint_every, cfg.train.cpu, cfg.train.lr = "all", 500, True, 3e-4
    print("1/3 training the VAE", flush=True)
    vae, vae_steps = train_vae([c for n, c in clips.items() if n not in eval_scenes], 0.15 * budget, cfg)
    pretrained = out / "pretrained"
    torch.manual_seed(0)
    transformer = CineCtrlTransformer3DModel(**cfg.model.tiny_transformer)
    FT.save_model_dir(transformer, vae, cfg, pretrained)
    cfg.model.pretrained = str(pretrained)
    # measure a step, then size the run to ~70 % of the budget
    probe = FT.RunConfig(**{**cfg.__dict__, "output_dir": str(out / "probe")})
    probe.train = TrainConfig(**{**cfg.train.__dict__, "max_steps": 5})
    t0 = time.time()
    FT.train(probe, simulate=simulate)
    per_step = (time.time() - t0) / 5
    left = budget - (time.time() - started)
    cfg.train.max_steps = max(10, int(0.78 * left / per_step))
    print(f"2/3 fine-tuning {cfg.train.max_steps} steps (~{per_step:.2f} s/step)", flush=True)
    summary = FT.train(cfg, simulate=simulate)
    print("3/3 evaluating on held-out scenes", flush=True)
    from train.editor import load_editor
    editor = load_editor(summary["model_dir"], steps=10)
    held = [(n, clips[n]) for n in eval_scenes]
    sweeps = E.simulated_sweeps(held, simulate, {"exposure": [-0.6, -0.2, 0.2, 0.6],
                                                 "colour_temperature": [-0.6, -0.2, 0.2, 0.6],
                                                 "bokeh": [0.0, 0.3, 0.6, 0.9], "zoom": [0.0, 0.2, 0.4, 0.6]})
    result = E.evaluate(sweeps, {"model": editor, "identity": lambda f, c: f, "simulator": simulate})
    result["demo"] = {"vae_steps": vae_steps, "finetune_steps": summary["steps"], "final_loss": summary["final_loss"],
                      "minutes": (time.time() - started) / 60, "autoencoder": "tiny AutoencoderKLWan trained here"}
    paths = E.write_report(result, out / "report", title="cinectrl CPU demo")
    table = {m: {e: (v["corrcoef_scored"], v["abs_error"]) for e, v in d["effects"].items()}
             for m, d in result["methods"].items()}
    print(json.dumps(table, indent=1))
    for effect in ("exposure", "colour_temperature"):
        beat = table["model"][effect][0] > table["identity"][effect][0]
        print(f"{effect}: model CorrCoef {table['model'][effect][0]:.3f} vs identity "
              f"{table['identity'][effect][0]:.3f} -> {'BEATS' if beat else 'does NOT beat'} identity")
    print(f"report: {paths['markdown']}  plots: {[str(p) for p in paths['plots']]}")
    print(f"total {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
