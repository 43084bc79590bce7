"""Fine-tuning on a real tiny catalog: losses, checkpoints, exact resume, catalog run row, 2-process gloo run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from train import finetune as FT

from .conftest import TINY_CONFIG, make_pair_catalog

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, name: str, catalog: Path, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY_CONFIG.format(name=name, out=tmp_path / name, catalog=catalog, extra=extra))
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    return make_pair_catalog(tmp_path_factory.mktemp("lab"))


def test_config_errors_name_the_key(tmp_path, catalog):
    bad = write_config(tmp_path, "bad", catalog, "trainable = \"everything\"")
    with pytest.raises(FT.ConfigError, match="trainable = 'everything'"):
        FT.load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('name = "x"\noutput_dir = "o"\n[train]\nmax_step = 3\n')
    with pytest.raises(FT.ConfigError, match="max_step"):
        FT.load_config(typo)
    frames = tmp_path / "frames.toml"
    frames.write_text('name = "x"\noutput_dir = "o"\n[data]\nnum_frames = 8\n')
    with pytest.raises(ValueError, match="4k\\+1"):
        FT.load_config(frames)


@pytest.mark.timeout(240)          # each checkpoint also writes a loadable model directory
def test_resume_reproduces_uninterrupted_losses(tmp_path, catalog):
    full = FT.train(FT.load_config(write_config(tmp_path, "full", catalog, "ema = true")))
    assert full["steps"] == 4 and full["skipped_items"] == 0 and full["data"]["real"] == 6
    assert full["data"]["eval_scenes"] and full["data"]["train"] + full["data"]["eval"] == 6
    out = tmp_path / "full"
    assert [p.name for p in FT.checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
    for name in ("model.safetensors", "optimizer.bin", "transformer/config.json", "trainer_state.json"):
        assert (out / "checkpoints" / "checkpoint-4" / name).is_file(), name
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "model" / "transformer" / "config.json").is_file() and (out / "model" / "vae").is_dir()

    cache = tmp_path / "latents"
    cfg = FT.load_config(write_config(tmp_path, "cut", catalog, "ema = true"))
    cfg.data.latent_cache = str(cache)
    cfg.train.max_steps = 2
    FT.train(cfg)                                   # "interrupted" after step 2
    cfg.train.max_steps = 4
    resumed = FT.train(cfg, resume=True)
    assert resumed["steps"] == 4
    assert resumed["latent_cache"]["hits"] > 0 and list(cache.rglob("*.safetensors"))   # cached latents reused
    assert FT.read_losses(tmp_path / "cut" / "loss.csv") == FT.read_losses(out / "loss.csv")

    from capture.catalog import open_catalog
    with open_catalog(catalog) as cat:
        run = cat.training_run(full["catalog_run_id"])
        assert run["status"] == "done" and run["metrics"]["steps"] == 4 and run["code_version"]
        assert sorted(set(run["pairs"].values())) == ["eval", "train"] and len(run["pairs"]) == 6
        assert any("checkpoint-4" in c for c in run["checkpoints"])
        assert cat.training_run(resumed["catalog_run_id"])["status"] == "done"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
def test_two_cpu_processes_on_gloo_with_resume(tmp_path, catalog):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def launch(config: Path, *extra: str) -> str:
        cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), "-m", "train.finetune", str(config), *extra]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=150)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    full = write_config(tmp_path, "ddp", catalog)
    assert '"processes": 2' in launch(full)
    cut = write_config(tmp_path, "ddpcut", catalog)
    launch(cut, "--max-steps", "2")
    launch(cut, "--resume")
    assert FT.read_losses(tmp_path / "ddpcut" / "loss.csv") == FT.read_losses(tmp_path / "ddp" / "loss.csv")
    assert len(FT.read_losses(tmp_path / "ddp" / "loss.csv")) == 4


def test_example_configs_load():
    for path in sorted((REPO / "examples").glob("train-*.toml")):
        cfg = FT.load_config(path)
        assert cfg.name and cfg.train.max_steps >= 1, path


@pytest.mark.timeout(300)
def test_max_minutes_stops_the_run_and_says_so(tmp_path, catalog):
    """A time budget ends training at the step it reached (the lab-day benchmark gives every model the same
    minutes), with a model directory and the stop recorded."""
    cfg = FT.load_config(write_config(tmp_path, "timed", catalog, "max_minutes = 0.0001\n"))
    cfg.train.max_steps = 1_000
    cfg.train.trackers = []
    summary = FT.train(cfg)
    assert summary["stopped_by_time"] is True and 1 <= summary["steps"] < 5
    assert (tmp_path / "timed" / "model" / "transformer" / "config.json").is_file()
    card = __import__("json").loads((tmp_path / "timed" / "model" / "cinectrl.json").read_text())
    assert card["eval_scenes"] and card["data"]["real"] >= 1        # the held-out scenes `train eval` uses
