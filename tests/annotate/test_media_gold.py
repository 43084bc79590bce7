"""What the view shows and the gold pairs, on real clips (PyAV) and a real catalog; no server needed."""

from __future__ import annotations

import random
import sqlite3

import cv2
import numpy as np
import pytest

from annotate import gold, media, review
from capture.export import pair_records
from rigs.video import probe, read_frames, write_video

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
            assert means[3] < 0.6 * means[0] and abs(means[4] - means[0]) < 3
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


def test_difference_shows_flicker():
    frames = clip_frames(90)
    d = media.difference_frames(frames, gold.flickering(frames))
    lit = [x.mean() for x in d]
    # every fourth frame is darker in the other clip: it lights up; the others stay dark
    assert min(lit[3], lit[7], lit[11]) > 10 and max(lit[0], lit[1], lit[2], lit[4]) < 4


def _retake_session(cat, name: str, scene: str | None, clip_of_pair: dict) -> list[int]:
    """Another session (a retake) whose pairs point to the very same files as `clip_of_pair`'s pairs."""
    sid = cat.create_session(name, mode="passes", scene=scene)
    ids = []
    with cat.transaction():
        ref = cat.add_clip(sid, "c000", asset_id=clip_of_pair["reference_asset"], frames=12, fps=24,
                           settings={"aperture": "f/8"})
        for i, asset in enumerate(clip_of_pair["other_assets"]):
            c = cat.add_clip(sid, f"c{i + 1:03d}", asset_id=asset, frames=12, fps=24, settings={"aperture": "f/2.8"})
            ids.append(cat.add_pair(sid, ref, c))
    return ids


def test_a_swap_comes_from_another_scene_never_from_a_retake_of_the_same_one(tmp_path):
    cat = make_catalog(tmp_path, 2)
    cat.conn.execute("UPDATE sessions SET scene = 'kitchen'")
    clips = cat.rows("SELECT c.asset_id, c.combination_key FROM clips c ORDER BY c.id")
    assets = {"reference_asset": clips[0]["asset_id"], "other_assets": [c["asset_id"] for c in clips[1:]]}
    _retake_session(cat, "kitchen again", "kitchen (retake)", assets)   # byte-identical retake, named apart
    sources = [p for p in review.review_pairs(cat) if p["session"] != "kitchen again"]
    made = gold.make_gold(cat, 4, sources, rng=random.Random(1), kinds=("swap",))
    retake_files = {cat.abspath(p["other_path"]) for p in cat.pairs() if p["session"] == "kitchen again"}
    golds = {p["pair_id"]: p for p in review.review_pairs(cat) if p["gold_kind"]}
    assert sorted(golds) == sorted(made) and {p["gold_kind"] for p in golds.values()} == {"swap"}
    for p in golds.values():
        derived = gold._small(read_frames(cat.abspath(p["other_path"])))
        for f in retake_files:    # mirrored instead: it differs from every clip of the scene
            assert gold.structure_difference(derived, gold._small(read_frames(f))) >= gold.SCENE_MIN
    # other content under the same scene name is not another scene either
    leaves = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8), (5, 5), 0)
    corner = tmp_path / "media" / "corner.mp4"
    write_video(corner, [np.roll(leaves, i, axis=1) for i in range(12)], 24)
    with cat.transaction():
        sid = cat.create_session("kitchen corner", mode="passes", scene="kitchen")
        a = cat.add_asset(corner, sha256=None, bytes=corner.stat().st_size, kind="clip", frames=12, fps=24)
        c = cat.add_clip(sid, "c001", asset_id=a, frames=12, fps=24, settings={})
        cat.add_pair(sid, c, c)
    before = set(made)
    made = gold.make_gold(cat, 2, sources, rng=random.Random(4), kinds=("swap",))
    for p in (p for p in review.review_pairs(cat) if p["pair_id"] in made):
        got = gold._small(read_frames(cat.abspath(p["other_path"])))
        assert gold.structure_difference(got, gold._small(read_frames(corner))) > gold.SCENE_MIN
    before |= set(made)
    # a session of another scene, with other content, is where a swap takes its clip from
    garden = tmp_path / "media" / "garden.mp4"
    write_video(garden, [np.roll(leaves, i, axis=0) for i in range(12)], 24)
    with cat.transaction():
        sid = cat.create_session("garden", mode="passes", scene="garden")
        a = cat.add_asset(garden, sha256=None, bytes=garden.stat().st_size, kind="clip", frames=12, fps=24)
        c = cat.add_clip(sid, "c001", asset_id=a, frames=12, fps=24, settings={})
        cat.add_pair(sid, c, c)
    made = gold.make_gold(cat, 1, sources, rng=random.Random(2), kinds=("swap",))
    new = [p for p in review.review_pairs(cat) if p["pair_id"] in made and p["pair_id"] not in before][0]
    got = gold._small(read_frames(cat.abspath(new["other_path"])))
    assert gold.structure_difference(got, gold._small(read_frames(garden))) < 0.2   # the garden's clip
    cat.close()


def test_every_gold_pair_differs_from_every_valid_pair_of_its_source(tmp_path):
    cat = make_catalog(tmp_path, 3)
    sources = review.review_pairs(cat)
    made = gold.make_gold(cat, 6, sources, rng=random.Random(5))
    valid = {p["pair_id"]: gold._small(read_frames(cat.abspath(p["other_path"]))) for p in cat.pairs()}
    reference = gold._small(read_frames(cat.abspath(sources[0]["reference_path"])))
    golds = [p for p in review.review_pairs(cat) if p["gold_kind"]]
    assert sorted(p["pair_id"] for p in golds) == sorted(made)
    for p in golds:
        g = gold._small(read_frames(cat.abspath(p["other_path"])))
        for v in [reference, *valid.values()]:
            assert gold.differs(g, v), (p["gold_kind"], p["pair_id"])
    # a "gold" clip identical to a valid one is what the check refuses
    assert not gold.differs(valid[1], valid[1])
    cat.close()


def test_a_shift_that_cannot_show_is_refused_not_made(tmp_path):
    """Horizontal stripes look the same shifted sideways: no gold pair is made from them, and the error says so."""
    cat = make_catalog(tmp_path, 1)
    pair = review.review_pairs(cat)[0]
    y = np.mgrid[0:64, 0:64][0]
    stripes = np.repeat(((y // 4) % 2 * 200 + 20).astype(np.uint8)[..., None], 3, axis=2)
    write_video(cat.abspath(pair["other_path"]), [stripes] * 12, 24)
    write_video(cat.abspath(pair["reference_path"]), [stripes] * 12, 24)
    with pytest.raises(ValueError, match=f"pair {pair['pair_id']}: no gold clip derived from it differs visibly"):
        gold.make_gold(cat, 1, [pair], kinds=("shift",))
    assert not [p for p in review.review_pairs(cat) if p["gold_kind"]]
    cat.close()
