"""Helpers every command group shares: the catalog option, and turning known errors into one-line exits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

DEFAULT_CATALOG = Path("lab/catalog.db")


def default_catalog() -> Path:
    return Path(os.environ.get("CINECTRL_CATALOG", DEFAULT_CATALOG))


CatalogOption = typer.Option(
    None, "--catalog", help="Catalog file (default: $CINECTRL_CATALOG or ./lab/catalog.db).",
    show_default=False,
)


def resolve_catalog(path: Path | None) -> Path:
    return path if path is not None else default_catalog()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line (no traceback) and exit. The message is plain text: brackets such as `[train]`
    are printed as they are, never read as terminal markup."""
    err_console.print(Text.assemble(("error: ", "bold red"), str(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_catalog_or_fail(catalog: Path | None, *, create: bool = False):
    """The catalog at --catalog (or the default), or a one-line error saying why it cannot be opened."""
    from capture.catalog import Catalog, CatalogError

    path = resolve_catalog(catalog)
    try:
        return Catalog(path, create=create)
    except CatalogError as exc:
        fail(str(exc))
