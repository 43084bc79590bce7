"""A plan's identity by meaning: the parsed plan, normalised, so comments and formatting change nothing.

`plan_key` keys a session (a rerun of the same plan resumes it); `describe_changes` says, field by field,
what an edited plan changed. Left out of the key on purpose: `[session] notes`, `[costs]` (estimates only)
and `rig.speed` (the simulation speed-up): editing them never forks a take.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rigs.camera import values

from .model import Plan


def _label(role: str, label: str, canonical: bool) -> Any:
    if not canonical:
        return label
    number = values.number(role, label)
    return round(number, 9) if number is not None else label.strip().lower()


def substance(plan: Plan, *, canonical: bool = True) -> dict[str, Any]:
    """What the plan asks the rig to do; `canonical` turns labels into numbers ('f/8' and 'F8' are the same)."""
    session = {k: plan.session.get(k, "").strip() for k in ("scene", "operator", "name")}
    exposure = None
    if plan.exposure:
        exposure = {"compensate": list(plan.exposure.compensate),
                    "reference": {r: _label(r, v, canonical) for r, v in sorted(plan.exposure.reference.items())},
                    "tolerance_stops": round(plan.exposure.tolerance_stops, 9)}
    trajectory = None
    if plan.trajectory:
        tr = plan.trajectory
        trajectory = {"start_mm": tr.start_mm, "end_mm": tr.end_mm, "speed_mm_s": tr.speed_mm_s,
                      "frames": tr.frames, "fps": tr.fps}
        if tuple(tr.offsets_mm) != (0.0,):       # absent before camera-path sweeps: older keys stay the same
            trajectory["offsets_mm"] = list(tr.offsets_mm)
    return {
        "session": session,
        "rig": {"camera": plan.camera, "slider": plan.slider, "camera_options": plan.camera_options,
                "slider_options": plan.slider_options},
        "mode": plan.mode,
        "axes": {role: [_label(role, v, canonical) for v in labels] for role, labels in plan.axes.items()},
        "slider_mm": list(plan.positions),
        "trajectory": trajectory,
        "order": {"loop": list(plan.loop), "snake": sorted(plan.snake), "repeat": plan.repeat},
        "exposure": exposure,
        "pairs": {"reference": {r: _label(r, v, canonical) for r, v in sorted(plan.pair_reference.items())}},
    }


def plan_key(plan: Plan) -> str:
    """sha256 of the normalised plan: the same for every spelling of the same plan."""
    text = json.dumps(substance(plan), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: value}


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe_changes(before: Plan, after: Plan) -> list[str]:
    """'axes.aperture: [f/2.8, f/8] -> [f/2.8, f/11]', one line per field whose meaning changed."""
    old, new = _flatten(substance(before)), _flatten(substance(after))
    old_text, new_text = _flatten(substance(before, canonical=False)), _flatten(substance(after, canonical=False))
    lines = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            lines.append(f"{path}: {_show(old_text.get(path))} -> {_show(new_text.get(path))}")
    return lines
