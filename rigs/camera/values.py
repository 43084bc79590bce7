"""Camera setting labels ("f/2.8", "1/60", "0.0100s", "1\"3", "400", "5600K"): parse, format, compare, match.

Labels differ by vendor and libgphoto2 version; everything numeric goes through here so the rest of
the toolkit compares numbers, never strings. This is the one home of the role -> parser table
(`PARSERS`) and of label matching (`same_value`, `matching_labels`, `match_label`): plans, pairs, the
catalog, the simulated camera and the gphoto2 backend all call these.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Callable, Iterable

from .protocol import APERTURE, FOCAL, FOCUS, ISO, KELVIN, SHUTTER

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


# ------------------------------------------------------------------------------------------------- roles

# role -> label parser: the one table every layer uses (plans, pairs, the catalog, the camera backends).
# White balance presets ("Daylight") have no number and are compared as words.
PARSERS: dict[str, Callable[[str], float | Fraction | int]] = {
    APERTURE: parse_aperture, SHUTTER: parse_shutter, ISO: parse_iso, KELVIN: parse_kelvin,
    FOCUS: parse_metres, FOCAL: parse_mm,
}


def number(role: str, label: object) -> float | None:
    """The number a label stands for ('f/5.6' -> 5.6, '1/400' -> 0.0025, '5600K' -> 5600), or None
    (a preset such as 'Daylight', or a label that does not parse)."""
    if label is None or isinstance(label, bool):
        return None
    if isinstance(label, (int, float)):
        return float(label)
    parse = PARSERS.get(role)
    if parse is None:
        try:
            return float(str(label))
        except ValueError:
            return None
    try:
        return float(parse(str(label)))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _exact(role: str, label: str) -> Fraction | float | int | None:
    parse = PARSERS.get(role)
    if parse is None:
        return None
    try:
        return parse(label)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _close(role: str, a, b) -> bool:
    """Numeric equality as cameras print it: generic PTP shutter labels are rounded to 1/10000 s
    ('0.0012s' for 1/800) and f-numbers to one decimal."""
    if role == SHUTTER:
        a, b = Fraction(a), Fraction(b)
        return abs(a - b) <= Fraction(1, 20000) or abs(a - b) <= b / 100
    if role == APERTURE:
        return abs(float(a) - float(b)) < 0.051
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-6)


def same_value(role: str, a: object, b: object) -> bool:
    """Whether two labels mean the same setting ('1/100' and '0.0100s'; 'Daylight' and 'daylight')."""
    sa, sb = str(a).strip(), str(b).strip()
    if sa.lower() == sb.lower():
        return True
    na, nb = _exact(role, sa), _exact(role, sb)
    return na is not None and nb is not None and _close(role, na, nb)


def matching_labels(role: str, value: str, offered: Iterable[str]) -> list[str]:
    """The camera's own labels that mean `value`: the exact label, else the same word ignoring case, else
    every label numerically equal to it (closest first; a single exact number wins outright). More than one
    label means the value is ambiguous on this body (1/8000 and 1/10000 both print '0.0001s')."""
    offered = [str(o) for o in offered]
    text = str(value).strip()
    if text in offered:
        return [text]
    folded = [o for o in offered if o.lower() == text.lower()]
    if folded:
        return folded[:1]
    wanted = _exact(role, text)
    if wanted is None:
        return []
    hits = []
    for label in offered:
        got = _exact(role, label)
        if got is not None and _close(role, got, wanted):
            hits.append((abs(float(got) - float(wanted)), label))
    hits.sort(key=lambda h: h[0])
    if len(hits) > 1 and hits[0][0] <= abs(float(wanted)) * 1e-9:
        return [hits[0][1]]
    return [label for _, label in hits]


def match_label(role: str, value: str, offered: Iterable[str]) -> str | None:
    """The one label of `offered` that means `value`, or None (not offered, or ambiguous)."""
    hits = matching_labels(role, value, offered)
    return hits[0] if len(hits) == 1 else None


def nearest_labels(role: str, value: str, offered: Iterable[str], count: int = 3) -> list[str]:
    """The offered labels closest to `value` on a log scale (for 'did you mean' messages)."""
    offered = list(offered)
    wanted = number(role, value)
    if wanted is None or wanted <= 0 or math.isinf(wanted):
        return offered[:count]
    ranked = []
    for label in offered:
        got = number(role, label)
        if got is not None and got > 0 and not math.isinf(got):
            ranked.append((abs(math.log(got) - math.log(wanted)), label))
    return [label for _, label in sorted(ranked)[:count]] or offered[:count]
