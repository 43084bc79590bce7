"""`cinectrl catalog`."""

from __future__ import annotations

import typer

from ._common import not_yet

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)


@app.callback()
def _unfinished(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        not_yet("catalog")
