"""Plans for the simulated rig (SimCamera + GRBL emulator on a pty), sized to keep the suite fast."""

from __future__ import annotations

import sqlite3
import hashlib
from pathlib import Path

import pytest

from capture.owner import LOCK_NAME

REPO = Path(__file__).resolve().parents[2]

# The simulated camera at thumbnail size and 1000x speed: real JPEGs with EXIF in ~7 ms, for runner tests
TINY = {"width": 64, "height": 48, "clip_width": 64, "clip_height": 48, "speed": 1000.0}


def tiny_sim(**options):
    from rigs.camera.sim import SimCamera

    return SimCamera(**{**TINY, **options})


def sim_factory(**options):
    """A camera factory for the runner that keeps every SimCamera it opened (the first, then each reopen)."""
    opened = []

    def factory():
        opened.append(tiny_sim(**options))
        return opened[-1]

    return factory, opened


# 12 points, no slider; every value differs from SimCamera's power-on defaults (f/8, 1/60, ISO 100), so a
# camera object that was not set up shoots at the wrong settings and its EXIF says so
SWEEP_PLAN = """
[session]
scene = "sweep"
operator = "test"

[rig]
camera = "sim"
slider = "none"

[axes]
aperture = ["f/2.8", "f/4", "f/5.6"]
shutter = ["1/125", "1/250"]
iso = ["200", "400"]
"""


def done_points(catalog: Path) -> int:
    """Points committed so far (0 while the catalog does not exist or is busy being created)."""
    if not catalog.exists():
        return 0
    try:
        db = sqlite3.connect(catalog, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM points WHERE status = 'done'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0

STILLS_PLAN = """
[session]
name = "e2e-stills"
scene = "test scene"
operator = "pytest"

[rig]
camera = "sim"
slider = "emulator"
speed = {speed}
{camera_options}

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["100"]
slider_mm = [100, 110, 120, 130]

[order]
mode = "stills"
loop = ["slider", "aperture"]
snake = ["aperture"]

[exposure]
constant = true
compensate = ["shutter", "iso"]
"""

PASSES_PLAN = """
[session]
name = "e2e-passes"
scene = "test scene"
operator = "pytest"

[rig]
camera = "sim"
slider = "emulator"
speed = {speed}
{camera_options}

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["200"]

[trajectory]
start_mm = 100
end_mm = 140
speed_mm_s = 40
frames = 9
fps = 6

[order]
mode = "passes"
"""


def write_plan(tmp_path: Path, template: str, *, speed: float = 50, camera_options: str = "",
               name: str = "plan.toml", extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text(template.format(speed=speed, camera_options=camera_options) + extra)
    return path


def ledger_check(catalog: Path) -> dict:
    """Every planned point done exactly once, every file's hash matches the catalog, no orphan files."""
    db = sqlite3.connect(catalog)
    try:
        points = db.execute("SELECT id, status FROM points").fetchall()
        frames = db.execute("SELECT point_id, path, sha256 FROM assets WHERE point_id IS NOT NULL").fetchall()
    finally:
        db.close()
    assert points and all(status == "done" for _, status in points), points
    per_point: dict[int, list[str]] = {}
    for pid, path, sha in frames:
        per_point.setdefault(pid, []).append(Path(path).suffix)
        assert hashlib.sha256((catalog.parent / path).read_bytes()).hexdigest() == sha, path
    assert set(per_point) == {pid for pid, _ in points}
    assert all(len(set(v)) == len(v) for v in per_point.values()), "a point has two files of one kind"
    referenced = {str((catalog.parent / p).resolve()) for _, p, _ in frames}
    on_disk = {str(p.resolve()) for p in (catalog.parent / "sessions").rglob("*")
               if p.is_file() and "outputs" not in p.parts and p.name not in ("report.html", LOCK_NAME)}
    assert on_disk == referenced, on_disk ^ referenced
    return {"points": len(points), "frames": len(frames)}


@pytest.fixture
def plan_factory(tmp_path):
    def make(template: str = STILLS_PLAN, **kw) -> Path:
        return write_plan(tmp_path, template, **kw)
    return make
