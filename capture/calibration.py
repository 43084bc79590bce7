"""Calibrating the rig: calibration plans run by the ordinary session runner, and measurements on files.

A calibration plan is an ordinary capture plan (examples/calibration/*.toml) plus a `[calibration]` table
naming the measurement and its options::

    [calibration]
    measure = "response"          # response | white_balance | geometry | defocus | noise
    method = "debevec"            # the measurement's own options (rigs/calibration/measure.py)

`load_calibration_plan` reads that table, blanks its lines (so every other line keeps its number in messages)
and hands the rest to the capture plan parser; the session keeps the whole text, [calibration] included.
`check_calibration_plan` says, before anything moves, whether the plan shoots what the measurement needs.
`run_calibration_plan` runs it with `SessionRunner` (resumable, like any session; no clips or pairs are
made of calibration frames), measures the session's frames and stores a new profile version for the body +
lens (`capture/profiles.py`). `calibrate_files` does the same for files shot with any tool.
"""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from rigs import optics
from rigs.calibration.inputs import CalibrationInputError, Frame
from rigs.calibration.measure import MEASUREMENTS, get as get_measurement, measure, options_for
from rigs.calibration.profile import CalibrationProfile
from rigs.camera.protocol import APERTURE, FOCUS, ISO, KELVIN, ROLE_FIELDS, SHUTTER, WHITE_BALANCE

from . import profiles
from .catalog import Catalog, sha256_file
from .exif import PARSED, read_metadata
from .plan import Plan, PlanError, Problem, load_plan, parse_plan

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


@dataclass
class CalibrationPlan:
    plan: Plan                          # the capture plan the runner runs (its text is the whole file)
    measurement: str
    options: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)     # "calibration.KEY" -> line

    def line(self, key: str) -> int | None:
        return self.lines.get(key) or self.lines.get("calibration")


# ------------------------------------------------------------------------------------------------ plans

def load_calibration_plan(path: str | Path) -> CalibrationPlan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        load_plan(path)          # the plan loader words a missing or unreadable file, as for any plan
        raise
    return parse_calibration_plan(text, source=str(path))


def parse_calibration_plan(text: str, *, source: str = "plan") -> CalibrationPlan:
    """A capture plan with a [calibration] table; PlanError lists every problem of both, with lines."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        parse_plan(text, source=source)          # the plan parser words TOML errors, with their line
        raise
    kept, lines = _split_calibration(text)
    problems: list[Problem] = []
    table = data.get("calibration")
    if not isinstance(table, dict) or "calibration" not in lines:
        problems.append(Problem("calibration", "a calibration plan needs a [calibration] table naming the "
                                               f"measurement, e.g. measure = \"response\" (one of "
                                               f"{', '.join(MEASUREMENTS)})", lines.get("calibration")))
        table = {}
    table = dict(table)
    name = str(table.pop("measure", "")).strip()
    options: dict[str, Any] = {}
    if not name and not problems:
        problems.append(Problem("calibration.measure", f"[calibration] needs measure = one of "
                                                       f"{', '.join(MEASUREMENTS)}", lines.get("calibration")))
    elif name:
        try:
            name = get_measurement(name).name
            options = options_for(name, table, where="")
        except CalibrationInputError as exc:
            bad = next((k for k in table if f"calibration.{k}" in lines and k in str(exc)), "measure")
            problems.append(Problem(f"calibration.{bad}", str(exc), lines.get(f"calibration.{bad}")
                                    or lines.get("calibration")))
    try:
        plan = parse_plan(kept, source=source)
    except PlanError as exc:
        raise PlanError(problems + exc.problems, source) from None
    if problems:
        raise PlanError(problems, source)
    plan.text = text                     # the session keeps the calibration table too (and resumes on it)
    cal = CalibrationPlan(plan, name, options, lines)
    offline = check_calibration_plan(cal)
    if offline:
        raise PlanError(offline, source)
    return cal


def _split_calibration(text: str) -> tuple[str, dict[str, int]]:
    """The text with the [calibration] table's lines blanked, and where its keys were."""
    out, lines, inside = [], {}, False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(1).strip()
            inside = name == "calibration" or name.startswith("calibration.")
            if inside:
                lines.setdefault("calibration", number)
        if inside:
            key = _KEY.match(line)
            if key and not header:
                lines.setdefault(f"calibration.{key.group(1)}", number)
            out.append("")
        else:
            out.append(line)
    return "\n".join(out) + "\n", lines


def check_calibration_plan(cal: CalibrationPlan) -> list[Problem]:
    """Does the plan shoot what its measurement needs? (Offline: the camera's own choices are checked when it
    runs, like any plan.)"""
    plan, problems = cal.plan, []

    def need(where: str, message: str) -> None:
        line = cal.line(where) if where.startswith("calibration") else plan.line(where)
        problems.append(Problem(where, message, line))

    def values(role: str) -> list[str]:
        return plan.axes.get(role, [])

    what = MEASUREMENTS[cal.measurement]
    if plan.mode != "stills":
        need("order.mode", f"{what.title} is measured on stills: use mode = \"stills\"")
    if cal.measurement == "response":
        if len(values(SHUTTER)) < 5:
            need("axes.shutter", "a response bracket needs 5 or more shutter speeds (e.g. 1/3-stop steps over 5-8 "
                                 "stops)")
        for role in (APERTURE, ISO):
            if len(values(role)) > 1:
                need(f"axes.{role}", f"only the shutter may change in a bracket: give one {role}")
        if plan.exposure is not None:
            need("exposure", "a bracket must change the exposure: remove [exposure] constant")
    elif cal.measurement == "white_balance":
        kelvins = values(KELVIN)
        presets = [v for v in values(WHITE_BALANCE) if v.lower() != "kelvin"]
        if len(kelvins) + len(presets) < 2:
            need("axes.kelvin", "sweep the white balance over 2 or more settings (e.g. kelvin = [\"3200\", ..., "
                                "\"8000\"] with white_balance = [\"Kelvin\"])")
    elif cal.measurement == "geometry":
        views = max(len(plan.positions), 1) * plan.repeat
        if views < 2:
            need("axes.slider_mm", "shoot the board from 2 or more positions at each setting (slider_mm = [...]; "
                                   "without a slider, [order] repeat = N and move the board between frames)")
    elif cal.measurement == "defocus":
        if len(values(APERTURE)) < 4:
            need("axes.aperture", "sweep 4 or more f-numbers (e.g. f/1.8 to f/8)")
        if len(values(FOCUS)) > 1:
            need("axes.focus", "keep one focus distance (in front of the edge)")
        if len(values(FOCUS)) == 1:
            focus = float(values(FOCUS)[0])
            edge = float(cal.options["edge_distance_m"])
            if abs(1.0 / focus - 1.0 / edge) < 0.05:
                need("calibration.edge_distance_m", f"the lens is focused at {focus:g} m, on the edge ({edge:g} m): "
                                                    "focus well in front of it (e.g. at a third of its distance)")
    elif cal.measurement == "noise":
        if plan.repeat < 2:
            need("order.repeat", "shoot every flat-field setting twice: [order] repeat = 2")
        if len(values(SHUTTER)) < 2 and plan.exposure is None:
            need("axes.shutter", "shoot flat frames at several exposures per ISO (e.g. 4 shutter speeds 1 stop "
                                 "apart)")
    return problems


# ------------------------------------------------------------------------------------------------ running

@dataclass
class CalibrationOutcome:
    session_id: int | None
    status: str                              # the session's: complete | paused | suspended | failed
    profile: CalibrationProfile | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False                      # a new profile version was stored
    message: str = ""
    session: Any = None                      # capture.session.SessionResult


def run_calibration_plan(cal: CalibrationPlan, catalog_path: Path, *, camera_factory: Callable, slider_factory: Callable,
                         display: Any = None, decide: Callable | None = None, options: Any = None,
                         sleep: Callable[[float], None] = time.sleep) -> CalibrationOutcome:
    """Shoot the plan (or resume it), then measure its frames and store the profile version they give."""
    from .session import RunnerOptions, SessionRunner
    from .suspenders import abort_decision

    options = replace(options or RunnerOptions(), build_outputs=False)   # no clips or pairs of calibration frames
    runner = SessionRunner(cal.plan, catalog_path, camera_factory=camera_factory, slider_factory=slider_factory,
                           display=display, decide=decide or abort_decision, options=options, sleep=sleep)
    result = runner.run()
    outcome = CalibrationOutcome(result.session_id, result.status, session=result, message=result.message)
    if result.status != "complete":
        return outcome
    with Catalog(catalog_path) as cat:
        camera = _session_camera(cat, result.session_id)
        uid = cat.session(result.session_id)["uid"]
        base = profiles.for_camera(cat, **camera) or CalibrationProfile(**camera)
        if uid in base.sources.get(cal.measurement, {}).get("sessions", []):
            outcome.profile, outcome.figures = base, dict(base.sources[cal.measurement].get("figures", {}))
            outcome.message = (f"session {result.session_id} already gave {base.label} its {cal.measurement}; nothing "
                               "new (use --new for another take)")
            return outcome
        frames = session_frames(cat, result.session_id)
        section, figures = measure(cal.measurement, frames, base, cal.options)
        profile = base.with_section(cal.measurement, section, {
            "sessions": [uid], "plan": cal.plan.source, "frames": len(frames), "options": cal.options,
            "figures": figures, "measured_at": time.time()})
        outcome.profile = profiles.save(cat, profile, note=f"{cal.measurement} from session {result.session_id}",
                                        sessions={cal.measurement: [result.session_id]})
    outcome.figures, outcome.fresh = figures, True
    return outcome


def _session_camera(cat: Catalog, session_id: int) -> dict[str, str]:
    for device in cat.session_devices(session_id):
        if device["kind"] == "camera":
            return {k: device[k] or "" for k in ("make", "model", "serial", "lens")}
    raise CalibrationInputError(f"session {session_id} records no camera; it cannot be a calibration session")


def session_frames(cat: Catalog, session_id: int) -> list[Frame]:
    """The session's stills in plan order, decoded, with the settings they were shot at (EXIF first, then what
    the camera read back, then what was asked)."""
    rows = cat.rows("SELECT a.id, a.path FROM assets a JOIN points p ON p.id = a.point_id WHERE a.session_id = ? "
                    "AND a.kind = 'still' ORDER BY p.ordinal, a.id", (session_id,))
    frames = []
    for row in rows:
        settings: dict[str, float] = {}
        for role, values in cat.settings(row["id"]).items():
            number = next((values[k] for k in ("exif_value", "readback_value", "requested_value")
                           if values.get(k) is not None), None)
            if number is not None:
                settings[role] = float(number)
            elif role == WHITE_BALANCE:
                label = values.get("readback_text") or values.get("requested_text") or ""
                if label in optics.WHITE_BALANCE_PRESETS_K:
                    settings.setdefault(KELVIN, float(optics.WHITE_BALANCE_PRESETS_K[label]))
        path = cat.abspath(row["path"])
        frames.append(Frame(load_image(path), path.name, settings))
    if not frames:
        raise CalibrationInputError(f"session {session_id} has no stills to measure")
    return frames


def load_image(path: Path) -> np.ndarray:
    """An image file as 8-bit RGB (JPEG, PNG, TIFF: what OpenCV decodes)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CalibrationInputError(f"{path}: not an image OpenCV can decode (JPEG, PNG, TIFF); convert RAW files "
                                    "to 8-bit TIFF first, or give the camera's JPEGs")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------------------------ files

#: command-line/EXIF names of the settings a measurement may need, role -> EXIF field
EXIF_FIELDS = {role: f.column for role, f in ROLE_FIELDS.items() if f.exif}


def frames_from_files(paths: Sequence[Path], *, given: Mapping[str, Sequence[float]] | None = None
                      ) -> tuple[list[Frame], dict[str, str]]:
    """Frames of files shot with any tool: settings from EXIF unless given (one value, or one per file), and the
    body + lens from EXIF (every file must come from the same one)."""
    given = dict(given or {})
    for role, values in given.items():
        if len(values) not in (1, len(paths)):
            raise CalibrationInputError(f"{len(values)} {role} value(s) for {len(paths)} files: give one for all, or "
                                        "one per file in the files' order")
    frames, identities = [], set()
    for i, path in enumerate(paths):
        path = Path(path)
        if not path.is_file():
            raise CalibrationInputError(f"{path}: no such file")
        meta = read_metadata(path.read_bytes(), path)
        fields = meta.fields if meta.status == PARSED else {}
        settings: dict[str, float] = {}
        for role, key in EXIF_FIELDS.items():
            if fields.get(key) is not None:
                settings[role] = float(fields[key])
        for role, values in given.items():
            settings[role] = float(values[0] if len(values) == 1 else values[i])
        identities.add(tuple(str(fields.get(k) or "").strip() for k in ("make", "model", "serial", "lens")))
        frames.append(Frame(load_image(path), path.name, settings))
    if len(identities) > 1:
        seen = "; ".join(" ".join(p for p in ident if p) or "(none)" for ident in sorted(identities))
        raise CalibrationInputError(f"the files come from different bodies or lenses ({seen}); calibrate one body + "
                                    "lens at a time")
    make, model, serial, lens = next(iter(identities)) if identities else ("", "", "", "")
    return frames, {"make": make, "model": model, "serial": serial, "lens": lens}


def calibrate_files(catalog_path: Path, measurement: str, paths: Sequence[Path], *,
                    given: Mapping[str, Sequence[float]] | None = None, options: Mapping[str, Any] | None = None,
                    identity: Mapping[str, str | None] | None = None) -> tuple[CalibrationProfile, dict]:
    """Measure files shot elsewhere and store the new profile version of their body + lens."""
    name = get_measurement(measurement).name
    frames, camera = frames_from_files(paths, given=given)
    for key, value in (identity or {}).items():
        if value:
            camera[key] = value
    if not (camera["model"] or camera["serial"]):
        raise CalibrationInputError("the files name no camera (no EXIF Model or serial number): give --model and "
                                    "--lens (and --serial) so the profile belongs to a body + lens")
    with Catalog(catalog_path) as cat:
        base = profiles.for_camera(cat, **camera) or CalibrationProfile(**camera)
        section, figures = measure(name, frames, base, options or {})
        files = [{"name": str(Path(p)), "sha256": sha256_file(p)} for p in paths]
        profile = base.with_section(name, section, {"files": files, "frames": len(frames),
                                                    "options": options_for(name, options or {}), "figures": figures,
                                                    "measured_at": time.time()})
        stored = profiles.save(cat, profile, note=f"{name} from {len(files)} file(s)")
    return stored, figures
