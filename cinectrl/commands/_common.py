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


InitOption = typer.Option(False, "--init", help="Create the catalog's folder if it does not exist yet (a new lab).")


def catalog_to_write(path: Path | None, *, init: bool = False) -> Path:
    """The catalog a writing command works on. A --catalog (or $CINECTRL_CATALOG) whose folder does not exist
    is refused: a typo or a disk that is not mounted would otherwise start a second catalog beside the lab's.
    `init` (--init) creates the folder; so does the default ./lab/catalog.db, the README's first command."""
    chosen = resolve_catalog(path)
    folder = chosen.parent
    if not folder.is_dir() and not init and chosen.absolute() != (Path.cwd() / DEFAULT_CATALOG).absolute():
        fail(f"catalog {chosen}: the folder {folder} does not exist (a typo, or a disk that is not mounted?); "
             "pass the lab's --catalog, or add --init to start a new catalog there")
    return chosen


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line (no traceback) and exit. The message is plain text: brackets such as `[train]`
    are printed as they are, never read as terminal markup."""
    err_console.print(Text.assemble(("error: ", "bold red"), str(message)), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_catalog_or_fail(catalog: Path | None, *, create: bool = False, readonly: bool = False,
                         path: Path | None = None):
    """The catalog at --catalog (or the default; or `path`, already resolved), or a one-line error saying why it
    cannot be opened. `readonly` opens it without creating or migrating anything."""
    from capture.catalog import Catalog, CatalogError

    try:
        return Catalog(path or resolve_catalog(catalog), create=create, readonly=readonly)
    except CatalogError as exc:
        fail(str(exc))
