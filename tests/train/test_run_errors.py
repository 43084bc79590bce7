"""Honest launches: one exit code per kind of error, the same from `cinectrl train run` and `python -m
train.finetune`; model weights are checked before data (and no run folder is written for a run that never
started); `accelerate launch --num_processes N` without GPUs (which starts one process) is refused with the
launch lines that work; after `--resume` TensorBoard shows every step once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cinectrl.main import app
from train import finetune as FT
from train.config import EXIT_CODES

from .conftest import TINY_CONFIG, make_pair_catalog

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _module(config: Path, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), "-m", "train.finetune", str(config)]
    return subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)


def _wan_example(tmp_path: Path) -> Path:
    """The GPU example, copied so its relative paths (weights, catalog, sources, output) point into tmp_path."""
    (tmp_path / "examples").mkdir()
    return Path(shutil.copy(REPO / "examples" / "train-wan-1.3b.toml", tmp_path / "examples"))


@pytest.mark.timeout(240)
def test_each_kind_of_error_has_one_exit_code_from_both_entry_points(tmp_path):
    configs = {"config": tmp_path / "config.toml", "weights": _wan_example(tmp_path), "data": tmp_path / "data.toml"}
    configs["config"].write_text('name = "x"\noutput_dir = "o"\n[train]\ntrainable = "nope"\n')
    configs["data"].write_text('name = "x"\noutput_dir = "o"\n[data]\nsynthetic_sources = ["none/*.mp4"]\n'
                               'synthetic_count = 2\n')
    codes = {kind: EXIT_CODES[kind] for kind in configs}
    assert len(set(codes.values()) | {0, 1}) == len(codes) + 2          # distinct, and none is 0 or typer's 1
    for kind, config in configs.items():
        cli = CliRunner().invoke(app, ["train", "run", str(config)])
        module = _module(config)
        assert cli.exit_code == module.returncode == codes[kind], (kind, cli.output, module.stderr[-2000:])
        assert "Traceback" not in cli.output + module.stderr


@pytest.mark.timeout(120)
def test_missing_weights_are_reported_before_the_data_and_no_run_folder_is_written(tmp_path):
    config = _wan_example(tmp_path)
    result = CliRunner().invoke(app, ["train", "run", str(config)])
    assert result.exit_code == EXIT_CODES["weights"]
    assert f"[model] pretrained = {tmp_path / 'models' / 'Wan2.1-T2V-1.3B-Diffusers'}" in result.output
    assert "catalog" not in result.output and "synthetic" not in result.output      # the data errors come later
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(120)
def test_accelerate_launch_that_would_start_one_process_is_refused(tmp_path):
    config = tmp_path / "data.toml"
    config.write_text('name = "x"\noutput_dir = "o"\n')
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    done = _module(config, [accelerate, "launch", "--num_processes", "2", "--num_machines", "1",
                            "--mixed_precision", "no", "--dynamo_backend", "no"])
    # accelerate's launcher exits 1 whatever its child did, and says the child's status
    assert done.returncode != 0 and f"exit status {EXIT_CODES['launch']}" in done.stderr, done.stderr[-2000:]
    assert "asked for 2 processes" in done.stderr
    assert "torchrun --nproc_per_node 2 -m train.finetune CONFIG" in done.stderr
    assert "accelerate launch --multi_gpu --num_processes 2" in done.stderr


def test_one_process_launches_pass_the_launch_check():
    """MASTER_ADDR exported by a job script is not mistaken for a multi-process request."""
    env = {"ACCELERATE_USE_CPU": "False", "MASTER_ADDR": "node0"}
    FT.check_launch(env, ["accelerate", "launch", "--num_processes", "1", "-m", "train.finetune", "c.toml"])
    FT.check_launch(env, ["accelerate", "launch", "-m", "train.finetune", "c.toml"])
    FT.check_launch({**env, "WORLD_SIZE": "2"}, ["accelerate", "launch", "--num_processes=2"])
    with pytest.raises(FT.LaunchError, match="asked for 4 processes"):
        FT.check_launch(env, ["accelerate", "launch", "--num_processes=4", "-m", "train.finetune"])


@pytest.mark.timeout(240)
def test_tensorboard_shows_each_step_once_after_a_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    catalog = make_pair_catalog(tmp_path / "lab")
    config = tmp_path / "tb.toml"
    config.write_text(TINY_CONFIG.format(name="tb", out=tmp_path / "run", catalog=catalog,
                                         extra='trackers = ["tensorboard"]'))
    FT.train(FT.load_config(config))                      # steps 1-4 logged, checkpoints at 2 and 4
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "checkpoint-4")   # killed after logging 3 and 4
    FT.train(FT.load_config(config), resume=True)         # replays 3 and 4
    acc = EventAccumulator(str(tmp_path / "run" / "logs" / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
