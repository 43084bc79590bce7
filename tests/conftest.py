"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

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
