"""Effect simulator speed at 480x832 (Wan's resolution) on CPU: layered FFT-gather bokeh (train.effects.bokeh)
vs the straightforward per-offset scatter reference (train.effects.reference_scatter_bokeh), same run, same
inputs; prints frames/s, the ratio (target >= 10x) and PSNR of the fast renderer to the reference (>= 30 dB)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_result  # noqa: E402

from train import effects as E  # noqa: E402


def main(frames: int = 2, K: float = 0.8, d_f: float = 0.4) -> None:
    torch.manual_seed(0)
    h, w = 480, 832
    img = torch.rand(1, frames, 3, h, w).mul(0.6).add(0.2)
    img = torch.nn.functional.avg_pool2d(img.flatten(0, 1), 5, 1, 2).unflatten(0, (1, frames))   # some structure
    yy = torch.linspace(0, 1, h).view(h, 1)
    disp = (0.5 * yy + 0.5 * torch.linspace(0, 1, w).view(1, w)).expand(1, frames, h, w).clone()
    print(f"max blur radius {float(E.defocus_radius_px(E.normalise_disparity(disp), K, d_f, w).max()):.1f} px")
    t0 = time.perf_counter(); fast = E.bokeh(img, disp, K, d_f); t_fast = time.perf_counter() - t0
    t0 = time.perf_counter(); ref = E.reference_scatter_bokeh(img, disp, K, d_f); t_ref = time.perf_counter() - t0
    psnr = 10 * math.log10(1.0 / float(((fast - ref) ** 2).mean()))
    print(f"fast gather : {frames / t_fast:8.2f} frames/s ({t_fast:.2f} s)")
    print(f"ref scatter : {frames / t_ref:8.2f} frames/s ({t_ref:.2f} s)")
    print(f"speed-up    : {t_ref / t_fast:8.1f}x (target >= 10x)   PSNR {psnr:.1f} dB (target >= 30 dB)")
    t0 = time.perf_counter()
    E.simulate(img, disp, {"K": K, "d_f": d_f, "f": 0.3, "S": 0.2, "T": 0.3, "ISO": 0.3}, shutter=0.5)
    t_all = time.perf_counter() - t0
    print(f"all effects : {frames / t_all:8.2f} frames/s")
    write_result("effects", {
        "frames": frames, "size": [h, w], "gather_frames_per_s": round(frames / t_fast, 3),
        "scatter_frames_per_s": round(frames / t_ref, 3), "speedup": round(t_ref / t_fast, 2), "speedup_target": 10,
        "psnr_db": round(psnr, 2), "psnr_target_db": 30, "all_effects_frames_per_s": round(frames / t_all, 3),
        "met": t_ref / t_fast >= 10 and psnr >= 30})


if __name__ == "__main__":
    main()
