"""`cinectrl review`: the Label Studio server, push/pull of pairs, agreement and the training gate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import CatalogOption, console, fail, resolve_catalog

app = typer.Typer(no_args_is_help=True)
server_app = typer.Typer(no_args_is_help=True, help="Start/stop/inspect the local Label Studio server.")
app.add_typer(server_app, name="server")


def _catalog(path: Path | None, *, create: bool = False):
    from capture.catalog import Catalog, CatalogError

    try:
        return Catalog(resolve_catalog(path), create=create)
    except CatalogError as exc:
        fail(str(exc))


def _connect(catalog: Path):
    from annotate import server

    try:
        return server.connect(catalog)
    except server.ServerError as exc:
        fail(str(exc))


@server_app.command("start")
def server_start(catalog: Optional[Path] = CatalogOption,
                 port: Optional[int] = typer.Option(None, help="Port on 127.0.0.1 (default: a free one).")) -> None:
    """Start Label Studio (installs it into its own venv on first use, ~70 s; first boot ~35 s)."""
    from annotate import server

    path = resolve_catalog(catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    console.print("starting Label Studio (first use installs it into its own venv: a minute or two)...")
    try:
        conn = server.start(path, port=port)
    except server.ServerError as exc:
        fail(str(exc))
    creds_file = server.data_dir_for(path) / "credentials.json"
    console.print(f"Label Studio up at {conn.url} (PID {conn.pid}); admin login and API token in {creds_file}",
                  highlight=False)


@server_app.command("stop")
def server_stop(catalog: Optional[Path] = CatalogOption) -> None:
    """Stop the server started for this catalog (by its recorded PID)."""
    from annotate import server

    stopped = server.stop(resolve_catalog(catalog))
    console.print("stopped" if stopped else "no server was running for this catalog")


@server_app.command("status")
def server_status(catalog: Optional[Path] = CatalogOption) -> None:
    """URL, PID, health and project counts (never the token)."""
    from annotate import review, server

    path = resolve_catalog(catalog)
    conn = _connect(path)
    up = server.healthy(conn.url)
    console.print(f"url: {conn.url}\npid: {conn.pid if conn.pid else '(external server)'}\n"
                  f"health: {'UP' if up else 'DOWN'}", highlight=False)
    if up:
        try:
            projects = review.client(conn).projects.list()
            for p in projects:
                console.print(f"project {p.id} {p.title!r}: {p.task_number} tasks, "
                              f"{p.num_tasks_with_annotations} annotated, overlap {p.maximum_annotations}",
                              highlight=False)
        except Exception as exc:  # noqa: BLE001 - reported as one line, token-free
            fail(str(review._wrap(exc, conn)))


@app.command()
def push(catalog: Optional[Path] = CatalogOption,
         session: Optional[int] = typer.Option(None, "--session", help="Only this session's pairs."),
         overlap: int = typer.Option(2, min=1, help="Annotations per task (the quorum) for a new project.")) -> None:
    """Send pairs not yet on the server as review tasks (idempotent)."""
    from annotate import review, server

    cat = _catalog(catalog)
    try:
        res = review.push(cat, _connect(resolve_catalog(catalog)), session_id=session, overlap=overlap)
    except server.ServerError as exc:
        fail(str(exc))
    console.print(f"project {res.project_id}: {res.added} pairs added, {res.already} already there")


@app.command()
def pull(catalog: Optional[Path] = CatalogOption) -> None:
    """Bring annotations into the catalog's reviews; decide pairs; route splits to adjudication."""
    from annotate import review, server

    cat = _catalog(catalog)
    try:
        res = review.pull(cat, _connect(resolve_catalog(catalog)))
    except server.ServerError as exc:
        fail(str(exc))
    states = ", ".join(f"{k} {v}" for k, v in sorted(res.states.items())) or "none decided"
    console.print(f"{res.added} reviews added, {res.updated} updated; pairs: {states}; "
                  f"{res.adjudication_pushed} sent to adjudication", highlight=False)


@app.command()
def status(catalog: Optional[Path] = CatalogOption) -> None:
    """Pair counts by review state, agreement, per-annotator throughput (from the catalog only)."""
    from annotate import review

    cat = _catalog(catalog)
    counts = review.state_counts(cat)
    ready = len(review.train_ready_pairs(cat))
    console.print("pairs: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
                  + f"; train-ready {ready}", highlight=False)
    ag = review.agreement(cat)
    pct = "n/a" if ag["percent"] is None else f"{ag['percent'] * 100:.1f}%"
    alpha = "n/a" if ag["alpha"] is None else f"{ag['alpha']:.3f}"
    console.print(f"agreement on verdict: {pct} (pairs with >= 2 reviews: {len(ag['per_pair'])}), "
                  f"Krippendorff's alpha {alpha}", highlight=False)
    for row in review.throughput(cat):
        hours = max((row["last"] - row["first"]) / 3600, 1 / 60)
        console.print(f"  {row['annotator']}: {row['reviews']} reviews, {row['reviews'] / hours:.1f}/h",
                      highlight=False)
