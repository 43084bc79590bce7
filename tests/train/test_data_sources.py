"""Data without friction, recorded honestly: `[data] reviewed_only`, the run's data snapshot, and `train synth`
(skips and reports a clip it cannot use; its pairs.json is a data source `train run` reads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from capture.catalog import open_catalog
from cinectrl.main import app
from rigs import controls as registry
from train import data as D
from train import finetune as FT
from train.config import load_config
from train.synth import DEPTH_CONTROLS
from rigs.video import write_video

from .conftest import simple_edit, textured_clip

QC_OK = {"flags": [], "alignment_px": 0.1}


def lab_with_pair_states(root: Path) -> tuple[Path, dict[str, int]]:
    """One session, one reference clip and one pair per review situation."""
    root.mkdir(parents=True, exist_ok=True)
    ids = {}
    with open_catalog(root / "catalog.db") as cat:
        sid = cat.create_session("s", scene="bench")
        src = textured_clip(seed=1, frames=9, size=40)
        ref = cat.add_clip(sid, "ref", asset_id=cat.add_asset(write_video(root / "ref.mp4", src, 8), sha256="r" * 64,
                                                              bytes=1, kind="clip", session_id=sid))
        cases = {"accepted": ("accepted", True, QC_OK), "unreviewed": ("unreviewed", False, QC_OK),
                 "in_review": ("in_review", False, QC_OK), "flagged": ("unreviewed", False,
                                                                      {"flags": ["misaligned by 3.0 px"]}),
                 "no_qc": ("unreviewed", False, {}), "rejected": ("rejected", False, QC_OK)}
        for i, (name, (state, ready, qc)) in enumerate(cases.items()):
            path = write_video(root / f"{name}.mp4", simple_edit(src, {"S": 0.1 * (i + 1)}), 8)
            clip = cat.add_clip(sid, name, asset_id=cat.add_asset(path, sha256=f"{i}".ljust(64, "c"), bytes=1,
                                                                  kind="clip", session_id=sid))
            ids[name] = cat.add_pair(sid, ref, clip, controls={"S": 0.1 * (i + 1)}, qc=qc)
            cat.set_pair_state(ids[name], review_state=state, train_ready=ready)
    return root / "catalog.db", ids


def test_reviewed_only_by_default_and_false_admits_qc_passed_unreviewed(tmp_path):
    catalog, ids = lab_with_pair_states(tmp_path)
    with open_catalog(catalog, create=False) as cat:
        gated = D.records_from_catalog(cat)
        left: dict[str, str] = {}
        loose = D.records_from_catalog(cat, train_ready_only=False, skipped=left)
    assert [r.pair_id for r in gated] == [ids["accepted"]] and gated[0].reviewed
    assert sorted(r.pair_id for r in loose) == sorted([ids["accepted"], ids["unreviewed"], ids["in_review"]])
    assert [r.reviewed for r in loose if r.pair_id != ids["accepted"]] == [False, False]
    assert "QC flagged it: misaligned" in left[f"pair {ids['flagged']}"]
    assert "no QC result" in left[f"pair {ids['no_qc']}"]
    assert "rejected" in left[f"pair {ids['rejected']}"]


@pytest.mark.timeout(180)
def test_the_runs_data_snapshot_records_the_gate(tmp_path):
    catalog, ids = lab_with_pair_states(tmp_path / "lab")
    config = tmp_path / "run.toml"
    config.write_text(f'name = "loose"\noutput_dir = "{tmp_path / "run"}"\n[data]\ncatalog = "{catalog}"\n'
                      'reviewed_only = false\neval_fraction = 0.0\n[train]\nmax_steps = 1\ncpu = true\n'
                      'trackers = []\n[validation]\nevery = 0\nsample_every = 0\n')
    assert load_config(config).data.reviewed_only is False
    summary = FT.train(load_config(config))
    assert summary["data"]["reviewed_only"] is False
    assert summary["data"]["unreviewed"] == sorted([ids["unreviewed"], ids["in_review"]])
    with open_catalog(catalog, create=False) as cat:
        run = cat.training_run(summary["catalog_run_id"])
    snapshot = json.loads(run["data_snapshot"])
    assert snapshot["reviewed_only"] is False and snapshot["unreviewed"] == summary["data"]["unreviewed"]
    assert set(run["pairs"]) == {ids["accepted"], ids["unreviewed"], ids["in_review"]}

    gated = config.with_name("gated.toml")
    gated.write_text(config.read_text().replace("reviewed_only = false", "reviewed_only = true")
                     .replace('"loose"', '"gated"').replace(str(tmp_path / "run"), str(tmp_path / "gated")))
    summary = FT.train(load_config(gated))
    assert summary["data"]["real"] == 1 and summary["data"]["unreviewed"] == []


def _clip_catalog(root: Path) -> Path:
    """Three catalog clips: one with a depth sidecar, one without, one that is not a video."""
    root.mkdir(parents=True, exist_ok=True)
    frames = textured_clip(seed=3, frames=9, size=48)
    write_video(root / "deep.mp4", frames, 8)
    np.savez_compressed(root / "deep.depth.npz", depth_m=np.linspace(0.5, 5, 48, dtype=np.float16)
                        * np.ones((9, 48, 48), np.float16))
    write_video(root / "flat.mp4", textured_clip(seed=4, frames=9, size=48), 8)
    (root / "broken.mp4").write_bytes(b"\0not a video" * 50)
    with open_catalog(root / "catalog.db") as cat:
        sid = cat.create_session("s", scene="shelf")
        for i, name in enumerate(("deep", "flat", "broken")):
            cat.add_asset(root / f"{name}.mp4", sha256=f"{i}".ljust(64, "s"), bytes=1, kind="clip", session_id=sid)
    return root / "catalog.db"


@pytest.mark.timeout(180)
def test_synth_skips_and_reports_then_train_run_reads_its_pairs(tmp_path):
    catalog = _clip_catalog(tmp_path / "lab")
    out = tmp_path / "synth"
    r = CliRunner().invoke(app, ["train", "synth", "--from", str(catalog), "--out", str(out), "--per-clip", "3"])
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and "broken.mp4" in r.output                      # reported, not fatal
    assert "partly used" in r.output and "flat.mp4" in r.output and "--depth" in r.output
    assert "6 simulated pairs from 2 of 3 clips" in r.output
    pairs = json.loads((out / "pairs.json").read_text())
    flat = [p for p in pairs if p["source"].endswith("flat.mp4")]
    assert flat and all(p["controls"][c] == registry.NEUTRAL[c] for p in flat for c in DEPTH_CONTROLS)
    assert all(set(p["controls"]) == set(registry.NAMES) and p["scene"] == "shelf" for p in pairs)

    records = D.records_from_synthetic_pairs(out / "pairs.json")
    assert len(records) == 6 and all(r.kind == "synthetic" and r.target.is_file() for r in records)
    config = tmp_path / "synth.toml"
    config.write_text(f'name = "synth"\noutput_dir = "{tmp_path / "run"}"\n[data]\nsynthetic_pairs = "{out}/pairs.json"\n'
                      'eval_fraction = 0.0\n[train]\nmax_steps = 2\ncpu = true\ntrackers = []\n'
                      '[validation]\nevery = 0\nsample_every = 0\n')
    summary = FT.train(load_config(config))
    assert summary["data"]["synthetic"] == 6 and summary["skipped_items"] == 0 and summary["steps"] == 2


def test_synth_fails_only_when_no_clip_is_usable(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    (root / "broken.mp4").write_bytes(b"junk")
    with open_catalog(root / "catalog.db") as cat:
        cat.add_asset(root / "broken.mp4", sha256="b" * 64, bytes=1, kind="clip")
    r = CliRunner().invoke(app, ["train", "synth", "--from", str(root / "catalog.db"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "skipped" in r.output and "no clip" in r.output and "Traceback" not in r.output


def test_bad_synthetic_pairs_file_is_one_line(tmp_path):
    bad = tmp_path / "pairs.json"
    bad.write_text('[{"source": "a.mp4", "target": "b.mp4", "controls": {"K": 7}}]')
    config = tmp_path / "c.toml"
    config.write_text(f'name = "x"\noutput_dir = "o"\n[data]\nsynthetic_pairs = ["{bad}"]\n[train]\ncpu = true\n')
    r = CliRunner().invoke(app, ["train", "run", str(config)])
    assert r.exit_code == 4 and "entry 0" in r.output and "K" in r.output and "Traceback" not in r.output


def test_synth_gives_every_pair_its_own_target_when_clips_share_a_name(tmp_path):
    """Sessions name their clips alike (c000_f0000_p0000.mp4 in every session folder): each pair's target must be
    the render of its own source, not another session's that overwrote it."""
    import numpy as np
    from rigs.video import read_video, write_video
    from train.metrics import psnr
    from train.synth import make_pairs
    clips = []
    for k, level in enumerate((40, 200)):
        folder = tmp_path / f"session{k}"
        folder.mkdir()
        frames = np.full((5, 32, 32, 3), level, np.uint8)
        frames[:, 8:24, 8:24] = 255 - level
        clips.append((f"scene{k}", write_video(folder / "c000_f0000_p0000.mp4", frames, 8)))
    report = make_pairs(clips, tmp_path / "out", per_clip=1)
    targets = [tmp_path / "out" / p["target"] for p in report.pairs]
    assert len(set(targets)) == 2
    for pair, target in zip(report.pairs, targets):
        source, _ = read_video(Path(pair["source"]) if Path(pair["source"]).is_absolute()
                               else tmp_path / "out" / pair["source"])
        rendered, _ = read_video(target)
        others = [read_video(t)[0] for t in targets if t != target]
        assert all(psnr(rendered, source) > psnr(o, source) for o in others)
