"""EMA all the way: with `[train] ema = true` every checkpoint holds the weights the final model will hold (EMA;
the raw ones beside them for `--resume`), the validation loss and sample edits use them, and every checkpoint
is a model directory `train edit`, `train eval` and `serve` load like `model/`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from PIL import Image
from typer.testing import CliRunner

from cinectrl.main import app
from train import finetune as FT
from train import validation as V
from train.config import load_config
from train.editor import load_editor
from train.model import CineCtrlTransformer3DModel
from rigs.video import read_video, write_video

from .conftest import TINY_CONFIG, make_pair_catalog, textured_clip

EXTRA = """lr = 0.02
trainable = "all"
ema = true
ema_decay = 0.9
[validation]
every = 2
sample_every = 2
samples = 1
sample_steps = 2
"""


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema")
    catalog = make_pair_catalog(root / "lab")
    config = root / "ema.toml"
    config.write_text(TINY_CONFIG.format(name="ema", out=root / "run", catalog=catalog, extra=EXTRA))
    summary = FT.train(load_config(config))
    return root, config, summary


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return CineCtrlTransformer3DModel.from_pretrained(path).state_dict()


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.timeout(300)
def test_checkpoints_hold_the_ema_weights_and_the_raw_ones_for_resuming(ema_run):
    root, _, summary = ema_run
    ckpt = root / "run" / "checkpoints" / "checkpoint-4"
    final = _weights(root / "run" / "model" / "transformer")
    held = _weights(ckpt / "transformer")
    assert _max_diff(held, final) == 0.0                     # the checkpoint holds what model/ holds at that step
    raw = load_file(ckpt / "model.safetensors")               # accelerate's state: the raw weights, for --resume
    assert set(raw) == set(held)
    assert _max_diff(held, raw) > 1e-4                        # EMA differs from the raw weights
    assert summary["ema"] is True


@pytest.mark.timeout(300)
def test_validation_loss_is_the_ema_models(ema_run):
    root, config, _ = ema_run
    cfg = load_config(config)
    cfg.output_dir = str(root / "recheck")
    run = FT.prepare(cfg)
    model = run.accelerator.unwrap_model(run.transformer)
    ckpt = root / "run" / "checkpoints" / "checkpoint-2"

    def loss_with(state: dict[str, torch.Tensor]) -> float:
        model.load_state_dict(state)
        return V.validation_loss(run.accelerator, run.transformer, run.vae, run.eval_set, run.text_for,
                                 shift=cfg.train.timestep_shift, seed=cfg.seed, cache=None, sampling=run.sampling)

    logged = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader((root / "run" / "val_loss.csv").open())}
    with_ema, with_raw = loss_with(_weights(ckpt / "transformer")), loss_with(load_file(ckpt / "model.safetensors"))
    assert abs(with_ema - with_raw) > 1e-4 * with_raw         # the two weight sets are told apart
    assert logged[2] == pytest.approx(with_ema, rel=1e-5, abs=1e-7)


@pytest.mark.timeout(300)
def test_sample_edits_are_the_ema_models(ema_run):
    """The contact strip (lossless PNG; the MP4 encoder is not bit-reproducible) of the step-2 sample is the edit
    of the EMA weights checkpoint-2 holds, not of the raw weights."""
    root, config, _ = ema_run
    ckpt = root / "run" / "checkpoints" / "checkpoint-2"
    strip = np.asarray(Image.open(next((root / "run" / "samples" / "step-000002").glob("*.png"))))
    cfg = load_config(config)
    sample = V.fixed_samples(FT.build_records(cfg)[1], 1, dict(num_frames=9, size=(32, 32),
                                                                simulate=FT.default_simulator()))[0]
    editor = load_editor(ckpt, steps=2, seed=0)

    def strip_of_edit() -> np.ndarray:
        edited = editor.edit(sample.source, sample.controls, prompt=sample.prompt)
        return V.contact_strip([("source", sample.source), ("edit", edited), ("target", sample.target)])

    np.testing.assert_array_equal(strip_of_edit(), strip)
    editor.pipe.transformer.load_state_dict(load_file(ckpt / "model.safetensors"))
    assert (strip_of_edit() != strip).any()                  # the raw weights' edit is told apart


@pytest.mark.timeout(300)
def test_every_checkpoint_loads_in_edit_eval_and_serve(ema_run, tmp_path):
    root, _, _ = ema_run
    ckpt = root / "run" / "checkpoints" / "checkpoint-2"
    clip = write_video(tmp_path / "clip.mp4", textured_clip(frames=9, size=40), 8)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "edit", str(clip), "--model", str(ckpt), "--out", str(tmp_path / "e.mp4"),
                                 "--steps", "1", "--exposure", "0.3"])
    assert result.exit_code == 0, result.output
    assert read_video(tmp_path / "e.mp4")[0].shape == (9, 40, 40, 3)
    result = runner.invoke(app, ["train", "eval", "--model", str(ckpt), "--catalog", str(root / "lab" / "catalog.db"),
                                 "--out", str(tmp_path / "report"), "--steps", "1", "--max-frames", "9"])
    assert result.exit_code == 0, result.output
    from train.pipeline import check_model_dir
    assert check_model_dir(ckpt) == ckpt                    # what `cinectrl serve` checks before its workers load
