"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the repository (override with CINECTRL_SHARED_DATA). Never copied in."""
    return Path(os.environ.get("CINECTRL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def camera_files() -> Path:
    path = shared_data_dir() / "camera-files"
    if not path.is_dir():
        pytest.fail(f"shared camera files not found at {path}; set CINECTRL_SHARED_DATA")
    return path


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
