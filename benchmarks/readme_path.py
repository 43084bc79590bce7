"""The README's model path, measured: `cinectrl train run examples/train-tiny-cpu.toml` (its own step count) on
pairs the effect simulator makes from a 640x480 clip of a real photograph (tests/data/camera-files), then
`cinectrl train edit` of that clip with neutral controls and with a 40 mm camera path. Stores the neutral edit's
PSNR to the input (README and docs/training.md quote it; the test holds >= 30 dB at 3 steps) and what the
camera path did (mean horizontal translation, rigs.statistics, and its PSNR), so the README's figures come from
a stored run. About a minute per 50 steps on two CPU cores.

    python benchmarks/readme_path.py [--steps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_result  # noqa: E402

from rigs.statistics import Context, clip_translation  # noqa: E402
from rigs.video import read_video, write_video  # noqa: E402
from tests.train.test_formulation import PHOTO, photo_clip  # noqa: E402  (the test's clip, one definition)
from train.metrics import psnr  # noqa: E402

CONFIG = REPO / "examples" / "train-tiny-cpu.toml"
PATH_MM = 40


def cinectrl(*args: str, cwd: Path) -> str:
    """One README command through `python -m cinectrl` with this checkout first on the path."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "cinectrl", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"cinectrl {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return done.stdout


def main(steps: int | None = None) -> dict:
    config = tomllib.loads(CONFIG.read_text())
    steps = steps or int(config["train"]["max_steps"])
    with tempfile.TemporaryDirectory(prefix="readme-path-") as tmp:
        tmp = Path(tmp)
        source = write_video(tmp / "photo.mp4", photo_clip(), fps=12)
        frames, _ = read_video(source)                  # what the CLI reads (after the codec)
        config["output_dir"] = str(tmp / "run")
        config["data"].update(catalog="", synthetic_sources=[str(source)], synthetic_count=4, ratio=[0, 1],
                              eval_fraction=0.0)
        config["train"].update(trackers=[], max_steps=steps)
        config["validation"].update(every=0, sample_every=0)
        (tmp / "train.toml").write_text(tomli_w.dumps(config))
        t0 = time.perf_counter()
        cinectrl("train", "run", str(tmp / "train.toml"), cwd=tmp)
        train_s = time.perf_counter() - t0
        edits = {}
        for name, extra in (("neutral", []), ("path", ["--camera-path", f'{{"slider_mm": [{PATH_MM}]}}'])):
            out = tmp / f"{name}.mp4"
            cinectrl("train", "edit", str(source), "--model", str(tmp / "run"), "--steps", "4", *extra,
                     "--out", str(out), cwd=tmp)
            edits[name], _ = read_video(out)
    neutral_db = psnr(edits["neutral"], frames)
    figures = {
        "clip": f"{frames.shape[2]}x{frames.shape[1]}, {len(frames)} frames of {PHOTO.relative_to(REPO)}",
        "config": str(CONFIG.relative_to(REPO)), "train_steps": steps, "train_seconds": round(train_s, 1),
        "neutral_edit_psnr_db": round(neutral_db, 2), "target_neutral_psnr_db": 30.0,
        "path_mm": PATH_MM, "path_edit_psnr_db": round(psnr(edits["path"], frames), 2),
        "path_edit_translation_px": round(clip_translation(edits["path"], Context(source=frames)), 3),
    }
    for key, value in figures.items():
        print(f"{key:28s} {value}")
    write_result("readme_path", figures, notes="The README model trains on simulated photographic pairs only "
                 "(no camera-path pairs: a single photograph has no second viewpoint), so the camera-path figures "
                 "say what an untaught path does to this model, not what a taught one does "
                 "(tests/train/test_camera_path_learned.py measures that).")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the config's max_steps)")
    main(parser.parse_args().steps)
