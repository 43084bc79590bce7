"""The one inference path: the loader for a model directory and ClipEditor (windows over time, resize to the
model's size and back, camera path, refusals before any work), on real tiny diffusers models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rigs.controls import ControlError
from train.camera_path import parse
from train.editor import Cancelled, ClipEditor, EditRefused, load_editor, windows, work_size
from train.pipeline import CineCtrlPipeline, ModelDirError, load_pipeline

from .conftest import textured_clip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny model directory as `train run` writes it, with the control branches switched on (random, non-zero
    output projections) so controls and camera paths change the output."""
    from train.config import RunConfig
    from train.finetune import build_models
    from train.runfiles import save_model_dir
    root = tmp_path_factory.mktemp("editor")
    cfg = RunConfig(name="editor", output_dir=str(root))
    transformer, vae = build_models(cfg)
    torch.manual_seed(1)
    for block in transformer.blocks:
        for branch in (block.attn2.processor.camera, block.attn2.processor.photo):
            torch.nn.init.normal_(branch.to_out.weight, std=0.3)
    return save_model_dir(transformer, vae, cfg, root / "run" / "model")


def test_windows_cover_every_frame_with_the_models_length():
    for frames, window, overlap in [(25, 9, 2), (9, 9, 2), (10, 9, 4), (100, 17, 4), (5, 9, 2)]:
        spans = windows(frames, window, overlap)
        covered = set().union(*(range(s, e) for s, e in spans))
        assert covered == set(range(frames)), (frames, spans)
        if frames > window:
            assert all(e - s == window for s, e in spans) and spans[-1][1] == frames
            assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))          # neighbours overlap


def test_work_size_is_the_models_own():
    """Edits are made at the model's trained size (the clip fitted into it, tests/train/test_geometry.py)."""
    assert work_size(64, 96, (32, 32)) == (32, 32)
    assert work_size(1080, 1920, (480, 832)) == (480, 832)
    assert work_size(33, 17, None) == (32, 16)


@pytest.mark.timeout(180)
def test_any_length_and_size_comes_back_whole(model_dir):
    editor = load_editor(model_dir, steps=2)
    for frames, height, width in [(25, 64, 96), (5, 40, 40), (9, 32, 32), (3, 17, 33), (14, 96, 48)]:
        clip = textured_clip(frames=frames, size=max(height, width) + 1)[:, :height, :width]
        plan = editor.plan(frames, height, width)
        out = editor.edit(clip, {"S": 0.3})
        assert out.shape == clip.shape and out.dtype == np.uint8, (clip.shape, plan.describe())
        assert plan.describe().startswith(f"{frames} frames at {width}x{height} edited whole")
    long = editor.plan(25, 64, 96)
    assert len(long.windows) == 4 and long.overlap == 2 and "windows of 9 frames" in long.describe()
    assert editor.plan(3, 17, 33).padded_to == 5


@pytest.mark.timeout(180)
def test_at_the_models_size_the_editor_is_the_pipeline_call(model_dir):
    """One sampling implementation: ClipEditor at the model's own shape is exactly CineCtrlPipeline.__call__."""
    editor = load_editor(model_dir, steps=3, seed=5)
    clip = textured_clip(frames=9, size=32)
    ours = editor.edit(clip, {"K": 0.4, "T": -0.2})
    pipe = load_pipeline(model_dir)
    direct = pipe(video=clip, controls={"K": 0.4, "T": -0.2}, prompt_embeds=torch.zeros(1, 16, 32),
                  num_inference_steps=3, generator=torch.Generator().manual_seed(5))[0]
    np.testing.assert_array_equal(ours, np.clip(np.rint(direct * 255), 0, 255).astype(np.uint8))


@pytest.mark.timeout(180)
def test_camera_path_and_controls_reach_the_model(model_dir):
    editor = load_editor(model_dir, steps=2)
    clip = textured_clip(frames=9, size=32)
    base = editor.edit(clip, {})
    moved = editor.edit(clip, {}, camera_path=parse({"slider_mm": [0, 80]}))
    posed = editor.edit(clip, {}, camera_path=parse({"poses": [[1, 0, 0, 0.08, 0, 1, 0, 0, 0, 0, 1, 0]]}))
    still = editor.edit(clip, {}, camera_path=parse({"slider_mm": [0]}))
    assert not np.array_equal(base, moved) and not np.array_equal(base, posed)
    np.testing.assert_array_equal(base, still)            # a zero offset is the identity path
    assert not np.array_equal(base, editor.edit(clip, {"ISO": 0.8}))


@pytest.mark.timeout(180)
def test_refused_before_any_work_with_the_reason(model_dir):
    editor = load_editor(model_dir, steps=2, max_frames=30)
    calls = []
    editor.pipe.transformer.register_forward_hook(lambda *a: calls.append(1))
    for shape, reason in [((0, 32, 32), "no frames"), ((9, 8, 64), "at least 16 px"),
                          ((9, 16, 200), "aspect ratio"), ((31, 32, 32), "at most 30")]:
        with pytest.raises(EditRefused, match=reason):
            editor.plan(*shape)
    with pytest.raises(EditRefused, match="at least 16 px"):
        editor.edit(np.zeros((9, 8, 64, 3), np.uint8), {})
    assert not calls


@pytest.mark.timeout(180)
def test_progress_and_cancel(model_dir):
    editor = load_editor(model_dir, steps=3)
    clip = textured_clip(frames=25, size=32)
    seen = []
    editor.edit(clip, {}, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4 * 3 + 1
    with pytest.raises(Cancelled):
        editor.edit(clip, {}, cancelled=lambda: True)


def test_the_loader_takes_run_directories_and_refuses_what_it_cannot_use(model_dir, tmp_path):
    run = model_dir.parent
    assert load_pipeline(run).root == model_dir                           # the run directory is accepted
    with pytest.raises(ModelDirError, match="not a cinectrl model directory"):
        load_pipeline(tmp_path)
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    config = json.loads((other / "transformer" / "config.json").read_text())
    config["control_names"] = ["K", "d_f", "f", "S", "T", "WB"]
    (other / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ControlError, match="trained with controls"):
        load_pipeline(other)
    config["_class_name"] = "WanTransformer3DModel"
    (other / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError, match="not a CineCtrl transformer"):
        load_pipeline(other)


def test_a_save_pretrained_pipeline_is_loaded_the_same_way(model_dir, tmp_path):
    pipe = load_pipeline(model_dir)
    pipe.save_pretrained(tmp_path / "copy")
    again = CineCtrlPipeline.from_pretrained(tmp_path / "copy")
    assert again.card.num_frames == 9 and again.card.size == [32, 32]
    editor = ClipEditor(again, steps=1)
    assert editor.plan(25, 64, 96).windows == load_editor(model_dir, steps=1).plan(25, 64, 96).windows


def test_camera_paths_reach_the_model_in_the_unit_its_card_records(model_dir, tmp_path):
    """`train run` records the translation unit model_trajectory used (50 mm); edits read a requested path in the
    card's unit, so a model trained with another unit is not misread in this code's; a bad unit is refused."""
    from train.camera_path import TRANSLATION_SCALE_M
    card = json.loads((model_dir / "cinectrl.json").read_text())
    assert card["translation_unit_m"] == TRANSLATION_SCALE_M == 0.05
    other = tmp_path / "metres"
    shutil.copytree(model_dir, other)
    (other / "cinectrl.json").write_text(json.dumps({**card, "translation_unit_m": 1.0}))
    seen = {}
    for name, root in (("card", model_dir), ("metres", other)):
        editor = load_editor(root, steps=1)
        hook = editor.pipe.transformer.camera_encoder.register_forward_pre_hook(
            lambda module, args, name=name: seen.setdefault(name, args[0].clone()))
        editor.edit(textured_clip(frames=9, size=32), {}, camera_path=parse({"slider_mm": [40]}))
        hook.remove()
    assert float(seen["card"][0, 0, 3]) == pytest.approx(0.8)       # 40 mm in units of 50 mm
    assert float(seen["metres"][0, 0, 3]) == pytest.approx(0.04)    # 40 mm in metres, as that model was trained
    (other / "cinectrl.json").write_text(json.dumps({**card, "translation_unit_m": 0}))
    with pytest.raises(ModelDirError, match="translation_unit_m = 0"):
        load_pipeline(other)


def test_fine_tuning_a_model_trained_in_another_translation_unit_is_refused(model_dir, tmp_path):
    from train.config import ConfigError, ModelConfig, RunConfig
    from train.finetune import build_models
    other = tmp_path / "metres"
    shutil.copytree(model_dir, other)
    card = json.loads((other / "cinectrl.json").read_text())
    cfg = RunConfig(name="again", output_dir=str(tmp_path / "out"), model=ModelConfig(pretrained=str(other)))
    build_models(cfg)                                   # its own unit: accepted
    (other / "cinectrl.json").write_text(json.dumps({**card, "translation_unit_m": 1.0}))
    with pytest.raises(ConfigError, match="trained in units of 1.0 m"):
        build_models(cfg)
