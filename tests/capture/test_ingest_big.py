"""Camera-sized files are read once: hashed while they are read, their EXIF parsed from the head kept in
memory. (Speed against `openssl dgst -sha256` is measured in benchmarks/ingest.py, not asserted here.)"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

import capture.ingest as ingest_module
from capture import bulk
from capture.bulk import ingest_paths
from capture.catalog import Catalog
from capture.export import asset_records


def camera_sized_jpeg(header_from: Path, out: Path, size: int, seed: int = 0) -> Path:
    """A real camera JPEG's headers (everything up to its scan) + `size` bytes of stand-in scan data + EOI."""
    src = header_from.read_bytes()
    i = 2
    while src[i + 1] != 0xDA:
        i += 2 + struct.unpack_from(">H", src, i + 2)[0]
    head = src[:i + 2 + struct.unpack_from(">H", src, i + 2)[0]]
    scan = np.random.default_rng(seed).integers(0, 255, size - len(head) - 2, dtype=np.uint8)   # no 0xFF
    out.write_bytes(head + scan.tobytes() + b"\xff\xd9")
    return out


def _bytes_read() -> int:
    """Bytes this process has read through read(2)/pread(2) (Linux /proc: the kernel's count, not a mock)."""
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines()
                    if line.startswith("rchar:")).split()[1])


def test_a_camera_sized_jpeg_is_read_once_and_parsed_from_its_head(tmp_path, camera_files):
    size = 8 << 20
    big = camera_sized_jpeg(camera_files / "jpeg" / "Canon_40D.jpg", tmp_path / "IMG_0001.JPG", size)
    assert size > ingest_module.WHOLE_FILE_LIMIT                     # the streaming path
    bulk._prepare(big, True, None)                                   # warm: imports
    before = _bytes_read()
    prepared = bulk._prepare(big, True, None)      # what each worker does per file: read, hash, parse
    read = _bytes_read() - before
    # every byte once; the EXIF from the head in memory (exifread re-reading the file's headers: +4 KB)
    assert size <= read < size + 1024, f"read {read} bytes of a {size}-byte file"
    assert prepared.exif is not None and prepared.sha == hashlib.sha256(big.read_bytes()).hexdigest()
    cat = Catalog(tmp_path / "catalog.db")
    summary = ingest_paths(cat, [big])
    assert summary.counts == {"parsed": 1}
    (row,) = list(asset_records(cat))
    assert row["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest() and row["bytes"] == size
    assert (row["exposure_text"], row["f_number"], row["iso"], row["model"]) == ("1/160", 7.1, 100, "Canon EOS 40D")
    assert row["error"] is None and row["width"] and row["height"]
    cat.close()


def test_a_cut_camera_sized_jpeg_is_an_error_and_a_big_header_still_parses(tmp_path, camera_files, monkeypatch):
    whole = camera_sized_jpeg(camera_files / "jpeg" / "Canon_40D.jpg", tmp_path / "a.jpg", 3 << 20).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: 2 << 20])
    monkeypatch.setattr(ingest_module, "HEAD_BYTES", 4096)     # headers (6 KB) longer than the head: read on
    cat = Catalog(tmp_path / "catalog.db")
    summary = ingest_paths(cat, [tmp_path / "a.jpg", tmp_path / "cut.jpg"])
    assert summary.counts == {"parsed": 1, "error": 1}
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in asset_records(cat)}
    assert rows["a.jpg"]["exposure_text"] == "1/160" and rows["cut.jpg"]["error"].startswith("truncated JPEG")
    cat.close()
