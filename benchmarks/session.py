"""Runner overhead per point: a 200-point stills session on libgphoto2's virtual camera, side by side with
the bare backend capture loop on the same camera object in the same run.

    .venv/bin/python benchmarks/session.py [--points 200] [--rounds 3]

The virtual camera captures in about 1 ms (a real body takes ~100 ms or more), so the runner's own cost
per point -- ledger update, fsync of file and folder, sha256, one-transaction commit (WAL,
synchronous=FULL), display -- stands out. Target: overhead <= 5 ms per point.
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
    sample = REPO / "tests" / "data" / "camera-files" / "jpeg" / "Nikon_D70.jpg"   # a real camera JPEG
    if sample.exists():
        jpeg = sample.read_bytes()
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

    try:
        return open_camera("gphoto2"), "rigs.camera.gphoto (worker process)"
    except ImportError:
        from benchmarks._vcam_direct import DirectVirtualCamera

        return DirectVirtualCamera(), "direct python-gphoto2 adapter (rigs.camera.gphoto not installed)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cinectrl-bench-session-") as tmp:
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
    print(f"backend: {backend}")
    print(f"points per round: {args.points}, rounds: {args.rounds} (medians below)")
    print(f"bare backend loop : {bare:7.3f} ms/point   rounds {', '.join(f'{x:.3f}' for x in bare_ms)}")
    print(f"full runner       : {full:7.3f} ms/point   rounds {', '.join(f'{x:.3f}' for x in runner_ms)}")
    print(f"runner overhead   : {overhead:7.3f} ms/point (fsync + sha256 + one-transaction commit included)")
    print(f"ratio runner/bare : {full / bare:7.2f}x")
    print(f"share of a 100 ms tethered capture: {overhead / 100:.1%}  (target: overhead <= 5 ms/point -> "
          f"{'met' if overhead <= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
