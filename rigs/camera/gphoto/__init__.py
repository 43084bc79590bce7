"""The gphoto2 backend: tethered bodies through python-gphoto2, one worker process per camera.

    open_gphoto_camera(None)                       first detected body
    open_gphoto_camera("3021514")                  by serial number (stable across USB re-plugs)
    open_gphoto_camera("usb:001,004")              by port
    open_gphoto_camera(None, virtual_dir=PATH)     libgphoto2's virtual camera over a folder of JPEGs
    open_camera("virtual:PATH")                    the same through rigs.camera.open_camera
"""

from __future__ import annotations

from pathlib import Path

from .client import GPhotoCamera, detect_cameras

VIRTUAL_PREFIX = "virtual:"

__all__ = ["GPhotoCamera", "detect_cameras", "open_gphoto_camera", "VIRTUAL_PREFIX"]


def open_gphoto_camera(selector: str | None = None, **options) -> GPhotoCamera:
    """Open a body by serial, port or (None) the first detected; 'virtual:PATH' opens the virtual camera."""
    if selector and selector.startswith(VIRTUAL_PREFIX):
        options["virtual_dir"] = Path(selector[len(VIRTUAL_PREFIX):]).expanduser()
        selector = None
    return GPhotoCamera(selector, **options)
