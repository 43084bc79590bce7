"""One training step of the CineCtrl transformer at Wan2.1-1.3B size: seconds per step and peak memory.

    .venv/bin/python benchmarks/gpu_step.py                    # 1.3B, 81x480x832 clips, bf16, checkpointing
    .venv/bin/python benchmarks/gpu_step.py --tiny --out DIR   # the tiny configuration on the CPU (the tests)

Random weights (no checkpoint can be downloaded), the training objective of train/objective.py on latents of the
clip's size (Wan's VAE: 81 frames -> 21 latent frames, 480x832 -> 60x104, 16 channels; the latent cache
precomputes them, so the VAE is not part of the step), `[train] trainable` of examples/train-wan-1.3b.toml
(new+self_attn), AdamW, bf16 autocast over fp32 master weights, gradient checkpointing. Writes
docs/results/benchmarks/gpu_step.json (or `--out`/gpu_step.json) with the device's name; without a GPU the full
size is not attempted and the file says so.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import write_result  # noqa: E402

#: Wan2.1's VAE strides and the 1.3B example's clip (examples/train-wan-1.3b.toml)
FRAMES, HEIGHT, WIDTH = 81, 480, 832
TEXT_TOKENS = 512


def latent_shape(frames: int, height: int, width: int, channels: int = 16) -> tuple[int, int, int, int]:
    return channels, (frames - 1) // 4 + 1, height // 8, width // 8


def step_figures(*, tiny: bool, frames: int, height: int, width: int, steps: int, precision: str,
                 checkpointing: bool, trainable: str, device: str) -> dict[str, Any]:
    """Build the model, run `steps` optimizer steps, time them (the first is warm-up) and read peak memory."""
    from train import objective as O
    from train import tiny as T
    from train.model import CineCtrlTransformer3DModel, identity_trajectory, wan21_config
    config = T.transformer_config("tiny") if tiny else wan21_config("1.3B")
    torch.manual_seed(0)
    model = CineCtrlTransformer3DModel(**config).to(device)
    names = model.set_trainable(trainable)
    if checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    shape = latent_shape(frames, height, width, int(config["in_channels"]))
    tgt = torch.randn(1, *shape, device=device)
    src = torch.randn(1, *shape, device=device)
    text = torch.zeros(1, TEXT_TOKENS if not tiny else 16, int(config["text_dim"]), device=device)
    cond = {"controls": torch.zeros(1, len(model.config.control_names), device=device),
            "trajectory": identity_trajectory(1, shape[1]).to(device)}
    dtype = {"bf16": torch.bfloat16, "no": None}[precision]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for i in range(steps):
        g = torch.Generator().manual_seed(i)
        noise = torch.randn(tgt.shape, generator=g).to(device)
        sigmas = O.sample_sigmas(1, "logit_normal", 3.0, g).to(device)
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            loss = O.flow_matching_loss(model, tgt, src, text, sigmas, noise, cond)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        losses.append(float(loss.detach()))
    timed = times[1:] or times
    figures: dict[str, Any] = {
        "configuration": "tiny (train/tiny.py)" if tiny else "Wan2.1 T2V 1.3B (train.model.wan21_config)",
        "parameters": model.parameter_counts(), "trainable": trainable, "trainable_tensors": len(names),
        "trainable_parameters": sum(p.numel() for p in params),
        "clip": {"frames": frames, "height": height, "width": width}, "latents_per_half": list(shape),
        "tokens": 2 * shape[1] * (shape[2] // 2) * (shape[3] // 2),
        "precision": precision, "gradient_checkpointing": checkpointing, "batch": 1, "steps_run": steps,
        "seconds_per_step": statistics.median(timed), "step_seconds": times, "losses": losses,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    }
    if cuda:
        figures["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    else:   # the process's peak resident set (includes the interpreter and libraries)
        figures["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny configuration (runs on the CPU)")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps (the first is warm-up)")
    parser.add_argument("--precision", choices=("bf16", "no"), default="bf16")
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--trainable", default="new+self_attn")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_step.json (default docs/results/"
                                                                 "benchmarks)")
    args = parser.parse_args(argv)
    frames = args.frames or (9 if args.tiny else FRAMES)
    height, width = args.size or ((32, 32) if args.tiny else (HEIGHT, WIDTH))
    cuda = torch.cuda.is_available()
    if not args.tiny and not cuda:
        figures = {"configuration": "Wan2.1 T2V 1.3B", "clip": {"frames": frames, "height": height, "width": width},
                   "status": "not run on a GPU yet: this machine has none (the tiny configuration runs in the "
                             "tests: tests/train/test_gpu_step.py)"}
        write_result("gpu_step", figures, directory=args.out)
        print(figures["status"])
        return 0
    figures = step_figures(tiny=args.tiny, frames=frames, height=height, width=width, steps=args.steps,
                           precision=args.precision, checkpointing=not args.no_checkpointing,
                           trainable=args.trainable, device="cuda" if cuda else "cpu")
    figures["status"] = f"measured on {figures['device']}"
    write_result("gpu_step", figures, directory=args.out)
    memory = figures.get("peak_memory_gib", figures.get("peak_rss_gib"))
    print(f"{figures['configuration']} on {figures['device']}: {figures['seconds_per_step']:.3f} s/step, "
          f"peak memory {memory:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
