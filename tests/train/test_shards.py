"""Data that travels: the catalog's training pairs exported as WebDataset shards (size-bounded, with a manifest
holding the catalog's revision) and read back by `[data] shards` from a folder or an fsspec URL, with the same
losses as training from the catalog, under torchrun with 2 CPU processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from train import finetune as FT
from train import shards as S

from .conftest import TINY_CONFIG, make_pair_catalog

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """Four scenes with pairs and one session without any (its scene still takes part in the split)."""
    from capture.catalog import open_catalog
    path = make_pair_catalog(tmp_path_factory.mktemp("lab"), scenes=4, frames=12, size=40)
    with open_catalog(path) as cat:
        cat.create_session("s9", scene="scene9")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cinectrl.main", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.timeout(180)
def test_export_writes_bounded_shards_with_every_pair_and_a_manifest(catalog, tmp_path):
    out = tmp_path / "shards"
    done = cli("catalog", "export", "--catalog", str(catalog), "--what", "dataset", "--format", "webdataset",
               "--output", str(out), "--max-shard-mb", str(64 / 1024))
    assert done.returncode == 0, done.stderr
    assert "8 pairs in" in done.stdout
    manifest = json.loads((out / S.MANIFEST).read_text())
    assert manifest["pairs"] == 8 and manifest["scenes"] == ["scene0", "scene1", "scene2", "scene3", "scene9"]
    assert manifest["revision"]["schema_version"] >= 1 and len(manifest["revision"]["pairs_sha256"]) == 64
    assert len(manifest["shards"]) > 1
    for shard in manifest["shards"]:
        path = out / shard["name"]
        assert path.stat().st_size == shard["bytes"]
        assert shard["bytes"] <= 64 * 1024 or len(shard["samples"]) == 1
        with tarfile.open(path) as tar:
            names = tar.getnames()
            for sample in shard["samples"]:
                assert {f"{sample['key']}.{m}" for m in ("source.mp4", "target.mp4", "json")} <= set(names)
                meta = json.loads(tar.extractfile(f"{sample['key']}.json").read())
                assert meta == sample["meta"] and meta["controls"]["S"] in (0.5, -0.5)
                assert meta["provenance"]["source_sha256"] and meta["frames"] == 12
                offset, size = sample["members"]["target.mp4"]
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    assert fh.read(size) == tar.extractfile(f"{sample['key']}.target.mp4").read()
    again = cli("catalog", "export", "--catalog", str(catalog), "--what", "dataset", "--format", "webdataset",
                "--output", str(out))
    assert again.returncode != 0 and "already holds an export" in again.stderr
    wrong = cli("catalog", "export", "--catalog", str(catalog), "--what", "pairs", "--format", "webdataset")
    assert wrong.returncode != 0 and "--what dataset" in wrong.stderr


@pytest.mark.timeout(120)
def test_records_from_shards_are_the_catalogs(catalog, tmp_path):
    """Read through an fsspec URL: the same pairs, scenes, controls and clip bytes as the catalog's records."""
    from capture.catalog import open_catalog
    from train import data as D
    S.export_dataset(catalog, tmp_path / "shards", max_shard_bytes=64 * 1024)
    records, scenes, _ = S.records_from_shards((tmp_path / "shards").as_uri(), tmp_path / "cache")
    with open_catalog(catalog, readonly=True) as cat:
        expected = D.records_from_catalog(cat)
        assert scenes == set(D.session_scenes(cat).values())
    assert [(r.pair_id, r.scene, r.controls) for r in records] == [(r.pair_id, r.scene, r.controls) for r in expected]
    local = records[0].shard.materialise(records[0])
    assert local.source.read_bytes() == expected[0].source.read_bytes()
    assert local.target.read_bytes() == expected[0].target.read_bytes()
    with pytest.raises(S.ShardError, match="no manifest.json"):
        S.read_manifest((tmp_path / "nothing").as_uri())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_processes_train_from_shards_with_the_catalogs_losses(catalog, tmp_path):
    """torchrun --nproc_per_node 2 on CPU (gloo): the same seed from the catalog and from its shards (an fsspec
    file:// URL, one DataLoader worker per process) gives the same loss at every step."""
    S.export_dataset(catalog, tmp_path / "shards", max_shard_bytes=64 * 1024)
    torchrun = Path(sys.executable).with_name("torchrun")
    extra = "trackers = []\n[validation]\nevery = 0\nsample_every = 0\n"

    def run(name: str, data_line: str, workers: int) -> list:
        text = TINY_CONFIG.format(name=name, out=tmp_path / "runs" / name, catalog=catalog, extra=extra)
        text = text.replace(f'catalog = "{catalog}"', data_line + f"\nnum_workers = {workers}")
        config = tmp_path / f"{name}.toml"
        config.write_text(text)
        cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), "-m", "train.finetune", str(config)]
        done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        assert '"processes": 2' in done.stdout
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["data"]["train"] >= 4            # more pairs than a step takes: the order matters
        return FT.read_losses(tmp_path / "runs" / name / "loss.csv")

    from_catalog = run("cat", f'catalog = "{catalog}"', 0)
    from_shards = run("shards", f'shards = "{(tmp_path / "shards").as_uri()}"', 1)
    assert len(from_catalog) == 4 and from_shards == from_catalog
    assert any((tmp_path / "runs" / "shards" / "shard-cache").glob("*.mp4"))        # fetched into OUTPUT/shard-cache


def test_shards_beside_a_catalog_or_catalog_clips_are_refused():
    from train.config import ConfigError, RunConfig, validate
    cfg = RunConfig(name="x", output_dir="/tmp/x")
    cfg.data.shards, cfg.data.catalog = "s3://bucket/lab-shards", "lab/catalog.db"
    with pytest.raises(ConfigError, match=r"\[data\] shards = .* and catalog = .*give one"):
        validate(cfg)
    cfg.data.catalog, cfg.data.synthetic_from_catalog = "", True
    with pytest.raises(ConfigError, match="synthetic_from_catalog"):
        validate(cfg)
