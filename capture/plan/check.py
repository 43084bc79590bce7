"""A parsed plan against the real rig: the camera's own choices, the slider's travel, speed and acceleration.

Nothing is sent to any device: the caller reads the choices and the slider's info once and passes them in.
"""

from __future__ import annotations

import math
from typing import Mapping

from rigs.camera import values
from rigs.camera.protocol import SHUTTER
from rigs.slider.motion import move_duration

from .expand import compensated_settings
from .model import Plan, PlanError, Problem, shorten
from .parse import pass_coverage_problem


def check_plan(plan: Plan, *, choices: Mapping[str, list[str]] | None,
               travel: tuple[float, float] | None, camera_label: str = "camera",
               slider_label: str = "slider", max_speed_mm_s: float | None = None,
               accel_mm_s2: float | None = None) -> list[Problem]:
    """Problems of this plan against the real camera's choices and the slider's travel (nothing is sent)."""
    problems: list[Problem] = []

    def problem(where: str, message: str) -> None:
        problems.append(Problem(where, message, plan.line(where)))

    if choices is not None:
        _check_choices(plan, choices, camera_label, problem)
    compensated = None
    if plan.exposure:          # checked even when labels failed above: every problem in one report
        try:
            compensated = compensated_settings(plan, choices)
        except PlanError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    _check_shutter_interval(plan, compensated, problem)
    if travel is not None:
        _check_travel(plan, travel, slider_label, problem)
    tr = plan.trajectory
    if max_speed_mm_s and tr and tr.speed_mm_s > max_speed_mm_s:
        problem("trajectory.speed_mm_s", f"trajectory speed {tr.speed_mm_s:g} mm/s is faster than "
                                         f"{slider_label}'s maximum {max_speed_mm_s:g} mm/s ($110); slow it down")
    elif tr and tr.start_mm != tr.end_mm:      # a pass must record frames for the whole move
        move_s = (move_duration(abs(tr.end_mm - tr.start_mm), tr.speed_mm_s, accel_mm_s2) if accel_mm_s2
                  else tr.seconds)
        message = pass_coverage_problem(tr, move_s)
        if message:
            problem("trajectory.frames", f"{message} (with {slider_label}'s acceleration {accel_mm_s2:g} mm/s² "
                                         "included)" if accel_mm_s2 else
                                         f"{message} (at constant speed: the slider's acceleration adds to it; "
                                         "`capture plan` without --offline includes it)")
    return problems


def shutter_interval_problem(shutter: str | None, fps: float | None) -> str | None:
    """'shutter 0.3 s is longer than the frame interval 1/8 s (0.125 s) at 8 fps', or None: a video frame
    cannot be exposed longer than the time between frames, so a camera shortens it (or drops frames) and the
    pair's exposure difference is not what its settings say."""
    if not shutter or not fps:
        return None
    seconds = values.number(SHUTTER, shutter)
    interval = 1.0 / fps
    if seconds is None or seconds <= interval * (1 + 1e-6):
        return None
    return (f"shutter {shutter} ({seconds:.4g} s) is longer than the frame interval 1/{fps:g} s ({interval:.4g} s) "
            f"at {fps:g} fps")


def _check_shutter_interval(plan: Plan, compensated: Mapping[tuple, Mapping[str, str]] | None, problem) -> None:
    """Passes record video at trajectory.fps: every shutter of the sweep (compensated ones included) must fit
    in one frame interval."""
    tr = plan.trajectory
    if plan.mode != "passes" or tr is None:
        return
    shutters = list(plan.axes.get(SHUTTER, []))
    for settings in (compensated or {}).values():
        if settings.get(SHUTTER) and settings[SHUTTER] not in shutters:
            shutters.append(settings[SHUTTER])
    for shutter in shutters:
        message = shutter_interval_problem(shutter, tr.fps)
        if message:
            where = f"axes.{plan.axis_key(SHUTTER)}" if shutter in plan.axes.get(SHUTTER, []) else "exposure.compensate"
            problem(where, f"{message}: the camera cannot expose a frame that long; use a shutter of at most "
                           f"1/{math.ceil(tr.fps):g} s or lower trajectory.fps to at most {1 / values.number(SHUTTER, shutter):.3g}")


def _check_choices(plan: Plan, choices: Mapping[str, list[str]], camera_label: str, problem) -> None:
    for role, labels in plan.axes.items():
        where = f"axes.{plan.axis_key(role)}"
        offered = choices.get(role)
        if not offered:
            problem(where, f"{camera_label} offers no {role} setting; remove it from the plan")
            continue
        for label in labels:
            hits = values.matching_labels(role, label, offered)
            if not hits:
                problem(where, f"{camera_label} does not offer {role} {label!r}; it offers {shorten(offered)}")
            elif len(hits) > 1:
                problem(where, f"{role} {label!r} is ambiguous on {camera_label}: it matches {', '.join(hits)}; "
                               "write the camera's own label")
    if plan.exposure:
        for role in plan.exposure.compensate:
            if not choices.get(role):
                problem("exposure.compensate", f"{camera_label} offers no {role} setting to compensate with")
        for role, label in plan.exposure.reference.items():
            offered = choices.get(role) or []
            if role in plan.exposure.compensate and offered and values.match_label(role, label, offered) is None:
                problem("exposure.reference", f"{camera_label} does not offer reference {role} {label!r}")


def _check_travel(plan: Plan, travel: tuple[float, float], slider_label: str, problem) -> None:
    low, high = travel
    for pos in plan.positions:
        if not low <= pos <= high:
            problem("axes.slider_mm", f"slider position {pos:g} mm is outside {slider_label}'s travel "
                                      f"{low:g}..{high:g} mm")
    if plan.trajectory:
        tr = plan.trajectory
        for offset in tr.offsets_mm:
            for name, pos in (("start_mm", tr.start_at(offset)), ("end_mm", tr.end_at(offset))):
                if not low <= pos <= high:
                    shifted = f" (shifted by offsets_mm {offset:g})" if offset else ""
                    problem(f"trajectory.{name}", f"trajectory {name} {pos:g} mm{shifted} is outside "
                                                  f"{slider_label}'s travel {low:g}..{high:g} mm")
