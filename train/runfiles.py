"""What a training run leaves behind: loss tables and plot, checkpoints, the model directory, catalog rows.

A resumed run truncates its tables to the step it resumed from, so the files always describe one continuous
run. The model directory is written through `CineCtrlPipeline.save_pretrained`, the layout the one loader
(`train.pipeline.load_pipeline`) reads.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
LOSS_COLUMNS = ("step", "loss", "lr", "elapsed_s", "step_s", "samples_per_s")
VAL_COLUMNS = ("step", "val_loss")


def code_version() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "train"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ------------------------------------------------------------------------------------------------ tables

def start_table(path: Path, columns: Sequence[str], step: int) -> None:
    """A fresh table, or the existing one cut to rows at or before `step` (a resume)."""
    if not path.is_file():
        path.write_text(",".join(columns) + "\n")
        return
    rows = list(csv.reader(path.open()))
    kept = [list(columns)] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(kept)


def append_row(path: Path, *values: Any) -> None:
    with path.open("a", newline="") as fh:
        csv.writer(fh).writerow([f"{v:.8g}" if isinstance(v, float) else v for v in values])


def read_losses(path: Path) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(path.open())]


def read_table(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(path.open())]


def plot_losses(csv_path: Path, png_path: Path, val_path: Path | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = read_losses(csv_path)
    fig, ax = plt.subplots(figsize=(5, 3))
    if rows:
        ax.plot([r[0] for r in rows], [r[1] for r in rows], label="train")
    val = read_table(val_path) if val_path else []
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], marker="o", label="validation")
    ax.set_xlabel("step"), ax.set_ylabel("flow-matching loss"), ax.set_yscale("log")
    if val:
        ax.legend()
    fig.tight_layout(), fig.savefig(png_path, dpi=90), plt.close(fig)
    return png_path


# ------------------------------------------------------------------------------------------------ checkpoints

def checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in (output_dir / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def save_checkpoint(accelerator: Any, model: Any, out: Path, step: int, keep: int, run_id: int | None, *,
                    averaged: Callable[[], ContextManager[Any]] = nullcontext,
                    model_dir: Callable[[Any, Path], Path] | None = None) -> Path:
    """accelerate's `save_state` (the raw weights, optimizer, schedule, RNG, EMA: what `--resume` reads) and, in
    the same folder, a model directory holding the weights the final model will hold (`averaged`: EMA when on),
    so `train edit`, `train eval` and `serve` load any checkpoint as they load `model/`."""
    path = out / "checkpoints" / f"checkpoint-{step}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        with averaged():
            transformer = accelerator.unwrap_model(model)
            if getattr(transformer, "peft_config", None):   # LoRA is merged for the loader: on a copy
                transformer = copy.deepcopy(transformer)
            if model_dir is not None:
                model_dir(transformer, path)
            else:
                transformer.save_pretrained(path / "transformer")
        (path / "trainer_state.json").write_text(json.dumps({"step": step, "catalog_run_id": run_id}))
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


# ------------------------------------------------------------------------------------------------ model directory

def save_model_dir(transformer: Any, vae: Any, cfg: Any, model_dir: Path, *, text_conditioning: str = "zeros",
                   data_info: dict[str, Any] | None = None, step: int | None = None,
                   link_text_encoder: bool = False) -> Path:
    """transformer/, vae/, scheduler/ (+ text_encoder/, tokenizer/ when configured), model_index.json and the
    model card `cinectrl.json` (clip length and size trained on, prompt tokens, text conditioning, and the scenes
    held out from training, which `train eval` evaluates on by default). A checkpoint's model directory
    (`step`) links the configured text encoder instead of copying it at every checkpoint."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from . import textenc
    from .camera_path import TRANSLATION_SCALE_M
    from .pipeline import CineCtrlPipeline, ModelCard
    if getattr(transformer, "peft_config", None):          # LoRA: merge into the weights the loader reads
        transformer.fuse_lora()
        transformer.unload_lora()
    encoder = tokenizer = None
    if cfg.model.text_encoder and not link_text_encoder:
        encoder, tokenizer = textenc.load(cfg.model.text_encoder)
    pipe = CineCtrlPipeline(transformer=transformer, vae=vae,
                            scheduler=FlowMatchEulerDiscreteScheduler(shift=cfg.train.timestep_shift),
                            text_encoder=encoder, tokenizer=tokenizer)
    pipe.card = ModelCard(num_frames=cfg.data.num_frames, size=list(cfg.data.size), text_tokens=cfg.model.text_tokens,
                          text_conditioning=text_conditioning, prompt=cfg.model.prompt,
                          translation_unit_m=TRANSLATION_SCALE_M,
                          extra={"trained_by": cfg.name, "code_version": code_version(),
                                 "weights": "ema" if cfg.train.ema else "raw", "step": step,
                                 "eval_scenes": list((data_info or {}).get("eval_scenes") or []),
                                 "data": {k: (data_info or {}).get(k) for k in ("real", "synthetic", "train", "eval",
                                                                               "snapshot", "reviewed_only")}})
    pipe.save_pretrained(model_dir)
    if cfg.model.text_encoder and link_text_encoder:
        for name, target in zip(("text_encoder", "tokenizer"), textenc.parts(Path(cfg.model.text_encoder))):
            link = model_dir / name
            if not link.exists():
                os.symlink(target.resolve(), link, target_is_directory=True)
    return model_dir


# ------------------------------------------------------------------------------------------------ catalog

def catalog_start(cfg: Any, info: Mapping[str, Any], train_records: Sequence[Any], eval_records: Sequence[Any]) -> int:
    from capture.catalog import open_catalog
    pairs = {r.pair_id: "train" for r in train_records if r.pair_id is not None}
    pairs.update({r.pair_id: "eval" for r in eval_records if r.pair_id is not None})
    with open_catalog(cfg.data.catalog, create=False) as cat:
        return cat.start_training_run(cfg.name, config=cfg.to_dict(), code_version=code_version(),
                                      data_snapshot=json.dumps(dict(info), default=str), output_dir=cfg.output_dir,
                                      pair_ids=pairs)


def catalog_update(cfg: Any, run_id: int, **kw: Any) -> None:
    from capture.catalog import open_catalog
    with open_catalog(cfg.data.catalog, create=False) as cat:
        cat.update_training_run(run_id, **kw)
