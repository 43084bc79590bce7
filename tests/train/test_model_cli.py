"""`cinectrl train edit` / `synth` through typer's runner, with a tiny saved pipeline (real classes)."""

from __future__ import annotations

import numpy as np
import torch
from typer.testing import CliRunner

from cinectrl.main import app
from rigs.video import read_video, write_video


def test_edit_requires_model(tmp_path):
    write_video(tmp_path / "a.mp4", np.zeros((9, 32, 32, 3), np.uint8))
    r = CliRunner().invoke(app, ["train", "edit", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "b.mp4")])
    assert r.exit_code == 1 and "--model DIR is required" in r.output


def test_edit_end_to_end(tmp_path):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("_tiny_pipeline", Path(__file__).with_name("test_pipeline.py"))
    T = importlib.util.module_from_spec(spec)   # same tiny pipeline as the pipeline tests
    spec.loader.exec_module(T)
    pipe = T.pipe.__wrapped__()
    pipe.save_pretrained(tmp_path / "m")
    torch.save(T.EMB, tmp_path / "emb.pt")
    write_video(tmp_path / "a.mp4", T.clip())
    r = CliRunner().invoke(app, ["train", "edit", str(tmp_path / "a.mp4"), "--model", str(tmp_path / "m"),
                                 "--bokeh", "0.6", "--focus", "0.3",
                                 "--steps", "2", "--out", str(tmp_path / "b.mp4")])
    assert r.exit_code == 0, r.output
    frames, _ = read_video(tmp_path / "b.mp4")
    assert frames.shape == (17, 32, 32, 3)
    r = CliRunner().invoke(app, ["train", "edit", str(tmp_path / "a.mp4"), "--model", str(tmp_path / "m"),
                                 "--bokeh", "3", "--out", str(tmp_path / "c.mp4")])
    assert r.exit_code == 2 and "--bokeh" in r.output and "less than or equal to 1" in r.output


def _catalog_with_clip(root, with_depth: bool):
    from capture.catalog import open_catalog
    rng = np.random.default_rng(0)
    frames = (rng.random((5, 32, 48, 3)) * 200 + 20).astype(np.uint8)
    write_video(root / "c.mp4", frames)
    if with_depth:
        np.savez_compressed(root / "c.depth.npz", depth_m=np.linspace(0.5, 5, 48, dtype=np.float16)
                            * np.ones((5, 32, 48), np.float16))
    with open_catalog(root / "catalog.db") as cat:
        cat.add_asset(root / "c.mp4", sha256="x" * 64, bytes=1, kind="clip")
    return root / "catalog.db"


def test_synth_from_catalog(tmp_path):
    db = _catalog_with_clip(tmp_path, with_depth=True)
    r = CliRunner().invoke(app, ["train", "synth", "--from", str(db), "--out", str(tmp_path / "o"), "--per-clip", "2"])
    assert r.exit_code == 0, r.output
    import json
    pairs = json.loads((tmp_path / "o" / "pairs.json").read_text())
    assert len(pairs) == 2 and read_video(tmp_path / "o" / pairs[0]["target"])[0].shape == (5, 32, 48, 3)


def test_synth_without_depth_says_what_to_give(tmp_path):
    db = _catalog_with_clip(tmp_path, with_depth=False)
    r = CliRunner().invoke(app, ["train", "synth", "--from", str(db), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0 and "--depth" in r.output and "partly used" in r.output, r.output
