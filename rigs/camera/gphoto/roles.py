"""Vendor role maps: which gphoto2 widget plays which role on which body, resolved against the real tree.

The tables follow the menu tables of libgphoto2's `camlibs/ptp2/config.c` (hardware notes section 2).
A name in a table is only a candidate: `resolve_roles` probes each candidate with the body's own
`get_single_config` (through the `probe` callable) and keeps the first that answers, because
`list_config` lists widgets that then fail (the virtual camera lists `iso` and has none).
No gphoto2 import here, so the maps are testable from recorded widget trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..protocol import APERTURE, FOCAL, FOCUS, ISO, KELVIN, SHUTTER, WHITE_BALANCE

# Widget roles beyond the protocol's sweep roles: what the backend itself needs to drive a body.
CAPTURE_TARGET = "capture_target"
IMAGE_FORMAT = "image_format"
FOCUS_MODE = "focus_mode"
MANUAL_FOCUS_DRIVE = "manual_focus_drive"
EXPOSURE_COMPENSATION = "exposure_compensation"
MOVIE = "movie"
VIEWFINDER = "viewfinder"
DATETIME = "datetime"
SERIAL = "serial"
MODEL = "model"
MANUFACTURER = "manufacturer"
LENS = "lens"
FIRMWARE = "firmware"
BATTERY = "battery"

VENDORS = ("Canon", "Nikon", "Sony", "Fuji", "Olympus", "Panasonic", "Generic")

_IDENTITY = {
    SERIAL: ("serialnumber",),
    MODEL: ("cameramodel", "model"),
    MANUFACTURER: ("manufacturer",),
    LENS: ("lensname",),
    FIRMWARE: ("deviceversion",),
    BATTERY: ("batterylevel",),
    DATETIME: ("datetime", "datetimeutc"),
}

# Candidates per role and vendor, best first. Nikon: `shutterspeed2` prints fractions; the generic
# `shutterspeed` rounds to 4 decimals so 1/8000 collides with 1/10000 (notes section 2).
VENDOR_MAPS: dict[str, dict[str, tuple[str, ...]]] = {
    "Canon": {
        APERTURE: ("aperture",), SHUTTER: ("shutterspeed",), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode",), MANUAL_FOCUS_DRIVE: ("manualfocusdrive",),
        CAPTURE_TARGET: ("capturetarget",), IMAGE_FORMAT: ("imageformat",),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movierecordtarget",), VIEWFINDER: ("viewfinder",),
    },
    "Nikon": {
        APERTURE: ("f-number", "aperture"), SHUTTER: ("shutterspeed2", "shutterspeed"), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode", "focusmode2"), MANUAL_FOCUS_DRIVE: ("manualfocusdrive",),
        CAPTURE_TARGET: ("capturetarget", "recordingmedia"), IMAGE_FORMAT: ("imagequality", "imageformat"),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movie",), VIEWFINDER: ("viewfinder",),
    },
    "Sony": {
        APERTURE: ("f-number",), SHUTTER: ("shutterspeed",), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode",), MANUAL_FOCUS_DRIVE: ("manualfocus",),
        CAPTURE_TARGET: ("capturetarget",), IMAGE_FORMAT: ("imagequality", "imageformat"),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movie",), VIEWFINDER: ("viewfinder",),
    },
    "Fuji": {
        APERTURE: ("f-number", "aperture"), SHUTTER: ("shutterspeed",), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode",), MANUAL_FOCUS_DRIVE: ("manualfocusdrive",),
        CAPTURE_TARGET: ("capturetarget",), IMAGE_FORMAT: ("imagequality", "imageformat"),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movie",), VIEWFINDER: ("viewfinder",),
    },
    "Olympus": {
        APERTURE: ("aperture", "f-number"), SHUTTER: ("shutterspeed",), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode",), MANUAL_FOCUS_DRIVE: ("manualfocusdrive",),
        CAPTURE_TARGET: ("capturetarget",), IMAGE_FORMAT: ("imageformat",),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movie",), VIEWFINDER: ("viewfinder",),
    },
    "Panasonic": {
        APERTURE: ("f-number", "aperture"), SHUTTER: ("shutterspeed",), ISO: ("iso",),
        WHITE_BALANCE: ("whitebalance",), KELVIN: ("colortemperature",),
        FOCUS_MODE: ("focusmode",), MANUAL_FOCUS_DRIVE: ("manualfocusdrive",),
        CAPTURE_TARGET: ("capturetarget",), IMAGE_FORMAT: ("imageformat",),
        EXPOSURE_COMPENSATION: ("exposurecompensation",),
        MOVIE: ("movie",), VIEWFINDER: ("viewfinder",),
    },
}
VENDOR_MAPS["Generic"] = {
    role: tuple(dict.fromkeys(name for vmap in VENDOR_MAPS.values() for name in vmap.get(role, ())))
    for role in VENDOR_MAPS["Nikon"]
}

# Why a role can be missing on every gphoto2 body, whatever its vendor.
NEVER_AVAILABLE = {
    FOCUS: "gphoto2 drives focus in relative motor steps (manualfocusdrive), not to a distance in metres",
    FOCAL: "no PTP body exposes a motorised zoom through gphoto2",
}


def vendor_of(manufacturer: str, model: str) -> str:
    """Map the body's manufacturer/model strings (any spelling) to a vendor key of VENDOR_MAPS."""
    text = f"{manufacturer} {model}".lower()
    for vendor, needles in (("Canon", ("canon",)), ("Nikon", ("nikon",)), ("Sony", ("sony",)),
                            ("Fuji", ("fuji",)), ("Olympus", ("olympus", "om digital")),
                            ("Panasonic", ("panasonic", "lumix"))):
        if any(n in text for n in needles):
            return vendor
    return "Generic"


@dataclass(frozen=True)
class WidgetInfo:
    """What one probe of one widget tells: enough to validate a value without asking the body again."""

    name: str
    kind: str                      # RADIO, MENU, RANGE, TOGGLE, TEXT, DATE
    value: object
    choices: tuple[str, ...] = ()
    range: tuple[float, float, float] | None = None   # min, max, step
    readonly: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "value": self.value, "choices": list(self.choices),
                "range": list(self.range) if self.range else None, "readonly": self.readonly}

    @classmethod
    def from_dict(cls, name: str, data: dict) -> "WidgetInfo":
        rng = data.get("range")
        return cls(name=name, kind=data["kind"], value=data.get("value"),
                   choices=tuple(data.get("choices") or ()), range=tuple(rng) if rng else None,
                   readonly=bool(data.get("readonly", False)))


Probe = Callable[[str], "WidgetInfo | None"]


@dataclass
class RoleMap:
    """Roles resolved on one body: role -> widget, plus what was tried for the roles that are missing."""

    vendor: str
    widgets: dict[str, WidgetInfo] = field(default_factory=dict)
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def name(self, role: str) -> str | None:
        info = self.widgets.get(role)
        return info.name if info else None

    def why_missing(self, role: str) -> str:
        if role in NEVER_AVAILABLE:
            return NEVER_AVAILABLE[role]
        tried = self.missing.get(role, ())
        if not tried:
            return f"no {self.vendor} widget is known for {role}"
        return f"no widget answered for {role} (tried {', '.join(tried)})"


def resolve_roles(vendor: str, probe: Probe, roles: tuple[str, ...] | None = None) -> RoleMap:
    """Probe each candidate widget of each role on the body; the first that answers wins."""
    table = {**{r: names for r, names in _IDENTITY.items()}, **VENDOR_MAPS.get(vendor, VENDOR_MAPS["Generic"])}
    result = RoleMap(vendor=vendor)
    for role in roles or (*table, *NEVER_AVAILABLE):
        candidates = table.get(role, ())
        for name in candidates:
            info = probe(name)
            if info is not None:
                result.widgets[role] = info
                break
        else:
            result.missing[role] = candidates
    return result
