"""What a reviewer sees beside the two clips: the difference clip, the settings table, headers, QC as information.

The difference clip shows |reference - other| frame by frame after the other clip is brought to the reference's
exposure (one gain and offset per channel for the whole clip), so an exposure change between the clips cancels
and what lights up is what moved or changed: misalignment, a changed scene, flicker (a change from frame to
frame), focus breathing. It is a real H.264 clip played in the same sync group as the pair, made once per pair
and kept beside the other clip (`review/` subfolder).
"""

from __future__ import annotations

import functools
import html
import json
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np

from capture.catalog import Catalog, setting_number
from rigs.camera.protocol import ROLES
from rigs.video import read_frames, write_video

DIFF_GAIN = 48.0          # one standard deviation of difference -> 48 grey levels
PARALLEL_FROM = 8         # pairs: below this a process pool costs more than it saves

_TABLE = """CREATE TABLE IF NOT EXISTS review_media (
    pair_id        INTEGER PRIMARY KEY REFERENCES pairs(id) ON DELETE CASCADE,
    reference_path TEXT NOT NULL,       -- the clips the difference was made from (remade when they change)
    other_path     TEXT NOT NULL,
    diff_path      TEXT NOT NULL,       -- relative to the catalog's data root
    created_at     REAL NOT NULL)"""

_ROLE_NAMES = {"iso": "ISO", "white_balance": "white balance", "focal": "focal length", "kelvin": "kelvin"}


def role_name(role: str) -> str:
    return _ROLE_NAMES.get(role, role.replace("_", " "))


def _ordered(roles: Iterable[str]) -> list[str]:
    roles = set(roles)
    return [r for r in ROLES if r in roles] + sorted(roles - set(ROLES))


def _label(role: str, value: Any) -> str:
    text = str(value)
    return f"ISO {text}" if role == "iso" and not text.upper().startswith("ISO") else text


def describe(settings: Mapping[str, Any]) -> str:
    """'f/8 · 1/50 · ISO 100': the settings of one clip, in the camera's role order."""
    return " · ".join(_label(r, settings[r]) for r in _ordered(settings)) or "no settings recorded"


def change_text(reference: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """What changed from the reference to the other clip: 'aperture f/8 -> f/2.8'."""
    changed = [r for r in _ordered({*reference, *other}) if str(reference.get(r, "-")) != str(other.get(r, "-"))]
    if not changed:
        return "no requested setting differs"
    return "; ".join(f"{role_name(r)} {reference.get(r, '-')} -> {other.get(r, '-')}" for r in changed)


# ------------------------------------------------------------------------------------------- settings table

def clip_readings(cat: Catalog, clip_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Counter]]]:
    """Per clip and role: how often each read-back and EXIF value was seen over the clip's frames (and the clip
    file itself, for recorded passes). One query for all clips."""
    ids = sorted(set(int(c) for c in clip_ids))
    out: dict[int, dict[str, dict[str, Counter]]] = defaultdict(lambda: defaultdict(lambda: {
        "readback": Counter(), "exif": Counter()}))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = cat.conn.execute(f"""
            WITH members(clip_id, asset_id) AS (
                SELECT c.id, a.id FROM clips c
                JOIN points p ON p.session_id = c.session_id AND p.combination_key = c.combination_key
                JOIN assets a ON a.point_id = p.id WHERE c.id IN ({marks})
                UNION SELECT c.id, c.asset_id FROM clips c WHERE c.id IN ({marks}) AND c.asset_id IS NOT NULL)
            SELECT m.clip_id, s.role, s.readback_text, s.exif_text, count(*)
            FROM members m JOIN asset_settings s ON s.asset_id = m.asset_id
            GROUP BY m.clip_id, s.role, s.readback_text, s.exif_text""", (*chunk, *chunk)).fetchall()
        for clip_id, role, readback, exif, n in rows:
            if readback is not None:
                out[clip_id][role]["readback"][readback] += n
            if exif is not None:
                out[clip_id][role]["exif"][exif] += n
    return out


@functools.lru_cache(maxsize=4096)
def _number(role: str, value: str) -> float | None:
    return setting_number(role, value)


def _same(role: str, a: Any, b: Any) -> bool:
    na, nb = _number(role, str(a)), _number(role, str(b))
    if na is not None and nb is not None:
        return abs(na - nb) <= 1e-6 * max(abs(na), abs(nb), 1e-12)
    return str(a).strip().lower() == str(b).strip().lower()


def _td(text: str, *classes: str, tag: str = "td") -> str:
    names = " ".join(c for c in classes if c)
    return f'<{tag} class="{names}">{text}</{tag}>' if names else f"<{tag}>{text}</{tag}>"


@functools.lru_cache(maxsize=8192)
def _cell(role: str, seen: tuple[tuple[str, int], ...], requested: str | None, changed: bool) -> str:
    """One read-back or EXIF cell; `seen` is (value, frames) most common first. Cached: the reference clip's
    cells repeat in every pair that shares it."""
    mark = "cc-changed" if changed else ""
    if not seen:
        return _td("–", mark)
    total = sum(n for _, n in seen)
    parts = [(value if n == total else f"{value} ({n} of {total})") for value, n in seen[:2]]
    text = ", ".join(html.escape(str(p)) for p in parts) + (" …" if len(seen) > 2 else "")
    off = requested is not None and any(not _same(role, v, requested) for v, _ in seen)
    return _td(text, mark, "cc-mismatch" if off else "")


def settings_html(pair: Mapping[str, Any], readings: Mapping[int, Mapping[str, Mapping[str, Counter]]]) -> str:
    """Requested / read-back / EXIF for both clips, one column per setting; the changed settings are
    highlighted, a read-back or EXIF value that disagrees with the request is marked."""
    ref, oth = pair.get("reference_settings") or {}, pair.get("other_settings") or {}
    sides = (("Ref.", ref, readings.get(pair["reference_clip_id"], {})),
             ("Other", oth, readings.get(pair["other_clip_id"], {})))
    roles = _ordered({*ref, *oth, *sides[0][2], *sides[1][2]})
    if not roles:
        return "<p>No settings recorded for these clips.</p>"
    changed = {r for r in roles if str(ref.get(r, "-")) != str(oth.get(r, "-"))}
    head = "".join(_td(html.escape(role_name(r)), "cc-changed" if r in changed else "", tag="th") for r in roles)
    rows = [f"<tr><th></th>{head}</tr>"]
    for side, requested, seen in sides:
        req = "".join(_td(html.escape(str(requested.get(r, "–"))), "cc-changed" if r in changed else "")
                      for r in roles)
        rows.append(f"<tr><th>{side} requested</th>{req}</tr>")
        for kind, name in (("readback", "read-back"), ("exif", "EXIF")):
            cells = "".join(_cell(r, tuple(seen.get(r, {}).get(kind, Counter()).most_common()),
                                  None if requested.get(r) is None else str(requested.get(r)), r in changed)
                            for r in roles)
            rows.append(f"<tr><th>{side} {name}</th>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


_QC_FIGURES = (("alignment_px", "alignment", "{:.2f} px"), ("clipped_fraction", "clipped", "{:.1%}"),
               ("sharpness_ratio", "sharpness other/ref", "{:.2f}"))
_VERDICT_LIKE = {"passed", "pass", "verdict", "accept", "accepted", "ok"}


def qc_html(qc: Mapping[str, Any] | None) -> str:
    """The automatic quality check as figures and flags: information for the reviewer, never a verdict
    (pass/fail fields are left out on purpose)."""
    qc = dict(qc or {})
    parts = []
    for key, name, fmt in _QC_FIGURES:
        value = qc.pop(key, None)
        if isinstance(value, (int, float)):
            parts.append(f"{name} {fmt.format(value)}")
    flags = qc.pop("flags", None) or []
    for key in sorted(qc):
        value = qc[key]
        if key.lower() in _VERDICT_LIKE or isinstance(value, bool) or key.startswith("_"):
            continue
        if isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {value:.3g}")
        elif isinstance(value, (int, str)):
            parts.append(f"{key.replace('_', ' ')} {value}")
    text = html.escape(" · ".join(parts) or "no automatic check recorded")
    if flags:
        text += " · <b>flags:</b> " + html.escape("; ".join(str(f) for f in flags))
    return f"<p><b>Automatic check</b> (information, not a verdict): {text}</p>"


# ------------------------------------------------------------------------------------------- difference clip

def _stats(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and channel: mean and standard deviation (frames x channels each)."""
    ms = [cv2.meanStdDev(f) for f in frames]
    return (np.array([m.ravel() for m, _ in ms], np.float32), np.array([s.ravel() for _, s in ms], np.float32))


def difference_frames(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> list[np.ndarray]:
    """|ref - other| per frame, the other clip brought to the reference's exposure by one gain and offset per
    channel for the whole clip (the median over frames), so a steady exposure change between the clips cancels
    while a frame whose brightness jumps (flicker) lights up; the other clip is resized to the reference."""
    n = min(len(reference), len(other))
    if n == 0:
        raise ValueError("a difference clip needs frames on both sides")
    h, w = reference[0].shape[:2]
    other = [b if b.shape[:2] == (h, w) else cv2.resize(b, (w, h), interpolation=cv2.INTER_AREA) for b in other[:n]]
    ma, sa = _stats(reference[:n])
    mb, sb = _stats(other)
    gain = np.median(sa / (sb + 1e-3), axis=0)
    offset = np.median(ma - gain * mb, axis=0)
    scale = DIFF_GAIN / (np.median(sa, axis=0) + 1e-3)
    k_other, k_offset = (gain * scale).astype(np.float32), (offset * scale).astype(np.float32)
    k_ref = scale.astype(np.float32)
    out = []
    for a, b in zip(reference[:n], other):
        diff = cv2.absdiff(a.astype(np.float32) * k_ref, b.astype(np.float32) * k_other + k_offset)
        out.append(np.clip(diff, 0, 255).astype(np.uint8))
    return out


def write_difference_clip(reference: Path, other: Path, out: Path, fps: float) -> Path:
    return write_video(out, difference_frames(read_frames(reference), read_frames(other)), fps)


def review_path(pair: Mapping[str, Any], side: str) -> str:
    """The clip a reviewer watches: the proxy when there is one."""
    return pair[f"{side}_proxy_path"] or pair[f"{side}_path"]


def ensure_difference_clips(cat: Catalog, pairs: Sequence[Mapping[str, Any]], *, jobs: int | None = None
                            ) -> dict[int, str]:
    """The difference clip of each pair (relative path), made where missing or stale; several processes for
    many pairs. A crash leaves no half-written clip (written under a temporary name, then renamed)."""
    cat.conn.execute(_TABLE)
    known = {r[0]: r[1:] for r in cat.conn.execute(
        "SELECT pair_id, reference_path, other_path, diff_path FROM review_media")}
    have: dict[int, str] = {}
    todo: list[tuple[int, str, str, str, float]] = []
    for p in pairs:
        ref, oth = review_path(p, "reference"), review_path(p, "other")
        if not ref or not oth:
            raise ValueError(f"pair {p['pair_id']} has no clip file on one side: rebuild the session's clips")
        row = known.get(p["pair_id"])
        if row and row[0] == ref and row[1] == oth and os.path.exists(cat.data_root / row[2]):
            have[p["pair_id"]] = row[2]
            continue
        folder = Path(oth).parent.as_posix()
        diff = f"{'' if folder == '.' else folder + '/'}review/{cat.station_id}-pair{p['pair_id']:06d}.diff.mp4"
        todo.append((p["pair_id"], ref, oth, diff, float(p.get("fps") or 24)))
    if not todo:
        return have
    args = [(cat.abspath(r), cat.abspath(o), cat.abspath(d), fps) for _, r, o, d, fps in todo]
    workers = min(jobs or os.cpu_count() or 1, len(todo))
    if len(todo) < PARALLEL_FROM or workers < 2:
        for a in args:
            write_difference_clip(*a)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_args, args, chunksize=max(1, len(args) // (workers * 4))))
    now = time.time()
    with cat.transaction():
        cat.conn.executemany("INSERT OR REPLACE INTO review_media VALUES (?,?,?,?,?)",
                             [(pid, r, o, d, now) for pid, r, o, d, _ in todo])
    have.update({pid: d for pid, _, _, d, _ in todo})
    return have


def _write_args(args: tuple[Path, Path, Path, float]) -> str:
    return str(write_difference_clip(*args))


def data_sha(data: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
