"""TOML -> `Plan`: structural validation, every problem collected with the line it comes from.

Each section has its own reader; all of them report into one list so a technician fixes the file once.
Nothing here knows the camera or the slider (that is `check`).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from rigs.camera import values
from rigs.camera.protocol import ISO, ROLES, SHUTTER, UnknownSetting, role_of

from .model import (EXPOSURE_ROLES, MODES, REPEAT_AXIS, REQUIRED_SESSION_KEYS, SECTIONS, SLIDER_AXIS, Costs,
                    ExposureRule, LineMap, Plan, PlanError, Problem, Trajectory, VIRTUAL, example_label)

RIG_KEYS = ("camera", "slider", "speed", "camera_options", "slider_options")
CAMERA_KINDS = ("sim", "gphoto2")
ORDER_KEYS = ("mode", "loop", "snake", "repeat")

def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([Problem("file", f"no plan file at {path}; check the path")], str(path)) from None
    except IsADirectoryError:
        raise PlanError([Problem("file", f"{path} is a folder; give the plan's .toml file")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([Problem("file", f"cannot read {path}: {exc}")], str(path)) from None
    return parse_plan(text, source=str(path), base_dir=path.resolve().parent)

def parse_plan(text: str, *, source: str = "plan", base_dir: Path | None = None) -> Plan:
    """Parse and structurally validate a plan; raise PlanError listing every problem. `base_dir` is the plan
    file's folder (relative paths in the plan are read from there, and checked to exist)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PlanError([Problem("toml", f"not valid TOML: {exc}", int(match.group(1)) if match else None)],
                        source) from None
    return _Reader(text, data, source, base_dir).plan()

class _Reader:
    """One pass over the parsed TOML; `problem()` records what is wrong, with its line."""

    def __init__(self, text: str, data: dict[str, Any], source: str, base_dir: Path | None = None) -> None:
        self.text, self.data, self.source = text, data, source
        self.base_dir = base_dir
        self.lines = LineMap(text)
        self.problems: list[Problem] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, self.lines.line(where)))

    def plan(self) -> Plan:
        for key in self.data:
            if key not in SECTIONS:
                self.problem(key, f"unknown section {key!r}; sections are {', '.join(sorted(SECTIONS))}")
        self.section = {name: self._table(name) for name in SECTIONS}
        session = self._session()
        camera, slider, speed, camera_options, slider_options = self._rig()
        mode = self._mode()
        axes, positions = self._axes()
        trajectory = self._trajectory(mode, positions, slider)
        exposure = self._exposure(axes)
        loop, snake, repeat = self._order(mode, axes, positions, exposure)
        pair_reference = self._pairs()
        costs = self._costs()
        if not axes and not positions and trajectory is None:
            self.problem("axes", "the plan sweeps nothing: add [axes] such as aperture = [\"f/2.8\", \"f/8\"]")
        if self.problems:
            raise PlanError(self.problems, self.source)
        return Plan(text=self.text, source=self.source, session=session, camera=camera or "sim",
                    slider=slider or "none", speed=float(speed or 1.0), camera_options=camera_options,
                    slider_options=slider_options, mode=mode, axes=axes, positions=positions,
                    trajectory=trajectory, loop=loop, snake=snake, repeat=repeat, exposure=exposure,
                    pair_reference=pair_reference, costs=costs, lines=self.lines,
                    base_dir=str(self.base_dir) if self.base_dir is not None else None)

    # ----------------------------------------------------------------------------------------- sections

    def _session(self) -> dict[str, str]:
        session: dict[str, str] = {}
        for key, value in self.section["session"].items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.problem(f"session.{key}", f"{key} must be text, got {type(value).__name__}")
            else:
                session[key] = str(value)
        for key in REQUIRED_SESSION_KEYS:
            if not session.get(key, "").strip():
                self.problem(f"session.{key}", f"session.{key} is required (e.g. {key} = \"...\")")
        session.setdefault("notes", "")
        return session

    def _rig(self) -> tuple[str, str, float | None, dict, dict]:
        rig = self.section["rig"]
        camera = self._text(rig, "camera", "rig.camera", default="sim")
        slider = self._text(rig, "slider", "rig.slider", default="none")
        speed = self._number(rig, "speed", "rig.speed", default=1.0, positive=True)
        camera_options = self._subtable(rig, "camera_options", "rig.camera_options")
        slider_options = self._subtable(rig, "slider_options", "rig.slider_options")
        for key in rig:
            if key not in RIG_KEYS:
                self.problem(f"rig.{key}", f"unknown rig key {key!r}; use {', '.join(RIG_KEYS)}")
        self._camera_spec(camera)
        return camera, slider, speed, camera_options, slider_options

    def _camera_spec(self, camera: str) -> None:
        """A misspelt camera kind ('simm') would be taken for a serial number and fail only at the rig; a
        virtual camera's folder must exist (a relative one is read from the plan file's folder)."""
        if camera.startswith(VIRTUAL):
            folder = Path(camera[len(VIRTUAL):]).expanduser()
            if not camera[len(VIRTUAL):].strip():
                self.problem("rig.camera", "virtual: needs a folder of JPEGs, e.g. camera = \"virtual:frames\"")
            elif folder.is_absolute() or self.base_dir is not None:
                where = folder if folder.is_absolute() else (self.base_dir / folder).resolve()
                if not where.is_dir():
                    rel = "" if folder.is_absolute() else f" (read from the plan file's folder {self.base_dir})"
                    self.problem("rig.camera", f"virtual camera folder {where} does not exist{rel}; create it with "
                                               "the JPEGs to serve, or fix the path")
            return
        if camera in CAMERA_KINDS or ":" in camera:
            return
        close = difflib.get_close_matches(camera.lower(), CAMERA_KINDS, n=1, cutoff=0.6)
        if close:
            self.problem("rig.camera", f"camera {camera!r} is not a camera kind: did you mean {close[0]!r}? (use "
                                       f"{', '.join(repr(k) for k in CAMERA_KINDS)}, virtual:FOLDER, a port such "
                                       "as usb:001,004, or the body's serial number)")

    def _mode(self) -> str:
        mode = self._text(self.section["order"], "mode", "order.mode", default="stills")
        if mode not in MODES:
            self.problem("order.mode", f"mode {mode!r} is not one of {', '.join(MODES)}")
            return "stills"
        return mode

    def _axes(self) -> tuple[dict[str, list[str]], list[float]]:
        axes: dict[str, list[str]] = {}
        positions: list[float] = []
        for key, value in self.section["axes"].items():
            where = f"axes.{key}"
            if key in ("slider_mm", SLIDER_AXIS):
                positions = [p for p in (self._position(v, where) for v in _as_list(value)) if p is not None]
                if not positions:
                    self.problem(where, "slider_mm needs at least one position in mm, e.g. [0, 100, 200]")
                elif len(set(positions)) != len(positions):
                    twice = sorted({p for p in positions if positions.count(p) > 1})
                    self.problem(where, f"slider_mm lists {', '.join(f'{p:g}' for p in twice)} mm twice: each "
                                        "position is one frame of the path; remove the repeat (use [order] "
                                        "repeat for several frames per position)")
                continue
            try:
                role = role_of(key)
            except UnknownSetting as exc:
                self.problem(where, str(exc))
                continue
            if role in axes:
                self.problem(where, f"{key} repeats the {role} axis")
                continue
            labels = self._labels(key, role, value, where)
            if not labels:
                self.problem(where, f"{key} needs at least one value, e.g. [{example_label(role)!r}]")
            elif len(set(labels)) != len(labels):
                self.problem(where, f"{key} lists a value twice: {labels}")
            axes[role] = labels
        return axes, positions

    def _labels(self, key: str, role: str, value: Any, where: str) -> list[str]:
        labels = []
        for item in _as_list(value):
            label = str(item).strip() if isinstance(item, (str, int, float)) and not isinstance(item, bool) else None
            if not label:
                self.problem(where, f"{key} value {item!r} is not a camera label such as {example_label(role)!r}")
                continue
            parse = values.PARSERS.get(role)
            if parse is not None:
                try:
                    parse(label)
                except ValueError as exc:
                    self.problem(where, str(exc))
                    continue
            labels.append(label)
        return labels

    def _trajectory(self, mode: str, positions: list[float], slider: str) -> Trajectory | None:
        trajectory = None
        tr = self.section["trajectory"]
        if tr:
            start = self._number(tr, "start_mm", "trajectory.start_mm", required=True)
            end = self._number(tr, "end_mm", "trajectory.end_mm", required=True)
            speed = self._number(tr, "speed_mm_s", "trajectory.speed_mm_s", required=True, positive=True)
            frames = self._number(tr, "frames", "trajectory.frames", default=24, positive=True)
            fps = self._number(tr, "fps", "trajectory.fps", default=24.0, positive=True)
            offsets = self._offsets(tr)
            if None not in (start, end, speed, frames, fps):
                if start == end:
                    self.problem("trajectory.end_mm", "trajectory start_mm and end_mm are equal: the camera would "
                                                      "not move")
                if int(frames) != frames:
                    self.problem("trajectory.frames", f"frames must be a whole number, got {frames}")
                trajectory = Trajectory(float(start), float(end), float(speed), int(frames), float(fps), offsets)
                # whether the frames cover the move is `check_plan`'s: once, with the slider's acceleration
                # when it is known (a constant-speed figure here would be one frame short there)
        if mode == "passes" and trajectory is None and not any(p.where.startswith("trajectory")
                                                               for p in self.problems):
            self.problem("trajectory", "mode 'passes' needs a [trajectory] with start_mm, end_mm, speed_mm_s")
        if mode == "passes" and positions:
            self.problem("axes.slider_mm", "mode 'passes' moves along [trajectory]; remove slider_mm (it is for "
                                           "stills)")
        if mode == "stills" and trajectory is not None:
            self.problem("trajectory", "mode 'stills' shoots at axes.slider_mm positions; remove [trajectory] or "
                                       "use mode = \"passes\"")
        if slider in ("none", "") and (positions or trajectory):
            self.problem("rig.slider", "the plan moves the slider but rig.slider is \"none\"; set slider = "
                                       "\"emulator\" or a serial port")
        return trajectory

    def _offsets(self, tr: dict) -> tuple[float, ...]:
        """`offsets_mm`: the camera path as a sweep axis -- every combination is shot once per offset, its pass
        shifted along the slider by it (the first offset is the pairs' reference path)."""
        if "offsets_mm" not in tr:
            return (0.0,)
        where = "trajectory.offsets_mm"
        raw = _as_list(tr["offsets_mm"])
        values = []
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.problem(where, f"offsets_mm takes numbers in mm, got {value!r}; e.g. offsets_mm = [0, 20, 40]")
                return (0.0,)
            values.append(float(value))
        if not values:
            self.problem(where, "offsets_mm needs at least one offset in mm, e.g. [0, 20, 40]")
            return (0.0,)
        if len(set(values)) != len(values):
            self.problem(where, f"offsets_mm {values} repeats an offset; each is a separate pass")
        return tuple(values)

    def _exposure(self, axes: dict[str, list[str]]) -> ExposureRule | None:
        ex = self.section["exposure"]
        if not ex:
            return None
        if ex.get("constant", True) is not True:
            if ex.get("constant") is not False:
                self.problem("exposure.constant", "constant must be true or false")
            return None
        comp: list[str] = []
        for item in _as_list(ex.get("compensate", ["shutter"])):
            try:
                role = role_of(str(item))
            except UnknownSetting as exc:
                self.problem("exposure.compensate", str(exc))
                continue
            if role not in (SHUTTER, ISO):
                self.problem("exposure.compensate", f"can compensate only with shutter and/or iso, not {item!r}")
            elif role not in comp:
                comp.append(role)
        reference = self._exposure_reference(ex, axes)
        for role in comp:
            if role in axes and len(axes[role]) > 1:
                self.problem(f"axes.{_axis_key(self.section['axes'], role)}",
                             f"{role} is swept and also compensates exposure; sweep it or compensate with it, "
                             "not both")
        tol = self._number(ex, "tolerance_stops", "exposure.tolerance_stops", default=1 / 3, positive=True)
        if comp:
            return ExposureRule(tuple(comp), reference, float(tol or 1 / 3))
        if not any(p.where.startswith("exposure.compensate") for p in self.problems):
            self.problem("exposure.compensate", "compensate lists nothing; use [\"shutter\"], [\"iso\"] or both")
        return None

    def _exposure_reference(self, ex: dict, axes: dict[str, list[str]]) -> dict[str, str]:
        reference: dict[str, str] = {}
        raw = ex.get("reference", {})
        if not isinstance(raw, dict):
            self.problem("exposure.reference", "reference must be a table such as {aperture = \"f/4\", "
                                               "shutter = \"1/60\", iso = \"100\"}")
            raw = {}
        for key, value in raw.items():
            try:
                role = role_of(str(key))
                if role not in EXPOSURE_ROLES:
                    raise UnknownSetting(f"{key!r} does not set exposure; use aperture, shutter, iso")
                values.PARSERS[role](str(value))
                reference[role] = str(value)
            except (UnknownSetting, ValueError) as exc:
                self.problem("exposure.reference", str(exc))
        for role in EXPOSURE_ROLES:  # default: the first value of each axis
            if role not in reference and axes.get(role):
                reference[role] = axes[role][0]
            if role not in reference:
                self.problem("exposure.reference", f"constant exposure needs a reference {role}: list it in [axes] "
                                                   "or in exposure.reference")
        return reference

    def _order(self, mode: str, axes: dict[str, list[str]], positions: list[float],
               exposure: ExposureRule | None) -> tuple[list[str], set[str], int]:
        order = self.section["order"]
        loop_axes = [r for r in ROLES if len(axes.get(r, ())) > 1 and not (exposure and r in exposure.compensate)]
        if mode == "stills" and positions:
            loop_axes = [SLIDER_AXIS, *loop_axes]
        repeat = self._number(order, "repeat", "order.repeat", default=1, positive=True)
        if repeat is not None and int(repeat) != repeat:
            self.problem("order.repeat", f"repeat must be a whole number of frames, got {repeat}")
        repeat = int(repeat or 1)
        if repeat > 1:
            if mode != "stills":
                self.problem("order.repeat", "repeat is for stills; a pass already records [trajectory] frames")
            loop_axes.append(REPEAT_AXIS)
        loop = list(loop_axes)
        if "loop" in order:
            requested: list[str] = []
            for item in _as_list(order["loop"]):
                name = str(item).strip().lower()
                try:
                    name = name if name in (SLIDER_AXIS, REPEAT_AXIS) else role_of(name)
                except UnknownSetting as exc:
                    self.problem("order.loop", str(exc))
                    continue
                if name not in loop_axes:
                    self.problem("order.loop", f"{item!r} is not a looped axis of this plan; looped axes: "
                                               f"{', '.join(loop_axes) or 'none'}")
                elif name not in requested:
                    requested.append(name)
            loop = requested + [a for a in loop_axes if a not in requested]   # left out: innermost, natural order
        snake: set[str] = set()
        for item in _as_list(order.get("snake", [])):
            name = str(item).strip().lower()
            try:
                name = SLIDER_AXIS if name in (SLIDER_AXIS, "slider_mm") else role_of(name)
            except UnknownSetting as exc:
                self.problem("order.snake", str(exc))
                continue
            if name not in loop:
                self.problem("order.snake", f"snake axis {item!r} is not looped in this plan")
            else:
                snake.add(name)
        for key in order:
            if key not in ORDER_KEYS:
                self.problem(f"order.{key}", f"unknown order key {key!r}; use {', '.join(ORDER_KEYS)}")
        return loop, snake, repeat

    def _pairs(self) -> dict[str, str]:
        pair_reference: dict[str, str] = {}
        ref = self.section["pairs"].get("reference", {})
        if not isinstance(ref, dict):
            self.problem("pairs.reference", "reference must be a table such as {aperture = \"f/16\", iso = \"100\"}")
            return pair_reference
        for key, value in ref.items():
            try:
                pair_reference[role_of(str(key))] = str(value)
            except UnknownSetting as exc:
                self.problem("pairs.reference", str(exc))
        return pair_reference

    def _costs(self) -> Costs:
        names = [k for k in Costs.__dataclass_fields__ if k != "source"]
        found: dict[str, float] = {}
        for key in self.section["costs"]:
            if key not in names:
                self.problem(f"costs.{key}", f"unknown cost {key!r}; use {', '.join(names)}")
                continue
            number = self._number(self.section["costs"], key, f"costs.{key}", positive=True)
            if number is not None:
                found[key] = float(number)
        return Costs(**found, source="plan [costs]") if found else Costs()

    # ----------------------------------------------------------------------------------------- values

    def _table(self, name: str) -> dict:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"[{name}] must be a table (a [{name}] section), got {type(value).__name__}")
            return {}
        return value

    def _subtable(self, table: dict, key: str, where: str) -> dict:
        value = table.get(key, {})
        if not isinstance(value, dict):
            self.problem(where, f"{key} must be a table such as {{ key = value }}")
            return {}
        return dict(value)

    def _text(self, table: dict, key: str, where: str, *, default: str) -> str:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.problem(where, f"{key} must be text, got {value!r}")
            return default
        return str(value).strip()

    def _number(self, table: dict, key: str, where: str, *, default: float | None = None,
                required: bool = False, positive: bool = False) -> float | None:
        if key not in table:
            if required:
                self.problem(where, f"{key} is required (a number)")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(where, f"{key} must be a number, got {value!r}")
            return None
        if positive and value <= 0:
            self.problem(where, f"{key} must be greater than 0, got {value!r}")
            return None
        return value

    def _position(self, value: Any, where: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.problem(where, f"slider position {value!r} is not a number of mm")
            return None
        return float(value)

def pass_coverage_problem(tr: Trajectory, move_s: float) -> str | None:
    """Why `tr`'s frames do not cover a move of `move_s` seconds, with the numbers, or None."""
    if tr.recording_s + 1e-9 >= move_s:
        return None
    need = math.ceil(move_s * tr.fps - 1e-9)
    return (f"{tr.frames} frames at {tr.fps:g} fps record {tr.recording_s:.2f} s, but the move from "
            f"{tr.start_mm:g} to {tr.end_mm:g} mm at {tr.speed_mm_s:g} mm/s takes {move_s:.2f} s: the end of "
            f"the path would have no frames. Record at least {need} frames (or raise fps, speed_mm_s, or "
            "shorten the move)")

def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]

def _axis_key(axes_table: dict, role: str) -> str:
    for key in axes_table:
        try:
            if role_of(key) == role:
                return key
        except UnknownSetting:
            continue
    return role
