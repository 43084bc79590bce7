"""Camera paths that act, measured: the run tests/train/test_camera_path_learned.py makes (a real catalog of slider
passes, the bridge pixel-space transformer trained by `train.finetune.train`, held-out scenes edited through
`train edit`'s editor), with the translation of every edit (`rigs.statistics`) and the training time stored, so
docs/training.md quotes the figures from a stored run. A few minutes on two CPU cores.

    python benchmarks/camera_path.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_result  # noqa: E402

from tests.train import test_camera_path_learned as T  # noqa: E402  (the test's data and run, one definition)
from train import finetune as FT  # noqa: E402
from train.config import load_config  # noqa: E402


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="camera-path-") as tmp:
        root = Path(tmp)
        catalog = T.passes_catalog(root / "lab")
        config = root / "campath.toml"
        config.write_text(T.CONFIG.format(out=root / "run", catalog=catalog, **T.RUN))
        t0 = time.perf_counter()
        FT.train(load_config(config))
        train_s = time.perf_counter() - t0
        moved = T.translations(root / "run" / "model")
    figures = {
        "run": dict(T.RUN), "px_per_mm": T.PX_PER_MM, "train_scenes": T.TRAIN_SCENES,
        "held_out_scenes": len(T.HELD_OUT_SEEDS), "train_seconds": round(train_s, 1),
        "torch_threads": torch.get_num_threads(),
        "identity_px": [round(v, 3) for v in moved[None]],
    }
    for offset in T.OFFSETS_MM:
        want = -offset * T.PX_PER_MM
        got = float(np.mean(moved[offset]))
        figures[f"offset_{offset:+g}mm"] = {"asked_px": want, "moved_px": [round(v, 3) for v in moved[offset]],
                                           "mean_px": round(got, 3), "error": round(abs(got - want) / abs(want), 3)}
    for key, value in figures.items():
        print(f"{key:18s} {value}")
    write_result("camera_path", figures, notes="Held-out scenes edited with slider offsets; + px = content moved "
                 "right. The test holds each mean within 35 % of the asked shift, the right way, and the identity "
                 "path under 0.5 px.")
    return figures


if __name__ == "__main__":
    main()
