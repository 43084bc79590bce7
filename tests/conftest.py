"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]


# Real camera files (JPEG, RAW, HEIC, TIFF, video, broken ones) kept in the project with their sources and
# licences (tests/data/camera-files/README.md): a fresh clone tests itself with nothing beside it.
CAMERA_FILES = REPO / "tests" / "data" / "camera-files"


@pytest.fixture(scope="session")
def camera_files() -> Path:
    if not (CAMERA_FILES / "README.md").is_file():
        pytest.fail(f"the camera-file corpus is missing from {CAMERA_FILES}: restore it with git checkout")
    return CAMERA_FILES


@pytest.fixture(scope="session")
def exiftool() -> str:
    """exiftool on PATH, which scripts/install-system-deps.sh installs: its absence fails the tests that need
    it (the EXIF fallback is a promise, not an option), it never skips them."""
    found = shutil.which("exiftool")
    if found is None:
        pytest.fail("exiftool is not installed: run bash scripts/install-system-deps.sh "
                    "(apt-get install libimage-exiftool-perl)")
    return found


@pytest.fixture
def gap_catalog() -> Callable[[Path], Path]:
    """Makes a catalog file with the last migration but not the one before (written between two migrations that
    landed out of order): `gap_catalog(path)` -> path."""
    import time

    from capture.catalog import _statements
    from capture.schema import MIGRATIONS

    def make(path: Path) -> Path:
        skipped = MIGRATIONS[-2]
        conn = sqlite3.connect(path)
        for m in MIGRATIONS:
            if m is skipped:
                continue
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?,?,?)", (m.version, m.description, time.time()))
            if m.version == 1:
                conn.execute("INSERT INTO catalog_info VALUES ('station_id', 'gapstation01')")
        conn.execute(f"PRAGMA user_version = {MIGRATIONS[-1].version}")
        conn.commit()
        conn.close()
        return path

    return make


@pytest.fixture
def future_catalog() -> Callable[[Path, int], Path]:
    """Makes a catalog whose schema is `ahead` versions newer than this cinectrl's (as a newer release would
    leave it): `future_catalog(path, ahead)` -> path."""
    from capture.catalog import Catalog
    from capture.schema import SCHEMA_VERSION

    def make(path: Path, ahead: int = 1) -> Path:
        Catalog(path).close()
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + ahead}")
        conn.commit()
        conn.close()
        return path

    return make
