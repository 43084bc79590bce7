"""The simulator-anchored bridge (`[model] anchor = "simulator"`, issue 21): the model starts from the effect
simulator's render of the asked controls and learns only what the simulator gets wrong, so an untrained model
returns the simulator's render, neutral controls return the source, and the editor renders the simulator at
the clip's own resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train import objective as O
from train import tiny
from train.editor import ClipEditor
from train.effects import simulate_batch
from train.metrics import psnr
from train.model import CineCtrlTransformer3DModel, controls_tensor
from train.pipeline import CineCtrlPipeline
from train import space as S

from .test_formulation import photo_clip, pipeline
from .conftest import config_error

pytestmark = pytest.mark.timeout(120)


def anchored_pipeline(anchor: str = "simulator", size=(48, 64)) -> CineCtrlPipeline:
    return pipeline("bridge", size=size, anchor=anchor)


def as_video(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).float().div(127.5).sub(1.0).permute(3, 0, 1, 2)[None]


def as_uint8(video: torch.Tensor) -> np.ndarray:
    return ((video[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def edit_at_model_size(pipe: CineCtrlPipeline, clip: np.ndarray, controls: dict) -> np.ndarray:
    out = pipe(video=clip, controls=controls, prompt_embeds=torch.zeros(1, 4, 32), num_inference_steps=4,
               generator=torch.Generator().manual_seed(0))[0]
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def test_untrained_simulator_anchored_model_returns_the_simulators_render():
    """S = 0.5 brightens the clip as the simulator does (>= 35 dB from its render, far from the source); with
    neutral controls the source comes back (>= 35 dB); a source-anchored model with the same weights does not
    brighten."""
    clip = photo_clip(9, 48, 64)
    pipe = anchored_pipeline()
    asked = {"S": 0.5, "T": -0.3}
    rendered = as_uint8(simulate_batch(as_video(clip), controls_tensor(asked), None))
    got = edit_at_model_size(pipe, clip, asked)
    assert got.mean() > clip.mean() + 10
    assert psnr(got, rendered) >= 35.0 and psnr(got, clip) < 25.0
    assert psnr(edit_at_model_size(pipe, clip, {}), clip) >= 35.0
    source_anchored = edit_at_model_size(anchored_pipeline("source"), clip, asked)
    assert psnr(source_anchored, clip) >= 35.0


def test_the_simulator_at_neutral_controls_is_the_source():
    """What the anchor rests on: every effect at its neutral value returns the clip (>= 50 dB; no skip here)."""
    from train.effects import simulate
    clip = photo_clip(5, 48, 64)
    frames = torch.from_numpy(clip).float().div(255).permute(0, 3, 1, 2)[None]
    out = simulate(frames, None, {})
    assert psnr((out[0].permute(0, 2, 3, 1).numpy() * 255), clip.astype(np.float32)) >= 50.0


def test_anchor_uses_the_clips_disparity_and_the_flat_rule_without_it():
    """Bokeh in the anchor follows the clip's own depth (near blurred, far sharp when focused far); a clip
    without depth is blurred uniformly by the flat mid-disparity rule the physical maps use."""
    from train.effects import FLAT_DISPARITY, clip_disparity, control_maps
    clip = photo_clip(5, 48, 64)
    video = as_video(clip)
    near_left = torch.linspace(1.0, 0.0, 64).view(1, 1, 1, 64).expand(1, 5, 48, 64)     # 1 = near
    ctrl = controls_tensor({"K": 1.0, "d_f": 0.0})
    with_depth = as_uint8(simulate_batch(video, ctrl, near_left))
    left, right = (slice(None), slice(None), slice(2, 14)), (slice(None), slice(None), slice(50, 62))
    assert psnr(with_depth[left], clip[left]) < psnr(with_depth[right], clip[right]) - 5
    flat = as_uint8(simulate_batch(video, ctrl, torch.full((1, 5, 48, 64), float("nan"))))
    assert psnr(flat, clip) < 30.0
    assert torch.equal(clip_disparity(None, 5, 48, 64), torch.full((5, 48, 64), FLAT_DISPARITY))
    blur = control_maps(ctrl, None, 5, 48, 64)[0, 0]
    assert torch.allclose(blur, torch.full_like(blur, blur[0, 0, 0])) and float(blur[0, 0, 0]) > 0


def test_training_loss_starts_from_the_simulator_anchor():
    """The loss's start point is the anchor: on a pair whose target IS the simulator's render the untrained
    (zero-output) anchored model's loss is 0 while the source-anchored one's is not; a few steps on a real
    correction (target = render + a shift) bring the loss down; identity pairs keep the source as the start."""
    clip = photo_clip(9, 48, 64)
    pipe = anchored_pipeline()
    model, space = pipe.transformer, pipe.vae
    asked = controls_tensor({"S": 0.4})
    source = as_video(clip)
    render = simulate_batch(source, asked, None)
    batch = {"source": source, "controls": asked, "trajectory": torch.zeros(1, 3, 12), "disparity": None}
    src, tgt = S.encode(space, source), S.encode(space, render)
    start = O.anchor_latents(model, space, batch, src)
    assert torch.allclose(start, tgt, atol=1e-5)
    text, sigmas = torch.zeros(1, 4, 32), torch.tensor([0.7])
    cond = O.conditioning(batch, model, tgt)
    noise = torch.randn_like(tgt)
    assert O.flow_matching_loss(model, tgt, src, text, sigmas, noise, cond, anchor=start).item() == 0.0
    assert O.flow_matching_loss(anchored_pipeline("source").transformer, tgt, src, text, sigmas, noise, cond,
                                anchor=O.anchor_latents(anchored_pipeline("source").transformer, space, batch, src)
                                ).item() > 1e-3
    with pytest.raises(ValueError, match="anchor_latents"):
        O.flow_matching_loss(model, tgt, src, text, sigmas, noise, cond)

    corrected = tgt + 0.2                                    # what the simulator gets wrong: a shift
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = O.flow_matching_loss(model, corrected, src, text, sigmas, noise, cond, anchor=start)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(0.04, rel=1e-3) and losses[-1] < 0.5 * losses[0]

    neutral = {**batch, "controls": controls_tensor({})}
    assert torch.equal(O.anchor_latents(model, space, neutral, src), src)


@pytest.mark.parametrize("asked,floor", [({"S": 0.5, "T": 0.4}, 35.0), ({"f": 0.5}, 35.0), ({}, 40.0)])
def test_editor_renders_the_simulator_at_the_clips_own_resolution(asked, floor):
    """A 640x480 edit by an untrained anchored model is the simulator's render of the full-resolution clip
    (>= 35 dB; neutral: the input, >= 40 dB) with its own detail, not an upsampled low-resolution difference."""
    clip = photo_clip()
    pipe = anchored_pipeline()
    edited = ClipEditor(pipe, steps=2).edit(clip, asked)
    want = as_uint8(simulate_batch(as_video(clip), controls_tensor(asked), None))
    assert edited.shape == clip.shape
    assert psnr(edited, want) >= floor
    if asked:     # the change carried as an upsampled low-resolution difference lands measurably further away
        from rigs.video import resize_frames
        from train.editor import transfer
        work = resize_frames(clip, 48, 64)
        lowres = transfer(clip, work, as_uint8(simulate_batch(as_video(work), controls_tensor(asked), None)))
        assert psnr(edited, want) >= psnr(lowres, want) + 3.0


def test_the_editor_measures_the_change_from_the_anchor_the_model_started_from():
    """Over windows and padding (13 frames of 640x400 into a 9-frame 48x64 model) with ISO noise, the change the
    editor carries over is exactly the model's correction: the model starts from the editor's own render, so an
    untrained model's edit is the full-resolution render (a pipeline rendering its own anchor per window draws
    other noise, and that difference would land on the clip: ~32 dB)."""
    clip = photo_clip(13, 400, 640)
    asked = {"ISO": 0.8}
    edited = ClipEditor(anchored_pipeline(), steps=2).edit(clip, asked)
    want = as_uint8(simulate_batch(as_video(clip), controls_tensor(asked), None))
    assert psnr(edited, want) >= 45.0 and psnr(edited, clip) < 40.0


@pytest.mark.parametrize("body,named", [
    ('[model]\nanchor = "simulator"\n', '[model] anchor = \'simulator\' needs formulation = "bridge"'),
    ('[model]\nformulation = "bridge"\nanchor = "render"\n', "[model] anchor = 'render'; use one of source, simulator"),
])
def test_anchor_key_is_checked(tmp_path, body, named):
    message = config_error(tmp_path, body)
    assert named in message
    assert "set formulation" in message or "use one of" in message


def test_a_saved_model_remembers_its_anchor(tmp_path):
    from train.pipeline import load_pipeline
    pipe = anchored_pipeline()
    pipe.save_pretrained(tmp_path / "m")
    loaded = load_pipeline(tmp_path / "m")
    assert loaded.transformer.config.anchor == "simulator"
    assert O.anchor_kind(loaded.transformer) == "simulator"


@pytest.mark.timeout(240)
def test_training_and_validation_start_from_the_anchor(tmp_path):
    """`cinectrl train run`'s loop on real exposure pairs (a gain the simulator models): the anchored bridge's
    first loss (an untrained model predicts no change, so it is the anchor's distance to the target) and its
    validation loss are well below the source-anchored bridge's on the same pairs, seed and steps; the saved
    model remembers its anchor."""
    from train import finetune as FT

    from .conftest import TINY_CONFIG, make_pair_catalog
    catalog = make_pair_catalog(tmp_path / "lab")
    results = {}
    for anchor in ("source", "simulator"):
        extra = (f'max_steps = 2\ncheckpoint_every = 100\n[model]\nformulation = "bridge"\nspace = "pixel"\n'
                 f'pixel_factor = 8\nanchor = "{anchor}"\n[validation]\nevery = 2\n')
        path = tmp_path / f"{anchor}.toml"
        path.write_text(TINY_CONFIG.replace("max_steps = 4\ncheckpoint_every = 2\n", "").format(
            name=anchor, out=tmp_path / anchor, catalog=catalog, extra=extra))
        summary = FT.train(FT.load_config(path))
        first = FT.read_losses(tmp_path / anchor / "loss.csv")[0][1]
        results[anchor] = (first, summary["validation"]["losses"][-1][-1])
        config = (tmp_path / anchor / "model" / "transformer" / "config.json").read_text()
        assert f'"anchor": "{anchor}"' in config
    assert results["simulator"][0] < 0.5 * results["source"][0]
    assert results["simulator"][1] < 0.5 * results["source"][1]


def test_the_transformer_refuses_an_anchor_without_the_bridge():
    with pytest.raises(ValueError, match='needs formulation = "bridge"'):
        CineCtrlTransformer3DModel(**tiny.transformer_config("tiny"), formulation="flow", anchor="simulator")
