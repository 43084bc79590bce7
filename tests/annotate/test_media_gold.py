"""What the view shows and the gold pairs, on real clips (PyAV) and a real catalog; no server needed."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from annotate import gold, media, review
from capture.export import pair_records
from rigs.video import probe, read_frames

from .conftest import clip_frames, make_catalog


def test_change_text_and_titles_say_what_changed():
    assert media.change_text({"aperture": "f/8", "iso": "100"}, {"aperture": "f/2.8", "iso": "100"}) \
        == "aperture f/8 -> f/2.8"
    assert media.change_text({"shutter": "1/50", "iso": "100"}, {"shutter": "1/200", "iso": "400"}) \
        == "shutter 1/50 -> 1/200; ISO 100 -> 400"
    assert media.describe({"iso": "100", "aperture": "f/8", "shutter": "1/50"}) == "f/8 · 1/50 · ISO 100"


def test_settings_table_has_requested_readback_and_exif_for_both_clips(tmp_path):
    cat = make_catalog(tmp_path, 1)
    pair = review.review_pairs(cat)[0]
    readings = media.clip_readings(cat, [pair["reference_clip_id"], pair["other_clip_id"]])
    table = media.settings_html(pair, readings)
    for row in ("Ref. requested", "Ref. read-back", "Ref. EXIF", "Other requested", "Other read-back", "Other EXIF"):
        assert f"<th>{row}</th>" in table
    assert '<th class="cc-changed">aperture</th>' in table
    # the reference frame's EXIF says 1/60 where 1/50 was asked for: marked
    assert '<td class="cc-mismatch">1/60</td>' in table
    cat.close()


def test_qc_is_information_never_a_verdict():
    text = media.qc_html({"alignment_px": 3.2, "clipped_fraction": 0.01, "sharpness_ratio": 0.8, "passed": False,
                          "flags": ["misaligned by 3.2 px"]})
    assert "alignment 3.20 px" in text and "misaligned by 3.2 px" in text
    assert "passed" not in text and "accept" not in text and "reject" not in text


def test_difference_cancels_exposure_and_shows_a_shift():
    frames = clip_frames(90)
    darker = [np.clip(f * 0.5, 0, 255).astype(np.uint8) for f in frames]
    assert max(d.mean() for d in media.difference_frames(frames, darker)) < 4      # exposure change: dark
    assert min(d.mean() for d in media.difference_frames(frames, gold.shifted(frames))) > 20   # misaligned: lit


def test_difference_clips_are_real_h264_made_once(tmp_path):
    cat = make_catalog(tmp_path, 2)
    pairs = review.review_pairs(cat)
    first = media.ensure_difference_clips(cat, pairs)
    clip = cat.abspath(first[pairs[0]["pair_id"]])
    info = probe(clip)
    assert (info.codec, info.pix_fmt, info.frames, info.fps) == ("h264", "yuv420p", 12, 24)
    mtime = clip.stat().st_mtime_ns
    assert media.ensure_difference_clips(cat, pairs) == first and clip.stat().st_mtime_ns == mtime
    clip.unlink()   # a lost clip is made again
    assert media.ensure_difference_clips(cat, pairs) == first and clip.exists()
    cat.close()


def test_gold_pairs_are_real_derived_clips_that_never_become_train_ready(tmp_path):
    cat = make_catalog(tmp_path, 2)
    sources = review.review_pairs(cat)
    made = gold.make_gold(cat, 3, sources, rng=random.Random(3))
    golds = {p["pair_id"]: p for p in review.review_pairs(cat) if p["pair_id"] in made}
    assert sorted(p["gold_kind"] for p in golds.values()) == ["flicker", "shift", "swap"]
    for p in golds.values():
        src = next(s for s in sources if s["pair_id"] == p["gold_source_pair_id"])
        original = read_frames(cat.abspath(src["other_path"]))
        derived = read_frames(cat.abspath(p["other_path"]))
        assert len(derived) == len(original) and derived[0].shape == original[0].shape
        assert p["reference_clip_id"] == src["reference_clip_id"] and p["other_settings"] == src["other_settings"]
        if p["gold_kind"] == "flicker":
            means = [f.mean() for f in derived]
            assert means[2] < 0.75 * means[0] and abs(means[4] - means[0]) < 3
        elif p["gold_kind"] == "shift":
            assert p["qc"]["alignment_px"] > 2 and p["qc"]["flags"]
        else:
            assert np.abs(derived[0].astype(int) - original[0].astype(int)).mean() > 10
    # gold pairs are no data: not in Catalog.pairs() (training, evaluation, exports) unless asked for
    assert not set(made) & {p["pair_id"] for p in cat.pairs()}
    assert {p["pair_id"] for p in cat.pairs(gold=True)} == set(made)
    assert not set(made) & {p["pair_id"] for p in pair_records(cat)}
    pid = next(iter(golds))
    with pytest.raises(sqlite3.IntegrityError, match="never train-ready"):
        cat.set_pair_state(pid, review_state="accepted", train_ready=True)
    cat.conn.execute("UPDATE pairs SET review_state = 'accepted' WHERE id = ?", (pid,))
    assert pid not in {p["pair_id"] for p in review.train_ready_pairs(cat)}
    cat.close()
