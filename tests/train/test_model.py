"""CineCtrl transformer at a tiny size on CPU: real diffusers Wan classes, no mocks."""

from __future__ import annotations

import os

import pytest
import torch
from diffusers import WanTransformer3DModel

from train import tiny
from train.model import CONTROL_NAMES, CineCtrlTransformer3DModel, identity_trajectory, meta_parameter_counts

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = tiny.transformer_config()


def inputs(seed=0, frames=3, h=8, w=8):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 16, 2 * frames, h, w, generator=g)
    text = torch.randn(2, 7, 32, generator=g)
    controls = torch.rand(2, len(CONTROL_NAMES), generator=g)
    traj = identity_trajectory(2, frames) + 0.1 * torch.randn(2, frames, 12, generator=g)
    return dict(hidden_states=hidden, timestep=torch.tensor([500.0, 100.0]), encoder_hidden_states=text,
                controls=controls, trajectory=traj)


def run(model, x, **kw):
    with torch.no_grad():
        return model(**x, return_dict=False, **kw)[0]


@pytest.fixture
def pair():
    torch.manual_seed(0)
    base = WanTransformer3DModel(**TINY).eval()
    return base, CineCtrlTransformer3DModel.from_wan(base).eval()


@pytest.mark.parametrize("strengths", [(1.0, 1.0), (0.0, 3.5), (-2.0, 7.0)])
def test_equals_base_at_init_bit_for_bit(pair, strengths):
    base, model = pair
    x = inputs()
    ref = run(base, {k: v for k, v in x.items() if k not in ("controls", "trajectory")})
    out = run(model, x, camera_strength=strengths[0], photo_strength=strengths[1])
    assert torch.equal(ref, out)


def test_sizes_derived_from_input(pair):
    _, model = pair
    for frames, h, w in [(1, 4, 6), (5, 8, 12)]:
        out = run(model, inputs(frames=frames, h=h, w=w))
        assert out.shape == (2, 16, 2 * frames, h, w)


def train_step(model, mode):
    names = model.set_trainable(mode)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(2):   # second step: the zero-init output projections have moved, so K/V get gradients too
        opt.zero_grad()
        out = model(**inputs(), return_dict=False)[0]
        out.pow(2).mean().backward()
        opt.step()
    return names


def test_gradients_reach_only_new_modules(pair):
    _, model = pair
    names = train_step(model, "new")
    assert names and all(model.is_new_parameter(n) for n in names)
    for name, p in model.named_parameters():
        if model.is_new_parameter(name):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_a_bridge_model_learns_with_the_new_set():
    """The bridge formulation zeroes the output projection; left frozen (outside "new") it blocks every gradient,
    so the README config (`trainable = "new"`) trained nothing and camera paths could never act."""
    torch.manual_seed(0)
    model = CineCtrlTransformer3DModel(**TINY, formulation="bridge")
    names = model.set_trainable("new")
    assert any(n.startswith("proj_out.") for n in names)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, want = inputs(), torch.randn(2, 16, 6, 8, 8, generator=torch.Generator().manual_seed(1))
    for _ in range(3):          # the zero-init chain: proj_out, then the branches' to_out, then their K/V
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(**x, return_dict=False)[0], want).backward()
        opt.step()
    for name, p in model.named_parameters():
        if name in names:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert run(model.eval(), x).abs().max() > 0         # it left the identity


def test_self_attention_mode_and_lora(pair):
    _, model = pair
    names = model.set_trainable("new+self_attn")
    assert any(".attn1." in n for n in names) and not any(".ffn." in n for n in names)
    lora = CineCtrlTransformer3DModel.from_config(model.config)
    names = train_step(lora, "lora")
    assert any("lora_" in n for n in names)
    assert all("lora_" in n or lora.is_new_parameter(n) for n in names)
    with pytest.raises(ValueError, match="trainable mode"):
        model.set_trainable("everything")


def test_trained_branches_change_output_and_strength_zero_restores_base(pair):
    base, model = pair
    train_step(model, "new")
    x = inputs()
    ref = run(base, {k: v for k, v in x.items() if k not in ("controls", "trajectory")})
    assert not torch.equal(run(model, x), ref)
    assert torch.equal(run(model, x, camera_strength=0.0, photo_strength=0.0), ref)
    other = dict(x, controls=x["controls"].flip(0))
    assert not torch.equal(run(model, x), run(model, other))


def test_save_load_round_trip_exact(pair, tmp_path):
    _, model = pair
    train_step(model, "new")
    model.save_pretrained(tmp_path / "m")
    loaded = CineCtrlTransformer3DModel.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(run(model.eval(), inputs()), run(loaded, inputs()))


def test_from_wan_directory(pair, tmp_path):
    base, _ = pair
    base.save_pretrained(tmp_path / "wan")
    model = CineCtrlTransformer3DModel.from_wan(tmp_path / "wan", num_control_tokens=2)
    x = inputs()
    assert torch.equal(run(base, {k: v for k, v in x.items() if k not in ("controls", "trajectory")}), run(model, x))
    with pytest.raises(FileNotFoundError, match="config.json"):
        CineCtrlTransformer3DModel.from_wan(tmp_path / "nothing")


def test_wan21_1p3b_on_meta_device():
    counts = meta_parameter_counts("1.3B")
    print("Wan2.1-1.3B + CineCtrl:", counts)
    with torch.device("meta"):
        stock = WanTransformer3DModel(**__import__("train.model").model.wan21_config("1.3B"))
    assert counts["base"] == sum(p.numel() for p in stock.parameters())
    assert 1.3e9 < counts["base"] < 1.5e9 and counts["new"] > 0


def test_checkpoint_records_its_control_list_and_another_list_is_refused(pair, tmp_path):
    from rigs.controls import ControlError
    from train.model import check_controls
    _, model = pair
    model.save_pretrained(tmp_path / "m")
    config = __import__("json").loads((tmp_path / "m" / "config.json").read_text())
    assert config["control_names"] == list(CONTROL_NAMES)
    check_controls(CineCtrlTransformer3DModel.from_pretrained(tmp_path / "m"))
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    older = CineCtrlTransformer3DModel.from_config({**config, "num_controls": 5,
                                                    "control_names": ["K", "d_f", "f", "S", "T"]})
    older.save_pretrained(tmp_path / "old")
    with pytest.raises(ControlError, match=r"trained with controls \(K, d_f, f, S, T\) but this cinectrl has"):
        check_controls(CineCtrlTransformer3DModel.from_pretrained(tmp_path / "old"), what="old model")
    with pytest.raises(ValueError, match="takes exactly 6"):
        run(model, dict(inputs(), controls=torch.rand(2, 5)))
