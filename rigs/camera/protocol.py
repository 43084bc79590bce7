"""The `Camera` protocol every backend satisfies (gphoto2, simulated), and its typed errors.

Capture code talks only to this protocol, so a plan runs unchanged on a real tethered body or on
the simulated camera. Settings are addressed by *role* (aperture, shutter, ...) rather than by a
vendor's widget name; backends map roles to what the connected body calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

# Roles: the settings a sweep can change. Values are always the camera's own label strings
# ("f/2.8", "1/60", "400", "Daylight", "5600"), parsed with rigs.camera.values when numbers are needed.
APERTURE = "aperture"
SHUTTER = "shutter"
ISO = "iso"
WHITE_BALANCE = "white_balance"
KELVIN = "kelvin"
FOCUS = "focus"          # focus distance in metres (label such as "1.5"), where the body can set it
FOCAL = "focal"          # focal length in mm, where the lens can set it (simulated zoom)
ROLES = (APERTURE, SHUTTER, ISO, WHITE_BALANCE, KELVIN, FOCUS, FOCAL)


@dataclass(frozen=True)
class RoleField:
    """What a numeric role is called outside the camera. The one role <-> field table: EXIF reading, the
    catalog's exports, calibration from files and the pairs' physics all derive theirs from `ROLE_FIELDS`."""

    column: str      # the number's field: the catalog's exif table, export columns (`requested_<column>`...)
    unit: str        # its unit as the exports document it
    physical: str    # its field in rigs.optics.PhysicalSettings (optics checks at import that they agree)
    exif: bool       # whether a file's EXIF records it (the readers fill `column`): focus distance is not read


#: numeric roles only (white balance is a label: its number is `kelvin`)
ROLE_FIELDS: dict[str, RoleField] = {
    APERTURE: RoleField("f_number", "f-number", "f_number", exif=True),
    SHUTTER: RoleField("exposure_s", "s", "exposure_s", exif=True),
    ISO: RoleField("iso", "ISO", "iso", exif=True),
    KELVIN: RoleField("kelvin", "K", "wb_kelvin", exif=True),
    FOCUS: RoleField("focus_m", "m", "focus_m", exif=False),
    FOCAL: RoleField("focal_mm", "mm", "focal_mm", exif=True),
}

# What technicians type: gphoto2 widget names and common spellings, mapped to roles.
ROLE_ALIASES: dict[str, str] = {
    "aperture": APERTURE, "f-number": APERTURE, "fnumber": APERTURE, "f_number": APERTURE,
    "shutter": SHUTTER, "shutterspeed": SHUTTER, "shutterspeed2": SHUTTER, "exposure": SHUTTER,
    "exposure_time": SHUTTER,
    "iso": ISO,
    "white_balance": WHITE_BALANCE, "whitebalance": WHITE_BALANCE, "wb": WHITE_BALANCE,
    "kelvin": KELVIN, "colortemperature": KELVIN, "color_temperature": KELVIN,
    "focus": FOCUS, "focus_m": FOCUS, "focusdistance": FOCUS,
    "focal": FOCAL, "focal_mm": FOCAL, "focallength": FOCAL, "zoom": FOCAL,
}


def role_of(name: str) -> str:
    """Resolve a user-typed setting name to a role, or raise with the names that are accepted."""
    key = name.strip().lower()
    if key in ROLE_ALIASES:
        return ROLE_ALIASES[key]
    raise UnknownSetting(
        f"unknown setting {name!r}: use one of {', '.join(sorted(ROLE_ALIASES))}"
    )


class CameraError(Exception):
    """Base of every camera failure; `camera` names the body so messages say which one failed."""

    def __init__(self, message: str, *, camera: str = "") -> None:
        super().__init__(f"{camera}: {message}" if camera else message)
        self.camera = camera


class UnknownSetting(CameraError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class CameraBusy(CameraError):
    """The body is still writing or processing; back off and retry the same operation."""


class CameraTimeout(CameraError):
    """The body stopped answering; reopen it and re-apply settings."""


class CameraDisconnected(CameraError):
    """The body (or its worker process) is gone; wait for it to reappear, then reopen."""


class CameraClaimed(CameraError):
    """Another process (gvfs, another gphoto2) holds the USB device; only the operator can free it."""


class UnsupportedValue(CameraError, ValueError):
    """A value outside the body's discrete choices; refused before anything is sent."""


class UnsupportedFeature(CameraError):
    """The body (or its mode) cannot do this at all: no ISO widget, no movie, no live view..."""


@dataclass(frozen=True)
class CameraIdentity:
    make: str
    model: str
    serial: str
    lens: str = ""
    firmware: str = ""
    port: str = ""
    battery: str = ""

    def label(self) -> str:
        return f"{self.make} {self.model} (serial {self.serial or 'unknown'})"


@dataclass(frozen=True)
class SettingResult:
    """One set transaction: what was asked, what the camera reported back, and how long it took."""

    role: str
    requested: str
    readback: str
    seconds: float = 0.0
    changed: bool = True     # False when the value was already set and nothing was sent


@dataclass(frozen=True)
class CapturedFile:
    """A file the camera produced, already written atomically (tmp + rename) under the destination."""

    path: Path
    kind: str               # "still" | "raw" | "clip" | "sidecar" | "depth"
    bytes: int
    camera_name: str = ""   # the name the body gave it (never a key: virtual cameras repeat names)
    captured_at: float = 0.0  # host time.time() when the exposure started
    left_on_camera: str = ""  # why the file is still on the body although it should have been deleted


@dataclass(frozen=True)
class Pose:
    """Camera position along the slider (mm, machine coordinates) and an optional pan (degrees)."""

    x_mm: float
    pan_deg: float = 0.0


@dataclass
class CapturedClip:
    files: list[CapturedFile]
    frames: int
    fps: float
    motion_start: float | None = None  # host time at which the slider started moving, if it did
    poses: list[Pose] = field(default_factory=list)


PoseSource = Callable[[], Pose]


@runtime_checkable
class Camera(Protocol):
    """What a capture session needs from any camera, real or simulated."""

    @property
    def identity(self) -> CameraIdentity: ...

    def choices(self) -> dict[str, list[str]]:
        """Discrete choices per supported role, as the body reports them right now."""
        ...

    def get(self, role: str) -> str: ...

    def set(self, role: str, value: str, *, timeout: float = 10.0) -> SettingResult:
        """Set and read back until the body reports the value (or raise); unknown values are refused."""
        ...

    def capture_still(self, dest_dir: Path, *, stem: str) -> list[CapturedFile]:
        """Expose one frame; write every resulting file (RAW+JPEG gives two) as dest_dir/stem.ext."""
        ...

    def record_clip(
        self, dest_dir: Path, *, stem: str, frames: int, fps: float,
        start: Callable[[], float | None] | None = None,
    ) -> CapturedClip:
        """Record `frames` at `fps`; `start` (e.g. a slider trajectory) is called when recording begins."""
        ...

    def live_view(self) -> bytes:
        """One live-view JPEG."""
        ...

    def close(self) -> None: ...
