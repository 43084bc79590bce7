"""Catalog ingest throughput vs bare exifread, side by side on the same files in the same run.

Generates N small camera-like JPEGs with piexif into a temp dir, then times (alternating, `--rounds` times):
  reference: open each file and `exifread.process_file(fh, details=True, extract_thumbnail=False)`
             (the same exifread options the catalog path uses);
  catalog:   `capture.bulk.ingest_paths` into a fresh catalog: read + sha256 + JPEG structure check +
             exifread + normalising + tags JSON + asset/exif rows, committed every 200 files (WAL, synced
             once at the end); once with files parsed by `--jobs` worker processes (what `cinectrl catalog
             ingest` does by default: one worker more than there are cores) and once in one process (jobs=1).
Target: catalog rate >= 0.8x the bare exifread rate. Besides the rates it prints the CPU time per file
(this process plus its workers), which is what the bookkeeping costs whatever the number of cores.

    .venv/bin/python benchmarks/ingest.py [--files 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import exifread
import piexif
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from capture.catalog import Catalog  # noqa: E402
from capture.bulk import DEFAULT_JOBS, ingest_paths  # noqa: E402


def make_files(folder: Path, n: int) -> list[Path]:
    """Distinct 64x48 JPEGs with the EXIF a swept capture session writes."""
    E = piexif.ExifIFD
    base = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 130, 140)).save(base, format="JPEG", quality=80)
    pixels = base.getvalue()
    paths = []
    for i in range(n):
        exif = piexif.dump({
            "0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS R5", piexif.ImageIFD.Orientation: 1},
            "Exif": {E.FNumber: ((28, 10), (40, 10), (56, 10), (80, 10))[i % 4], E.ExposureTime: (1, 60 + i),
                     E.ISOSpeedRatings: (100, 200, 400)[i % 3], E.FocalLength: (50, 1),
                     E.LensModel: b"RF50mm F1.2 L USM", E.BodySerialNumber: b"012345678901",
                     E.DateTimeOriginal: b"2026:11:24 21:00:00", E.SubSecTimeOriginal: f"{i % 100:02d}".encode(),
                     E.WhiteBalance: 1, E.PixelXDimension: 64, E.PixelYDimension: 48}})
        path = folder / f"c{i // 100:03d}_f{i % 100:04d}.jpg"
        piexif.insert(exif, pixels, str(path))
        paths.append(path)
    return paths


def bare(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            tags = exifread.process_file(fh, details=True, extract_thumbnail=False)
        assert tags
    return time.perf_counter() - t0


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the ingest's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def catalog(paths: list[Path], db: Path, jobs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ingest into a fresh catalog."""
    cat = Catalog(db)
    c0, t0 = cpu_seconds(), time.perf_counter()
    summary = ingest_paths(cat, paths, batch=200, jobs=jobs)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    assert summary.counts == {"parsed": len(paths)}, summary.line()
    assert cat.counts()["assets"] == len(paths)
    cat.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="worker processes for the parallel catalog run (default: the CLI's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cinectrl-bench-") as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        t0 = time.perf_counter()
        paths = make_files(folder, args.files)
        print(f"generated {len(paths)} JPEGs ({sum(p.stat().st_size for p in paths) / len(paths) / 1024:.1f} KiB "
              f"each) in {time.perf_counter() - t0:.1f} s")
        bare(paths[:100])   # warm the page cache and imports for both sides
        bare_rates: list[float] = []
        rates: dict[int, list[float]] = {args.jobs: [], 1: []}
        cpu: dict[int, list[float]] = {args.jobs: [], 1: []}
        for r in range(args.rounds):
            b = bare(paths)
            bare_rates.append(len(paths) / b)
            line = f"round {r + 1}: exifread {len(paths) / b:6.0f} files/s"
            for jobs in rates:
                wall, used = catalog(paths, Path(tmp) / f"catalog{r}-{jobs}.db", jobs)
                rates[jobs].append(len(paths) / wall)
                cpu[jobs].append(used / len(paths))
                line += f" | catalog jobs={jobs} {len(paths) / wall:6.0f} files/s ({b / wall:.2f}x)"
            print(line)
        ref = statistics.median(bare_rates)
        print(f"median: exifread {ref:.0f} files/s = {1e6 / ref:.0f} us of CPU a file")
        for jobs, values in rates.items():
            ratio = statistics.median(values) / ref
            label = "the CLI's default" if jobs == DEFAULT_JOBS and jobs > 1 else "one process"
            print(f"median: catalog ingest jobs={jobs} ({label}): {statistics.median(values):.0f} files/s, "
                  f"ratio {ratio:.2f}x (target >= 0.80x) -> {'MET' if ratio >= 0.8 else 'NOT MET'}; "
                  f"CPU {statistics.median(cpu[jobs]) * 1e6:.0f} us a file")

if __name__ == "__main__":
    main()
