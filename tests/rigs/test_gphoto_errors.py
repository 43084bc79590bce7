"""gphoto2 result codes become the protocol's typed errors (codes the virtual camera cannot produce)."""

from __future__ import annotations

import pytest

from rigs.camera.gphoto import errors
from rigs.camera.protocol import (CameraBusy, CameraClaimed, CameraDisconnected, CameraError, CameraTimeout,
                                  UnsupportedFeature)


@pytest.mark.parametrize("code, cls", [
    (-110, CameraBusy), (-10, CameraTimeout), (-7, CameraTimeout), (-35, CameraTimeout),
    (-52, CameraDisconnected), (-105, CameraDisconnected), (-53, CameraClaimed), (-6, UnsupportedFeature),
    (-1, CameraError),
])
def test_codes_map_to_typed_errors(code, cls):
    assert errors.error_class(code) is cls


def test_claimed_hint_says_how_to_free_the_device():
    assert "gvfs-gphoto2-volume-monitor" in errors.CLAIMED_HINT and "eject" in errors.CLAIMED_HINT.lower()


def test_every_typed_error_crosses_the_worker_boundary_by_name():
    for cls in (CameraBusy, CameraTimeout, CameraDisconnected, CameraClaimed, UnsupportedFeature, CameraError):
        assert errors.ERROR_CLASSES[cls.__name__] is cls
