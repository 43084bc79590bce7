"""gphoto2 result codes -> the protocol's typed errors, with what the operator can do about each.

The worker sends errors back as (class name, message); the client raises the class by name.
Codes from gphoto2-result.h / gphoto2-port-result.h (hardware notes section 4).
"""

from __future__ import annotations

from .. import protocol

BUSY = -110          # GP_ERROR_CAMERA_BUSY, PTP 0x2019 "Device Busy"
TIMEOUT = -10        # GP_ERROR_TIMEOUT
IO = -7              # GP_ERROR_IO
NO_MEMORY = -3       # GP_ERROR_NO_MEMORY: the virtual camera's 27th capture per open
NOT_SUPPORTED = -6   # GP_ERROR_NOT_SUPPORTED
BAD_PARAMETERS = -2
USB_FIND = -52       # GP_ERROR_IO_USB_FIND
USB_CLAIM = -53      # GP_ERROR_IO_USB_CLAIM
MODEL_NOT_FOUND = -105
IO_READ = -34
IO_WRITE = -35
IO_UPDATE = -37
IO_USB_SERIAL_SPEED = -41
IO_USB_CLEAR_HALT = -51
FILE_NOT_FOUND = -108
DIRECTORY_NOT_FOUND = -107
CAMERA_ERROR = -113

CLAIMED_HINT = ("another process holds the USB device: the desktop's gvfs (gvfs-gphoto2-volume-monitor, "
                "gvfsd-gphoto2), KDE's device manager or another gphoto2 program. Eject the camera in the file "
                "manager or stop those processes (e.g. `systemctl --user stop gvfs-gphoto2-volume-monitor`), "
                "then retry")

RECONNECT_CODES = {TIMEOUT, IO, IO_READ, IO_WRITE, IO_UPDATE, IO_USB_CLEAR_HALT, CAMERA_ERROR}
GONE_CODES = {USB_FIND, MODEL_NOT_FOUND}


def error_class(code: int) -> type[protocol.CameraError]:
    """The typed error a gphoto2 code becomes when the ladder could not absorb it."""
    if code == BUSY:
        return protocol.CameraBusy
    if code in RECONNECT_CODES:
        return protocol.CameraTimeout
    if code in GONE_CODES:
        return protocol.CameraDisconnected
    if code == USB_CLAIM:
        return protocol.CameraClaimed
    if code == NOT_SUPPORTED:
        return protocol.UnsupportedFeature
    return protocol.CameraError


ERROR_CLASSES = {cls.__name__: cls for cls in (
    protocol.CameraError, protocol.CameraBusy, protocol.CameraTimeout, protocol.CameraDisconnected,
    protocol.CameraClaimed, protocol.UnsupportedValue, protocol.UnsupportedFeature, protocol.UnknownSetting)}
