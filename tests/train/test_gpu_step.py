"""benchmarks/gpu_step.py at tiny size on the CPU: one real training step of the CineCtrl transformer (bf16
autocast, gradient checkpointing), its time and peak memory written as a result file (issue 21 item 5)."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_step


@pytest.mark.timeout(300)
def test_gpu_step_script_runs_the_tiny_configuration(tmp_path):
    assert gpu_step.main(["--tiny", "--steps", "2", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_step.json").read_text())
    figures = record["figures"]
    assert figures["configuration"].startswith("tiny") and figures["device"] == "cpu"
    assert figures["precision"] == "bf16" and figures["gradient_checkpointing"] is True
    assert figures["steps_run"] == 2 and len(figures["losses"]) == 2
    assert all(loss == loss and loss > 0 for loss in figures["losses"])      # finite, a real loss
    assert figures["seconds_per_step"] > 0 and figures["peak_rss_gib"] > 0
    assert figures["latents_per_half"] == [16, 3, 4, 4] and figures["trainable_parameters"] > 0
    assert figures["losses"][0] != figures["losses"][1]                    # the step changed the weights


def test_gpu_step_full_size_says_it_was_not_run_without_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_step.torch.cuda, "is_available", lambda: False)
    assert gpu_step.main(["--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "gpu_step.json").read_text())["figures"]
    assert figures["status"].startswith("not run on a GPU yet") and figures["clip"]["frames"] == 81


def test_latent_shape_of_the_13b_clip():
    assert gpu_step.latent_shape(81, 480, 832) == (16, 21, 60, 104)
