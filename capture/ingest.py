"""One file -> catalog rows: hash, read metadata, write the asset with its EXIF and settings.

`ingest_file` is the door the capture runner uses inside its own frame transaction; `ingest_one` is what
the bulk job (`capture.bulk`) falls back to for a file that needs the catalog's judgement (already
catalogued, moved, duplicate, unreadable).
Identity is the content: the same bytes are one asset however often, or from wherever, they are ingested.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .catalog import Catalog
from .exif import (ERROR, PARSED, UNPARSED, VIDEO_FORMATS, ExifTool, Metadata, exif_settings, read_metadata,
                   sniff)

RAW_EXTENSIONS = {"dng", "nef", "nrw", "arw", "srf", "sr2", "cr2", "cr3", "crw", "raf", "rw2", "orf", "pef",
                  "iiq", "x3f", "mrw", "raw", "3fr", "erf", "kdc", "mos", "rwl", "srw"}
RAW_FORMATS = {"cr3", "raf", "crw", "mrw", "x3f", "kyocera-raw"}
SIDECAR_EXTENSIONS = {"xmp", "json", "txt", "csv", "toml"}
# What cameras and phones write: stills, RAWs, video. A file with another extension counts as media only when
# its first bytes are an image or video container cinectrl recognises (extensions lie both ways).
MEDIA_EXTENSIONS = RAW_EXTENSIONS | {
    "jpg", "jpeg", "jpe", "jfif", "tif", "tiff", "png", "webp", "heic", "heif", "hif", "avif", "gif", "bmp",
    "mov", "mp4", "m4v", "avi", "mts", "m2ts", "mxf", "mkv", "webm", "3gp", "crm", "braw", "r3d", "insv", "lrv"}

# Outcomes, as counted in the summary line.
NEW_PARSED, NEW_UNPARSED, NEW_ERROR = "parsed", "unparsed", "error"
KNOWN, MOVED, DUPLICATE, REPARSED = "already catalogued", "moved", "duplicate", "re-parsed"
SKIPPED = "skipped (not camera media)"


def is_media(path: str | os.PathLike[str]) -> bool:
    """Whether a bulk ingest should catalog this file. A media extension always counts (a broken JPEG is a
    problem to record); otherwise the first bytes decide, so a session's report.html, a README or a JSON
    sidecar is skipped (and counted) instead of being recorded as a broken file."""
    if os.path.splitext(path)[1].lower().lstrip(".") in MEDIA_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    return bool(head) and sniff(head) is not None


@dataclass
class IngestResult:
    path: Path
    outcome: str
    asset_id: int | None
    status: str | None = None            # the asset's metadata_status
    reason: str | None = None            # error / unparsed reason, or what the duplicate duplicates


# Files the capture runner writes beside a frame (JSON sidecar, true depth): nothing for EXIF readers.
RUNNER_SIDECARS = {"sidecar", "depth"}


def guess_kind(path: str | os.PathLike[str], fmt: str | None) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt in RAW_FORMATS or ext in RAW_EXTENSIONS:
        return "raw"
    if fmt in VIDEO_FORMATS:
        return "clip"
    if ext in SIDECAR_EXTENSIONS:
        return "sidecar"
    return "still"


def ingest_file(catalog: Catalog, path: str | os.PathLike[str], *, kind: str | None = None,
                session_id: int | None = None, point_id: int | None = None, frame_index: int | None = None,
                requested: Mapping[str, Any] | None = None, readback: Mapping[str, Any] | None = None,
                slider: Mapping[str, Any] | None = None, maker_notes: bool = True,
                sha256: str | None = None) -> int:
    """Catalog one file the caller just wrote and return its asset id.

    Writes the asset, EXIF, per-role settings (requested / read-back / EXIF) and slider rows. Call it
    inside `with catalog.transaction():` to commit them together with the point's status; it never
    commits an outer transaction itself. `slider`: target_mm, position_mm, at, move_started_at,
    move_finished_at. If the same bytes are already catalogued, that asset is linked to this
    session/point and its id returned. `sha256`: the hash the caller computed while writing the file
    (saves hashing it again: ~1.5 ms for a 2 MB JPEG). Raises OSError if the file cannot be read."""
    result = _ingest(catalog, Path(path), kind=kind, session_id=session_id, point_id=point_id,
                     frame_index=frame_index, requested=requested, readback=readback, slider=slider,
                     maker_notes=maker_notes, raise_os_errors=True, sha256=sha256)
    assert result.asset_id is not None
    return result.asset_id


def ingest_one(catalog: Catalog, path: Path, *, maker_notes: bool = True,
               use_exiftool: bool | None = None) -> IngestResult:
    """One file of a bulk ingest: never raises for a bad file (it gets an error row)."""
    return _ingest(catalog, path, maker_notes=maker_notes, use_exiftool=use_exiftool, raise_os_errors=False)


# Files up to this size are read in one call and hashed from memory (thousands of small files a second). A
# bigger one is read once in blocks that stay in the CPU's cache, hashed as they come, keeping only its head
# (the headers the metadata readers parse) and its tail: one big buffer hashed after the read went through
# memory twice and took 2x `openssl dgst -sha256` on camera-sized JPEGs (benchmarks/ingest.py).
WHOLE_FILE_LIMIT = 1 << 20
BLOCK_BYTES = 1 << 20
HEAD_BYTES = 256 << 10       # a JPEG's segments before its scan (EXIF, maker notes, XMP, ICC) fit in far less
TAIL_BYTES = 64 << 10


@dataclass
class FileContent:
    sha: str
    size: int
    mtime: float
    data: bytes                    # the whole file, or its head when the file is big
    tail: bytes | None = None      # the last bytes of a big file


def read_file(path: str | os.PathLike[str], sha256: str | None = None) -> FileContent:
    """Hash a file and keep what the metadata readers need, without holding a 4 GB clip in memory.
    With `sha256` (the caller hashed the bytes as it wrote them) the file is not hashed again.
    Whole files are read through the plain descriptor: half the cost of a buffered file object, which
    shows in bulk ingests of thousands of small files a second."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size <= WHOLE_FILE_LIMIT:
            data = _read_to_end(fd, st.st_size)
            return FileContent(sha256 or hashlib.sha256(data).hexdigest(), len(data), st.st_mtime, data)
        if sha256 is not None:
            head = os.pread(fd, HEAD_BYTES, 0)
            return FileContent(sha256, st.st_size, st.st_mtime, head, os.pread(fd, TAIL_BYTES,
                                                                            max(0, st.st_size - TAIL_BYTES)))
        return _stream(fd, st)
    finally:
        os.close(fd)


def _stream(fd: int, st: os.stat_result) -> FileContent:
    """One pass over a big file: each block hashed while it is in cache, the head and tail kept."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK_BYTES)
    view = memoryview(buffer)
    head: list[bytes] = []
    tail: list[bytes] = []
    tail_from = max(0, st.st_size - TAIL_BYTES)
    pos = 0
    with open(fd, "rb", buffering=0, closefd=False) as fh:
        while n := fh.readinto(buffer):
            block = view[:n]
            digest.update(block)
            if pos < HEAD_BYTES:
                head.append(bytes(block[:HEAD_BYTES - pos]))
            if pos + n > tail_from:
                tail.append(bytes(block[max(0, tail_from - pos):]))
            pos += n
    end = b"".join(tail)[-TAIL_BYTES:] if pos == st.st_size else os.pread(fd, TAIL_BYTES, max(0, pos - TAIL_BYTES))
    return FileContent(digest.hexdigest(), pos, st.st_mtime, b"".join(head), end)


def _read_to_end(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)
    if len(data) != size:           # a short read (network file systems) or the file grew: read to the end
        parts = [data]
        while more := os.read(fd, 1 << 20):
            parts.append(more)
        data = b"".join(parts)
    return data


def _ingest(catalog: Catalog, path: Path, *, kind: str | None = None, session_id: int | None = None,
            point_id: int | None = None, frame_index: int | None = None,
            requested: Mapping[str, Any] | None = None, readback: Mapping[str, Any] | None = None,
            slider: Mapping[str, Any] | None = None, maker_notes: bool = True,
            use_exiftool: bool | None = None, raise_os_errors: bool = False,
            sha256: str | None = None) -> IngestResult:
    try:
        content = read_file(path, sha256)
    except OSError as exc:
        if raise_os_errors:
            raise
        return _unreadable(catalog, path, exc)
    sha = content.sha
    with catalog.transaction():
        existing = catalog.conn.execute("SELECT id, path, metadata_status FROM assets WHERE sha256 = ?",
                                        (sha,)).fetchone()
        if existing:
            return _known(catalog, path, existing, content, kind=kind, session_id=session_id, point_id=point_id,
                          frame_index=frame_index, requested=requested, readback=readback, slider=slider,
                          maker_notes=maker_notes, use_exiftool=use_exiftool)
        if kind in RUNNER_SIDECARS:
            meta = Metadata(UNPARSED, format=path.suffix.lstrip(".").lower() or None,
                            error=f"{kind} file written beside the frame: it carries no camera metadata")
        else:
            meta = read_metadata(content.data, path, maker_notes=maker_notes, use_exiftool=use_exiftool,
                                 tail=content.tail)
        asset_id = catalog.add_asset(
            path, sha256=sha, bytes=content.size, kind=kind or guess_kind(path, meta.format),
            metadata_status=meta.status, metadata_source=meta.source, error=meta.error, width=meta.width,
            height=meta.height, frames=meta.frames, fps=meta.fps, session_id=session_id, point_id=point_id,
            frame_index=frame_index, mtime=content.mtime)
        _write_details(catalog, asset_id, meta, requested, readback, slider)
    return IngestResult(path, meta.status, asset_id, meta.status, meta.error)


def _write_details(catalog: Catalog, asset_id: int, meta: Metadata, requested: Mapping[str, Any] | None,
                   readback: Mapping[str, Any] | None, slider: Mapping[str, Any] | None, *,
                   fresh: bool = True) -> None:
    if meta.status == PARSED:
        catalog.put_exif(asset_id, {**meta.fields, "tags": meta.tags})
        exif = exif_settings(meta.fields)
        if exif and fresh:
            catalog.add_exif_settings(asset_id, exif)
        elif exif:
            catalog.set_settings(asset_id, exif={role: text for role, (text, _) in exif.items()})
    _write_runner_rows(catalog, asset_id, requested, readback, slider)


def _write_runner_rows(catalog: Catalog, asset_id: int, requested: Mapping[str, Any] | None,
                       readback: Mapping[str, Any] | None, slider: Mapping[str, Any] | None) -> None:
    """What only the capture runner knows about a frame: requested and read-back settings, slider position."""
    if requested or readback:
        catalog.set_settings(asset_id, requested=requested, readback=readback)
    if slider:
        catalog.set_slider(asset_id, target_mm=slider.get("target_mm"), position_mm=slider.get("position_mm"),
                           at=slider.get("at"), move_started_at=slider.get("move_started_at"),
                           move_finished_at=slider.get("move_finished_at"))


def _known(catalog: Catalog, path: Path, existing: tuple[int, str, str], content: FileContent, *,
           kind: str | None,
           session_id: int | None, point_id: int | None, frame_index: int | None,
           requested: Mapping[str, Any] | None, readback: Mapping[str, Any] | None,
           slider: Mapping[str, Any] | None, maker_notes: bool, use_exiftool: bool | None) -> IngestResult:
    asset_id, stored, status = existing
    here = catalog.relpath(path)
    outcome, reason = KNOWN, None
    if stored != here:
        if catalog.abspath(stored).exists():
            outcome, reason = DUPLICATE, f"same bytes as asset {asset_id} ({stored})"
        else:
            catalog.move_asset(asset_id, path)
            outcome, reason = MOVED, f"was {stored}"
    if status == UNPARSED and (use_exiftool if use_exiftool is not None else ExifTool.available()):
        meta = read_metadata(content.data, path, maker_notes=maker_notes, use_exiftool=True, tail=content.tail)
        if meta.status == PARSED:
            catalog.conn.execute("UPDATE assets SET metadata_status = ?, metadata_source = ?, error = NULL, "
                                 "width = coalesce(width, ?), height = coalesce(height, ?), "
                                 "frames = coalesce(frames, ?), fps = coalesce(fps, ?) WHERE id = ?",
                                 (PARSED, meta.source, meta.width, meta.height, meta.frames, meta.fps, asset_id))
            _write_details(catalog, asset_id, meta, None, None, None, fresh=False)
            outcome = REPARSED if outcome == KNOWN else outcome
    if any(v is not None for v in (session_id, point_id, frame_index, kind)):
        catalog.attach_asset(asset_id, session_id=session_id, point_id=point_id, frame_index=frame_index, kind=kind)
    _write_runner_rows(catalog, asset_id, requested, readback, slider)
    (current,) = catalog.conn.execute("SELECT metadata_status FROM assets WHERE id = ?", (asset_id,)).fetchone()
    return IngestResult(path, outcome, asset_id, current, reason)


def _unreadable(catalog: Catalog, path: Path, exc: OSError) -> IngestResult:
    """A file we cannot even read gets (or refreshes) a path-keyed error row without a hash."""
    reason = f"cannot read file: {exc.strerror or exc}"
    here = catalog.relpath(path)
    with catalog.transaction():
        row = catalog.conn.execute("SELECT id FROM assets WHERE path = ? AND sha256 IS NULL", (here,)).fetchone()
        if row:
            catalog.conn.execute("UPDATE assets SET error = ? WHERE id = ?", (reason, row[0]))
            return IngestResult(path, KNOWN, int(row[0]), ERROR, reason)
        asset_id = catalog.add_asset(path, sha256=None, bytes=None, kind=guess_kind(path, None),
                                     metadata_status=ERROR, error=reason)
    return IngestResult(path, NEW_ERROR, asset_id, ERROR, reason)
