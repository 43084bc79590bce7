"""`cinectrl rig capture` (and, with the gphoto2 backend, `rig cameras` / `rig settings`)."""

from __future__ import annotations

from pathlib import Path

import typer

from rigs.camera import open_camera
from rigs.camera.protocol import CameraError, role_of

from ._common import console, fail


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


def capture(
    camera: str = typer.Option("sim", "--camera", help="'sim', 'gphoto2' (first detected), a serial or a port."),
    set_: list[str] = typer.Option([], "--set", help="Setting as NAME=VALUE, e.g. f-number=f/2.8; repeatable."),
    out: Path = typer.Option(Path("."), "--out", help="Folder to write the still(s) into."),
    stem: str = typer.Option("capture", "--name", help="File name stem."),
) -> None:
    """Take one still from the command line, after setting and reading back each --set."""
    settings = _parse_sets(set_)
    out.mkdir(parents=True, exist_ok=True)
    try:
        cam = open_camera(camera)
    except CameraError as exc:
        fail(str(exc))
    try:
        for role, value in settings:
            result = cam.set(role, value)
            console.print(f"{role}: requested {result.requested}, camera reports {result.readback}")
        for f in cam.capture_still(out, stem=stem):
            console.print(f"wrote {f.path} ({f.bytes} bytes, {f.kind})")
    except CameraError as exc:
        fail(str(exc))
    finally:
        cam.close()


def register(app: typer.Typer) -> None:
    app.command("capture")(capture)
