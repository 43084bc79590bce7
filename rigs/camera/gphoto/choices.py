"""Match a requested value against a widget's real choices before anything is sent to the body.

An out-of-list f-number segfaults libgphoto2 and RADIO widgets accept any string (notes section 3), so
every value is matched here first. Numeric roles compare numbers ("1/100" matches Nikon's generic
"0.0100s", "5.6" matches "f/5.6"); other roles compare labels, ignoring case.
"""

from __future__ import annotations

from .. import values
from ..protocol import UnsupportedValue
from .roles import WidgetInfo


def match_choice(role: str, value: str, info: WidgetInfo, *, camera: str) -> str:
    """The body's own label for `value`, or UnsupportedValue naming the camera, widget and choices."""
    if info.readonly:
        raise UnsupportedValue(f"{role} ({info.name}) is read-only on this body", camera=camera)
    text = str(value).strip()
    if info.kind in ("RADIO", "MENU"):
        hits = values.matching_labels(role, text, info.choices)
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
