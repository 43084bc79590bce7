"""The usual instruments of a training run, on a real tiny run: TensorBoard tracking, LR schedule with warmup,
validation loss on the eval split, sample edits (MP4 + contact strip), DataLoader workers, the resolved config,
per-step throughput, and text conditioning from a local (tiny T5) text encoder, cached like latents."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from train import finetune as FT
from train import tiny
from train.config import load_config

from .conftest import make_pair_catalog

CONFIG = """name = "{name}"
output_dir = "{out}"
[data]
catalog = "{catalog}"
num_frames = 9
size = [32, 32]
eval_fraction = 0.3
latent_cache = "{cache}"
num_workers = {workers}
[model]
text_encoder = "{encoder}"
prompt = "a {{scene}} clip"
[train]
max_steps = 4
checkpoint_every = 2
lr_scheduler = "cosine"
lr_warmup_steps = 2
trackers = ["tensorboard"]
cpu = true
[validation]
every = {every}
sample_every = {every}
samples = 1
sample_steps = 2
"""


def run(root: Path, name: str, catalog: Path, *, encoder: str, workers: int = 0, every: int = 2,
        steps: int = 4) -> tuple[dict, Path]:
    path = root / f"{name}.toml"
    path.write_text(CONFIG.format(name=name, out=root / name, catalog=catalog, encoder=encoder, cache=root / "cache",
                                  workers=workers, every=every))
    cfg = load_config(path)
    cfg.train.max_steps = steps
    return FT.train(cfg), root / name


def table(path: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(path.open())]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("instruments")
    catalog = make_pair_catalog(root / "lab")
    encoder = tiny.save_text_encoder(root / "t5")
    return root, catalog, encoder


@pytest.fixture(scope="module")
def instrumented(lab):
    root, catalog, encoder = lab
    return run(root, "full", catalog, encoder=str(encoder), workers=1)


@pytest.mark.timeout(300)
def test_tensorboard_gets_losses_lr_throughput_validation_and_sample_images(instrumented):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    summary, out = instrumented
    events = list((out / "logs").rglob("events.out.tfevents*"))
    assert events and summary["logging_dir"] == str(out / "logs")
    scalars, images = set(), set()
    for path in events:
        acc = EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0})
        acc.Reload()
        scalars |= set(acc.Tags()["scalars"])
        images |= set(acc.Tags()["images"])
    assert {"train/loss", "train/lr", "train/samples_per_s", "train/step_s", "val/loss"} <= scalars, scalars
    assert any(tag.startswith("samples/") for tag in images), images


@pytest.mark.timeout(300)
def test_lr_follows_diffusers_schedule_with_warmup(instrumented):
    from diffusers.optimization import get_scheduler
    _, out = instrumented
    logged = [row["lr"] for row in table(out / "loss.csv")]
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    reference = get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=4)
    expected = []
    for _ in range(4):
        expected.append(opt.param_groups[0]["lr"])               # the LR the step runs at, not the next one's
        opt.step()
        reference.step()
    np.testing.assert_allclose(logged, expected, rtol=1e-6, atol=1e-12)
    assert logged[0] == 0 and logged[0] < logged[1] < logged[2] and logged[2] > logged[3]   # warm up, then decay


@pytest.mark.timeout(300)
def test_validation_loss_on_the_eval_split_every_n_steps(instrumented):
    summary, out = instrumented
    rows = table(out / "val_loss.csv")
    assert [r["step"] for r in rows] == [2.0, 4.0] and all(np.isfinite(r["val_loss"]) for r in rows)
    assert summary["validation"]["pairs"] == summary["data"]["eval"] > 0
    assert [s for s, _ in summary["validation"]["losses"]] == [2, 4]


@pytest.mark.timeout(300)
def test_sample_edits_of_fixed_clips_as_mp4_and_contact_strip(instrumented):
    from rigs.video import read_video
    summary, out = instrumented
    dirs = sorted((out / "samples").iterdir())
    assert [d.name for d in dirs] == ["step-000002", "step-000004"]
    names = [sorted(p.name for p in d.iterdir()) for d in dirs]
    assert names[0] == names[1] and len(names[0]) == 2                 # the same fixed clip at each point
    frames, _ = read_video(next(dirs[0].glob("*.mp4")))
    assert frames.shape == (9, 32, 32, 3)
    strip = np.asarray(Image.open(next(dirs[0].glob("*.png"))))
    assert strip.shape[0] > 3 * 96 and strip.shape[1] > 5 * 96           # source / edit / target rows, 5 frames
    assert summary["samples"]["note"] is None                           # eval clips, not training ones


@pytest.mark.timeout(300)
def test_resolved_config_and_throughput(instrumented, capsys):
    summary, out = instrumented
    saved = load_config(out / "config.toml")
    assert saved.train.lr_scheduler == "cosine" and saved.data.num_workers == 1 and saved.name == "full"
    rows = table(out / "loss.csv")
    assert all(r["step_s"] > 0 and r["samples_per_s"] > 0 for r in rows)
    assert summary["throughput"]["samples_per_s"] > 0 and summary["dataloader_workers"] == 1


@pytest.mark.timeout(300)
def test_resolved_config_is_printed(lab, capsys):
    root, catalog, _ = lab
    run(root, "printed", catalog, encoder="", every=0, steps=1)
    printed = capsys.readouterr().out
    assert "resolved config" in printed and "[validation]" in printed and 'lr_scheduler = "cosine"' in printed


@pytest.mark.timeout(300)
def test_text_encoder_embeddings_are_cached_saved_and_used(lab, instrumented):
    from train.editor import load_editor
    root, catalog, encoder = lab
    summary, out = instrumented
    assert summary["text_conditioning"].startswith("text encoder") and "0 from cache" in summary["text_conditioning"]
    assert list((root / "cache" / "rank0" / "prompts").glob("*.safetensors"))
    model = Path(summary["model_dir"])
    assert (model / "text_encoder" / "config.json").is_file() and (model / "tokenizer").is_dir()
    editor = load_editor(model, steps=1)
    assert editor.pipe.text_encoder is not None and editor.context("a bright clip").abs().sum() > 0
    assert json.loads((model / "cinectrl.json").read_text())["text_conditioning"].startswith("text encoder")

    # the same run without workers, from the cache: identical losses (workers change nothing but speed)
    again, again_out = run(root, "workers0", catalog, encoder=str(encoder), workers=0, every=0)
    assert "from cache" in again["text_conditioning"] and not again["text_conditioning"].endswith(" 0 from cache")
    assert FT.read_losses(again_out / "loss.csv") == FT.read_losses(out / "loss.csv")

    # zeros only when no encoder is configured, and the summary says so; the prompts did change the loss
    zeros, zeros_out = run(root, "zeros", catalog, encoder="", every=0)
    assert zeros["text_conditioning"].startswith("zeros: no [model] text_encoder")
    assert not (Path(zeros["model_dir"]) / "text_encoder").exists()
    assert FT.read_losses(zeros_out / "loss.csv") != FT.read_losses(out / "loss.csv")


@pytest.mark.timeout(300)
def test_dataloader_workers_load_pairs_in_other_processes(lab, tmp_path, monkeypatch):
    import os

    from train import data as D
    root, catalog, _ = lab
    seen = tmp_path / "pids"
    seen.mkdir()
    original = D.PairDataset.load

    def load(self, record):                    # forked workers inherit the patch: each leaves its pid
        (seen / str(os.getpid())).touch()
        return original(self, record)
    monkeypatch.setattr(D.PairDataset, "load", load)
    run(root, "pids", catalog, encoder="", workers=2, every=0, steps=2)
    assert {int(p.name) for p in seen.iterdir()} - {os.getpid()}
