"""`cinectrl catalog ingest|stats|show|export`: put files into the SQLite catalog and get them back out."""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from capture.bulk import DEFAULT_JOBS

from ._common import CatalogOption, console, err_console, fail, resolve_catalog

app = typer.Typer(no_args_is_help=True)

PROGRESS_ABOVE = 5   # files: below this a bar is noise


def _open(catalog: Path | None, *, create: bool = False):
    from capture.catalog import Catalog, CatalogError

    path = resolve_catalog(catalog)
    try:
        return Catalog(path, create=create)
    except CatalogError as exc:
        fail(str(exc))


@app.command("ingest")
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders (folders are walked).", show_default=False),
    catalog: Optional[Path] = CatalogOption,
    maker_notes: bool = typer.Option(True, "--maker-notes/--no-maker-notes",
                                     help="Read maker notes (lens, serial, white balance; ~7x slower EXIF)."),
    batch: int = typer.Option(200, min=1, help="Files per commit (a crash loses at most one batch)."),
    jobs: int = typer.Option(DEFAULT_JOBS, min=1,
                             help="Processes reading and parsing 200+ files (catalog writes stay in this one)."),
) -> None:
    """Catalog camera files: hash, EXIF (exifread; exiftool for CR3/RAF/MOV/MP4), one row each.

    Re-ingesting adds nothing; a moved file is recognised by its content. Bad files get an error row."""
    from capture.exif import ExifTool
    from capture.bulk import expand_paths, ingest_paths
    from capture.ingest import NEW_ERROR, NEW_UNPARSED

    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(str(p) for p in missing)} (nothing was ingested)")
    cat = _open(catalog, create=True)
    own = {cat.path.resolve()} | {cat.path.resolve().with_name(cat.path.name + s) for s in ("-wal", "-shm", "-journal")}
    files = [f for f in expand_paths(paths) if f.resolve() not in own]
    problems: list[Any] = []
    try:
        if len(files) > PROGRESS_ABOVE:
            with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                          TimeRemainingColumn(), console=err_console, transient=True) as bar:
                task = bar.add_task("ingest", total=len(files), name="")
                summary = ingest_paths(cat, files, batch=batch, maker_notes=maker_notes, jobs=jobs,
                                       on_file=lambda r: bar.update(task, advance=1, name=r.path.name[:40]))
        else:
            summary = ingest_paths(cat, files, batch=batch, maker_notes=maker_notes, jobs=jobs)
    except KeyboardInterrupt:
        cat.close()
        fail("interrupted: files committed so far are kept; run the same command again to finish", code=130)
    finally:
        ExifTool.close_shared()
    problems = [r for r in summary.problems if r.outcome in (NEW_ERROR, NEW_UNPARSED)]
    for r in problems[:20]:
        console.print(f"  {r.outcome}: {escape(str(r.path))}: {escape(r.reason or '')}", highlight=False,
                      soft_wrap=True)
    if len(problems) > 20:
        console.print(f"  ... {len(problems) - 20} more (cinectrl catalog export shows every error)")
    console.print(f"{summary.line()} -> {escape(str(cat.path))}", highlight=False, soft_wrap=True)
    cat.close()


@app.command("stats")
def stats(catalog: Optional[Path] = CatalogOption,
          as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """What is in the catalog: rows per table, assets by status/kind/format, sessions, pairs."""
    cat = _open(catalog)
    figures = cat.summary()
    cat.close()
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    console.print(f"[bold]{escape(figures['catalog'])}[/]  schema v{figures['schema_version']}, "
                  f"station {figures['station_id']}", highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, n in figures["rows"].items():
        table.add_row(name, str(n))
    console.print(table)
    console.print(f"files: {figures['rows']['assets']} ({figures['bytes'] / 1e6:.1f} MB)", highlight=False)
    for key, label in (("assets_by_status", "metadata"), ("assets_by_kind", "kinds"),
                       ("assets_by_format", "formats"), ("cameras", "cameras"),
                       ("sessions_by_status", "sessions"), ("points_by_status", "points"),
                       ("pairs_by_review_state", "pairs")):
        if figures[key]:
            console.print(f"{label}: " + ", ".join(f"{escape(k)} {v}" for k, v in figures[key].items()),
                          highlight=False)
    if figures["rows"]["pairs"]:
        console.print(f"train-ready pairs: {figures['train_ready_pairs']}")


@app.command("show")
def show(
    asset: Optional[str] = typer.Argument(None, help="Asset id, sha256 (prefix) or path; omit for a listing.",
                                          show_default=False),
    catalog: Optional[Path] = CatalogOption,
    limit: int = typer.Option(20, min=1, help="Rows in the listing (newest first)."),
    tags: bool = typer.Option(False, "--tags", help="Also print every metadata tag read."),
    problems: bool = typer.Option(False, "--problems", help="List only unparsed and error files."),
) -> None:
    """Print sessions and recent files, or everything known about one file."""
    cat = _open(catalog)
    try:
        if asset is not None:
            _show_asset(cat, asset, tags)
        else:
            _show_listing(cat, limit, problems)
    finally:
        cat.close()


def _show_listing(cat, limit: int, problems: bool) -> None:
    sessions = cat.sessions()
    if sessions:
        table = Table(title="sessions", header_style="bold")
        for col in ("id", "name", "mode", "status", "operator", "points done"):
            table.add_column(col)
        for s in sessions[-limit:]:
            p = cat.progress(s["id"])
            table.add_row(str(s["id"]), escape(s["name"]), s["mode"], s["status"], escape(s["operator"] or ""),
                          f"{p['done']}/{p['total']}")
        console.print(table)
    where = "WHERE a.metadata_status != 'parsed'" if problems else ""
    rows = cat.rows(
        f"SELECT a.id, a.path, a.kind, a.metadata_status, a.error, e.make, e.model, e.f_number, e.exposure_text, "
        f"e.iso FROM assets a LEFT JOIN exif e ON e.asset_id = a.id {where} ORDER BY a.id DESC LIMIT ?", (limit,))
    table = Table(title=f"files (newest {len(rows)})", header_style="bold")
    for col in ("id", "path", "kind", "metadata", "camera", "f", "shutter", "ISO"):
        table.add_column(col)
    for r in rows:
        status = r["metadata_status"] if r["metadata_status"] == "parsed" else \
            f"{r['metadata_status']}: {r['error'] or ''}"
        camera = " ".join(x for x in (r["make"], r["model"]) if x)
        table.add_row(str(r["id"]), escape(r["path"]), r["kind"], escape(status), escape(camera),
                      f"{r['f_number']:g}" if r["f_number"] else "", r["exposure_text"] or "",
                      str(r["iso"] or ""))
    console.print(table)


def _show_asset(cat, ref: str, with_tags: bool) -> None:
    row = cat.find_asset(ref)
    if row is None:
        fail(f"no file {ref!r} in {cat.path}: give an asset id, a sha256 prefix or a path "
             "(`cinectrl catalog show` lists them)")
    console.print(f"[bold]asset {row['id']}[/]: {escape(row['path'])}", highlight=False)
    for key in ("sha256", "bytes", "kind", "format", "width", "height", "frames", "fps", "session_id", "point_id",
                "frame_index", "metadata_status", "metadata_source", "error"):
        if row[key] is not None:
            console.print(f"  {key}: {escape(str(row[key]))}", highlight=False)
    exif = cat.exif(row["id"])
    if exif:
        console.print("[bold]metadata[/]")
        for key, value in exif.items():
            if key not in ("asset_id", "tags_json") and value is not None:
                console.print(f"  {key}: {escape(str(value))}", highlight=False)
    settings = cat.settings(row["id"])
    if settings:
        table = Table(title="settings", header_style="bold")
        for col in ("role", "requested", "read back", "EXIF"):
            table.add_column(col)
        for role, s in settings.items():
            table.add_row(role, escape(s["requested_text"] or ""), escape(s["readback_text"] or ""),
                          escape(s["exif_text"] or ""))
        console.print(table)
    slider = cat.rows("SELECT * FROM slider_positions WHERE asset_id = ?", (row["id"],))
    if slider:
        console.print(f"slider: target {slider[0]['target_mm']} mm, read back {slider[0]['position_mm']} mm")
    if with_tags and exif:
        console.print("[bold]tags[/]")
        for key, value in sorted(json.loads(exif["tags_json"]).items()):
            console.print(f"  {escape(key)}: {escape(str(value))[:200]}", highlight=False)


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


class ExportWhat(str, Enum):
    assets = "assets"
    pairs = "pairs"
    reviews = "reviews"


@app.command("export")
def export(
    catalog: Optional[Path] = CatalogOption,
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl or csv."),
    what: ExportWhat = typer.Option(ExportWhat.assets, "--what",
                                    help="assets (one record per file), pairs, or reviews (one per verdict)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout.",
                                          show_default=False),
) -> None:
    """One record per file (or per clip pair) for pandas / spreadsheets; absent values are empty/null."""
    from capture.catalog import EXPORT_FIELDS

    cat = _open(catalog)
    if what is ExportWhat.assets:
        records: Iterable[dict[str, Any]] = cat.export_assets()
        fields = list(EXPORT_FIELDS)
    elif what is ExportWhat.reviews:   # annotate/report.py owns the review records
        from annotate.report import REVIEW_FIELDS, review_records
        records, fields = review_records(cat), list(REVIEW_FIELDS)
    else:
        records = cat.export_pairs()
        fields = list(PAIR_FIELDS)
    try:
        out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        cat.close()
        fail(f"cannot write {output}: {exc.strerror}")
    n = 0
    try:
        if fmt is ExportFormat.jsonl:
            for record in records:
                out.write(json.dumps({k: record.get(k) for k in fields}) + "\n")
                n += 1
        else:
            writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for record in records:
                writer.writerow({k: _cell(record.get(k)) for k in fields})
                n += 1
    except BrokenPipeError:
        # the reader (head, less) stopped early: that is not an error; keep Python quiet at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        cat.close()
        if output:
            out.close()
    if output:
        err_console.print(f"{n} {what.value} -> {output}", highlight=False)


@app.command("merge")
def merge(
    other: Path = typer.Argument(..., help="Another station's catalog file.", show_default=False),
    catalog: Optional[Path] = CatalogOption,
    copy_files: bool = typer.Option(False, "--copy-files",
                                    help="Copy its files under stations/<station>/ here (default: reference them)."),
) -> None:
    """Bring another station's sessions, ledger, files, clips, pairs and reviews into this catalog.

    Idempotent: merging again adds nothing. Both catalogs must be at the same schema version."""
    from capture.catalog import CatalogError
    from capture.merge import merge_catalog

    cat = _open(catalog, create=True)
    try:
        summary = merge_catalog(cat, other, copy_files=copy_files)
    except (CatalogError, OSError) as exc:
        fail(str(exc))
    finally:
        cat.close()
    for line in summary.skipped[:10]:
        console.print(f"  skipped: {escape(line)}", highlight=False, soft_wrap=True)
    console.print(summary.line(), highlight=False, soft_wrap=True)


PAIR_FIELDS = ("pair_id", "session_id", "reference_clip_id", "reference_path", "reference_proxy_path",
               "reference_settings", "other_clip_id", "other_path", "other_proxy_path", "other_settings",
               "deltas", "controls", "qc", "review_state", "train_ready")


def _cell(value: Any) -> Any:
    """CSV cells: dicts/lists as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value
