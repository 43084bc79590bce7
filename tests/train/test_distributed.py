"""The scale-out configs users launch (`accelerate launch --config_file examples/train-*.yaml`), exercised with 2
CPU processes where the backend runs on gloo: DeepSpeed ZeRO-2 does (with exact resume); accelerate's FSDP plugin
does not, so on CPU the launch is refused with that reason instead of training unsharded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train import finetune as FT

from .conftest import TINY_CONFIG, make_pair_catalog

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = Path(sys.executable).with_name("accelerate")
EXTRA = "trackers = []\n[validation]\nevery = 2\nsample_every = 2\nsamples = 1\nsample_steps = 1\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(config_file: str, run_config: Path, *extra: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(ACCELERATE), "launch", "--config_file", str(REPO / "examples" / config_file), "--num_processes", "2",
           "--mixed_precision", "no", "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
           "-m", "train.finetune", str(run_config), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    if expect_ok:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def result_line(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    return make_pair_catalog(tmp_path_factory.mktemp("lab"))


def write_config(tmp_path: Path, name: str, catalog: Path) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY_CONFIG.format(name=name, out=tmp_path / name, catalog=catalog, extra=EXTRA))
    return path


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_deepspeed_zero2_on_two_cpu_processes_with_exact_resume(tmp_path, catalog):
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pytest.skip("deepspeed is not installed in this environment (pip install -e '.[test]' installs it)")
    full = launch("train-deepspeed.yaml", write_config(tmp_path, "ds", catalog))
    summary = result_line(full.stdout)
    assert summary["processes"] == 2 and summary["distributed_type"] == "DEEPSPEED" and summary["steps"] == 4
    cut = write_config(tmp_path, "dscut", catalog)
    launch("train-deepspeed.yaml", cut, "--max-steps", "2")
    resumed = launch("train-deepspeed.yaml", cut, "--resume")
    assert "resumed from checkpoint-2" in resumed.stdout
    assert FT.read_losses(tmp_path / "dscut" / "loss.csv") == FT.read_losses(tmp_path / "ds" / "loss.csv")
    assert len(FT.read_losses(tmp_path / "ds" / "loss.csv")) == 4
    assert (tmp_path / "ds" / "val_loss.csv").read_text().count("\n") == 3       # header + steps 2, 4
    assert (tmp_path / "ds" / "model" / "model_index.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fsdp_config_on_two_processes(tmp_path, catalog):
    if torch.cuda.device_count() < 2:
        import accelerate
        pytest.skip(f"accelerate {accelerate.__version__} turns its FSDP plugin on only for GPU-class distributed "
                    "types (MULTI_GPU/XPU/NPU/HPU/MLU/SDAA/MUSA/NEURON), never MULTI_CPU, although torch's FSDP2 "
                    f"runs on gloo; this machine has {torch.cuda.device_count()} CUDA device(s), 2 needed "
                    "(test_fsdp_launch_on_cpu_is_refused_not_run_unsharded checks what happens instead)")
    done = launch("train-fsdp.yaml", write_config(tmp_path, "fsdp", catalog))
    summary = result_line(done.stdout)
    assert summary["processes"] == 2 and summary["distributed_type"] == "FSDP" and summary["steps"] == 4


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fsdp_launch_on_cpu_is_refused_not_run_unsharded(tmp_path, catalog):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the FSDP launch runs for real in test_fsdp_config_on_two_processes")
    done = launch("train-fsdp.yaml", write_config(tmp_path, "fsdpcpu", catalog), expect_ok=False)
    assert done.returncode != 0
    assert "error: the launch asked for FSDP but accelerate" in done.stderr, done.stderr[-3000:]
    assert "unsharded" in done.stderr and "train-deepspeed.yaml" in done.stderr
    assert not (tmp_path / "fsdpcpu" / "model").exists()
