"""Opening a catalog file: a writable or a read-only SQLite connection, and the checks that run before anything
is written to it (is it a cinectrl catalog at all?), with SQLite's open errors turned into words.

`capture.catalog.Catalog` is the one caller; the rest of the toolkit opens catalogs through it.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from pathlib import Path


class CatalogError(Exception):
    """A catalog that cannot be used as asked; the message says which file, why, and what to do."""


class CatalogVersionError(CatalogError):
    """The file was written by a newer cinectrl than this one."""


def connect(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False,
                               cached_statements=256)
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot open catalog {path}: {exc}") from None


def use_write_ahead_log(conn: sqlite3.Connection, *, patience_s: float = 30.0) -> None:
    """Switch the file to WAL, waiting out a process that is creating or converting the same file.

    SQLite can answer this pragma "database is locked" at once, without its busy timeout, while another process
    is converting a new file to WAL (seen when two `capture run`s start a new catalog at the same instant). The
    switch is idempotent, so it is retried for as long as the connection's own timeout would have waited."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write. SQLite opens a WAL file read-only only if it can reach (or make) the
    -shm index beside it; where the folder cannot be written (a read-only mount, another user's lab) and no
    -wal is there, nothing can be changing the file, so it is opened immutable (no locks, no -shm)."""
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    wal = path.with_name(path.name + "-wal")
    writable_folder = os.access(path.parent, os.W_OK)
    if not writable_folder and not wal.exists():
        uri += "?immutable=1"
    else:
        uri += "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.DatabaseError as exc:
        if "unable to open" in str(exc) and not writable_folder:
            raise CatalogError(f"cannot read catalog {path}: its write-ahead log {wal.name} holds commits that were "
                               "never folded into the file, and the folder is read-only; open it once where it is "
                               "writable (any cinectrl command) to fold them in") from None
        raise CatalogError(open_problem(path, exc)) from None


def open_problem(path: Path, exc: sqlite3.DatabaseError) -> str:
    """What went wrong opening a catalog, in words, from what SQLite said."""
    said = str(exc)
    if "not a database" in said or "encrypted" in said or "malformed" in said:
        return (f"{path} is not a cinectrl catalog (SQLite said: {said}); pass the catalog's .db file with "
                "--catalog; it was left untouched")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)) \
            or "readonly" in said or "read-only" in said:
        return (f"cannot write to catalog {path}: the file or its folder is read-only (a read-only mount?); "
                "reading commands (catalog stats, show, export) work there, writing ones need it writable")
    if "locked" in said or "busy" in said:
        return f"catalog {path} is busy: another process holds its write lock (SQLite said: {said}); try again"
    return f"cannot open catalog {path} (SQLite said: {said})"


def check_is_catalog(conn: sqlite3.Connection, path: Path) -> bool:
    """Raise CatalogError unless the file is a cinectrl catalog or an empty database; True when empty.
    Reads only: runs before anything (even the journal mode) is written."""
    try:
        # One read transaction, so both answers come from the same snapshot: read apart, a process that creates
        # the catalog at the same instant can commit between them (version 0, tables present: "not a catalog").
        conn.execute("BEGIN")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        finally:
            conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise CatalogError(open_problem(path, exc)) from None
    if not tables and version == 0:
        return True
    if version < 1 or not {"catalog_info", "schema_migrations"} <= set(tables):
        shown = ", ".join(tables[:6]) + (", ..." if len(tables) > 6 else "")
        raise CatalogError(f"{path} is not a cinectrl catalog: it is another SQLite database (tables: "
                           f"{shown or 'none'}); pass the catalog's .db file with --catalog; it was left untouched")
    return False
