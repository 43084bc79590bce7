"""One geometry: training data, evaluation and the editor (`train edit`, `serve`) fit a clip to the model the same
way (`rigs.video.fit_frames`: aspect kept, edge-padded, never stretched or cropped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rigs.video import fit_box, fit_frames, read_video, write_video
from train import data as D
from train import evaluate as E
from train.editor import ClipEditor, load_editor

from .conftest import textured_clip


def test_fit_keeps_the_aspect_and_the_whole_picture():
    fit = fit_box(480, 640, (32, 32))
    assert (fit.box_h, fit.box_w, fit.top, fit.left) == (24, 32, 4, 0)        # 4:3 stays 4:3, centred
    clip = textured_clip(frames=2, size=64)[:, :48]                           # 48 x 64 (4:3)
    fitted, fit = fit_frames(clip, (32, 32))
    assert fitted.shape == (2, 32, 32, 3)
    assert np.array_equal(fitted[:, 0], fitted[:, fit.top])                   # edge-padded, not black
    assert np.array_equal(fit.content(fitted), D.fit_clip(clip, (32, 32))[:, 4:28])
    assert fit_box(32, 32, (32, 32)).padded is False


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from train.config import RunConfig
    from train.finetune import build_models
    from train.runfiles import save_model_dir
    root = tmp_path_factory.mktemp("geometry")
    cfg = RunConfig(name="geometry", output_dir=str(root))
    cfg.data.num_frames = 5
    transformer, vae = build_models(cfg)
    return save_model_dir(transformer, vae, cfg, root / "model")


class Recorder:
    """The real pipeline, remembering the frames the editor hands it (what the model sees)."""

    def __init__(self, pipe) -> None:
        self.pipe, self.seen = pipe, []

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, **kwargs):
        self.seen.append(np.asarray(kwargs["video"]).copy())
        return self.pipe(**kwargs)


@pytest.mark.timeout(180)
def test_training_evaluation_and_inference_fit_a_clip_the_same_way(model_dir, tmp_path):
    """A 4:3 clip (as a 640x480 one, smaller) through the training dataset, through the editor `train edit` and
    `serve` use, and through evaluation's measurement: the model sees the same frames in all three."""
    clip = textured_clip(frames=5, size=96)[:, 12:84]                          # 72 x 96 (4:3)
    path = write_video(tmp_path / "clip.mp4", clip, 8)
    decoded, _ = read_video(path)
    size = (32, 32)
    dataset = D.PairDataset([D.PairRecord(path, path, dict(D.NEUTRAL), "s")], num_frames=5, size=size)
    trained_on = ((dataset[0]["source"].permute(1, 2, 3, 0).numpy() + 1.0) * 127.5).round().astype(np.uint8)

    editor = load_editor(model_dir, steps=1)
    assert tuple(editor.model_size) == size
    recorder = Recorder(editor.pipe)
    editor.pipe = recorder
    plan = editor.plan(*decoded.shape[:3])
    out = editor.edit(decoded, dict(D.NEUTRAL), plan=plan)
    assert out.shape == decoded.shape
    assert (plan.work_height, plan.work_width) == size and plan.content == [4, 0, 24, 32]
    seen = recorder.seen[0]
    assert seen.shape == trained_on.shape
    assert np.abs(seen.astype(int) - trained_on.astype(int)).max() <= 1       # [-1, 1] round trip

    sweep = E.Sweep("S", decoded, [E.Member(0.0, dict(D.NEUTRAL), decoded)])
    measured = sweep.fitted(size).source
    assert measured.shape == (5, 24, 32, 3)
    assert np.abs(measured.astype(int) - seen[:, 4:28].astype(int)).max() <= 1
