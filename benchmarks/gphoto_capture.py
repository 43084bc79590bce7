"""Captures per second of the gphoto2 backend against a bare python-gphoto2 loop, same virtual camera, same run.

    .venv/bin/python benchmarks/gphoto_capture.py [--captures 200] [--rounds 3]

Backend = rigs.camera.gphoto: worker process + request/response + value validation + event drain +
download + size check + atomic write + bookkeeping, with the transparent reopen every 26 captures.
Bare = the smallest loop that does the same job in this process: capture() -> file_get() -> write tmp +
rename, exit()/new Camera()/init() every 26 captures (the virtual camera refuses the 27th).

Two scenarios, alternated round by round:
  defaults  nothing set: neither side re-applies anything after a reopen;
  settings  f-number and shutter set: both sides re-apply them after every reopen (the backend also
            reads each one back). On this camera an exit() after a property change takes ~0.3 s,
            which both sides pay.
Target: backend rate >= 0.7x the bare loop's rate.
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

CAP = 26
SETTINGS = {"f-number": "f/8", "shutterspeed": "0.0200s"}


def _make_jpegs(folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 480), (90, 120, 160)).save(folder / "DSC_0001.JPG", quality=90)


class BareLoop:
    """python-gphoto2 with nothing around it (this process has VCAMERADIR set before the import)."""

    def __init__(self, settings: dict[str, str]) -> None:
        import gphoto2 as gp

        self.gp, self.settings, self.cam, self.count = gp, settings, None, 0
        self._open()

    def _open(self) -> None:
        if self.cam is not None:
            self.cam.exit()
        self.cam = None               # freed before the next init(), or the old count carries over
        self.cam = self.gp.Camera()
        self.cam.init()
        self.count = 0
        for name, value in self.settings.items():
            widget = self.cam.get_single_config(name)
            widget.set_value(value)
            self.cam.set_single_config(name, widget)

    def capture(self, dest: Path, stem: str) -> None:
        if self.count >= CAP:
            self._open()
        path = self.cam.capture(self.gp.GP_CAPTURE_IMAGE)
        self.count += 1
        camera_file = self.cam.file_get(path.folder, path.name, self.gp.GP_FILE_TYPE_NORMAL)
        data = camera_file.get_data_and_size()
        final = dest / f"{stem}.jpg"
        part = dest / f".{stem}.jpg.part"
        with open(part, "wb") as handle:
            handle.write(data)
        os.replace(part, final)

    def close(self) -> None:
        """exit() and drop the object: the virtual camera's per-open count is reset when it is freed."""
        cam, self.cam = self.cam, None
        cam.exit()


def _rate(capture, dest: Path, n: int) -> float:
    dest.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(n):
        capture(dest, f"f{i:04d}")
    seconds = time.perf_counter() - t0
    written = len(list(dest.glob("f*.jpg")))
    assert written == n, f"{written} files for {n} captures in {dest}"
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cinectrl-bench-gphoto-") as tmp:
        root = Path(tmp)
        _make_jpegs(root / "vcamera")
        os.environ.update(VCAMERADIR=str(root / "vcamera"), XDG_CONFIG_HOME=str(root / "xdg"), LANG="C",
                          LC_ALL="C")
        from rigs.camera.gphoto import open_gphoto_camera

        results: dict[str, dict[str, list[float]]] = {}
        for scenario, settings in (("defaults", {}), ("settings", SETTINGS)):
            backend = open_gphoto_camera(None, virtual_dir=root / "vcamera")
            bare = BareLoop(settings)
            for name, value in settings.items():
                backend.set(name, value)
            rates = results.setdefault(scenario, {"bare": [], "backend": []})
            try:
                for rnd in range(args.rounds):
                    rates["bare"].append(_rate(bare.capture, root / f"{scenario}-bare{rnd}", args.captures))
                    rates["backend"].append(_rate(lambda d, s: backend.capture_still(d, stem=s),
                                                  root / f"{scenario}-backend{rnd}", args.captures))
            finally:
                bare.close()
                backend.close()

    print(f"{args.captures} captures per round, {args.rounds} rounds, medians (virtual camera, 26 captures per open)")
    worst = None
    for scenario, rates in results.items():
        b, k = statistics.median(rates["bare"]), statistics.median(rates["backend"])
        ratio = k / b
        worst = ratio if worst is None else min(worst, ratio)
        print(f"[{scenario:8}] bare loop {b:8.1f} captures/s ({1000 / b:6.2f} ms)   "
              f"backend {k:8.1f} captures/s ({1000 / k:6.2f} ms)   ratio {ratio:4.2f}x   "
              f"rounds bare {', '.join(f'{x:.0f}' for x in rates['bare'])} / "
              f"backend {', '.join(f'{x:.0f}' for x in rates['backend'])}")
    print(f"target: backend >= 0.70x the bare loop -> {'met' if worst >= 0.7 else 'NOT met'} (worst {worst:.2f}x)")
    from benchmarks._results import write_result

    write_result("gphoto_capture", {
        "captures_per_round": args.captures, "rounds": args.rounds,
        **{f"{scenario}_{side}_captures_per_s": round(statistics.median(rates[side]), 1)
           for scenario, rates in results.items() for side in ("bare", "backend")},
        **{f"{scenario}_ratio_backend_to_bare": round(statistics.median(rates["backend"]) /
                                                     statistics.median(rates["bare"]), 3)
           for scenario, rates in results.items()},
        "target_ratio": 0.7, "target_met": worst >= 0.7,
    }, notes="backend includes reading each download back at its final path (verified before any delete)")


if __name__ == "__main__":
    main()
