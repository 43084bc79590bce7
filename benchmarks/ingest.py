"""Catalog ingest throughput vs bare exifread, like with like, side by side on the same files in the same run.

Generates N small camera-like JPEGs with piexif into a temp dir, then times, alternating, `--rounds` times:

  one process     bare exifread: a loop that opens each file and calls
                  `exifread.process_file(fh, details=True, extract_thumbnail=False)` (the options the catalog
                  uses), against `capture.bulk.ingest_paths(jobs=1)`: read + sha256 + JPEG structure check +
                  exifread + normalising + tags JSON + asset/exif rows, committed every 200 files (WAL, synced
                  once at the end).
  N processes     the same bare loop split over N forked worker processes (a multiprocessing pool, 64 files a
                  task), against `ingest_paths(jobs=N)`: N forked workers read and parse, the main process
                  writes. N is `--jobs`, by default what `cinectrl catalog ingest` uses (one more than the cores).

Each side is reported with its wall time per file (what a user waits) and its CPU time per file (this
process plus its finished worker processes: what the work costs, whatever the number of cores). The ratio
is catalog rate / bare rate from wall time: the median over rounds (the target), and from each side's best
round (less sensitive to other work on the machine); the CPU ratio (bare CPU / catalog CPU a file) is what
the wall ratio tends to when the cores are saturated, and does not depend on load. Target: the median wall
ratio >= 0.8x in both pairs.

Camera-sized files (`--large-files 40` of `--large-mb 24`): a real camera JPEG's headers (Canon 40D, from the
test corpus) + random scan data, generated at run time in the temp dir and never kept. `openssl dgst -sha256`
over the files (one process reading each file once: the speed of hashing) against `ingest_paths` over the
same files with the CLI's default jobs (40 files stay in one process), alternating which goes first,
`--large-rounds` times,
files in the page cache for both. Ratio = catalog wall / openssl wall, median over rounds; target <= 1.2x;
the CPU ratio (catalog / openssl CPU seconds) beside it does not depend on what else the machine runs.
Also reported: the whole `python -m cinectrl.main catalog ingest` command (interpreter and imports included).

Writes docs/results/benchmarks/ingest.json.

    .venv/bin/python benchmarks/ingest.py [--files 2000] [--rounds 5] [--jobs N] [--large-files 40]
                                          [--large-mb 24] [--large-rounds 5]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import exifread
import numpy as np
import piexif
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _results import write_result  # noqa: E402

from capture.bulk import DEFAULT_JOBS, ingest_paths  # noqa: E402
from capture.catalog import Catalog  # noqa: E402

TARGET = 0.8
LARGE_TARGET = 1.2      # catalog ingest wall / openssl dgst -sha256 wall, camera-sized files
HEADER_FROM = REPO / "tests" / "data" / "camera-files" / "jpeg" / "Canon_40D.jpg"


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


def make_large_files(folder: Path, n: int, size: int) -> list[Path]:
    """Camera-sized JPEGs: a real camera's headers (everything up to the scan) + random scan data + EOI."""
    src = HEADER_FROM.read_bytes()
    i = 2
    while src[i + 1] != 0xDA:
        i += 2 + struct.unpack_from(">H", src, i + 2)[0]
    head = src[:i + 2 + struct.unpack_from(">H", src, i + 2)[0]]
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        scan = np.minimum(np.frombuffer(rng.bytes(size - len(head) - 2), np.uint8), 254)   # no 0xFF: no marker
        path = folder / f"IMG_{k:04d}.JPG"
        path.write_bytes(head + scan.tobytes() + b"\xff\xd9")
        paths.append(path)
    return paths


def large_files(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    """openssl dgst -sha256 against the catalog ingest (in this process, and as the CLI command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl is needed for the large-file reference (apt-get install openssl)")
    folder = tmp / "large"
    folder.mkdir()
    t0 = time.perf_counter()
    paths = make_large_files(folder, args.large_files, args.large_mb << 20)
    total = sum(p.stat().st_size for p in paths)
    print(f"generated {len(paths)} JPEGs of {args.large_mb} MB ({total / 2**20:.0f} MB) in "
          f"{time.perf_counter() - t0:.1f} s")
    names = [os.fspath(p) for p in paths]
    reference = [openssl, "dgst", "-sha256", *names]
    subprocess.run(reference, check=True, stdout=subprocess.DEVNULL)     # the page cache, for both sides
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sides = ("openssl", "catalog", "cli")
    wall: dict[str, list[float]] = {s: [] for s in sides}
    cpu: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(args.large_rounds):
        def run_reference() -> tuple[float, float]:
            return timed(lambda: subprocess.run(reference, check=True, stdout=subprocess.DEVNULL))
        if r % 2:                        # alternate which side goes first
            c = timed(lambda: catalog(paths, tmp / f"large{r}.db", args.jobs))
            o = run_reference()
        else:
            o = run_reference()
            c = timed(lambda: catalog(paths, tmp / f"large{r}.db", args.jobs))
        cli = [sys.executable, "-m", "cinectrl.main", "catalog", "ingest", str(folder), "--catalog",
               str(tmp / f"cli{r}" / "catalog.db"), "--init", "--jobs", str(args.jobs)]
        k = timed(lambda: subprocess.run(cli, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO))
        for side, (w, u) in zip(sides, (o, c, k)):
            wall[side].append(w)
            cpu[side].append(u)
        print(f"large round {r + 1}: openssl {o[0]:.2f} s, catalog ingest {c[0]:.2f} s ({c[0] / o[0]:.2f}x), "
              f"CLI command {k[0]:.2f} s ({k[0] / o[0]:.2f}x)")
    ratios = [c / o for c, o in zip(wall["catalog"], wall["openssl"])]
    cli_ratios = [k / o for k, o in zip(wall["cli"], wall["openssl"])]
    ratio = statistics.median(ratios)
    entry: dict[str, object] = {
        "files": len(paths), "mb_each": args.large_mb, "rounds": args.large_rounds, "jobs": args.jobs,
        "target_ratio_max": LARGE_TARGET, "ratio": round(ratio, 3), "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3), "cli_ratio": round(statistics.median(cli_ratios), 3),
        "cpu_ratio": round(statistics.median(cpu["catalog"]) / statistics.median(cpu["openssl"]), 3),
        "met": ratio <= LARGE_TARGET}
    for side in sides:
        w, u = statistics.median(wall[side]), statistics.median(cpu[side])
        entry[f"{side}_wall_s"] = round(w, 3)
        entry[f"{side}_cpu_s"] = round(u, 3)
        entry[f"{side}_mb_per_s"] = round(total / 2**20 / w, 1)
    print(f"  large files: catalog ingest / openssl dgst -sha256 {ratio:.2f}x median (rounds {min(ratios):.2f}-"
          f"{max(ratios):.2f}; target <= {LARGE_TARGET}x) -> {'MET' if entry['met'] else 'NOT MET'}; "
          f"the CLI command {entry['cli_ratio']:.2f}x")
    for path in paths:
        path.unlink()
    return entry


def _bare_one(path: str) -> int:
    with open(path, "rb") as fh:
        tags = exifread.process_file(fh, details=True, extract_thumbnail=False)
    assert tags
    return len(tags)


def bare(paths: list[Path], jobs: int) -> None:
    """exifread alone over the files, in this process (jobs=1) or in `jobs` forked processes."""
    names = [os.fspath(p) for p in paths]
    if jobs <= 1:
        for name in names:
            _bare_one(name)
        return
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for _ in pool.imap(_bare_one, names, chunksize=64):
            pass


def catalog(paths: list[Path], db: Path, jobs: int) -> None:
    cat = Catalog(db)
    summary = ingest_paths(cat, paths, batch=200, jobs=jobs)
    assert summary.counts == {"parsed": len(paths)}, summary.line()
    assert cat.counts()["assets"] == len(paths)
    cat.close()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished, waited-for children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    run()
    return time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="processes for the parallel pair (default: the CLI's default, %(default)s here)")
    parser.add_argument("--large-files", type=int, default=40, help="camera-sized files (0: skip that case)")
    parser.add_argument("--large-mb", type=int, default=24)
    parser.add_argument("--large-rounds", type=int, default=5)
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args()
    pairs = {"one process": 1, f"{args.jobs} processes": args.jobs}
    sides = [(name, side) for name in pairs for side in ("bare exifread", "catalog ingest")]
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in sides}
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in sides}
    ratios: dict[str, list[float]] = {name: [] for name in pairs}
    with tempfile.TemporaryDirectory(prefix="cinectrl-bench-") as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        t0 = time.perf_counter()
        paths = make_files(folder, args.files)
        n = len(paths)
        print(f"generated {n} JPEGs ({sum(p.stat().st_size for p in paths) / n / 1024:.1f} KiB each) in "
              f"{time.perf_counter() - t0:.1f} s; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        bare(paths[:200], 1)   # warm the page cache and imports for both sides
        for r in range(args.rounds):
            line = f"round {r + 1}:"
            for name, jobs in pairs.items():
                b = timed(lambda: bare(paths, jobs))
                c = timed(lambda: catalog(paths, Path(tmp) / f"catalog{r}-{jobs}.db", jobs))
                for side, (w, u) in (("bare exifread", b), ("catalog ingest", c)):
                    wall[(name, side)].append(w / n)
                    cpu[(name, side)].append(u / n)
                ratios[name].append(b[0] / c[0])
                line += f"  {name}: exifread {n / b[0]:5.0f}/s, catalog {n / c[0]:5.0f}/s ({b[0] / c[0]:.2f}x)"
            print(line)
        for path in paths:
            path.unlink()
        large = large_files(args, Path(tmp)) if args.large_files > 0 else None
    figures: dict[str, object] = {"files": n, "rounds": args.rounds, "jobs": args.jobs, "target_ratio": TARGET,
                                  "load_average_at_end": os.getloadavg()[0]}
    print(f"medians over {args.rounds} rounds (rate = files per second of wall time):")
    for name in pairs:
        ratio = statistics.median(ratios[name])
        best = min(wall[(name, "bare exifread")]) / min(wall[(name, "catalog ingest")])
        cpu_ratio = statistics.median(cpu[(name, "bare exifread")]) / statistics.median(cpu[(name, "catalog ingest")])
        entry = {"ratio": round(ratio, 3), "ratio_min": round(min(ratios[name]), 3),
                 "ratio_max": round(max(ratios[name]), 3), "ratio_best_rounds": round(best, 3),
                 "cpu_ratio": round(cpu_ratio, 3), "met": ratio >= TARGET}
        for side in ("bare exifread", "catalog ingest"):
            w, u = statistics.median(wall[(name, side)]), statistics.median(cpu[(name, side)])
            key = side.split()[0]
            entry[f"{key}_files_per_s"] = round(1 / w)
            entry[f"{key}_wall_us_per_file"] = round(w * 1e6, 1)
            entry[f"{key}_cpu_us_per_file"] = round(u * 1e6, 1)
            print(f"  {name:12s} {side:14s}: {1 / w:6.0f} files/s, wall {w * 1e6:6.1f} us a file, "
                  f"CPU {u * 1e6:6.1f} us a file")
        print(f"  {name:12s} ratio catalog / bare: {ratio:.2f}x median (rounds {min(ratios[name]):.2f}-"
              f"{max(ratios[name]):.2f}, best rounds {best:.2f}x; target >= {TARGET}x) -> "
              f"{'MET' if ratio >= TARGET else 'NOT MET'}; CPU a file bare / catalog {cpu_ratio:.2f}x")
        figures[name.replace(" ", "_")] = entry
    if large is not None:
        figures["large_files"] = large
    write_result("ingest", figures, directory=args.results_dir)


if __name__ == "__main__":
    main()
