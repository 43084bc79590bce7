"""Every benchmark keeps its result: one JSON file per benchmark under docs/results/benchmarks/.

The file holds the figures the benchmark printed, the machine they were measured on (CPU model, cores, load
average at the start and end, memory, Python, key package versions), the date and the git revision, so a
number quoted in a closing note can be traced to the run that produced it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "docs" / "results" / "benchmarks"
_PACKAGES = ("torch", "diffusers", "exifread", "sqlite-utils", "label-studio-sdk", "fastapi", "gphoto2", "pyserial",
             "opencv-python-headless", "av", "numpy")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    """Facts about this machine that change what a benchmark measures."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": sys.version.split()[0], "packages": versions}


def write_result(name: str, figures: Mapping[str, Any], *, notes: str = "",
                 directory: Path | None = None) -> Path:
    """Write `<name>.json` (figures + machine + date + revision + command line) and return its path."""
    out_dir = directory or RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    record = {"benchmark": name, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "revision": _revision(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "machine": machine(), "figures": dict(figures)}
    if notes:
        record["notes"] = notes
    path.write_text(json.dumps(record, indent=2, default=_plain) + "\n")
    print(f"result written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
