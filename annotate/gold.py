"""Gold pairs: known-bad pairs derived from good ones, mixed among the real tasks to measure each reviewer.

Each gold pair keeps a real pair's reference clip and settings and replaces the other clip by a derived one
that a careful reviewer must reject:
- `shift`   the other clip translated sideways (about 6 % of its width): misaligned;
- `flicker` the other clip with its brightness jumping every two frames: flicker;
- `swap`    the other clip replaced by a clip of another session (another scene), or, with a single session,
            by the other clip mirrored and played backwards: the scene changed.
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
EXPECTED_VERDICT = "reject"
EXPECTED_REASON = {"shift": "misaligned", "flicker": "flicker", "swap": "scene_changed"}
SHIFT_FRACTION = 0.06
FLICKER_GAINS = (1.0, 1.0, 0.55, 0.55)     # per frame, repeating: a visible jump every two frames


def shifted(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    dx = max(4, round(w * SHIFT_FRACTION))
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


def make_gold(cat: Catalog, count: int, sources: Sequence[Mapping[str, Any]], *,
              rng: random.Random | None = None, kinds: Sequence[str] = KINDS) -> list[int]:
    """`count` new gold pairs derived from `sources` (real pairs with readable clips), kinds in rotation.
    Returns the new pair ids."""
    if count <= 0:
        return []
    sources = [s for s in sources if not is_gold(s)]
    if not sources:
        raise ValueError("no real pair to derive gold pairs from: push real pairs first")
    rng = rng or random.Random()
    order = list(kinds)
    rng.shuffle(order)
    made = []
    for i in range(count):
        kind, src = order[i % len(order)], rng.choice(sources)
        ref_frames = list(read_frames(cat.abspath(review_path(src, "reference"))))
        other_rel = review_path(src, "other")
        frames = list(read_frames(cat.abspath(other_rel)))
        elsewhere = None
        if kind == "swap":
            other_session = [s for s in sources if s["session_id"] != src["session_id"]]
            if other_session:
                elsewhere = list(read_frames(cat.abspath(review_path(rng.choice(other_session), "other"))))
        derived = derive(kind, frames, elsewhere)
        fps = float(src.get("fps") or 24)
        folder = Path(other_rel).parent
        out = cat.abspath((folder / "review" / f"{secrets.token_hex(6)}.mp4").as_posix())
        write_video(out, derived, fps)
        quality = pair_quality(ref_frames, derived)
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


def accuracy(votes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Of one reviewer's counted gold verdicts: how many rejected (the right verdict), and how many also named
    the defect's reason."""
    n = len(votes)
    right = sum(v["verdict"] == EXPECTED_VERDICT for v in votes)
    reason = sum(v["verdict"] == EXPECTED_VERDICT and EXPECTED_REASON[v["gold_kind"]] in (v.get("reasons") or [])
                 for v in votes)
    return {"gold_tasks": n, "gold_correct": right, "gold_accuracy": (right / n) if n else None,
            "gold_reason_accuracy": (reason / n) if n else None}
