"""Pair QC figures and pair formation (clips and proxies themselves: tests/rigs/test_video.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from capture import clips
from capture.pairs import choose_reference, form_pairs, physical_deltas


def _texture(w=101, h=75, shift=0, gain=1.0):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, size=(h, w + 40, 3)).astype(np.float32)
    base = np.asarray(Image.fromarray(base.astype(np.uint8)).resize((w + 40, h)))  # keep texture
    return np.clip(base[:, 20 + shift:20 + shift + w] * gain, 0, 255).astype(np.uint8)


def test_quality_check_sees_misalignment_clipping_and_blur():
    ref = [_texture(shift=0) for _ in range(3)]
    same = [_texture(shift=0, gain=0.5) for _ in range(3)]          # darker, same geometry
    moved = [_texture(shift=6) for _ in range(3)]
    blown = [_texture(gain=4.0) for _ in range(3)]
    blurred = [np.asarray(Image.fromarray(f).resize((25, 19)).resize((101, 75))) for f in ref]
    assert clips.pair_quality(ref, same).alignment_px < 0.5
    assert 5 < clips.pair_quality(ref, moved).alignment_px < 7
    assert "misaligned" in " ".join(clips.pair_quality(ref, moved).flags)
    assert clips.pair_quality(ref, blown).clipped_fraction > 0.3
    assert clips.pair_quality(ref, blurred).sharpness_ratio < 0.5


def test_pairs_reference_defaults_to_deepest_dof_at_base_iso():
    combos = {0: {"aperture": "f/2.8", "iso": "100"}, 1: {"aperture": "f/11", "iso": "100"},
              2: {"aperture": "f/11", "iso": "400"}}
    assert choose_reference(combos, {}) == 1
    assert choose_reference(combos, {"aperture": "f/2.8"}) == 0
    pairs = form_pairs(combos, {})
    assert [(p.reference, p.target) for p in pairs] == [(1, 0), (1, 2)]
    d = physical_deltas({"aperture": "f/2.8", "shutter": "1/250", "iso": "100"},
                        {"aperture": "f/5.6", "shutter": "1/60", "iso": "100"})
    assert abs(d["aperture_stops"] - 2) < 1e-9 and abs(d["exposure_ev"] - (2.06 - 2)) < 0.01
