"""Evaluation metrics on exact edits: a perfect editor scores r=1, identity is undefined/0, report files exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train import evaluate as E
from train import metrics as M

from .conftest import simple_edit, textured_clip

VALUES = {"exposure": [-0.6, -0.2, 0.2, 0.6], "colour_temperature": [-0.6, -0.2, 0.2, 0.6],
          "bokeh": [0.0, 0.3, 0.6, 0.9], "zoom": [0.0, 0.2, 0.4, 0.6]}


def identity(frames, controls):
    return frames


def test_statistics_move_the_right_way(clip):
    assert M.brightness(simple_edit(clip, {"S": 0.5})[0]) > M.brightness(clip[0])
    warm, cool = simple_edit(clip, {"T": -0.5})[0], simple_edit(clip, {"T": 0.5})[0]
    assert M.colour_balance(cool) > M.colour_balance(warm)
    assert M.sharpness(simple_edit(clip, {"K": 0.8})[0]) < M.sharpness(clip[0])
    assert M.affine_scale(clip[0], simple_edit(clip, {"f": 0.5})[0]) == pytest.approx(1.5, rel=0.08)
    assert M.psnr(clip[0], clip[0]) == 100.0 and M.ssim(clip[0], clip[0]) == pytest.approx(1.0)
    assert M.ssim(clip[0], simple_edit(clip, {"K": 0.8})[0]) < 0.95


def test_pearson_undefined_for_constant_sequences():
    assert M.pearson([1, 2, 3], [5, 5, 5]) is None
    assert M.first_differences_corr([0, 1, 3, 6], [0, 2, 6, 12]) == pytest.approx(1.0)
    assert M.first_differences_corr([0, 1, 3, 6], [0, -1, -3, -6]) == pytest.approx(-1.0)


def test_evaluate_ranks_perfect_editor_above_baselines(tmp_path):
    sweeps = E.simulated_sweeps([("a", textured_clip(1)), ("b", textured_clip(2))], simple_edit, VALUES)
    noisy = lambda f, c: simple_edit(f, {"S": c["S"] * 0.5, "T": -c["T"]})  # noqa: E731 - half exposure, wrong T
    result = E.evaluate(sweeps, {"perfect": simple_edit, "identity": identity, "wrong": noisy})
    perfect, ident, wrong = (result["methods"][m]["effects"] for m in ("perfect", "identity", "wrong"))
    for effect in VALUES:
        assert perfect[effect]["corrcoef"] == pytest.approx(1.0, abs=0.02), effect
        assert ident[effect]["corrcoef"] is None and ident[effect]["corrcoef_scored"] == 0.0
    assert perfect["exposure"]["abs_error"] == pytest.approx(0.0, abs=1e-6)
    assert wrong["exposure"]["corrcoef"] == pytest.approx(1.0, abs=0.02)      # right direction ...
    assert wrong["exposure"]["abs_error"] > 5                                  # ... wrong amount: only abs error sees it
    assert wrong["colour_temperature"]["corrcoef"] < 0                        # sign flipped
    matrix = result["methods"]["perfect"]["disentanglement"]
    assert matrix["S"]["brightness"] > 0.95 and matrix["S"]["zoom_scale"] < 0.5
    assert matrix["f"]["zoom_scale"] > 0.9
    assert ident["exposure"]["psnr_source"] == 100.0
    paths = E.write_report(result, tmp_path / "report")
    data = json.loads(paths["metrics"].read_text())
    assert set(data["methods"]) == {"perfect", "identity", "wrong"}
    assert "LPIPS" in " ".join(data["notes"])
    md = paths["markdown"].read_text()
    assert "| perfect | exposure | 1.000" in md and "sweep_zoom.png" in md
    assert all(p.stat().st_size > 1000 for p in paths["plots"])
    assert "<table" in paths["html"].read_text()
