"""`cinectrl rig capture`, and for tethered bodies `rig cameras` / `rig settings` (gphoto2 backend)."""

from __future__ import annotations

import glob
import json
import re
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from rigs.camera import open_camera
from rigs.camera.protocol import CameraError, role_of

from ._common import console, fail
from ._plain import say, user_errors

CAMERA_HELP = ("'sim', 'gphoto2' (first detected body), a serial number, a port such as usb:001,004, or "
               "virtual:PATH (libgphoto2's virtual camera over a folder of JPEGs).")


def _parse_sets(pairs: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not value:
            fail(f"--set {item!r}: write NAME=VALUE, e.g. --set f-number=f/2.8")
        try:
            parsed.append((role_of(name), value.strip()))
        except CameraError as exc:
            fail(f"--set {item!r}: {exc}")
    return parsed


def _open(spec: str):
    try:
        return open_camera(spec)
    except CameraError as exc:
        fail(str(exc))
    except ImportError as exc:
        fail(f"camera {spec!r}: its backend is not installed in this version ({exc.name})")


COUNTER = re.compile(r"%(0?\d*)n")


def _taken(out: Path, stem: str) -> bool:
    return bool(glob.glob(str(out / f"{glob.escape(stem)}.*")))


def free_stem(out: Path, pattern: str, *, force: bool = False) -> str:
    """The file stem to write: `pattern` with its counter (%n, %04n) at the first number not yet used in
    `out`, or the name itself when it has no counter -- refused if taken, unless `force`."""
    if not pattern or "/" in pattern or pattern in (".", ".."):
        fail(f"--filename {pattern!r}: give a file name without folders (use --out for the folder)")
    if "%" in COUNTER.sub("", pattern.replace("%%", "")):
        fail(f"--filename {pattern!r}: the only pattern is %n (a counter, e.g. shot_%n or shot_%04n)")
    if not COUNTER.search(pattern):
        stem = pattern.replace("%%", "%")
        if _taken(out, stem) and not force:
            fail(f"{out / stem}.* already exists: nothing was captured. Use --filename '{stem}_%n' for the next "
                 "free number, or --force to overwrite")
        return stem
    for n in range(1, 1_000_000):
        stem = COUNTER.sub(lambda m: f"{n:{m.group(1) or ''}d}", pattern).replace("%%", "%")
        if force or not _taken(out, stem):
            return stem
    fail(f"--filename {pattern!r}: every number up to 999999 is taken in {out}")


def capture(
    camera: str = typer.Option("sim", "--camera", help=CAMERA_HELP),
    set_: list[str] = typer.Option([], "--set", help="Setting as NAME=VALUE, e.g. f-number=f/2.8; repeatable."),
    out: Path = typer.Option(Path("."), "--out", help="Folder to write the still(s) into."),
    filename: str = typer.Option("capture", "--filename", "--name",
                                 help="File name without extension; %n is a counter (shot_%n, shot_%04n) that "
                                      "takes the next free number, as gphoto2's --filename does."),
    force: bool = typer.Option(False, "--force", help="Overwrite a file of the same name."),
) -> None:
    """Take one still from the command line, after setting and reading back each --set. Never overwrites a
    file unless --force."""
    settings = _parse_sets(set_)
    out = out.expanduser().resolve()
    with user_errors():
        out.mkdir(parents=True, exist_ok=True)
    stem = free_stem(out, filename, force=force)
    cam = _open(camera)
    try:
        with user_errors():
            for role, value in settings:
                result = cam.set(role, value)
                say(f"{role}: requested {result.requested}, camera reports {result.readback}")
            for f in cam.capture_still(out, stem=stem):
                say(f"wrote {Path(f.path).resolve()} ({f.bytes} bytes, {f.kind})")
                if f.left_on_camera:
                    say(f"warning: {f.camera_name} {f.left_on_camera}", err=True)
    finally:
        cam.close()


def cameras(
    virtual: Path = typer.Option(None, "--virtual", help="Look at libgphoto2's virtual camera over this folder "
                                 "of JPEGs instead of USB (for trying the tools without a body)."),
) -> None:
    """List the tethered bodies libgphoto2 detects, with the serial numbers to pass as --camera."""
    from rigs.camera.gphoto import detect_cameras

    if virtual is not None and not virtual.is_dir():
        fail(f"--virtual {virtual}: no such folder; give a folder holding at least one JPEG")
    try:
        rows = detect_cameras(virtual_dir=virtual)
    except CameraError as exc:
        fail(str(exc))
    if not rows:
        fail("no camera detected: check the USB cable, that the body is on and awake, and that no other program "
             "(gvfs, another gphoto2) holds it", code=1)
    table = Table("serial", "model", "port", "note")
    for row in rows:
        table.add_row(row["serial"] or "?", row["model"], row["port"], row["error"])
    console.print(table)


def settings(
    camera: str = typer.Option("gphoto2", "--camera", help=CAMERA_HELP),
    full: bool = typer.Option(False, "--full", help="Show every choice, not the first few."),
    as_json: bool = typer.Option(False, "--json", help="Print the widget list as JSON."),
) -> None:
    """Every setting of a tethered body: widget, role, current value and the choices the body offers."""
    if camera == "sim":
        fail("--camera sim: `rig settings` reads a tethered body's widget tree; give a serial, a port, "
             "'gphoto2' or virtual:PATH")
    cam = _open(camera)
    try:
        rows = cam.settings()
    except CameraError as exc:
        fail(str(exc))
    finally:
        cam.close()
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    table = Table("section", "widget", "role", "value", "choices", title=cam.identity.label())
    for row in rows:
        if row["choices"]:
            shown = row["choices"] if full else row["choices"][:8]
            choices = ", ".join(shown) + ("" if len(shown) == len(row["choices"]) else
                                          f" ... (+{len(row['choices']) - len(shown)}, --full)")
        elif row["range"]:
            low, high, step = row["range"]
            choices = f"{low:g}..{high:g} step {step:g}"
        else:
            choices = "read-only" if row["readonly"] else row["kind"].lower()
        value = row["value"]
        if row["kind"] == "DATE" and isinstance(value, int):
            value = datetime.fromtimestamp(value).isoformat(sep=" ")
        table.add_row(row["section"], row["name"], row["role"], str(value), choices)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("capture")(capture)
    app.command("cameras")(cameras)
    app.command("settings")(settings)
