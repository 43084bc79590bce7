"""A capture plan: a TOML file -> validated, ordered points, a dry-run summary, an ETA and a disk estimate.

Shape of a plan (see examples/*.toml and docs/capture.md)::

    [session]             scene, operator (required), notes, name
    [rig]                 camera = "sim" | serial | port;  slider = "emulator" | port | "none";  speed
    [axes]                aperture/shutter/iso/kelvin/white_balance/focus/focal = [labels...]
                          slider_mm = [positions...]                       (stills)
    [trajectory]          start_mm, end_mm, speed_mm_s, frames, fps        (passes)
    [order]               mode = "stills"|"passes", loop = [outer..inner], snake = [axes]
    [exposure]            constant = true, compensate = ["shutter", "iso"], reference = {..}, tolerance_stops
    [pairs]               reference = {aperture = "f/16", iso = "100"}
    [costs]               capture_s, set_s, settle_s, home_s, bytes_per_still, bytes_per_clip_frame

Like bluesky's `list_grid_scan` + `snake_axes` and pycromanager's order string: the plan is data, the
order is explicit, and unchanged settings are never sent again. Every problem is collected (not just the
first) with the plan line it comes from, so a technician fixes the file once.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping

from rigs.camera import values
from rigs.camera.protocol import (
    APERTURE, FOCAL, FOCUS, ISO, KELVIN, ROLES, SHUTTER, WHITE_BALANCE, role_of, UnknownSetting,
)

MODES = ("stills", "passes")
SLIDER_AXIS = "slider"
REPEAT_AXIS = "repeat"     # [order] repeat = N: N frames of every combination at every position
REQUIRED_SESSION_KEYS = ("scene", "operator")
EXPOSURE_ROLES = (APERTURE, SHUTTER, ISO)
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
_PARSERS = {
    APERTURE: values.parse_aperture, SHUTTER: values.parse_shutter, ISO: values.parse_iso,
    KELVIN: values.parse_kelvin, FOCUS: values.parse_metres, FOCAL: values.parse_mm,
}


# --------------------------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan, located by TOML key path and line (None when the key is absent)."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line else "plan"
        return f"{at} [{self.where}]: {self.message}"


class PlanError(ValueError):
    """Every problem found in a plan at once."""

    def __init__(self, problems: list[Problem], source: str = "plan") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class _Lines:
    """Maps dotted TOML key paths to line numbers (tomllib keeps none)."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[str, int] = {}
        table = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = _clean_key(header.group(1))
                self.where.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                full = f"{table}.{_clean_key(key.group(1))}" if table else _clean_key(key.group(1))
                self.where.setdefault(full, number)

    def line(self, path: str) -> int | None:
        while path:
            if path in self.where:
                return self.where[path]
            path = path.rpartition(".")[0]
        return None


def _clean_key(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


# --------------------------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Trajectory:
    start_mm: float
    end_mm: float
    speed_mm_s: float
    frames: int
    fps: float

    @property
    def seconds(self) -> float:
        return abs(self.end_mm - self.start_mm) / self.speed_mm_s


@dataclass(frozen=True)
class Costs:
    """Per-operation costs behind the ETA and disk estimate; `source` says where they came from."""

    capture_s: float = 1.0
    set_s: float = 0.3
    move_mm_s: float = 50.0
    settle_s: float = 0.3
    home_s: float = 5.0
    bytes_per_still: float = 8e6
    bytes_per_clip_frame: float = 2e5
    source: str = "defaults (no measured session for this camera yet)"


@dataclass(frozen=True)
class ExposureRule:
    compensate: tuple[str, ...]
    reference: Mapping[str, str]
    tolerance_stops: float = 1 / 3


@dataclass(frozen=True)
class Point:
    """One planned capture: a still at one slider position, or one pass (a clip) along the trajectory."""

    index: int
    key: str                          # stable id within the session, e.g. "p0007"
    settings: Mapping[str, str]       # role -> camera label, after exposure compensation
    slider_mm: float | None
    kind: str                         # "still" | "clip"
    combo: int                        # settings combination id (stable across orders) -> one clip per combo
    frame_index: int                  # position index along the path (stills); 0 for a pass

    def settings_dict(self) -> dict[str, str]:
        return dict(self.settings)


@dataclass
class Plan:
    text: str
    source: str
    session: dict[str, str]
    camera: str
    slider: str
    speed: float
    camera_options: dict[str, Any]
    slider_options: dict[str, Any]
    mode: str
    axes: dict[str, list[str]]        # role -> labels, in the plan's order
    positions: list[float]            # stills: slider positions ([] = no slider)
    trajectory: Trajectory | None
    loop: list[str]                   # outermost first; includes "slider" for stills with positions
    snake: set[str]
    exposure: ExposureRule | None
    pair_reference: dict[str, str]
    costs: Costs
    lines: _Lines = field(repr=False)
    repeat: int = 1

    @property
    def swept_roles(self) -> list[str]:
        return [r for r in ROLES if r in self.axes and len(self.axes[r]) > 1] + (
            [r for r in self.exposure.compensate] if self.exposure else [])

    def line(self, path: str) -> int | None:
        return self.lines.line(path)


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([Problem("file", f"no plan file at {path}; check the path")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([Problem("file", f"cannot read {path}: {exc}")], str(path)) from None
    return parse_plan(text, source=str(path))


def parse_plan(text: str, *, source: str = "plan") -> Plan:
    """Parse and structurally validate a plan; raise PlanError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PlanError([Problem("toml", f"not valid TOML: {exc}", int(match.group(1)) if match else None)],
                        source) from None
    lines = _Lines(text)
    problems: list[Problem] = []

    def problem(where: str, message: str) -> None:
        problems.append(Problem(where, message, lines.line(where)))

    known_tables = {"session", "rig", "axes", "trajectory", "order", "exposure", "pairs", "costs"}
    for key in data:
        if key not in known_tables:
            problem(key, f"unknown section {key!r}; sections are {', '.join(sorted(known_tables))}")
    section = {name: _table(data, name, problem) for name in known_tables}

    # [session]
    session: dict[str, str] = {}
    for key, value in section["session"].items():
        if not isinstance(value, (str, int, float)):
            problem(f"session.{key}", f"{key} must be text, got {type(value).__name__}")
        else:
            session[key] = str(value)
    for key in REQUIRED_SESSION_KEYS:
        if not session.get(key, "").strip():
            problem(f"session.{key}", f"session.{key} is required (e.g. {key} = \"...\")")
    session.setdefault("notes", "")

    # [rig]
    rig = section["rig"]
    camera = _text(rig, "camera", "rig.camera", problem, default="sim")
    slider = _text(rig, "slider", "rig.slider", problem, default="none")
    speed = _number(rig, "speed", "rig.speed", problem, default=1.0, positive=True)
    camera_options = _subtable(rig, "camera_options", "rig.camera_options", problem)
    slider_options = _subtable(rig, "slider_options", "rig.slider_options", problem)
    for key in rig:
        if key not in {"camera", "slider", "speed", "camera_options", "slider_options"}:
            problem(f"rig.{key}", f"unknown rig key {key!r}; use camera, slider, speed, camera_options, "
                                  "slider_options")

    # [order]
    order = section["order"]
    mode = _text(order, "mode", "order.mode", problem, default="stills")
    if mode not in MODES:
        problem("order.mode", f"mode {mode!r} is not one of {', '.join(MODES)}")
        mode = "stills"

    # [axes]
    axes: dict[str, list[str]] = {}
    positions: list[float] = []
    for key, value in section["axes"].items():
        where = f"axes.{key}"
        if key in ("slider_mm", SLIDER_AXIS):
            positions = [p for p in (_position(v, where, problem) for v in _as_list(value)) if p is not None]
            if not positions:
                problem(where, "slider_mm needs at least one position in mm, e.g. [0, 100, 200]")
            continue
        try:
            role = role_of(key)
        except UnknownSetting as exc:
            problem(where, str(exc))
            continue
        if role in axes:
            problem(where, f"{key} repeats the {role} axis")
            continue
        labels = []
        for item in _as_list(value):
            label = str(item).strip() if isinstance(item, (str, int, float)) and not isinstance(item, bool) else None
            if not label:
                problem(where, f"{key} value {item!r} is not a camera label such as {_example(role)!r}")
                continue
            if role in _PARSERS:
                try:
                    _PARSERS[role](label)
                except ValueError as exc:
                    problem(where, str(exc))
                    continue
            labels.append(label)
        if not labels:
            problem(where, f"{key} needs at least one value, e.g. [{_example(role)!r}]")
        elif len(set(labels)) != len(labels):
            problem(where, f"{key} lists a value twice: {labels}")
        axes[role] = labels

    # [trajectory]
    trajectory = None
    if section["trajectory"]:
        tr = section["trajectory"]
        start = _number(tr, "start_mm", "trajectory.start_mm", problem, required=True)
        end = _number(tr, "end_mm", "trajectory.end_mm", problem, required=True)
        tspeed = _number(tr, "speed_mm_s", "trajectory.speed_mm_s", problem, required=True, positive=True)
        frames = _number(tr, "frames", "trajectory.frames", problem, default=24, positive=True)
        fps = _number(tr, "fps", "trajectory.fps", problem, default=24.0, positive=True)
        if None not in (start, end, tspeed, frames, fps):
            if start == end:
                problem("trajectory.end_mm", "trajectory start_mm and end_mm are equal: the camera would not move")
            if int(frames) != frames:
                problem("trajectory.frames", f"frames must be a whole number, got {frames}")
            trajectory = Trajectory(float(start), float(end), float(tspeed), int(frames), float(fps))
    if mode == "passes" and trajectory is None:
        problem("trajectory", "mode 'passes' needs a [trajectory] with start_mm, end_mm, speed_mm_s")
    if mode == "passes" and positions:
        problem("axes.slider_mm", "mode 'passes' moves along [trajectory]; remove slider_mm (it is for stills)")
    if mode == "stills" and trajectory is not None:
        problem("trajectory", "mode 'stills' shoots at axes.slider_mm positions; remove [trajectory] or use "
                              "mode = \"passes\"")
    if slider in ("none", "") and (positions or trajectory):
        problem("rig.slider", "the plan moves the slider but rig.slider is \"none\"; set slider = \"emulator\" "
                              "or a serial port")

    # [exposure]
    exposure = None
    ex = section["exposure"]
    if ex and ex.get("constant", True) is True:
        comp = []
        for item in _as_list(ex.get("compensate", ["shutter"])):
            try:
                role = role_of(str(item))
            except UnknownSetting as exc:
                problem("exposure.compensate", str(exc))
                continue
            if role not in (SHUTTER, ISO):
                problem("exposure.compensate", f"can compensate only with shutter and/or iso, not {item!r}")
            elif role not in comp:
                comp.append(role)
        reference: dict[str, str] = {}
        ref_raw = ex.get("reference", {})
        if not isinstance(ref_raw, dict):
            problem("exposure.reference", "reference must be a table such as {aperture = \"f/4\", "
                                          "shutter = \"1/60\", iso = \"100\"}")
            ref_raw = {}
        for key, value in ref_raw.items():
            try:
                role = role_of(str(key))
                if role not in EXPOSURE_ROLES:
                    raise UnknownSetting(f"{key!r} does not set exposure; use aperture, shutter, iso")
                _PARSERS[role](str(value))
                reference[role] = str(value)
            except (UnknownSetting, ValueError) as exc:
                problem("exposure.reference", str(exc))
        for role in EXPOSURE_ROLES:  # default: the first value of each axis
            if role not in reference and axes.get(role):
                reference[role] = axes[role][0]
            if role not in reference:
                problem("exposure.reference", f"constant exposure needs a reference {role}: list it in [axes] or "
                                              f"in exposure.reference")
        for role in comp:
            if role in axes and len(axes[role]) > 1:
                problem(f"axes.{_axis_key(section['axes'], role)}",
                        f"{role} is swept and also compensates exposure; sweep it or compensate with it, not both")
        tol = _number(ex, "tolerance_stops", "exposure.tolerance_stops", problem, default=1 / 3, positive=True)
        if comp:
            exposure = ExposureRule(tuple(comp), reference, float(tol or 1 / 3))
        elif not any(p.where.startswith("exposure.compensate") for p in problems):
            problem("exposure.compensate", "compensate lists nothing; use [\"shutter\"], [\"iso\"] or both")
    elif ex and ex.get("constant") is not False:
        problem("exposure.constant", "constant must be true or false")

    # loop order and snaking
    loop_axes = [r for r in ROLES if len(axes.get(r, ())) > 1 and not (exposure and r in exposure.compensate)]
    if mode == "stills" and positions:
        loop_axes = [SLIDER_AXIS, *loop_axes]
    repeat = _number(order, "repeat", "order.repeat", problem, default=1, positive=True)
    if repeat is not None and int(repeat) != repeat:
        problem("order.repeat", f"repeat must be a whole number of frames, got {repeat}")
    repeat = int(repeat or 1)
    if repeat > 1:
        if mode != "stills":
            problem("order.repeat", "repeat is for stills; a pass already records [trajectory] frames")
        loop_axes.append(REPEAT_AXIS)
    loop = list(loop_axes)
    if "loop" in order:
        requested = []
        for item in _as_list(order["loop"]):
            name = str(item).strip().lower()
            try:
                name = name if name in (SLIDER_AXIS, REPEAT_AXIS) else role_of(name)
            except UnknownSetting as exc:
                problem("order.loop", str(exc))
                continue
            if name not in loop_axes:
                problem("order.loop", f"{item!r} is not a looped axis of this plan; looped axes: "
                                      f"{', '.join(loop_axes) or 'none'}")
            elif name not in requested:
                requested.append(name)
        missing = [a for a in loop_axes if a not in requested]
        loop = requested + missing  # axes left out of `loop` run innermost, in their natural order
    snake: set[str] = set()
    for item in _as_list(order.get("snake", [])):
        name = str(item).strip().lower()
        try:
            name = SLIDER_AXIS if name in (SLIDER_AXIS, "slider_mm") else role_of(name)
        except UnknownSetting as exc:
            problem("order.snake", str(exc))
            continue
        if name not in loop:
            problem("order.snake", f"snake axis {item!r} is not looped in this plan")
        else:
            snake.add(name)
    for key in order:
        if key not in {"mode", "loop", "snake", "repeat"}:
            problem(f"order.{key}", f"unknown order key {key!r}; use mode, loop, snake, repeat")

    # [pairs]
    pair_reference: dict[str, str] = {}
    ref = section["pairs"].get("reference", {})
    if not isinstance(ref, dict):
        problem("pairs.reference", "reference must be a table such as {aperture = \"f/16\", iso = \"100\"}")
    else:
        for key, value in ref.items():
            try:
                pair_reference[role_of(str(key))] = str(value)
            except UnknownSetting as exc:
                problem("pairs.reference", str(exc))

    # [costs]
    cost_values: dict[str, float] = {}
    for key, value in section["costs"].items():
        if key not in Costs.__dataclass_fields__ or key == "source":
            problem(f"costs.{key}", f"unknown cost {key!r}; use "
                                    f"{', '.join(k for k in Costs.__dataclass_fields__ if k != 'source')}")
            continue
        number = _number(section["costs"], key, f"costs.{key}", problem, positive=True)
        if number is not None:
            cost_values[key] = float(number)
    costs = Costs(**cost_values, source="plan [costs]") if cost_values else Costs()

    if not axes and not positions and trajectory is None:
        problem("axes", "the plan sweeps nothing: add [axes] such as aperture = [\"f/2.8\", \"f/8\"]")
    if problems:
        raise PlanError(problems, source)
    return Plan(text=text, source=source, session=session, camera=camera or "sim", slider=slider or "none",
                speed=float(speed or 1.0), camera_options=camera_options, slider_options=slider_options,
                mode=mode, axes=axes, positions=positions, trajectory=trajectory, loop=loop, snake=snake,
                repeat=repeat,
                exposure=exposure, pair_reference=pair_reference, costs=costs, lines=lines)


# --------------------------------------------------------------------------------------------- validation

def check_plan(plan: Plan, *, choices: Mapping[str, list[str]] | None,
               travel: tuple[float, float] | None, camera_label: str = "camera",
               slider_label: str = "slider", max_speed_mm_s: float | None = None) -> list[Problem]:
    """Problems of this plan against the real camera's choices and the slider's travel (nothing is sent)."""
    problems: list[Problem] = []

    def problem(where: str, message: str) -> None:
        problems.append(Problem(where, message, plan.line(where)))

    if choices is not None:
        for role, labels in plan.axes.items():
            where = f"axes.{_axis_key_from_text(plan, role)}"
            offered = choices.get(role)
            if not offered:
                problem(where, f"{camera_label} offers no {role} setting; remove it from the plan")
                continue
            for label in labels:
                if match_choice(role, label, offered) is None:
                    problem(where, f"{camera_label} does not offer {role} {label!r}; it offers "
                                   f"{_shorten(offered)}")
        if plan.exposure:
            for role in plan.exposure.compensate:
                if not choices.get(role):
                    problem("exposure.compensate", f"{camera_label} offers no {role} setting to compensate with")
            for role, label in plan.exposure.reference.items():
                offered = choices.get(role) or []
                if role in plan.exposure.compensate and offered and match_choice(role, label, offered) is None:
                    problem("exposure.reference", f"{camera_label} does not offer reference {role} {label!r}")
    if plan.exposure and not problems:
        try:
            compensated_settings(plan, choices)
        except PlanError as exc:
            problems.extend(exc.problems)
    if travel is not None:
        low, high = travel
        for pos in plan.positions:
            if not low <= pos <= high:
                problem("axes.slider_mm", f"slider position {pos:g} mm is outside {slider_label}'s travel "
                                          f"{low:g}..{high:g} mm")
        if plan.trajectory:
            for name in ("start_mm", "end_mm"):
                pos = getattr(plan.trajectory, name)
                if not low <= pos <= high:
                    problem(f"trajectory.{name}", f"trajectory {name} {pos:g} mm is outside {slider_label}'s "
                                                  f"travel {low:g}..{high:g} mm")
    if max_speed_mm_s and plan.trajectory and plan.trajectory.speed_mm_s > max_speed_mm_s:
        problem("trajectory.speed_mm_s", f"trajectory speed {plan.trajectory.speed_mm_s:g} mm/s is faster than "
                                         f"{slider_label}'s maximum {max_speed_mm_s:g} mm/s ($110); slow it down")
    return problems


def match_choice(role: str, label: str, offered: Iterable[str]) -> str | None:
    """The camera's own label equal to `label` (exactly, or numerically: '1/100' == '0.0100s')."""
    offered = list(offered)
    if label in offered:
        return label
    parse = _PARSERS.get(role)
    if parse is None:
        lowered = {o.lower(): o for o in offered}
        return lowered.get(label.lower())
    try:
        wanted = float(parse(label))
    except ValueError:
        return None
    for choice in offered:
        try:
            if math.isclose(float(parse(choice)), wanted, rel_tol=1e-3):
                return choice
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------------------------- expansion

def _exposure_value(settings: Mapping[str, str]) -> float:
    """log2 of relative exposure t*ISO/N^2."""
    n = values.parse_aperture(settings[APERTURE])
    t = float(values.parse_shutter(settings[SHUTTER]))
    iso = values.parse_iso(settings[ISO])
    return math.log2(t * iso / (n * n))


def exposure_stops(settings: Mapping[str, str], reference: Mapping[str, str]) -> float:
    """Signed exposure difference in stops between two settings (0 = same exposure)."""
    return _exposure_value(settings) - _exposure_value(reference)


def compensated_settings(plan: Plan, choices: Mapping[str, list[str]] | None) -> dict[tuple, dict[str, str]]:
    """For every combination of looped roles: the full settings, compensated to constant exposure.

    Only values the camera offers are chosen; the first role in `compensate` moves first, the next one
    only when the first cannot reach the target within the tolerance (e.g. shutter, then ISO).
    """
    looped = [r for r in ROLES if r in plan.axes and not (plan.exposure and r in plan.exposure.compensate)]
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
            candidates = []
            pools = []
            for role in rule.compensate:
                offered = (choices or {}).get(role) if choices is not None else TYPICAL_CHOICES[role]
                pools.append([c for c in offered if _parses(role, c)])
            for picks in itertools.product(*pools):
                trial = dict(fixed, **dict(zip(rule.compensate, picks)))
                error = abs(exposure_stops(trial, rule.reference))
                moved = tuple(abs(math.log2(float(_PARSERS[r](trial[r])) / float(_PARSERS[r](rule.reference[r]))))
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
    looped = [r for r in ROLES if r in plan.axes and not (plan.exposure and r in plan.exposure.compensate)]
    combos = compensated_settings(plan, choices)
    combo_ids = {combo: i for i, combo in enumerate(combos)}
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
                settings = {r: (match_choice(r, v, choices.get(r) or []) or v) for r, v in settings.items()}
            index = len(points)
            slider_mm = chosen.get(SLIDER_AXIS)
            if plan.mode == "stills":
                frame = plan.positions.index(slider_mm) if slider_mm is not None else 0
                frame = frame * plan.repeat + chosen.get(REPEAT_AXIS, 0)
                points.append(Point(index, f"p{index:04d}", settings, slider_mm, "still", combo_ids[combo], frame))
            else:
                points.append(Point(index, f"p{index:04d}", settings, None, "clip", combo_ids[combo], 0))
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


# --------------------------------------------------------------------------------------------- summary

@dataclass(frozen=True)
class Summary:
    points: int
    captures: int
    clips: int
    setting_changes: int
    moves: int
    travel_mm: float
    seconds: float
    bytes: float
    order: str
    costs: Costs


def count_setting_changes(points: list[Point]) -> int:
    """Sets actually sent when unchanged values are skipped."""
    current: dict[str, str] = {}
    changes = 0
    for point in points:
        for role, label in point.settings.items():
            if current.get(role) != label:
                changes += 1
                current[role] = label
    return changes


def summarize(plan: Plan, points: list[Point], costs: Costs | None = None) -> Summary:
    costs = costs or plan.costs
    changes = count_setting_changes(points)
    seconds = changes * costs.set_s
    moves = 0
    travel = 0.0
    if plan.mode == "stills":
        here = None
        for point in points:
            if point.slider_mm is not None and point.slider_mm != here:
                moves += 1
                travel += abs(point.slider_mm - (here if here is not None else 0.0))
                here = point.slider_mm
        seconds += len(points) * costs.capture_s + moves * costs.settle_s + travel / costs.move_mm_s
        if plan.positions:
            seconds += costs.home_s
        size = len(points) * costs.bytes_per_still
        captures, clips = len(points), 0
    else:
        tr = plan.trajectory
        assert tr is not None
        per_pass = costs.home_s + abs(tr.start_mm) / costs.move_mm_s + max(tr.seconds, tr.frames / tr.fps)
        seconds += len(points) * (per_pass + costs.capture_s)
        moves = 2 * len(points)
        travel = len(points) * (abs(tr.end_mm - tr.start_mm) + abs(tr.start_mm))
        size = len(points) * tr.frames * costs.bytes_per_clip_frame
        captures, clips = len(points) * tr.frames, len(points)
    order = " > ".join(f"{a}{' (snake)' if a in plan.snake else ''}" for a in plan.loop) or "single point"
    return Summary(len(points), captures, clips, changes, moves, travel, seconds, size, order, costs)


def format_summary(plan: Plan, summary: Summary) -> str:
    swept = ", ".join(f"{r} x{len(v)}" for r, v in plan.axes.items()) or "nothing"
    lines = [
        f"plan      {plan.source}: scene {plan.session.get('scene')!r}, operator {plan.session.get('operator')!r}",
        f"rig       camera {plan.camera}, slider {plan.slider}",
        f"mode      {plan.mode}; axes {swept}"
        + (f"; slider {len(plan.positions)} positions" if plan.positions else "")
        + (f"; exposure held by {' then '.join(plan.exposure.compensate)}" if plan.exposure else ""),
        f"order     {summary.order} (outermost first)",
        f"points    {summary.points} ({summary.captures} frames"
        + (f" in {summary.clips} clips" if summary.clips else "") + f"), {summary.setting_changes} setting changes, "
        f"{summary.moves} moves over {summary.travel_mm:.0f} mm",
        f"estimate  {format_duration(summary.seconds)}, {format_bytes(summary.bytes)} on disk "
        f"(costs: {summary.costs.source})",
    ]
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# --------------------------------------------------------------------------------------------- helpers

def _table(data: dict, name: str, problem) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        problem(name, f"[{name}] must be a table (a [{name}] section), got {type(value).__name__}")
        return {}
    return value


def _subtable(table: dict, key: str, where: str, problem) -> dict:
    value = table.get(key, {})
    if not isinstance(value, dict):
        problem(where, f"{key} must be a table such as {{ key = value }}")
        return {}
    return dict(value)


def _text(table: dict, key: str, where: str, problem, *, default: str) -> str:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        problem(where, f"{key} must be text, got {value!r}")
        return default
    return str(value).strip()


def _number(table: dict, key: str, where: str, problem, *, default: float | None = None,
            required: bool = False, positive: bool = False) -> float | None:
    if key not in table:
        if required:
            problem(where, f"{key} is required (a number)")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problem(where, f"{key} must be a number, got {value!r}")
        return None
    if positive and value <= 0:
        problem(where, f"{key} must be greater than 0, got {value!r}")
        return None
    return value


def _position(value: Any, where: str, problem) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problem(where, f"slider position {value!r} is not a number of mm")
        return None
    return float(value)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def _parses(role: str, label: str) -> bool:
    try:
        _PARSERS[role](label)
        return True
    except (KeyError, ValueError):
        return False


def _axis_key(axes_table: dict, role: str) -> str:
    for key in axes_table:
        try:
            if role_of(key) == role:
                return key
        except UnknownSetting:
            continue
    return role


def _axis_key_from_text(plan: Plan, role: str) -> str:
    for path in plan.lines.where:
        if path.startswith("axes."):
            try:
                if role_of(path[5:]) == role:
                    return path[5:]
            except UnknownSetting:
                continue
    return role


def _example(role: str) -> str:
    return {APERTURE: "f/2.8", SHUTTER: "1/60", ISO: "400", KELVIN: "5600", FOCUS: "1.5", FOCAL: "35",
            WHITE_BALANCE: "Daylight"}.get(role, "value")


def _shorten(labels: list[str], limit: int = 12) -> str:
    text = ", ".join(labels[:limit])
    return text + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


def fraction_label(t: Fraction) -> str:
    return values.format_shutter(t)
