"""Parse and format camera setting labels ("f/2.8", "1/60", "0.0100s", "1\"", "400", "5600K").

Labels differ by vendor and libgphoto2 version; everything numeric goes through here so the rest of
the toolkit compares numbers, never strings.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_aperture(label: str) -> float:
    """'f/2.8', 'F2.8', '2.8' -> 2.8."""
    text = str(label).strip().lower().removeprefix("f/").removeprefix("f")
    if not _NUMBER.match(text):
        raise ValueError(f"aperture {label!r} is not an f-number such as 'f/2.8'")
    value = float(text)
    if value <= 0:
        raise ValueError(f"aperture {label!r} must be positive")
    return value


def parse_shutter(label: str) -> Fraction:
    """'1/60', '1/60s', '0.0100s', '2"', '2.5', '1"3' (Sony 1.3 s) -> seconds as an exact Fraction."""
    text = str(label).strip().lower().rstrip("s").strip()
    if text in {"bulb", "time", "auto"}:
        raise ValueError(f"shutter {label!r} is not a fixed exposure time")
    match = re.fullmatch(r'(\d+)"(\d+)?', text)
    if match:  # 1"3 means 1.3 s on Sony/Canon displays
        whole, tenths = match.groups()
        return Fraction(f"{whole}.{tenths}" if tenths else whole)
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"shutter {label!r} is not an exposure time such as '1/60' or '0.5'") from None
    if value <= 0:
        raise ValueError(f"shutter {label!r} must be positive")
    return value


def parse_iso(label: str) -> int:
    """'400', 'ISO 400', 'Hi 1' is refused (not a number)."""
    text = str(label).strip().lower().removeprefix("iso").strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"ISO {label!r} is not a number such as '400'")
    return int(text)


def parse_kelvin(label: str) -> int:
    text = str(label).strip().lower().removesuffix("k").strip()
    if not text.isdigit():
        raise ValueError(f"colour temperature {label!r} is not a Kelvin value such as '5600'")
    return int(text)


def parse_metres(label: str) -> float:
    text = str(label).strip().lower().removesuffix("m").strip()
    if text in {"inf", "infinity", "∞"}:
        return math.inf
    if not _NUMBER.match(text) or float(text) <= 0:
        raise ValueError(f"distance {label!r} is not a positive number of metres such as '1.5'")
    return float(text)


def parse_mm(label: str) -> float:
    text = str(label).strip().lower().removesuffix("mm").strip()
    if not _NUMBER.match(text) or float(text) <= 0:
        raise ValueError(f"focal length {label!r} is not a positive number of mm such as '35'")
    return float(text)


def format_aperture(n: float) -> str:
    return f"f/{n:g}"


def format_shutter(t: Fraction | float) -> str:
    """Camera-style label: 1/60 below one second, decimal seconds at or above it."""
    t = Fraction(t).limit_denominator(100000)
    if t < 1:
        inverse = 1 / t
        if inverse.denominator == 1:
            return f"1/{inverse.numerator}"
        return f"{float(t):g}"
    return f"{float(t):g}"


def shutter_seconds(label: str) -> float:
    return float(parse_shutter(label))
