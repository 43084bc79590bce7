"""The measurements by name: their options (with defaults), and one call that runs any of them.

Plans (`[calibration] measure = "response"`), the command line (`cinectrl rig calibrate response ...`) and
the catalog's profile sections all use these names, so adding a measurement means one entry here (and its
section in `profile.SECTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .. import optics
from .defocus import measure_defocus
from .geometry import measure_geometry
from .inputs import CalibrationInputError, Frame
from .noise import measure_noise
from .profile import CalibrationProfile
from .response import METHODS, fit_response
from .white_balance import DEFAULT_ROI, measure_white_balance


@dataclass(frozen=True)
class Option:
    default: Any                   # None = required
    kind: type                     # float, str, list
    help: str


@dataclass(frozen=True)
class Measurement:
    name: str
    title: str
    target: str                    # what to shoot
    options: Mapping[str, Option]
    run: Callable[[Sequence[Frame], CalibrationProfile, Mapping[str, Any]], tuple[Any, dict]]


_SENSOR = Option(optics.FULL_FRAME_WIDTH_MM, float, "sensor width in mm (36 for full frame, about 23.5 for APS-C)")

MEASUREMENTS: dict[str, Measurement] = {m.name: m for m in (
    Measurement("response", "response curve", "an exposure bracket of a static scene (a grey step chart is best)",
                {"method": Option("debevec", str, f"solver: {' or '.join(METHODS)}"),
                 "force": Option(False, bool, "store the curve even when it predicts the bracket worse than the ideal "
                                              "sRGB camera, or its frames are too far apart to measure it")},
                lambda frames, profile, o: fit_response(frames, method=o["method"], force=o["force"])),
    Measurement("white_balance", "white balance per kelvin", "a grey card under one light, at each white-balance setting",
                {"illuminant_kelvin": Option(5500.0, float, "colour temperature of the light on the card"),
                 "roi": Option(list(DEFAULT_ROI), list, "where the card is: [x0, y0, x1, y1] as fractions of the frame")},
                lambda frames, profile, o: measure_white_balance(frames, response=profile.response,
                                                                 illuminant_kelvin=o["illuminant_kelvin"], roi=o["roi"])),
    Measurement("geometry", "focal length, distortion and breathing",
                "a tilted checkerboard from several positions, at each focal length and focus distance",
                {"board": Option([12, 9], list, "inner corners of the checkerboard: [columns, rows]"),
                 "square_mm": Option(40.0, float, "size of one checkerboard square in mm"),
                 "sensor_width_mm": _SENSOR},
                lambda frames, profile, o: measure_geometry(frames, board=tuple(o["board"]),  # type: ignore[arg-type]
                                                            square_mm=o["square_mm"],
                                                            sensor_width_mm=o["sensor_width_mm"])),
    Measurement("defocus", "defocus scale", "an aperture sweep on a high-contrast edge at a known distance, focused in "
                                            "front of it",
                {"edge_distance_m": Option(None, float, "distance from the sensor to the edge in metres"),
                 "sensor_width_mm": _SENSOR},
                lambda frames, profile, o: measure_defocus(frames, edge_distance_m=o["edge_distance_m"],
                                                           response=profile.response,
                                                           sensor_width_mm=o["sensor_width_mm"])),
    Measurement("noise", "noise per ISO (photon transfer)", "pairs of flat frames at several exposures per ISO",
                {}, lambda frames, profile, o: measure_noise(frames, response=profile.response)),
)}


def options_for(name: str, given: Mapping[str, Any], *, where: str = "calibration") -> dict[str, Any]:
    """The measurement's options: `given` checked against what it takes, defaults for the rest."""
    measurement = get(name)
    prefix = f"{where}: " if where else ""
    unknown = sorted(set(given) - set(measurement.options))
    if unknown:
        takes = ", ".join(measurement.options) or "no options"
        raise CalibrationInputError(f"{prefix}{name} takes {takes}; not {', '.join(unknown)}")
    out = {}
    for key, option in measurement.options.items():
        value = given.get(key, option.default)
        if value is None:
            raise CalibrationInputError(f"{prefix}{name} needs {key} ({option.help})")
        try:
            if option.kind is bool and not isinstance(value, bool):
                raise TypeError(value)
            out[key] = list(value) if option.kind is list else option.kind(value)
        except (TypeError, ValueError):
            raise CalibrationInputError(f"{prefix}{key} = {value!r} is not a {option.kind.__name__} "
                                        f"({option.help})") from None
    return out


def get(name: str) -> Measurement:
    key = name.replace("-", "_")
    if key not in MEASUREMENTS:
        raise CalibrationInputError(f"unknown measurement {name!r}; measurements are {', '.join(MEASUREMENTS)}")
    return MEASUREMENTS[key]


def measure(name: str, frames: Sequence[Frame], profile: CalibrationProfile,
            options: Mapping[str, Any]) -> tuple[Any, dict]:
    """Run one measurement on frames; the profile so far supplies what it builds on (the response curve)."""
    measurement = get(name)
    return measurement.run(frames, profile, options_for(measurement.name, options))
