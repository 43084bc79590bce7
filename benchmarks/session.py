"""Runner overhead per point: a 200-point stills session on libgphoto2's virtual camera, side by side with
the bare backend capture loop on the same camera object in the same run.

    .venv/bin/python benchmarks/session.py [--points 200] [--rounds 3]

The virtual camera captures in about 1 ms (a real body takes ~100 ms or more), so the runner's own cost
per point -- ledger update, owner lock, disk check, fsync of file and folder, sha256, one-transaction
commit (WAL, synchronous=FULL), display -- stands out. Target: overhead <= 5 ms per point. The result
goes to docs/results/benchmarks/session.json (benchmarks/_results.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "tests" / "data" / "camera-files" / "jpeg" / "Nikon_D70.jpg"   # the project's own corpus copy


class FreshFrames:
    """The virtual camera returns the same file at every capture; a real body never delivers two identical
    exposures, and the catalog refuses byte-identical frames as stale. Before each capture (in both loops
    alike) the source JPEG is replaced by a same-size copy whose trailing bytes after the JPEG end marker
    hold a counter (the driver reads the bytes at download time; the size must not change)."""

    def __init__(self, path: Path, jpeg: bytes) -> None:
        self.path, self.jpeg, self.count = path, jpeg, 0
        self.write()

    def write(self) -> None:
        self.count += 1
        tmp = self.path.with_name(".next.tmp")
        tmp.write_bytes(self.jpeg + self.count.to_bytes(16, "big"))
        os.replace(tmp, self.path)


def _prepare_virtual_camera(root: Path) -> FreshFrames:
    """VCAMERADIR must be set before gphoto2 is imported (hardware notes section 5)."""
    import io

    import numpy as np
    from PIL import Image

    vdir = root / "vcamera"
    vdir.mkdir(parents=True, exist_ok=True)
    if SAMPLE.exists():     # a real camera JPEG from the project's corpus, read in place
        jpeg = SAMPLE.read_bytes()
    else:   # a synthetic one with camera-like EXIF, so metadata parsing costs what it costs on real frames
        import piexif

        exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"NIKON", piexif.ImageIFD.Model: b"D750"},
                            "Exif": {piexif.ExifIFD.FNumber: (56, 10), piexif.ExifIFD.ExposureTime: (1, 60),
                                     piexif.ExifIFD.ISOSpeedRatings: 400}})
        buf = io.BytesIO()
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(buf, format="JPEG", exif=exif)
        jpeg = buf.getvalue()
    fresh = FreshFrames(vdir / "DSC_0001.JPG", jpeg)
    os.environ["VCAMERADIR"] = str(vdir)
    os.environ["XDG_CONFIG_HOME"] = str(root / "xdg")
    os.environ["LANG"] = os.environ["LC_ALL"] = "C"
    return fresh


def _open_backend():
    from rigs.camera import open_camera

    return open_camera("gphoto2"), "rigs.camera.gphoto (worker process)"


def _fsync_latency_ms(folder: Path, n: int = 50) -> float:
    """Median time of a 4 kB write + fsync where the lab lives: what the disk (and its other users) cost."""
    times = []
    with tempfile.NamedTemporaryFile(dir=folder) as handle:
        for _ in range(n):
            t0 = time.perf_counter()
            handle.write(b"x" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the lab (catalog + frames) lives; default: the temp "
                        "folder. /dev/shm takes the disk's fsync latency out: the runner's own cost")
    parser.add_argument("--name", default="session", help="result file name under docs/results/benchmarks/")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cinectrl-bench-session-", dir=args.dir) as tmp:
        root = Path(tmp)
        fresh = _prepare_virtual_camera(root)
        from capture.plan import parse_plan
        from capture.session import RunnerOptions, SessionRunner

        camera, backend = _open_backend()
        aperture = next(iter(camera.choices().get("aperture", ["f/5.6"])))
        plan_text = (f'[session]\nname = "bench"\nscene = "virtual camera"\noperator = "benchmark"\n'
                     f'[rig]\ncamera = "gphoto2"\nslider = "none"\n[axes]\naperture = ["{aperture}"]\n'
                     f'[order]\nrepeat = {args.points}\n')

        class _Shared:
            """The runner closes its camera at the end; keep the one camera open across rounds."""

            def __getattr__(self, name):
                return getattr(camera, name)

            def capture_still(self, dest_dir, *, stem):
                fresh.write()
                return camera.capture_still(dest_dir, stem=stem)

            def close(self):
                pass

        shared = _Shared()

        bare_ms, runner_ms = [], []
        try:
            camera.set("aperture", aperture)
            for rnd in range(args.rounds):
                dest = root / f"bare{rnd}"
                dest.mkdir()
                t0 = time.perf_counter()
                for i in range(args.points):
                    shared.capture_still(dest, stem=f"f{i:04d}")
                bare_ms.append((time.perf_counter() - t0) / args.points * 1000)

                plan = parse_plan(plan_text.replace('"bench"', f'"bench{rnd}"'), source=f"bench{rnd}.toml")
                runner = SessionRunner(plan, root / f"lab{rnd}" / "catalog.db", camera_factory=lambda: shared,
                                       slider_factory=lambda: None,
                                       options=RunnerOptions(build_outputs=False))
                t0 = time.perf_counter()
                result = runner.run()
                runner_ms.append((time.perf_counter() - t0) / args.points * 1000)
                assert result.status == "complete" and result.done == args.points, result
        finally:
            camera.close()

    bare, full = statistics.median(bare_ms), statistics.median(runner_ms)
    overhead = full - bare
    sample = "tests/data/camera-files/jpeg/Nikon_D70.jpg" if SAMPLE.exists() else "synthetic 640x480 JPEG with EXIF"
    print(f"backend: {backend}; frames: {sample}")
    print(f"points per round: {args.points}, rounds: {args.rounds} (medians below)")
    print(f"bare backend loop : {bare:7.3f} ms/point   rounds {', '.join(f'{x:.3f}' for x in bare_ms)}")
    print(f"full runner       : {full:7.3f} ms/point   rounds {', '.join(f'{x:.3f}' for x in runner_ms)}")
    print(f"runner overhead   : {overhead:7.3f} ms/point (fsync + sha256 + one-transaction commit included)")
    print(f"ratio runner/bare : {full / bare:7.2f}x")
    print(f"share of a 100 ms tethered capture: {overhead / 100:.1%}  (target: overhead <= 5 ms/point -> "
          f"{'met' if overhead <= 5 else 'NOT met'})")
    from benchmarks._results import write_result

    fsync_ms = _fsync_latency_ms(Path(args.dir or tempfile.gettempdir()))
    print(f"fsync latency here: {fsync_ms:.3f} ms (the runner does 3 per point: file, folder, catalog commit)")
    write_result(args.name, {
        "points_per_round": args.points, "rounds": args.rounds, "backend": backend, "frames": sample,
        "lab_folder": args.dir or tempfile.gettempdir(), "fsync_latency_ms": round(fsync_ms, 3),
        "bare_backend_ms_per_point": round(bare, 3), "full_runner_ms_per_point": round(full, 3),
        "runner_overhead_ms_per_point": round(overhead, 3), "ratio_runner_to_bare": round(full / bare, 3),
        "bare_rounds_ms": [round(x, 3) for x in bare_ms], "runner_rounds_ms": [round(x, 3) for x in runner_ms],
        "target_overhead_ms": 5.0, "target_met": overhead <= 5.0,
    }, notes="medians over rounds; each round is one session of --points stills through SessionRunner "
             "(new catalog) vs the same camera object's bare capture_still loop")


if __name__ == "__main__":
    main()
