"""Gold pairs: known-bad pairs derived from good ones, mixed among the real tasks to measure each reviewer.

Each gold pair keeps a real pair's reference clip and settings and replaces the other clip by a derived one
that a careful reviewer must reject:
- `shift`   the other clip translated sideways (about 6 % of its width): misaligned;
- `flicker` the other clip with every fourth frame half as bright: flicker;
- `swap`    the other clip replaced by a clip of another *scene* (another scene name, and content that differs
            by more than SCENE_MIN), or, with no such clip, by the other clip mirrored and played backwards
            when that differs as much: the scene changed.
A derived clip is kept only if it differs visibly from every valid clip a reviewer could see against the same
reference (`differs`: by structure, or by a brightness that jumps from frame to frame); retakes of one plan are
byte-identical, so "another session" is not enough. A shift that does not show is made larger.
The derived clips are real H.264 files written with PyAV; the pairs carry `gold_kind` and the pair they came
from, and the catalog refuses to make them train-ready (migration 5 triggers); `train_ready_pairs` skips them.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from capture.catalog import Catalog, sha256_file
from capture.clips import pair_quality
from rigs.video import read_frames, write_video

from .media import review_path

KINDS = ("shift", "flicker", "swap")
SCENE_MIN = 0.6        # structure difference (mean |z(a) - z(b)|, per-frame z-scores) of another scene
SEEN_MIN = 0.3         # structure difference a gold clip must reach against every valid clip (or flicker:)
FLICKER_MIN = 0.3      # spread of log(brightness ratio) over frames: 0.69 for FLICKER_GAINS
MAX_SHIFT = 0.25
EXPECTED_VERDICT = "reject"
EXPECTED_REASON = {"shift": "misaligned", "flicker": "flicker", "swap": "scene_changed"}
SHIFT_FRACTION = 0.06
FLICKER_GAINS = (1.0, 1.0, 1.0, 0.5)      # per frame, repeating: every fourth frame half as bright


def shifted(frames: Sequence[np.ndarray], fraction: float = SHIFT_FRACTION) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    dx = max(4, round(w * fraction))
    matrix = np.float32([[1, 0, dx], [0, 1, 0]])
    return [cv2.warpAffine(f, matrix, (w, h), borderMode=cv2.BORDER_REFLECT) for f in frames]


def flickering(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(f.astype(np.float32) * FLICKER_GAINS[i % len(FLICKER_GAINS)], 0, 255).astype(np.uint8)
            for i, f in enumerate(frames)]


def swapped(frames: Sequence[np.ndarray], elsewhere: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """Another scene's frames, fitted to this clip's size and length; without one, this clip mirrored and
    reversed (a different view of the scene on every frame)."""
    h, w = frames[0].shape[:2]
    if elsewhere:
        return [cv2.resize(elsewhere[i % len(elsewhere)], (w, h), interpolation=cv2.INTER_AREA)
                for i in range(len(frames))]
    return [np.ascontiguousarray(f[:, ::-1]) for f in reversed(frames)]


def derive(kind: str, frames: Sequence[np.ndarray], elsewhere: Sequence[np.ndarray] | None = None
           ) -> list[np.ndarray]:
    if kind == "shift":
        return shifted(frames)
    if kind == "flicker":
        return flickering(frames)
    if kind == "swap":
        return swapped(frames, elsewhere)
    raise ValueError(f"unknown gold kind {kind!r}: use one of {', '.join(KINDS)}")


def _small(frames: Sequence[np.ndarray], n: int = 12, width: int = 64) -> np.ndarray:
    """Up to n frames, grey, `width` wide, as float32 (what the comparisons below read)."""
    idx = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    h, w = frames[0].shape[:2]
    size = (width, max(1, round(h * width / w)))
    return np.stack([cv2.resize(cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
                     for i in idx]).astype(np.float32)


def structure_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |z(a) - z(b)| with each frame brought to zero mean and unit variance: what differs in content,
    whatever the exposure (0 for the same view; about 1.1 for unrelated content)."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if a.shape[1:] != b.shape[1:]:
        b = np.stack([cv2.resize(f, (a.shape[2], a.shape[1]), interpolation=cv2.INTER_AREA) for f in b])

    def z(x):
        m, s = x.mean(axis=(1, 2), keepdims=True), x.std(axis=(1, 2), keepdims=True)
        return (x - m) / (s + 1e-3)

    return float(np.abs(z(a) - z(b)).mean())


def flicker_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Spread over frames of log(brightness of a / brightness of b): 0 when one is a steady exposure change of
    the other, large when one flickers."""
    n = min(len(a), len(b))
    ratio = np.log((a[:n].mean(axis=(1, 2)) + 1.0) / (b[:n].mean(axis=(1, 2)) + 1.0))
    return float(np.ptp(ratio))


def differs(gold_clip: np.ndarray, valid: np.ndarray) -> bool:
    """Whether a reviewer can see that `gold_clip` is not the valid clip `valid` (both from `_small`)."""
    return structure_difference(gold_clip, valid) >= SEEN_MIN or flicker_difference(gold_clip, valid) >= FLICKER_MIN


def is_gold(pair: Mapping[str, Any]) -> bool:
    return pair.get("gold_kind") is not None


def gold_info(cat: Catalog) -> dict[int, dict[str, Any]]:
    """pair id -> {kind, source} for every gold pair."""
    return {r[0]: {"kind": r[1], "source": r[2]} for r in cat.conn.execute(
        "SELECT id, gold_kind, gold_source_pair_id FROM pairs WHERE gold_kind IS NOT NULL")}


def _add_clip_asset(cat: Catalog, path: Path, session_id: int, frames: int, fps: float, w: int, h: int) -> int:
    sha = sha256_file(path)
    try:
        return cat.add_asset(path, sha256=sha, bytes=path.stat().st_size, kind="proxy", metadata_status="unparsed",
                             error="gold review clip derived by cinectrl (known bad: never for training)",
                             frames=frames, fps=fps, width=w, height=h, session_id=session_id,
                             mtime=path.stat().st_mtime)
    except sqlite3.IntegrityError:   # identical bytes already catalogued
        return int(cat.asset_by_sha256(sha)["id"])


def _scene(pair: Mapping[str, Any]) -> str:
    return str(pair.get("scene") or f"session {pair['session_id']}")


def make_gold(cat: Catalog, count: int, sources: Sequence[Mapping[str, Any]], *,
              rng: random.Random | None = None, kinds: Sequence[str] = KINDS) -> list[int]:
    """`count` new gold pairs derived from `sources` (real pairs with readable clips), kinds in rotation, each
    checked to differ visibly from every valid clip shown against its reference. Returns the new pair ids."""
    if count <= 0:
        return []
    sources = [s for s in sources if not is_gold(s)]
    if not sources:
        raise ValueError("no real pair to derive gold pairs from: push real pairs first")
    rng = rng or random.Random()
    order = list(kinds)
    rng.shuffle(order)
    everything = cat.pairs()
    cache: dict[str, list[np.ndarray]] = {}

    def frames_of(rel: str) -> list[np.ndarray]:
        if rel not in cache:
            cache[rel] = list(read_frames(cat.abspath(rel)))
        return cache[rel]

    made = []
    for i in range(count):
        kind, src = order[i % len(order)], rng.choice(sources)
        ref_rel, other_rel = review_path(src, "reference"), review_path(src, "other")
        frames = frames_of(other_rel)
        valid = [_small(frames_of(rel)) for rel in {ref_rel, other_rel} | {
            review_path(p, "other") for p in everything if p["reference_clip_id"] == src["reference_clip_id"]}]
        kind, derived = _derive_visible(kind, src, frames, valid, everything, frames_of, rng)
        fps = float(src.get("fps") or 24)
        folder = Path(other_rel).parent
        out = cat.abspath((folder / "review" / f"{secrets.token_hex(6)}.mp4").as_posix())
        write_video(out, derived, fps)
        quality = pair_quality(frames_of(ref_rel), derived)
        h, w = derived[0].shape[:2]
        with cat.transaction():
            asset = _add_clip_asset(cat, out, src["session_id"], len(derived), fps, w, h)
            clip = cat.add_clip(src["session_id"], f"gold-{kind}-{out.stem}", asset_id=asset, proxy_asset_id=asset,
                                frames=len(derived), fps=fps, settings=src.get("other_settings") or {})
            pair = cat.add_pair(src["session_id"], src["reference_clip_id"], clip, deltas=src.get("deltas"),
                                controls=src.get("controls"),
                                qc={"alignment_px": quality.alignment_px, "clipped_fraction": quality.clipped_fraction,
                                    "sharpness_ratio": quality.sharpness_ratio, "frames": quality.frames,
                                    "flags": quality.flags})
            cat.conn.execute("UPDATE pairs SET gold_kind = ?, gold_source_pair_id = ? WHERE id = ?",
                             (kind, src["pair_id"], pair))
        made.append(pair)
    return made


def _derive_visible(kind: str, src: Mapping[str, Any], frames: Sequence[np.ndarray], valid: Sequence[np.ndarray],
                    everything: Sequence[Mapping[str, Any]], frames_of, rng: random.Random
                    ) -> tuple[str, list[np.ndarray]]:
    """A derived clip of `kind` that differs from every valid clip; a swap with no clip of another scene that
    differs enough falls back to the mirrored clip, then to a shift; a shift grows until it shows."""
    def visible(clip: Sequence[np.ndarray]) -> bool:
        small = _small(clip)
        return all(differs(small, v) for v in valid)

    if kind == "swap":
        others = [p for p in everything if _scene(p) != _scene(src)]
        rng.shuffle(others)
        for p in others:
            derived = swapped(frames, frames_of(review_path(p, "other")))
            small = _small(derived)
            if all(structure_difference(small, v) >= SCENE_MIN for v in valid):
                return kind, derived
        derived = swapped(frames, None)
        if all(structure_difference(_small(derived), v) >= SCENE_MIN for v in valid):
            return kind, derived
        kind = "shift"
    if kind == "flicker":
        derived = flickering(frames)
        if visible(derived):
            return kind, derived
        kind = "shift"
    fraction = SHIFT_FRACTION
    while fraction <= MAX_SHIFT:
        derived = shifted(frames, fraction)
        if visible(derived):
            return "shift", derived
        fraction *= 1.5
    raise ValueError(f"pair {src['pair_id']}: no gold clip derived from it differs visibly from its valid clips "
                     "(a flat or featureless scene?); choose other pairs for gold")


def accuracy(votes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Of one reviewer's counted gold verdicts: how many rejected (the right verdict), and how many also named
    the defect's reason."""
    n = len(votes)
    right = sum(v["verdict"] == EXPECTED_VERDICT for v in votes)
    reason = sum(v["verdict"] == EXPECTED_VERDICT and EXPECTED_REASON[v["gold_kind"]] in (v.get("reasons") or [])
                 for v in votes)
    return {"gold_tasks": n, "gold_correct": right, "gold_accuracy": (right / n) if n else None,
            "gold_reason_accuracy": (reason / n) if n else None}
