"""Fixtures for the rigs tests: a private folder of JPEGs for libgphoto2's virtual camera, a private config dir.

Every virtual-camera test drives the camera through the backend's worker process, which gets
VCAMERADIR (this test's own folder), LANG=C and its own XDG_CONFIG_HOME; the test process itself
also gets a private XDG_CONFIG_HOME so nothing libgphoto2 persists can leak between tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def vcam_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from PIL import Image

    folder = tmp_path / "vcamera"
    folder.mkdir()
    Image.new("RGB", (96, 64), (180, 90, 30)).save(folder / "DSC_0001.JPG", quality=85)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VCAMERADIR", raising=False)
    return folder


@pytest.fixture
def vcam(vcam_dir: Path):
    from rigs.camera.gphoto import open_gphoto_camera

    camera = open_gphoto_camera(None, virtual_dir=vcam_dir, op_timeout_s=30.0)
    try:
        yield camera
    finally:
        camera.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where captures go (apart from the virtual camera's own folder)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder
