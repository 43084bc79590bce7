"""Import a sweep shot elsewhere (a bracket, a focus stack, an aperture series...) as a session like a captured one.

A folder of stills (or videos) that differ along one setting becomes: a plan recorded in the catalog (so
`capture status`, the report and a rerun treat it like any other take), one ledger point per file with the
file's settings, the files catalogued in place through `capture.ingest` (hash, EXIF, settings), then the
same outputs a capture ends with (`capture.report.build_session_outputs`: one clip per setting, a still being
a 1-frame clip and a video staying a video, pairs against the reference through `capture.pairs`, QC, a
contact sheet and the report), ready for `review push` and training.

What is not a sweep is refused before anything is written, with the file, the value and the fix: frames of
different sizes, a second setting that changes (unless it only holds the exposure, as a body in aperture-
or shutter-priority does), values missing or not one per file, two files at one value. The plan's identity
is the import's identity: a rerun with the same options finds the session and imports nothing twice; a rerun
after a crash finishes the points still to do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rigs.camera import values
from rigs.camera.protocol import APERTURE, ISO, ROLES, SHUTTER, CameraIdentity

from . import status as words
from .exif import PARSED, exif_settings, read_metadata
from .ingest import guess_kind, ingest_file, is_media, read_file
from .ledger import Ledger
from .plan import Plan, parse_plan
from .plan.identity import plan_key
from .plan.model import Point
from .session import SessionRefused

# The settings an imported sweep can run along: every role whose labels are numbers (white-balance presets
# such as "Daylight" are words and order nothing).
AXES: tuple[str, ...] = tuple(r for r in ROLES if r in values.PARSERS)
EXPOSURE_ROLES = (APERTURE, SHUTTER, ISO)
# A body in aperture or shutter priority meters every frame anew; its frames land within half a stop of the
# exposure it holds (the bokeh changes what the meter sees), so that much drift still counts as "held".
HELD_EXPOSURE_STOPS = 0.5
OPERATOR = "import"
STILLS_FPS = 6


class ImportRefused(SessionRefused):
    """The folder is not a sweep (or not this one); nothing was written."""


@dataclass
class SweepFile:
    path: Path
    sha256: str
    kind: str                                   # still | clip
    width: int
    height: int
    settings: dict[str, str]                    # role -> label: the axis value and the settings EXIF recorded
    exif: dict[str, str] = field(default_factory=dict)
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    serial: str | None = None


@dataclass
class Sweep:
    folder: Path
    axis: str
    files: list[SweepFile]
    values_from: str                            # "EXIF" or "--values"
    held: tuple[str, ...] = ()                  # exposure roles that followed the axis to hold the exposure
    bracketed: tuple[str, ...] = ()             # exposure roles the body moved with the axis (ISO in a bracket)
    camera: CameraIdentity = field(default_factory=lambda: CameraIdentity("", "", ""))

    @property
    def labels(self) -> list[str]:
        return [f.settings[self.axis] for f in self.files]


@dataclass
class ImportResult:
    session_id: int
    sweep: Sweep
    imported: int                               # files catalogued by this run (0 on a rerun of a done import)
    already: bool                               # the import was complete before this run
    pairs: int
    report: Path | None
    session_dir: Path


def axis_of(name: str) -> str:
    """A user-typed axis name -> its role, or refused with the axes there are."""
    from rigs.camera.protocol import UnknownSetting, role_of

    try:
        role = role_of(name)
    except UnknownSetting:
        role = ""
    if role not in AXES:
        raise ImportRefused(f"--axis {name!r} is not a sweep axis: use one of {', '.join(AXES)}")
    return role


def media_files(folder: Path) -> list[Path]:
    """The folder's camera files in file-name order (sidecars, READMEs and sweep.toml are not frames)."""
    if not folder.is_dir():
        raise ImportRefused(f"{folder}: no such folder; give the folder that holds the sweep's files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_media(p)
                   and guess_kind(p, None) in ("still", "clip"))
    if len(files) < 2:
        raise ImportRefused(f"{folder}: {len(files)} camera file(s); a sweep needs at least two settings, one "
                            "file each")
    return files


def _read(path: Path) -> SweepFile:
    content = read_file(path)
    meta = read_metadata(content.data, path, maker_notes=False, tail=content.tail)
    kind = guess_kind(path, meta.format)
    if kind not in ("still", "clip"):
        raise ImportRefused(f"{path}: a {kind} file is not a frame of a sweep; import the stills or videos only")
    try:
        if kind == "clip":
            from rigs.video import probe

            info = probe(path)
            width, height = info.width, info.height
        else:
            from PIL import Image

            with Image.open(path) as im:
                width, height = im.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the same refusal
        raise ImportRefused(f"{path}: cannot be decoded ({exc}); remove it from the folder or replace it") from None
    exif: dict[str, str] = {}
    fields = meta.fields if meta.status == PARSED else {}
    for role, (text, _number) in exif_settings(fields).items():
        if role in AXES and text is not None:
            exif[role] = text
    return SweepFile(path, content.sha, kind, int(width), int(height), {}, exif, fields.get("make"), fields.get("model"),
                     fields.get("lens"), fields.get("serial"))


def read_sweep(folder: Path, axis: str, *, labels: Sequence[str] | None = None, make: str | None = None,
               model: str | None = None, lens: str | None = None) -> Sweep:
    """The folder as a sweep along `axis`, or ImportRefused saying why it is not one. `labels`: the axis
    value of each file in file-name order, for files whose EXIF does not record it."""
    role = axis_of(axis)
    files = [_read(p) for p in media_files(Path(folder))]
    _one_kind(files)
    _same_size(files)
    values_from = _assign_values(files, role, labels)
    held, bracketed = _others_fixed(files, role)
    _distinct(files, (role, *bracketed))
    camera = _camera(files, make, model, lens)
    return Sweep(Path(folder), role, files, values_from, held, bracketed, camera)


def _same_size(files: list[SweepFile]) -> None:
    first = files[0]
    for f in files[1:]:
        if (f.width, f.height) != (first.width, first.height):
            raise ImportRefused(
                f"{f.path}: {f.width}x{f.height} but {first.path.name} is {first.width}x{first.height}; a sweep's "
                "frames share one size: crop or resize them alike, or import the files of one size only")


def _one_kind(files: list[SweepFile]) -> None:
    kinds = {f.kind for f in files}
    if len(kinds) > 1:
        still = next(f for f in files if f.kind == "still")
        clip = next(f for f in files if f.kind == "clip")
        raise ImportRefused(f"{clip.path}: a video in a sweep of stills ({still.path.name}); import the stills and "
                            "the videos as two sweeps")


def _assign_values(files: list[SweepFile], role: str, labels: Sequence[str] | None) -> str:
    if labels is not None:
        labels = [str(v).strip() for v in labels]
        if len(labels) != len(files):
            raise ImportRefused(
                f"--values gives {len(labels)} value(s) for {len(files)} files in {files[0].path.parent}; give one "
                f"per file in file-name order ({', '.join(f.path.name for f in files)})")
        for f, label in zip(files, labels):
            try:
                values.PARSERS[role](label)
            except (ValueError, ZeroDivisionError) as exc:
                raise ImportRefused(f"{f.path.name}: --values {label!r} is not a {role} value ({exc}); "
                                    f"give numbers such as {_example(role)}") from None
            if role in f.exif and not values.same_value(role, f.exif[role], label):
                raise ImportRefused(
                    f"{f.path.name}: its EXIF records {role} {f.exif[role]} but --values gives {label}; drop --values "
                    f"(the files record their {role}) or import copies without EXIF")
            f.settings = {**{r: v for r, v in f.exif.items() if r != role}, role: label}
        return "--values"
    for f in files:
        if role not in f.exif:
            raise ImportRefused(
                f"{f.path}: its EXIF records no {role}; pass --values with the {role} of each of the "
                f"{len(files)} files, comma-separated in file-name order (a {role} reads like {_example(role)})")
        f.settings = dict(f.exif)
    return "EXIF"


def _example(role: str) -> str:
    from .plan.model import example_label

    return example_label(role)


def _distinct(files: list[SweepFile], roles: Sequence[str]) -> None:
    """One file per setting: no two files share the values of every swept role."""
    for i, f in enumerate(files):
        for g in files[:i]:
            if all(values.same_value(r, f.settings.get(r), g.settings.get(r)) for r in roles):
                at = ", ".join(f"{r} {f.settings.get(r)}" for r in roles)
                raise ImportRefused(
                    f"{f.path.name} and {g.path.name} are both at {at}: a sweep has one file per setting; remove "
                    "the repeat or give each file its own value with --values")


def _stops(role: str, label: str) -> float:
    """Light the setting lets in, in stops (+ = more light)."""
    n = values.number(role, label)
    assert n is not None and n > 0
    return -2 * math.log2(n) if role == APERTURE else math.log2(n)


def _exposure_stops(f: SweepFile) -> float | None:
    if not all(r in f.settings for r in EXPOSURE_ROLES):
        return None
    return sum(_stops(r, f.settings[r]) for r in EXPOSURE_ROLES)


def _changing(files: list[SweepFile], axis: str) -> list[tuple[str, tuple[SweepFile, str], tuple[SweepFile, str]]]:
    """Each other setting that differs between files: (role, the first file's, the first differing file's)."""
    out = []
    for role in AXES:
        recorded = [(f, f.settings[role]) for f in files if role != axis and role in f.settings]
        for f, label in recorded[1:]:
            if not values.same_value(role, label, recorded[0][1]):
                out.append((role, recorded[0], (f, label)))
                break
    return out


def _others_fixed(files: list[SweepFile], axis: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Refuse a second setting that changes, except exposure settings along an exposure axis: ones that only
    held the exposure (aperture or shutter priority: returned first), or, along shutter or ISO, the other of
    the two (an exposure bracket in which the body also moved ISO: returned second). A change of aperture
    beside another exposure change is refused: it moves the depth of field and the light at once."""
    changing = _changing(files, axis)
    roles = tuple(c[0] for c in changing)
    if not changing:
        return (), ()
    spread = ""
    if axis in EXPOSURE_ROLES and all(r in EXPOSURE_ROLES for r in roles):
        total = [_exposure_stops(f) for f in files]
        if all(t is not None for t in total):
            moved = max(total) - min(total)        # type: ignore[type-var,operator]
            if moved <= HELD_EXPOSURE_STOPS:
                return roles, ()
            if {axis, *roles} <= {SHUTTER, ISO}:
                return (), roles
            spread = (f"; the exposure also moved {moved:.2f} stops, more than the {HELD_EXPOSURE_STOPS} a body "
                      "holding it drifts")
    role, (f0, v0), (f1, v1) = changing[0]
    raise ImportRefused(
        f"{f1.path.name}: {role} {v1} but {f0.path.name} has {role} {v0} while {axis} is the axis: two settings "
        f"change{spread}; import frames that differ in {axis} only (or pass --axis {role} for a {role} sweep)")


def _camera(files: list[SweepFile], make: str | None, model: str | None, lens: str | None) -> CameraIdentity:
    """The one body and lens of the sweep: EXIF first, the options where EXIF is silent."""
    found: dict[str, str] = {}
    for attr in ("make", "model", "lens", "serial"):
        seen = [(f, getattr(f, attr)) for f in files if getattr(f, attr)]
        for f, value in seen[1:]:
            if value != seen[0][1]:
                raise ImportRefused(f"{f.path.name}: {attr} {value!r} but {seen[0][0].path.name} has "
                                    f"{seen[0][1]!r}: a sweep comes from one body and lens; import each as its own "
                                    "sweep")
        if seen:
            found[attr] = seen[0][1]
    given = {"make": make, "model": model, "lens": lens}
    for attr, value in given.items():
        if value and attr not in found:
            found[attr] = value.strip()
    return CameraIdentity(found.get("make", ""), found.get("model", ""), found.get("serial", ""),
                          lens=found.get("lens", ""))


# ------------------------------------------------------------------------------------------------- the plan

def _toml_text(value: str) -> str:
    return json.dumps(value)                      # a TOML basic string is a JSON string for these texts


def sweep_plan(sweep: Sweep, *, scene: str | None = None, reference: str | None = None) -> Plan:
    """The plan a capture of this sweep would have run: the axis with the files' values, the settings that
    held the exposure as its compensation, the reference as the pairs' reference."""
    axis = sweep.axis
    if reference is not None and not any(values.same_value(axis, reference, v) for v in sweep.labels):
        raise ImportRefused(f"--reference {reference!r} is not one of this sweep's {axis} values: use one of "
                            f"{', '.join(sweep.labels)}")
    scene = (scene or sweep.folder.resolve().name).strip()
    lines = ["[session]", f"name = {_toml_text('import ' + sweep.folder.resolve().name)}",
             f"scene = {_toml_text(scene)}", f"operator = {_toml_text(OPERATOR)}",
             f"notes = {_toml_text(f'imported from {sweep.folder.resolve()}; {axis} values from {sweep.values_from}')}",
             f"source_folder = {_toml_text(str(sweep.folder.resolve()))}",
             f"fps = {_toml_text(str(STILLS_FPS))}",
             "", "[rig]", 'camera = "import"', 'slider = "none"', "", "[axes]",
             f"{axis} = [{', '.join(_toml_text(v) for v in _unique(axis, sweep.labels))}]"]
    for r in sweep.bracketed:                  # recorded as swept: each file's own value is in its point
        distinct: list[str] = []
        for f in sweep.files:
            if not any(values.same_value(r, f.settings[r], d) for d in distinct):
                distinct.append(f.settings[r])
        lines.append(f"{r} = [{', '.join(_toml_text(v) for v in distinct)}]")
    fixed = {r: sweep.files[0].settings[r] for r in AXES if r != axis and r not in sweep.held
             and r not in sweep.bracketed and all(r in f.settings for f in sweep.files)}
    lines += [f"{r} = [{_toml_text(v)}]" for r, v in fixed.items()]
    if sweep.held:
        lines += ["", "[exposure]", "constant = true",
                  f"compensate = [{', '.join(_toml_text(r) for r in sweep.held)}]",
                  f"tolerance_stops = {HELD_EXPOSURE_STOPS}",
                  "reference = { " + ", ".join(f"{r} = {_toml_text(sweep.files[0].settings[r])}"
                                               for r in EXPOSURE_ROLES) + " }"]
    lines += ["", "[order]", 'mode = "stills"']
    if reference is not None:
        lines += ["", "[pairs]", f"reference = {{ {axis} = {_toml_text(reference)} }}"]
    return parse_plan("\n".join(lines) + "\n", source=f"import of {sweep.folder}")


def _unique(role: str, labels: Sequence[str]) -> list[str]:
    out: list[str] = []
    for label in labels:
        if not any(values.same_value(role, label, seen) for seen in out):
            out.append(label)
    return out


def sweep_points(sweep: Sweep) -> list[Point]:
    """One point per file, in file-name order: a still is frame 0 of its own setting's clip."""
    return [Point(i, f"p{i:04d}", dict(f.settings), None, f.kind, i, 0) for i, f in enumerate(sweep.files)]


# ------------------------------------------------------------------------------------------------- import

def import_sweep(catalog: Path, folder: Path, axis: str, *, labels: Sequence[str] | None = None,
                 reference: str | None = None, scene: str | None = None, make: str | None = None,
                 model: str | None = None, lens: str | None = None) -> ImportResult:
    """Import (or finish importing) `folder` as a session; see the module docstring."""
    sweep = read_sweep(Path(folder), axis, labels=labels, make=make, model=model, lens=lens)
    plan = sweep_plan(sweep, scene=scene, reference=reference)
    points = sweep_points(sweep)
    ledger = Ledger(Path(catalog))
    try:
        existing = ledger.sessions_of_plan(plan_key(plan))
        if existing:
            session_id = int(existing[0]["id"])
            _same_files(ledger, session_id, sweep)
        else:
            _not_elsewhere(ledger, sweep)
            session_id = ledger.create_session(plan, points, camera=sweep.camera, slider=None,
                                               claim=lambda d: d.mkdir(parents=True, exist_ok=True))
            ledger.event(session_id, "import", f"{len(points)} files from {sweep.folder.resolve()} along {sweep.axis}"
                                               f" ({sweep.values_from})")
        todo = {r.key for r in ledger.points(session_id) if r.status != "done"}
        from .report import build_session_outputs, missing_outputs

        already = not todo and not missing_outputs(ledger, session_id)
        for point, f in zip(points, sweep.files):
            if point.key in todo:
                _commit(ledger, session_id, point, f)
        session_dir = ledger.session_dir(session_id)
        report = session_dir / "report.html"
        if not already:   # complete only once every output exists and is catalogued (capture/status.py)
            ledger.set_status(session_id, words.BUILDING)
            report = build_session_outputs(ledger, session_id, plan).report or report
            ledger.set_status(session_id, words.COMPLETE)
        return ImportResult(session_id, sweep, len(todo), already, len(ledger.pairs(session_id)), report,
                            session_dir)
    finally:
        ledger.close()


def _not_elsewhere(ledger: Ledger, sweep: Sweep) -> None:
    """A file already in another session is that session's frame: importing it again would steal it."""
    for f in sweep.files:
        row = ledger.catalog.asset_by_sha256(f.sha256)
        if row is not None and row.get("session_id") is not None:
            raise ImportRefused(
                f"{f.path.name} is already in session {row['session_id']} (as {row['path']}); rerun the import with "
                f"the options that made that session to finish it, or see it with cinectrl capture status --session "
                f"{row['session_id']}")


def _same_files(ledger: Ledger, session_id: int, sweep: Sweep) -> None:
    """A rerun resumes its own import only: the files done then must be these files, byte for byte."""
    stored = {int(r["ordinal"]): r for r in ledger.catalog.rows(
        "SELECT p.ordinal, a.sha256, a.path FROM points p JOIN assets a ON a.point_id = p.id "
        "WHERE p.session_id = ?", (session_id,))}
    for i, f in enumerate(sweep.files):
        row = stored.get(i)
        if row is not None and row["sha256"] != f.sha256:
            raise ImportRefused(
                f"{f.path}: session {session_id} imported other bytes for this file's place ({row['path']}) with "
                "the same plan; if this is another sweep, name it with --scene, else restore the original file")


def _commit(ledger: Ledger, session_id: int, point: Point, f: SweepFile) -> None:
    """The file's asset, EXIF and settings + its point done, in one transaction (a crash loses only this file)."""
    cat = ledger.catalog
    pid = cat.point_id(session_id, point.index)
    with cat.transaction():
        ingest_file(cat, f.path, kind=f.kind, session_id=session_id, point_id=pid, frame_index=point.frame_index,
                    requested=point.settings_dict(), maker_notes=False, sha256=f.sha256)
        cat.mark_point(pid, "done")


def values_from_file(path: Path) -> list[str]:
    """`--values @FILE`: values one per line or comma-separated ('#' starts a comment)."""
    text = "\n".join(line.split("#", 1)[0] for line in Path(path).read_text().splitlines())
    return [v.strip() for v in text.replace("\n", ",").split(",") if v.strip()]


def split_values(text: str) -> list[str]:
    """`--values 1.8,2.8,4` -> labels (a leading @ reads them from a file)."""
    if text.startswith("@"):
        return values_from_file(Path(text[1:]))
    return [v.strip() for v in text.split(",") if v.strip()]


