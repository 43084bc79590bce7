"""Match a requested value against a widget's real choices before anything is sent to the body.

An out-of-list f-number segfaults libgphoto2 and RADIO widgets accept any string (notes section 3), so
every value is matched here first. Numeric roles compare numbers ("1/100" matches Nikon's generic
"0.0100s", "5.6" matches "f/5.6"); other roles compare labels, ignoring case.
"""

from __future__ import annotations

from fractions import Fraction

from .. import values
from ..protocol import APERTURE, ISO, KELVIN, SHUTTER, UnsupportedValue
from .roles import WidgetInfo

_PARSERS = {APERTURE: values.parse_aperture, SHUTTER: values.parse_shutter, ISO: values.parse_iso,
            KELVIN: values.parse_kelvin}


def _number(role: str, label: str):
    parser = _PARSERS.get(role)
    if parser is None:
        return None
    try:
        return parser(label)
    except ValueError:
        return None


def _close(role: str, a, b) -> bool:
    if role == SHUTTER:
        # generic PTP shutter labels are rounded to 1/10000 s (0.0012s for 1/800)
        return abs(Fraction(a) - Fraction(b)) <= Fraction(1, 20000) or abs(a - b) <= Fraction(b) / 100
    if role == APERTURE:
        return abs(a - b) < 0.051
    return a == b


def same_value(role: str, a: str, b: str) -> bool:
    """Whether two labels mean the same setting (read-back check)."""
    if str(a).strip().lower() == str(b).strip().lower():
        return True
    na, nb = _number(role, str(a)), _number(role, str(b))
    return na is not None and nb is not None and _close(role, na, nb)


def match_choice(role: str, value: str, info: WidgetInfo, *, camera: str) -> str:
    """The body's own label for `value`, or UnsupportedValue naming the camera, widget and choices."""
    if info.readonly:
        raise UnsupportedValue(f"{role} ({info.name}) is read-only on this body", camera=camera)
    text = str(value).strip()
    if info.kind in ("RADIO", "MENU"):
        for choice in info.choices:
            if choice == text:
                return choice
        for choice in info.choices:
            if choice.lower() == text.lower():
                return choice
        wanted = _number(role, text)
        if wanted is not None:
            hits = [c for c in info.choices if (n := _number(role, c)) is not None and _close(role, n, wanted)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise UnsupportedValue(
                    f"{role} {text!r} is ambiguous on widget {info.name}: it matches {', '.join(hits)}; "
                    "give the exact label", camera=camera)
        shown = ", ".join(info.choices[:40]) + (" ..." if len(info.choices) > 40 else "")
        raise UnsupportedValue(
            f"{role} {text!r} is not one of the body's choices for {info.name}: {shown}. "
            "Pick one of these (nothing was sent to the camera)", camera=camera)
    if info.kind == "RANGE" and info.range:
        low, high, step = info.range
        try:
            number = float(text)
        except ValueError:
            raise UnsupportedValue(f"{role} {text!r} is not a number; {info.name} takes {low:g}..{high:g}",
                                   camera=camera) from None
        if not low <= number <= high or (step and abs(((number - low) / step) - round((number - low) / step)) > 1e-6):
            raise UnsupportedValue(f"{role} {text!r} is outside {info.name}'s range {low:g}..{high:g} "
                                   f"(step {step:g}); nothing was sent", camera=camera)
        return f"{number:g}"
    if info.kind == "TOGGLE":
        if text.lower() in {"1", "on", "true", "yes"}:
            return "1"
        if text.lower() in {"0", "off", "false", "no"}:
            return "0"
        raise UnsupportedValue(f"{role} {text!r}: {info.name} is a toggle, use 1 or 0", camera=camera)
    return text
