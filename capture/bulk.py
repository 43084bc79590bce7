"""Many files -> catalog: the engine behind `cinectrl catalog ingest`.

Per file, the work is reading, hashing and parsing EXIF (exifread) and then a handful of rows. To keep
the bookkeeping small beside the parsing: files are prepared into flat row values (in worker processes
when there are several cores), a batch is written with one executemany per table and committed without
an fsync of its own, and the catalog is asked once per batch which hashes it already has. A file that needs the catalog's judgement (already catalogued, moved, duplicate,
unreadable) goes through the one-file path of `capture.ingest`.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .catalog import EXIF_COLUMNS, Catalog, tags_json
from .exif import ERROR, PARSED, ExifTool, read_metadata
from .ingest import (DUPLICATE, KNOWN, MOVED, NEW_ERROR, NEW_PARSED, NEW_UNPARSED, REPARSED, SKIPPED, IngestResult,
                     guess_kind, ingest_one, is_media, read_file)

SKIP_NAMES = {".DS_Store", "Thumbs.db"}
PARALLEL_MIN_FILES = 100
# Workers parse; this process writes rows and mostly waits on them: one worker more than there are cores
# keeps every core busy (benchmarks/ingest.py, 2 cores: 2 workers 0.93x of bare exifread, 3 workers 1.0x).
DEFAULT_JOBS = min(4, (os.cpu_count() or 1) + 1)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named, and every file under folders named (sorted, hidden files and OS litter skipped)."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and name not in SKIP_NAMES:
                        yield Path(root) / name
        else:
            yield p


@dataclass
class IngestSummary:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[IngestResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    errors: int = 0                 # files of this run whose asset is in error, new or already catalogued

    def add(self, result: IngestResult) -> None:
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        if result.outcome in (NEW_ERROR, NEW_UNPARSED):
            self.problems.append(result)
        if result.outcome == SKIPPED:
            self.skipped.append(result.path)
        if result.status == ERROR:
            self.errors += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """'12 ok, 2 unparsed, 3 errors' then whatever else happened (already catalogued, skipped, ...)."""
        c = self.counts
        head = f"{c.get(NEW_PARSED, 0)} ok, {c.get(NEW_UNPARSED, 0)} unparsed, {c.get(NEW_ERROR, 0)} errors"
        rest = [f"{c[k]} {k}" for k in (KNOWN, REPARSED, MOVED, DUPLICATE, SKIPPED) if c.get(k)]
        return ", ".join([head, *rest]) + f" ({self.total} files)"


class _Prepared:
    """A file read, hashed and parsed into the values of its rows, with no catalog access (so a worker
    process can make it). Flat on purpose: it pickles as one tuple (~1 us; a dataclass holding a Metadata
    took ~6 us, a large share of the parent's time per file). `asset` is None when the one-file path must
    decide (unreadable, or bytes the catalog already had when the run started)."""

    __slots__ = ("path", "sha", "size", "mtime", "asset", "exif", "media")
    # asset: (kind, format, width, height, frames, fps, metadata_status, metadata_source, error)
    # exif: the exif table's values in EXIF_COLUMNS order, None unless the metadata was parsed
    # media: False for a file that is no camera media (skipped, nothing read beyond its first bytes)

    def __init__(self, path: Path | str, sha: str | None = None, size: int = 0, mtime: float | None = None,
                 asset: tuple | None = None, exif: tuple | None = None, media: bool = True) -> None:
        self.path, self.sha, self.size, self.mtime, self.asset, self.exif = path, sha, size, mtime, asset, exif
        self.media = media

    def __reduce__(self) -> tuple:   # the parent has the path
        return _Prepared, (None, self.sha, self.size, self.mtime, self.asset, self.exif, self.media)


def _prepare(path: Path | str, maker_notes: bool, use_exiftool: bool | None,
             known: frozenset[str] | tuple[()] = ()) -> _Prepared:
    if not is_media(path):
        return _Prepared(path, media=False)
    try:
        content = read_file(path)
    except OSError:
        return _Prepared(path)
    if content.sha in known:
        return _Prepared(path, content.sha, content.size, content.mtime)
    meta = read_metadata(content.data, path, maker_notes=maker_notes, use_exiftool=use_exiftool,
                         tail=content.tail)
    asset = (guess_kind(path, meta.format), os.path.splitext(path)[1].lower().lstrip(".") or None,
             meta.width, meta.height, meta.frames, meta.fps, meta.status, meta.source, meta.error)
    exif = None
    if meta.status == PARSED:
        fields = meta.fields
        fields["tags_json"] = tags_json(meta.tags)
        exif = tuple([fields.get(c) for c in EXIF_COLUMNS])
    return _Prepared(path, content.sha, content.size, content.mtime, asset, exif)


class _Batch:
    """Rows of new files gathered in memory with pre-assigned ids and written with one executemany per table.
    Runs inside the batch's write transaction, so nobody else can take those ids meanwhile. Loose files (no
    session) keep their EXIF in the exif table only: asset_settings rows compare requested / read-back /
    EXIF for captured frames, which `ingest_file` writes."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.next_id: int | None = None
        self.shas: dict[str, tuple[int, str, str]] = {}   # sha -> (asset id, stored path, metadata status)
        self.assets: list[tuple] = []
        self.exif: list[tuple] = []

    def add(self, item: _Prepared) -> int:
        assert item.asset is not None and item.sha is not None
        if self.next_id is None:
            self.next_id = self.catalog.next_asset_id()
        asset_id, self.next_id = self.next_id, self.next_id + 1
        stored = self.catalog.relpath(item.path)
        now = time.time()
        kind, fmt, width, height, frames, fps, status, source, error = item.asset
        self.assets.append((asset_id, stored, item.sha, item.size, kind, fmt, width, height, frames, fps,
                            None, None, None, status, source, error, item.mtime, now, now))
        if item.exif is not None:
            self.exif.append((asset_id, *item.exif))
        self.shas[item.sha] = (asset_id, stored, status)
        return asset_id

    def flush(self) -> None:
        self.catalog.insert_many(assets=self.assets, exif=self.exif)
        self.assets, self.exif = [], []
        self.next_id = None


def _bulk_one(catalog: Catalog, batch: _Batch, item: _Prepared, known: set[str], *, maker_notes: bool,
              use_exiftool: bool | None) -> IngestResult:
    """One prepared file inside its batch's transaction; `known`: which of the batch's hashes the catalog
    already held when the batch took the write lock."""
    path = item.path
    if not item.media:
        return IngestResult(path, SKIPPED, None)
    if item.sha is not None:
        pending = batch.shas.get(item.sha)
        if pending is not None:    # the same bytes earlier in this batch
            same = pending[1] == catalog.relpath(path)
            return IngestResult(path, KNOWN if same else DUPLICATE, pending[0], pending[2],
                                None if same else f"same bytes as {pending[1]}")
        if item.asset is not None and item.sha not in known:
            asset_id = batch.add(item)
            status, error = item.asset[6], item.asset[8]
            return IngestResult(path, status, asset_id, status, error)
    batch.flush()                  # unreadable or already catalogued: the one-file path decides
    return ingest_one(catalog, path, maker_notes=maker_notes, use_exiftool=use_exiftool)


def _known_shas(catalog: Catalog, shas: list[str]) -> set[str]:
    """Which of these hashes are catalogued: one indexed IN query per 500 instead of a query per file."""
    found: set[str] = set()
    for start in range(0, len(shas), 500):
        part = shas[start:start + 500]
        found.update(r[0] for r in catalog.conn.execute(
            f"SELECT sha256 FROM assets WHERE sha256 IN ({','.join('?' * len(part))})", part))
    return found


# Set before the worker pool forks, read by the workers.
_WORKER_OPTIONS: tuple[bool, bool | None, frozenset[str]] = (True, None, frozenset())


def _worker_init() -> None:
    ExifTool._instance = None   # never talk to the parent's exiftool process


def _worker_prepare(path: str) -> _Prepared:
    maker_notes, use_exiftool, known = _WORKER_OPTIONS
    return _prepare(path, maker_notes, use_exiftool, known)


def _prepared_stream(catalog: Catalog, paths: list[Path], *, jobs: int, maker_notes: bool,
                     use_exiftool: bool | None) -> Iterator[_Prepared]:
    """Files read and parsed in this process, or by `jobs` forked workers (the catalog stays here)."""
    if jobs <= 1 or len(paths) < 2 * PARALLEL_MIN_FILES:
        for path in paths:
            yield _prepare(path, maker_notes, use_exiftool)
        return
    import multiprocessing

    global _WORKER_OPTIONS
    known = frozenset(r[0] for r in catalog.conn.execute("SELECT sha256 FROM assets WHERE sha256 IS NOT NULL"))
    _WORKER_OPTIONS = (maker_notes, use_exiftool, known)
    try:
        with multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init) as pool:
            for path, item in zip(paths, pool.imap(_worker_prepare, [os.fspath(p) for p in paths], chunksize=64)):
                item.path = path
                yield item
    finally:
        _WORKER_OPTIONS = (True, None, frozenset())


def ingest_paths(catalog: Catalog, paths: Iterable[str | os.PathLike[str]], *, batch: int = 200,
                 maker_notes: bool = True, use_exiftool: bool | None = None, jobs: int = 1,
                 on_file: Callable[[IngestResult], None] | None = None) -> IngestSummary:
    """Ingest many files, committing every `batch` files (a crash loses at most one batch, never half a
    file's rows; a rerun picks up where it stopped because finished files are recognised by hash).
    `jobs` > 1 reads and parses in that many worker processes; all catalog writes stay in this one.
    `on_file` is called as each file's rows join its batch (inside the batch's transaction).

    Batches are committed without an fsync each (WAL, synchronous=NORMAL: a power cut may lose the last
    batches, never consistency, and a rerun re-ingests them); the run ends with a checkpoint that makes
    everything durable. A synced commit per batch cost ~15 us a file, as much as all the row writing."""
    summary = IngestSummary()
    stream = _prepared_stream(catalog, [p if isinstance(p, Path) else Path(p) for p in paths], jobs=jobs,
                              maker_notes=maker_notes, use_exiftool=use_exiftool)
    rows = _Batch(catalog)
    size = max(1, batch)
    with catalog.fast_commits():
        while chunk := list(itertools.islice(stream, size)):
            with catalog.transaction():
                known = _known_shas(catalog, [item.sha for item in chunk if item.sha is not None])
                for item in chunk:
                    result = _bulk_one(catalog, rows, item, known, maker_notes=maker_notes,
                                       use_exiftool=use_exiftool)
                    summary.add(result)
                    if on_file:
                        on_file(result)
                rows.flush()
            rows.shas.clear()
    return summary
