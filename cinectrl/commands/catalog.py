"""`cinectrl catalog ingest|stats|show|export|merge|upgrade`: put files into the SQLite catalog and get them out.

Reading commands (stats, show, export) open the catalog read-only: they never create, migrate or change it.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from capture.bulk import DEFAULT_JOBS
from capture.export import EXPORTS

from ._common import (CatalogOption, InitOption, catalog_to_write, console, err_console, fail, open_catalog_or_fail,
                      resolve_catalog)

app = typer.Typer(no_args_is_help=True)

PROGRESS_ABOVE = 5   # files: below this a bar is noise
LISTED = 20          # problems an ingest names before pointing at `show --problems`

# `catalog ingest` exit statuses (also in its --help and docs/catalog.md).
EXIT_OK, EXIT_USER_ERROR, EXIT_FILE_ERRORS, EXIT_INTERRUPTED = 0, 1, 3, 130


def _open(catalog: Path | None, *, readonly: bool = True, create: bool = False, path: Path | None = None):
    """Reading commands open read-only unless told otherwise."""
    return open_catalog_or_fail(catalog, create=create, readonly=readonly, path=path)


def _plain(text: str) -> None:
    """One line as it is: no markup, no highlighting, never wrapped or cut (paths must show whole)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command("ingest")
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders (folders are walked).", show_default=False),
    catalog: Optional[Path] = CatalogOption,
    init: bool = InitOption,
    maker_notes: bool = typer.Option(True, "--maker-notes/--no-maker-notes",
                                     help="Read maker notes (lens, serial, white balance; ~7x slower EXIF)."),
    batch: int = typer.Option(200, min=1, help="Files per commit (a crash loses at most one batch)."),
    jobs: int = typer.Option(DEFAULT_JOBS, min=1,
                             help="Processes reading and parsing 200+ files (catalog writes stay in this one)."),
) -> None:
    """Catalog camera files: hash, EXIF (exifread; exiftool for what it cannot read), one row each.

    Re-ingesting adds nothing; a moved file is recognised by its content. A broken camera file gets an error
    row with the reason; files that are not camera media (reports, READMEs, JSON sidecars) are skipped and
    counted. Exit status: 0 when no file is in error, 3 when some are (their rows say why: `cinectrl catalog
    show --problems`), 1 when nothing could be done (bad path, refused catalog), 130 when interrupted
    (committed batches are kept; rerun to finish)."""
    from capture.bulk import expand_paths, ingest_paths
    from capture.exif import ExifTool

    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(str(p) for p in missing)} (nothing was ingested)")
    cat = _open(catalog, readonly=False, create=True, path=catalog_to_write(catalog, init=init))
    own = {cat.path.resolve()} | {cat.path.resolve().with_name(cat.path.name + s) for s in ("-wal", "-shm", "-journal")}
    files = [f for f in expand_paths(paths) if f.resolve() not in own]
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
        fail("interrupted: files committed so far are kept; run the same command again to finish",
             code=EXIT_INTERRUPTED)
    finally:
        ExifTool.close_shared()
    for r in summary.problems[:LISTED]:
        _plain(f"  {r.outcome}: {r.path}: {r.reason or ''}")
    if len(summary.problems) > LISTED:
        _plain(f"  ... {len(summary.problems) - LISTED} more (cinectrl catalog show --problems lists every one)")
    if summary.skipped:
        names = ", ".join(p.name for p in summary.skipped[:5]) + (", ..." if len(summary.skipped) > 5 else "")
        _plain(f"  skipped {len(summary.skipped)} files that are not camera media: {names}")
    _plain(f"{summary.line()} -> {cat.path}")
    cat.close()
    if summary.errors:
        raise typer.Exit(EXIT_FILE_ERRORS)


@app.command("stats")
def stats(catalog: Optional[Path] = CatalogOption,
          as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")) -> None:
    """What is in the catalog: rows per table, assets by status/kind/format/camera, sessions, pairs."""
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
    _plain(f"files: {figures['rows']['assets']} ({figures['bytes'] / 1e6:.1f} MB)")
    for key, label in (("assets_by_status", "metadata"), ("assets_by_kind", "kinds"),
                       ("assets_by_format", "formats"), ("cameras", "cameras"),
                       ("sessions_by_status", "sessions"), ("points_by_status", "points"),
                       ("pairs_by_review_state", "pairs")):
        if figures[key]:
            _plain(f"{label}: " + ", ".join(f"{k} {v}" for k, v in figures[key].items()))
    if figures["rows"]["pairs"]:
        _plain(f"train-ready pairs: {figures['train_ready_pairs']}")


@app.command("show")
def show(
    asset: Optional[str] = typer.Argument(None, help="Asset id, sha256 (prefix) or path; omit for a listing.",
                                          show_default=False),
    catalog: Optional[Path] = CatalogOption,
    limit: Optional[int] = typer.Option(None, min=1, help="Rows in the listing, newest first (default 20; "
                                                          "--problems lists them all).", show_default=False),
    tags: bool = typer.Option(False, "--tags", help="Also print every metadata tag read."),
    problems: bool = typer.Option(False, "--problems",
                                  help="Only unparsed and error files: each full path on its own line, then why."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead (a list of files, or one file)."),
) -> None:
    """Print sessions and recent files, or everything known about one file."""
    cat = _open(catalog)
    try:
        if asset is not None:
            _show_asset(cat, asset, tags, as_json)
        elif problems:
            _show_problems(cat, limit, as_json)
        else:
            _show_listing(cat, limit or 20, as_json)
    finally:
        cat.close()


# Files whose settings the capture runner recorded itself: its rendered clips and proxies (settings in the clip
# rows), and the captures its points read back over PTP (video carries no exposure EXIF). Unparsed EXIF is not a
# problem for them; `--problems` lists the files whose settings nobody knows.
RUNNER_RECORDED = ("(a.session_id IS NOT NULL AND a.point_id IS NULL AND a.kind IN ('clip', 'proxy')) OR "
                   "(a.point_id IS NOT NULL AND EXISTS (SELECT 1 FROM asset_settings s WHERE s.asset_id = a.id "
                   "AND s.readback_text IS NOT NULL))")


def _show_problems(cat, limit: int | None, as_json: bool) -> None:
    rows = cat.rows(f"SELECT a.id, a.path, a.kind, a.format, a.metadata_status, a.error FROM assets a "
                    f"WHERE a.metadata_status != 'parsed' AND NOT ({RUNNER_RECORDED}) ORDER BY a.id"
                    + (" LIMIT ?" if limit else ""), [limit] if limit else [])
    left_out = cat.rows(f"SELECT count(*) AS n FROM assets a WHERE a.metadata_status != 'parsed' AND "
                        f"({RUNNER_RECORDED})")[0]["n"]
    for row in rows:
        row["abs_path"] = str(cat.abspath(row["path"]))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        _plain(row["abs_path"])
        _plain(f"    {row['metadata_status']}: {row['error'] or 'no reason recorded'}")
    _plain(f"{len(rows)} files unparsed or in error" if rows else "no problems: every file's metadata was read")
    if left_out:
        _plain(f"({left_out} capture clips and outputs without EXIF left out: the runner recorded their settings)")


def _show_listing(cat, limit: int, as_json: bool) -> None:
    sessions = cat.sessions()
    rows = cat.rows(
        "SELECT a.id, a.path, a.kind, a.metadata_status, a.error, e.make, e.model, e.f_number, e.exposure_text, "
        "e.iso FROM assets a LEFT JOIN exif e ON e.asset_id = a.id ORDER BY a.id DESC LIMIT ?", (limit,))
    if as_json:
        for s in sessions:
            s["progress"] = cat.progress(s["id"])
        print(json.dumps({"sessions": sessions[-limit:], "files": rows}, indent=2, default=str))
        return
    if sessions:
        table = Table(title="sessions", header_style="bold")
        for col in ("id", "name", "mode", "status", "operator", "points done"):
            table.add_column(col)
        for s in sessions[-limit:]:
            p = cat.progress(s["id"])
            table.add_row(str(s["id"]), escape(s["name"]), s["mode"], s["status"], escape(s["operator"] or ""),
                          f"{p['done']}/{p['total']}")
        console.print(table)
    table = Table(title=f"files (newest {len(rows)}; --problems for full paths of the broken ones)",
                  header_style="bold")
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


def _show_asset(cat, ref: str, with_tags: bool, as_json: bool) -> None:
    row = cat.find_asset(ref)
    if row is None:
        fail(f"no file {ref!r} in {cat.path}: give an asset id, a sha256 prefix or a path "
             "(`cinectrl catalog show` lists them)")
    exif = cat.exif(row["id"])
    settings = cat.settings(row["id"])
    slider = cat.rows("SELECT * FROM slider_positions WHERE asset_id = ?", (row["id"],))
    if as_json:
        record = {**row, "abs_path": str(cat.abspath(row["path"])), "settings": settings,
                  "slider": slider[0] if slider else None, "metadata": None}
        if exif:
            record["metadata"] = {k: v for k, v in exif.items() if k not in ("asset_id", "tags_json")}
            if with_tags:
                record["tags"] = json.loads(exif["tags_json"])
        print(json.dumps(record, indent=2, default=str))
        return
    console.print(f"[bold]asset {row['id']}[/]: {escape(str(cat.abspath(row['path'])))}", highlight=False,
                  soft_wrap=True)
    for key in ("path", "sha256", "bytes", "kind", "format", "width", "height", "frames", "fps", "session_id",
                "point_id", "frame_index", "metadata_status", "metadata_source", "error"):
        if row[key] is not None:
            _plain(f"  {key}: {row[key]}")
    if exif:
        console.print("[bold]metadata[/]")
        for key, value in exif.items():
            if key not in ("asset_id", "tags_json") and value is not None:
                _plain(f"  {key}: {value}")
    if settings:
        table = Table(title="settings", header_style="bold")
        for col in ("role", "requested", "read back", "EXIF"):
            table.add_column(col)
        for role, s in settings.items():
            table.add_row(role, escape(s["requested_text"] or ""), escape(s["readback_text"] or ""),
                          escape(s["exif_text"] or ""))
        console.print(table)
    if slider:
        _plain(f"slider: target {slider[0]['target_mm']} mm, read back {slider[0]['position_mm']} mm")
    if with_tags and exif:
        console.print("[bold]tags[/]")
        for key, value in sorted(json.loads(exif["tags_json"]).items()):
            _plain(f"  {key}: {str(value)[:200]}")


def _export_dataset(catalog: Optional[Path], output: Optional[Path], max_shard_mb: float,
                    include_unreviewed: bool) -> None:
    from train.shards import ShardError, export_dataset
    if output is None:
        fail(f"--what {DATASET}: give --output DIR (a new folder for the shards and manifest.json)")
    path = resolve_catalog(catalog)
    if not path.is_file():
        fail(f"catalog {path} not found (give --catalog)")
    try:
        manifest = export_dataset(path, output, reviewed_only=not include_unreviewed,
                                  max_shard_bytes=int(max_shard_mb * 1024 * 1024))
    except ShardError as exc:
        fail(str(exc))
    size = sum(s["bytes"] for s in manifest["shards"])
    _plain(f"{manifest['pairs']} pairs in {len(manifest['shards'])} shard(s), {size / 1e6:.1f} MB -> {output} "
           f"(manifest.json; {len(manifest['left_out'])} pair(s) left out)")


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    webdataset = "webdataset"


DATASET = "dataset"      # the training pairs as WebDataset shards (train/shards.py), not a flat record export
ExportWhat = Enum("ExportWhat", {**{name: name for name in EXPORTS}, DATASET: DATASET}, type=str)


@app.command("export")
def export(
    catalog: Optional[Path] = CatalogOption,
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl or csv."),
    what: ExportWhat = typer.Option("assets", "--what",
                                    help=", ".join(f"{e.name} (one record per {e.one_record_per})"
                                                   for e in EXPORTS.values())
                                    + f", {DATASET} (the training pairs as shards; --format webdataset)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout ('-': "
                                          "stdout; a folder for --what dataset). The reviews export (e-mails, "
                                          "notes) is made readable by you only.", show_default=False),
    schema: bool = typer.Option(False, "--schema", help="Print the fields (name, type, unit, meaning) and exit."),
    max_shard_mb: float = typer.Option(1024.0, "--max-shard-mb", help="--what dataset: bytes per shard at most."),
    include_unreviewed: bool = typer.Option(False, "--include-unreviewed", help="--what dataset: also pairs not "
                                            "reviewed yet whose QC passed (as [data] reviewed_only = false)."),
) -> None:
    """Flat records for pandas / spreadsheets: absolute paths, one column per setting, control and delta,
    booleans as true/false, absent values empty (CSV) or null (JSONL). docs/catalog.md lists every field.
    `--what dataset --format webdataset --output DIR`: the training pairs as tar shards + manifest.json."""
    from capture.export import schema_markdown

    if (what.value == DATASET) != (fmt is ExportFormat.webdataset):
        fail(f"--what {what.value} --format {fmt.value}: the webdataset format is for --what {DATASET} only, and "
             f"--what {DATASET} needs --format webdataset")
    if what.value == DATASET:
        _export_dataset(catalog, output, max_shard_mb, include_unreviewed)
        return
    spec = EXPORTS[what.value]
    if schema:
        print(schema_markdown(spec))
        return
    cat = _open(catalog)
    names = spec.names
    if output is not None and str(output) == "-":
        output = None
    private = what.value == "reviews"   # people's e-mails and notes: not for every account on the machine
    try:
        out = open(output, "w", newline="", encoding="utf-8",
                   opener=(lambda p, f: os.open(p, f, 0o600)) if private else None) if output else sys.stdout
        if private and output:
            os.chmod(output, 0o600)   # an older file of that name keeps no wider mode
    except OSError as exc:
        cat.close()
        fail(f"cannot write {output}: {exc.strerror}")
    n = 0
    try:
        if fmt is ExportFormat.jsonl:
            for record in spec.records(cat):
                out.write(json.dumps({k: record.get(k) for k in names}) + "\n")
                n += 1
        else:
            writer = csv.writer(out)
            writer.writerow(names)
            for record in spec.records(cat):
                writer.writerow([_cell(record.get(k)) for k in names])
                n += 1
    except BrokenPipeError:
        # the reader (head, less) stopped early: that is not an error; keep Python quiet at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        cat.close()
        if output:
            out.close()
    if output:
        err_console.print(f"{n} {spec.name} -> {output}", highlight=False, markup=False)


def _cell(value: Any) -> Any:
    """A CSV cell: None empty, booleans true/false (as in the JSONL), everything else as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@app.command("merge")
def merge(
    other: Path = typer.Argument(..., help="Another station's catalog file.", show_default=False),
    catalog: Optional[Path] = CatalogOption,
    init: bool = InitOption,
    copy_files: bool = typer.Option(False, "--copy-files",
                                    help="Copy its files under stations/<station>/ here (default: reference them)."),
) -> None:
    """Bring another station's sessions, ledger, files, clips, pairs and reviews into this catalog.

    Idempotent: merging again adds nothing. Both catalogs must be at the same schema version."""
    from capture.catalog import CatalogError
    from capture.merge import merge_catalog

    cat = _open(catalog, readonly=False, create=True, path=catalog_to_write(catalog, init=init))
    try:
        summary = merge_catalog(cat, other, copy_files=copy_files)
    except (CatalogError, OSError) as exc:
        fail(str(exc))
    finally:
        cat.close()
    for line in summary.skipped[:10]:
        _plain(f"  skipped: {line}")
    _plain(summary.line())


@app.command("upgrade")
def upgrade(catalog: Optional[Path] = CatalogOption) -> None:
    """Bring a catalog written by an older cinectrl to this one's schema (reading commands never do)."""
    from capture.schema import SCHEMA_VERSION

    cat = _open(catalog, readonly=False, create=False)
    before = cat.upgraded_from
    cat.close()
    if before is None:
        _plain(f"{cat.path}: already at schema version {SCHEMA_VERSION}; nothing to do")
    else:
        what = f"from schema version {before}" if before < SCHEMA_VERSION else "by the migration(s) it had skipped"
        _plain(f"{cat.path}: upgraded {what} to {SCHEMA_VERSION}")
