"""Cameras: the protocol, the gphoto2 backend (real bodies) and the simulated camera."""

from __future__ import annotations

from .protocol import Camera

__all__ = ["Camera", "open_camera"]


def open_camera(spec: str, **options) -> Camera:
    """Open a camera from a plan or CLI spec: 'sim', 'gphoto2' (first detected), a serial number or a port."""
    if spec == "sim":
        from .sim import SimCamera

        return SimCamera(**options)
    from .gphoto import open_gphoto_camera

    return open_gphoto_camera(None if spec == "gphoto2" else spec, **options)
