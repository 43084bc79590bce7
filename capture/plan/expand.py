"""A plan's points: constant-exposure compensation from the camera's own values, loop order, snaking."""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

from rigs.camera import values
from rigs.camera.protocol import APERTURE, ISO, ROLES, SHUTTER

from .model import EXPOSURE_ROLES, REPEAT_AXIS, SLIDER_AXIS, Plan, PlanError, Point, Problem

# Offline previews (no camera opened) compensate with a typical body's 1/3-stop ladders; a real run
# always uses the connected camera's own choices.
TYPICAL_CHOICES = {
    SHUTTER: ["1/8000", "1/6400", "1/5000", "1/4000", "1/3200", "1/2500", "1/2000", "1/1600", "1/1250",
              "1/1000", "1/800", "1/640", "1/500", "1/400", "1/320", "1/250", "1/200", "1/160", "1/125",
              "1/100", "1/80", "1/60", "1/50", "1/40", "1/30", "1/25", "1/20", "1/15", "1/13", "1/10", "1/8",
              "1/6", "1/5", "1/4", "0.3", "0.4", "0.5", "0.6", "0.8", "1", "1.3", "1.6", "2", "2.5", "3.2", "4"],
    ISO: ["50", "64", "80", "100", "125", "160", "200", "250", "320", "400", "500", "640", "800", "1000",
          "1250", "1600", "2000", "2500", "3200", "4000", "5000", "6400", "8000", "10000", "12800"],
}


def exposure_value(settings: Mapping[str, str], fallback: Mapping[str, str] | None = None) -> float:
    """log2 of relative exposure t*ISO/N^2 (a role missing from `settings` is taken from `fallback`)."""
    merged = {**(fallback or {}), **settings}
    n = values.parse_aperture(merged[APERTURE]) if APERTURE in merged else 1.0
    t = float(values.parse_shutter(merged[SHUTTER])) if SHUTTER in merged else 1.0
    iso = values.parse_iso(merged[ISO]) if ISO in merged else 100
    return math.log2(t * iso / (n * n))


def exposure_stops(settings: Mapping[str, str], reference: Mapping[str, str]) -> float:
    """Signed exposure difference in stops between two settings (0 = same exposure)."""
    return exposure_value(settings, reference) - exposure_value(reference, settings)


def _looped_roles(plan: Plan) -> list[str]:
    return [r for r in ROLES if r in plan.axes and not (plan.exposure and r in plan.exposure.compensate)]


def _parses(role: str, label: str) -> bool:
    return values.number(role, label) is not None


def compensated_settings(plan: Plan, choices: Mapping[str, list[str]] | None) -> dict[tuple, dict[str, str]]:
    """For every combination of looped roles: the full settings, compensated to constant exposure.

    Only values the camera offers are chosen; the first role in `compensate` moves first, the next one
    only when the first cannot reach the target within the tolerance (e.g. shutter, then ISO).
    """
    looped = _looped_roles(plan)
    result: dict[tuple, dict[str, str]] = {}
    problems: list[Problem] = []
    for combo in itertools.product(*(plan.axes[r] for r in looped)):
        settings = dict(zip(looped, combo))
        for role in plan.axes:  # single-valued compensated axes still need a value when not compensating
            settings.setdefault(role, plan.axes[role][0])
        if plan.exposure:
            rule = plan.exposure
            base = {r: settings.get(r, rule.reference.get(r)) for r in EXPOSURE_ROLES}
            fixed = {r: base[r] for r in EXPOSURE_ROLES if r not in rule.compensate}
            pools = []
            for role in rule.compensate:
                offered = (choices or {}).get(role) if choices is not None else TYPICAL_CHOICES[role]
                pools.append([c for c in (offered or []) if _parses(role, c)])
            candidates = []
            for picks in itertools.product(*pools):
                trial = dict(fixed, **dict(zip(rule.compensate, picks)))
                error = abs(exposure_stops(trial, rule.reference))
                moved = tuple(abs(math.log2(values.number(r, trial[r]) / values.number(r, rule.reference[r])))
                              for r in reversed(rule.compensate[1:]))  # moving a later role = worse
                candidates.append((error > rule.tolerance_stops + 1e-6, moved, error, trial))
            if not candidates:
                problems.append(Problem("exposure.compensate", "no camera values to compensate with",
                                        plan.line("exposure.compensate")))
                continue
            bad, _, error, best = min(candidates, key=lambda c: c[:3])
            if bad:
                problems.append(Problem(
                    "exposure", f"cannot hold exposure within {rule.tolerance_stops:.2f} stop at "
                                f"{', '.join(f'{k} {v}' for k, v in fixed.items())}: the closest the camera offers "
                                f"is {error:.2f} stop away; widen the camera's range or drop that value",
                    plan.line("exposure")))
            settings.update(best)
        result[combo] = settings
    if problems:
        raise PlanError(problems, plan.source)
    return result


def expand(plan: Plan, choices: Mapping[str, list[str]] | None = None) -> list[Point]:
    """The ordered points of a plan (loop order + snaking), with camera labels resolved where known."""
    looped = _looped_roles(plan)
    combos = compensated_settings(plan, choices)
    offsets = plan.trajectory.offsets_mm if plan.mode == "passes" and plan.trajectory else (0.0,)
    # one clip per settings combination and camera path: combination ids run over the offsets innermost, so a
    # plan without offsets keeps its ids and the first offset of each combination comes first
    combo_ids = {combo: i * len(offsets) for i, combo in enumerate(combos)}
    lists: dict[str, list] = {r: list(plan.axes[r]) for r in looped if r in plan.loop}
    if SLIDER_AXIS in plan.loop:
        lists[SLIDER_AXIS] = list(plan.positions)
    if REPEAT_AXIS in plan.loop:
        lists[REPEAT_AXIS] = list(range(plan.repeat))
    starts = {axis: 0 for axis in plan.loop}
    points: list[Point] = []

    def walk(depth: int, chosen: dict[str, Any]) -> None:
        if depth == len(plan.loop):
            combo = tuple(chosen.get(r, plan.axes[r][0]) for r in looped)
            settings = dict(combos[combo])
            if choices:
                settings = {r: (values.match_label(r, v, choices.get(r) or []) or v) for r, v in settings.items()}
            index = len(points)
            slider_mm = chosen.get(SLIDER_AXIS)
            if plan.mode == "stills":
                frame = plan.positions.index(slider_mm) if slider_mm is not None else 0
                frame = frame * plan.repeat + chosen.get(REPEAT_AXIS, 0)
                points.append(Point(index, f"p{index:04d}", settings, slider_mm, "still", combo_ids[combo], frame))
            else:
                tr = plan.trajectory
                for k, offset in enumerate(offsets):
                    start = tr.start_at(offset) if tr is not None and len(offsets) > 1 else None
                    points.append(Point(len(points), f"p{len(points):04d}", settings, start, "clip",
                                        combo_ids[combo] + k, 0))
            return
        axis = plan.loop[depth]
        items = lists[axis]
        if axis in plan.snake and starts[axis] % 2 == 1:
            items = list(reversed(items))
        starts[axis] += 1
        for item in items:
            walk(depth + 1, {**chosen, axis: item})

    walk(0, {})
    return points
