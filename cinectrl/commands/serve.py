"""`cinectrl serve`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import not_yet


def serve(model: Path = typer.Option(None, "--model", help="Model directory (diffusers format).")) -> None:
    not_yet("serve")
