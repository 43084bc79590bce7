"""Training data: 4k+1 sampling, one crop for both clips, skip-and-count of bad clips, scene-disjoint split,
real:synthetic mix, latent cache keyed by file hash, records from a real catalog."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from train import data as D
from rigs.video import write_video

from .conftest import simple_edit, textured_clip


def test_sample_indices_and_frame_rule():
    assert D.sample_indices(40, 9, stride=2) == list(range(0, 18, 2))
    assert D.sample_indices(10, 9, stride=3) == list(range(9))       # stride shrinks to fit
    with pytest.raises(ValueError, match="4k\\+1"):
        D.sample_indices(40, 8)
    with pytest.raises(D.VideoError, match="5 frames"):
        D.sample_indices(5, 9)


def test_fit_clip_is_consistent():
    clip = textured_clip(frames=2, size=64)
    wide = np.concatenate([clip, clip], axis=2)                       # 64 x 128
    out = D.fit_clip(wide, (32, 32))
    assert out.shape == (2, 32, 32, 3)
    a, b = D.fit_clip(clip, (24, 40)), D.fit_clip(simple_edit(clip, {"S": 0.3}), (24, 40))
    assert np.array_equal(D.fit_clip(clip, (24, 40)), a) and a.shape == b.shape == (2, 24, 40, 3)
    t = D.to_tensor(a)
    assert t.shape == (3, 2, 24, 40) and -1.0 <= float(t.min()) and float(t.max()) <= 1.0


def _write_clips(tmp_path, n):
    return [write_video(tmp_path / f"c{i}.mp4", textured_clip(seed=i, frames=12, size=40), 8.0) for i in range(n)]


def test_dataset_skips_bad_clips_and_counts_them(tmp_path, caplog):
    good = _write_clips(tmp_path, 2)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"garbage" * 50)
    short = write_video(tmp_path / "short.mp4", textured_clip(frames=3, size=40), 8.0)
    records = [D.PairRecord(good[0], good[1], {"S": 0.5}, "a"),
               D.PairRecord(good[0], tmp_path / "missing.mp4", {}, "a"),
               D.PairRecord(corrupt, good[1], {}, "b"),
               D.PairRecord(short, good[1], {}, "b"),
               D.PairRecord(good[1], None, {**D.NEUTRAL, "T": 0.5}, "c", kind="synthetic")]
    with caplog.at_level(logging.WARNING):
        ds = D.PairDataset(records, num_frames=9, size=(32, 32), simulate=simple_edit)
    assert len(ds) == 2 and ds.skipped.count == 3
    assert "missing" in " ".join(ds.skipped.reasons.values()) and "corrupt" in " ".join(ds.skipped.reasons.values())
    assert "missing.mp4" in caplog.text
    batch = D.collate([ds[0], ds[1]])
    assert batch["source"].shape == (2, 3, 9, 32, 32) and batch["controls"].shape == (2, len(D.CONTROL_NAMES))
    assert batch["trajectory"].shape == (2, 3, 12)
    synth = ds[1]
    assert synth["kind"] == "synthetic"
    assert synth["target"][2].mean() > synth["source"][2].mean()     # T>0: bluer target from the simulator
    good[0].write_bytes(b"broken later")                              # breaks after the probe: skipped at load
    assert ds[0]["kind"] == "synthetic" and ds.skipped.count == 4
    no_sim = D.PairDataset(records[-1:], num_frames=9, size=(32, 32))
    assert len(no_sim) == 0 and "simulator" in next(iter(no_sim.skipped.reasons.values()))


def test_split_keeps_scenes_disjoint_and_mix_ratio(tmp_path):
    records = [D.PairRecord(tmp_path / f"{s}{i}.mp4", None, {}, f"scene{s}") for s in range(10) for i in range(3)]
    train, evaluation = D.split_by_scene(records, 0.3)
    assert train and evaluation
    assert not {r.scene for r in train} & {r.scene for r in evaluation}
    assert D.split_by_scene(records, 0.3) == (train, evaluation)       # stable
    two = [D.PairRecord(tmp_path / "x", None, {}, s) for s in ("a", "b")]
    tr, ev = D.split_by_scene(two, 0.01)
    assert len(tr) == len(ev) == 1
    real = [D.PairRecord(tmp_path / "r", tmp_path / "t", {}, "a", kind="real") for _ in range(4)]
    synth = D.synthetic_records([("s", tmp_path / "src.mp4")], 20, seed=1)
    mixed = D.mix(real, synth, (1, 3))
    assert sum(r.kind == "real" for r in mixed) == 4 and sum(r.kind == "synthetic" for r in mixed) == 12
    assert len(D.mix([], synth, (1, 3))) == 20
    with pytest.raises(ValueError, match="0:0"):
        D.mix(real, synth, (0, 0))
    assert all(any(r.controls[k] != D.NEUTRAL[k] for k in D.CONTROL_NAMES) for r in synth)


def test_latent_cache_keyed_by_content(tmp_path):
    clip = _write_clips(tmp_path, 1)[0]
    cache = D.LatentCache(tmp_path / "cache", vae_id="tiny-vae@1")
    calls = []

    def encode():
        calls.append(1)
        return torch.arange(6.0).reshape(1, 2, 3)

    a = cache.get_or_compute(clip, encode, frames=9, size=32)
    b = cache.get_or_compute(clip, encode, frames=9, size=32)
    assert torch.equal(a, b) and len(calls) == 1 and cache.hits == 1
    cache.get_or_compute(clip, encode, frames=17, size=32)
    assert len(calls) == 2
    clip.write_bytes(clip.read_bytes() + b"\x00")                     # content changed -> new key
    cache.get_or_compute(clip, encode, frames=9, size=32)
    assert len(calls) == 3
    assert D.LatentCache(tmp_path / "cache", vae_id="other").key(clip, frames=9) != cache.key(clip, frames=9)


def test_records_from_catalog_only_train_ready(tmp_path):
    from capture.catalog import open_catalog
    clips = _write_clips(tmp_path, 3)
    with open_catalog(tmp_path / "catalog.db") as cat:
        sid = cat.create_session("s", scene="kitchen")
        ids = [cat.add_clip(sid, f"k{i}", asset_id=cat.add_asset(p, sha256=f"{i}" * 64, bytes=1, kind="clip",
                                                                 session_id=sid)) for i, p in enumerate(clips)]
        ready = cat.add_pair(sid, ids[0], ids[1], controls={"S": 0.5, "ISO": 0.25, "unknown": 1})
        cat.add_pair(sid, ids[0], ids[2], controls={"S": -0.5})
        outside = cat.add_pair(sid, ids[1], ids[2], controls={"S": 3.35})     # e.g. a black reference
        cat.set_pair_state(ready, review_state="accepted", train_ready=True)
        cat.set_pair_state(outside, review_state="accepted", train_ready=True)
        records = D.records_from_catalog(cat)
    assert len(records) == 1                       # the pair with S outside [-1, 1] is skipped, not clamped
    rec = records[0]
    assert rec.pair_id == ready and rec.scene == "kitchen" and rec.controls["S"] == 0.5
    assert rec.controls["ISO"] == 0.25 and set(rec.controls) == set(D.CONTROL_NAMES)
    assert rec.source.resolve() == clips[0].resolve() and rec.target.resolve() == clips[1].resolve()


def test_training_reads_train_ready_pairs_through_the_review_gates_door(tmp_path):
    """`annotate.review.train_ready_pairs` decides what training may read: a pair flagged train-ready whose review
    is not settled (here back in review) is not read, as the gate says."""
    from annotate.review import train_ready_pairs
    from capture.catalog import open_catalog

    from .conftest import make_pair_catalog
    with open_catalog(make_pair_catalog(tmp_path, scenes=1)) as cat:
        cat.set_pair_state(1, review_state="in_review", train_ready=True)
        assert [p["pair_id"] for p in train_ready_pairs(cat)] == [2]
        assert [r.pair_id for r in D.records_from_catalog(cat)] == [2]


def test_a_rewritten_clip_is_read_again_not_served_from_the_decode_cache(tmp_path):
    import numpy as np

    from train.data import load_clip
    from rigs.video import write_video
    path = tmp_path / "clip.mp4"
    write_video(path, np.full((9, 32, 32, 3), 40, np.uint8), fps=12)
    first = load_clip(path, 9, (32, 32))
    write_video(path, np.full((9, 32, 32, 3), 200, np.uint8), fps=12)
    second = load_clip(path, 9, (32, 32))
    assert abs(float(first.mean()) - 40) < 3 and abs(float(second.mean()) - 200) < 3
    assert not first.flags.writeable                  # shared between reads: nobody may write into it
