"""The server over a real tiny model trained by train/finetune.py (ModelEditor: VAE + Wan transformer)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from train import finetune as FT
from train.editor import load_editor
from train.serve import ServeConfig, create_app
from rigs.video import read_video, write_video

from .conftest import TINY_CONFIG, make_pair_catalog, textured_clip
from .serving import serve_process


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("model")
    catalog = make_pair_catalog(root / "lab")
    cfg = root / "t.toml"
    cfg.write_text(TINY_CONFIG.format(name="m", out=root / "run", catalog=catalog, extra=""))
    config = FT.load_config(cfg)
    config.train.max_steps = 2
    return FT.train(config)["model_dir"]


@pytest.mark.timeout(120)
def test_job_through_tiny_model(tmp_path, model_dir):
    clip = write_video(tmp_path / "in.mp4", textured_clip(frames=12, size=40), 8.0)
    config = ServeConfig(data_dir=tmp_path / "srv", token="tok", poll_interval_s=0.05)
    with TestClient(create_app(config, lambda d: load_editor(model_dir, d, steps=3))) as client:
        auth = {"Authorization": "Bearer tok"}
        r = client.post("/jobs", headers=auth, data={"controls": '{"S": 0.4}'},
                        files={"file": ("in.mp4", clip.read_bytes(), "video/mp4")})
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        deadline = time.monotonic() + 60
        while (status := client.get(f"/jobs/{job}", headers=auth).json())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status["status"] == "succeeded", status
        out = tmp_path / "out.mp4"
        out.write_bytes(client.get(f"/jobs/{job}/result", headers=auth).content)
        frames, _ = read_video(out)
        assert frames.shape == (12, 40, 40, 3)     # the input's length and size (windows + resize inside)


@pytest.mark.timeout(120)
def test_cinectrl_serve_process(tmp_path, model_dir):
    """`cinectrl serve` as a real process on 127.0.0.1; stopped by PID."""
    import os
    import sys

    import httpx
    env = {**os.environ, "CINECTRL_SERVE_TOKEN": "proc-token"}
    args = [sys.executable, "-m", "cinectrl.main", "serve", "--model", str(model_dir), "--data-dir",
            str(tmp_path / "srv"), "--steps", "2"]
    with serve_process(args, env=env) as base:
        clip = write_video(tmp_path / "in.mp4", textured_clip(frames=12, size=40), 8.0)
        auth = {"Authorization": "Bearer proc-token"}
        r = httpx.post(f"{base}/jobs", headers=auth, data={"controls": "{}"},
                       files={"file": ("in.mp4", clip.read_bytes(), "video/mp4")}, timeout=30)
        assert r.status_code == 202, r.text
        status = httpx.get(f"{base}/jobs/{r.json()['id']}", headers=auth, params={"wait": 30}, timeout=40).json()
        assert status["status"] == "succeeded", status
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
