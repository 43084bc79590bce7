"""The loader refuses a catalog pair without controls (its settings could not be mapped): neutral values would
train it as "no change" while its clips differ. Pairs are written the way the capture runner writes them
(`capture/ledger.py::Ledger.add_pair`, with the QC of `capture/pairs.py`)."""

from __future__ import annotations

import pytest

from capture.clips import pair_quality
from capture.ledger import Ledger
from capture.pairs import form_pairs, quality_record
from rigs.video import read_frames, write_video
from train import data as D
from train.config import ConfigError, load_config
from train.finetune import build_records

from .conftest import textured_clip

BASE = {"aperture": "f/8", "shutter": "1/60", "iso": "100"}


def _catalog(tmp_path):
    """A session with a mappable pair (ISO 400) and an unmappable one (ISO Auto), as the runner stores them."""
    ledger = Ledger(tmp_path / "lab" / "catalog.db")
    cat = ledger.catalog
    sid = cat.create_session("s", scene="desk")
    combos = {1: BASE, 2: {**BASE, "iso": "400"}, 3: {**BASE, "iso": "Auto"}}
    clip_ids, frames = {}, {}
    for cid in combos:
        shot = textured_clip(frames=12, size=40) + 2 * cid            # one scene, one path: QC has nothing else
        path = write_video(tmp_path / "lab" / f"c{cid}.mp4", shot, 8)
        frames[cid] = list(read_frames(path))
        clip_ids[cid] = ledger.add_clip(sid, cid, combos[cid], path, path, frames=12, fps=8.0)
    pair_ids = {}
    for spec in form_pairs(combos, BASE):
        record = {"deltas": spec.deltas, "controls": spec.controls, "controls_source": spec.controls_source,
                  "reference_controls": spec.reference_controls, "mapping": spec.mapping,
                  "quality": quality_record(pair_quality(frames[spec.reference], frames[spec.target]),
                                            spec.controls, spec.controls_source)}
        pair_ids[spec.target] = ledger.add_pair(sid, clip_ids[spec.reference], clip_ids[spec.target], record)
    return ledger, pair_ids


def test_an_unmapped_pair_never_reaches_training(tmp_path):
    ledger, pairs = _catalog(tmp_path)
    cat = ledger.catalog
    skipped: dict[str, str] = {}
    records = D.records_from_catalog(cat, train_ready_only=False, skipped=skipped)   # QC keeps it out
    assert [r.pair_id for r in records] == [pairs[2]]
    assert "controls unmapped: target iso 'Auto' gives no number" in skipped[f"pair {pairs[3]}"]
    assert [m.get("pair_id") for g in D.pair_members(cat) for m in g["members"]] == [None, pairs[2]]

    # accepted by reviewers all the same: the loader refuses it, with the reason, instead of neutral controls
    for target in pairs:
        cat.set_pair_state(pairs[target], review_state="accepted", train_ready=True)
    with pytest.raises(D.PairWithoutControls, match=rf"pair {pairs[3]} .*has no controls: controls unmapped: "
                                                     r"target iso 'Auto'.*'no change'"):
        D.records_from_catalog(cat)
    ledger.close()


def test_a_training_run_over_such_a_catalog_stops_with_one_line(tmp_path):
    ledger, pairs = _catalog(tmp_path)
    for target in pairs:
        ledger.catalog.set_pair_state(pairs[target], review_state="accepted", train_ready=True)
    ledger.close()
    config = tmp_path / "run.toml"
    config.write_text(f'name = "t"\noutput_dir = "out"\n[data]\ncatalog = "{tmp_path / "lab" / "catalog.db"}"\n'
                      'ratio = [1, 0]\n')
    with pytest.raises(ConfigError, match=rf"\[data\] catalog = .*pair {pairs[3]} .*has no controls"):
        build_records(load_config(config))
