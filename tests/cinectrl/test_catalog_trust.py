"""A catalog you can trust: reading commands never change it (even on a read-only mount), another application's
SQLite file is refused untouched, a --catalog in a folder that does not exist is refused unless --init, and
ingest skips what is not camera media and says in its exit status whether any file is broken."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import piexif
import pytest
from PIL import Image
from typer.testing import CliRunner

from capture.catalog import Catalog
from capture.schema import MIGRATIONS, SCHEMA_VERSION
from cinectrl.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
READERS = (["stats"], ["stats", "--json"], ["show"], ["show", "--problems"], ["show", "1"],
           ["export"], ["export", "--what", "pairs", "--format", "csv"])


def _jpeg(path: Path, make: bytes | None = b"Canon", model: bytes | None = b"Canon EOS R5") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    zeroth = {k: v for k, v in ((piexif.ImageIFD.Make, make), (piexif.ImageIFD.Model, model)) if v}
    exif = piexif.dump({"0th": zeroth, "Exif": {piexif.ExifIFD.FNumber: (28, 10), piexif.ExifIFD.ExposureTime: (1, 60),
                                                piexif.ExifIFD.ISOSpeedRatings: 200}})
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (len(path.name) * 9 % 256, 40, 90)).save(buf, format="JPEG", exif=exif)
    path.write_bytes(buf.getvalue())
    return path


def _state(folder: Path) -> dict[str, str]:
    """Every file in the folder with the hash of its bytes: what 'untouched' means. A reader of a WAL database
    in a writable folder may leave SQLite's shared-memory index (-shm) and an empty -wal behind, as every
    SQLite reader does (datasette, the sqlite3 shell): those hold no data and are not counted."""
    out = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.endswith("-shm") or (p.name.endswith("-wal") and p.stat().st_size == 0):
            continue
        out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def lab(tmp_path):
    db = tmp_path / "lab" / "catalog.db"
    _jpeg(tmp_path / "lab" / "card" / "a.jpg")
    (tmp_path / "lab" / "card" / "b.jpg").write_bytes(b"")      # a broken camera file: an error row
    result = runner.invoke(app, ["catalog", "ingest", str(tmp_path / "lab" / "card"), "--catalog", str(db), "--init"])
    assert result.exit_code == 3, result.output
    return db


# ------------------------------------------------------------------------------------------------ read-only

@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_reading_commands_change_nothing(lab, args):
    before = _state(lab.parent)
    result = runner.invoke(app, ["catalog", *args, "--catalog", str(lab)])
    assert result.exit_code == 0, result.output
    assert _state(lab.parent) == before            # no byte changed, no -wal / -shm created


def _readonly_mount_supported() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.timeout(120)
def test_reading_commands_work_on_a_read_only_file_system(lab, tmp_path):
    """The lab folder bind-mounted read-only (a user namespace: a real EROFS, as on a read-only NFS export):
    stats, show and export read the catalog; before, SQLite could not create its -shm file and the valid
    catalog was called 'not a cinectrl catalog'."""
    if not _readonly_mount_supported():
        pytest.skip("this kernel allows no unprivileged mount namespace (unshare -rm): no read-only mount here")
    mount = tmp_path / "ro"
    mount.mkdir()
    before = _state(lab.parent)
    db = mount / "catalog.db"
    script = (f"mount --bind -o ro {lab.parent} {mount} && touch {mount}/probe 2>/dev/null && exit 9; "
              f"for args in 'stats' 'show --problems --json' 'export --format csv'; do "
              f"{sys.executable} -m cinectrl.main catalog $args --catalog {db} || exit $?; done; "
              f"{sys.executable} -m cinectrl.main catalog ingest {lab.parent / 'card'} --catalog {db}; "
              f"test $? -eq 1 || exit 8")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not a cinectrl catalog" not in proc.stdout + proc.stderr
    assert "cannot write to catalog" in proc.stderr and "read-only" in proc.stderr     # a writer says why
    assert "files: 2" in proc.stdout and '"metadata_status": "error"' in proc.stdout
    assert "a.jpg" in proc.stdout.splitlines()[-1] or "card/a.jpg" in proc.stdout
    assert _state(lab.parent) == before


def test_an_older_catalog_is_read_only_after_an_explicit_upgrade(tmp_path):
    """A catalog exactly as the previous schema version left it: reading commands refuse it untouched and
    name the upgrade command; `catalog upgrade` migrates it; then they read it."""
    lab = tmp_path / "old" / "catalog.db"
    lab.parent.mkdir()
    older = MIGRATIONS[:-1]
    conn = sqlite3.connect(lab)
    for migration in older:
        conn.executescript(migration.sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.description))
    conn.execute("INSERT INTO catalog_info VALUES ('station_id', 'old')")
    conn.execute(f"PRAGMA user_version = {older[-1].version}")
    conn.commit()
    conn.close()
    before = _state(lab.parent)
    for args in READERS:
        result = runner.invoke(app, ["catalog", *args, "--catalog", str(lab)])
        assert result.exit_code == 1 and "cinectrl catalog upgrade" in result.output, args
    assert _state(lab.parent) == before
    result = runner.invoke(app, ["catalog", "upgrade", "--catalog", str(lab)])
    assert result.exit_code == 0 and f"upgraded from schema version {older[-1].version}" in result.output
    result = runner.invoke(app, ["catalog", "stats", "--catalog", str(lab), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["schema_version"] == SCHEMA_VERSION
    assert "already at schema version" in runner.invoke(app, ["catalog", "upgrade", "--catalog", str(lab)]).output


# ------------------------------------------------------------------------------------------------ foreign files

@pytest.fixture
def foreign(tmp_path):
    """Another application's SQLite database."""
    path = tmp_path / "other" / "app.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ana')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("args", [*READERS, ["ingest", "CARD"], ["merge", "OTHER"], ["upgrade"]], ids=" ".join)
def test_a_sqlite_file_that_is_not_a_catalog_is_refused_untouched(foreign, lab, args):
    args = [str(lab.parent / "card") if a == "CARD" else str(lab) if a == "OTHER" else a for a in args]
    before = _state(foreign.parent)
    result = runner.invoke(app, ["catalog", *args, "--catalog", str(foreign)])
    assert result.exit_code == 1, result.output
    assert "not a cinectrl catalog" in result.output and "users" in result.output
    assert "Traceback" not in result.output
    assert _state(foreign.parent) == before
    assert [r[0] for r in sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master")] == ["users"]


def test_merging_from_a_foreign_file_is_refused_and_changes_nothing(foreign, lab):
    before = _state(lab.parent), _state(foreign.parent)
    result = runner.invoke(app, ["catalog", "merge", str(foreign), "--catalog", str(lab)])
    assert result.exit_code == 1 and "cannot merge" in result.output and "not a cinectrl catalog" in result.output
    assert (_state(lab.parent), _state(foreign.parent)) == before


def test_the_api_refuses_a_foreign_file_in_every_mode(foreign):
    from capture.catalog import CatalogError

    before = foreign.read_bytes()
    for kwargs in ({}, {"create": False}, {"readonly": True}):
        with pytest.raises(CatalogError, match="not a cinectrl catalog.*users"):
            Catalog(foreign, **kwargs)
    assert foreign.read_bytes() == before


# ------------------------------------------------------------------------------------------------ folders

def test_a_catalog_in_a_missing_folder_is_refused_unless_init(tmp_path):
    card = _jpeg(tmp_path / "card" / "a.jpg").parent
    typo = tmp_path / "nope" / "deeper" / "catalog.db"
    result = runner.invoke(app, ["catalog", "ingest", str(card), "--catalog", str(typo)])
    assert result.exit_code == 1 and "does not exist" in result.output and "--init" in result.output
    assert not (tmp_path / "nope").exists()                     # no folder, no second lab
    result = runner.invoke(app, ["catalog", "ingest", str(card), "--catalog", str(typo), "--init"])
    assert result.exit_code == 0, result.output
    assert Catalog(typo, readonly=True).counts()["assets"] == 1
    for command in (["stats"], ["show"], ["export"]):
        result = runner.invoke(app, ["catalog", *command, "--catalog", str(tmp_path / "gone" / "catalog.db")])
        assert result.exit_code == 1 and "no catalog at" in result.output
    assert not (tmp_path / "gone").exists()


def test_the_default_lab_catalog_is_created_with_its_folder(tmp_path, monkeypatch):
    """The README's first command needs no --init: ./lab/catalog.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CINECTRL_CATALOG", raising=False)
    card = _jpeg(tmp_path / "card" / "a.jpg").parent
    result = runner.invoke(app, ["catalog", "ingest", str(card)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lab" / "catalog.db").is_file()


# ------------------------------------------------------------------------------------------------ ingest

def test_non_media_files_are_skipped_and_counted_and_the_exit_status_tells_errors(tmp_path):
    session = tmp_path / "sessions" / "0001-desk"
    _jpeg(session / "frames" / "f0000.jpg")
    (session / "report.html").write_text("<html><body>report</body></html>")
    (session / "README.md").write_text("# notes\n")
    (session / "frames" / "f0000.json").write_text('{"aperture": "f/2.8"}')
    (session / "frames" / "f0000.depth.npz").write_bytes(b"PK\x03\x04" + bytes(64))
    db = tmp_path / "catalog.db"
    result = runner.invoke(app, ["catalog", "ingest", str(tmp_path / "sessions"), "--catalog", str(db)])
    assert result.exit_code == 0, result.output                         # skipped files are no errors
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("1 ok, 0 unparsed, 0 errors, 4 skipped (not camera media) (5 files)"), last
    assert "skipped 4 files that are not camera media" in result.output and "report.html" in result.output
    assert [a["path"] for a in Catalog(db, readonly=True).assets()] == ["sessions/0001-desk/frames/f0000.jpg"]
    # a camera file that is broken is an error row, and the status says so; a JPEG-named random file too
    (session / "frames" / "f0001.jpg").write_bytes(os.urandom(2048))
    (session / "IMG_0002").write_bytes(b"\xff\xd8\xff\xe0" + bytes(40))      # no extension, JPEG bytes, cut
    result = runner.invoke(app, ["catalog", "ingest", str(tmp_path / "sessions"), "--catalog", str(db)])
    assert result.exit_code == 3, result.output
    assert "0 ok, 0 unparsed, 2 errors, 1 already catalogued, 4 skipped" in result.output


def test_show_problems_prints_each_full_path_on_its_own_line(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-from-a-card-reader-" * 3) / "DCIM" / "100CANON"
    broken = [deep / f"IMG_{i:04d}_with_a_long_descriptive_name_that_used_to_be_cut_off.jpg" for i in range(3)]
    for path in broken:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff" + path.name.encode())          # cut short, each different
    _jpeg(deep / "IMG_9999.jpg")
    db = tmp_path / "catalog.db"
    assert runner.invoke(app, ["catalog", "ingest", str(tmp_path), "--catalog", str(db)]).exit_code == 3
    for columns in ("80", "160"):
        result = CliRunner(env={"COLUMNS": columns}).invoke(app, ["catalog", "show", "--problems", "--catalog",
                                                                  str(db)])
        assert result.exit_code == 0
        lines = result.output.splitlines()
        for path in broken:
            assert str(path) in lines, (columns, result.output)          # whole, on a line of its own
        assert "IMG_9999.jpg" not in result.output
    result = runner.invoke(app, ["catalog", "show", "--problems", "--json", "--catalog", str(db)])
    records = json.loads(result.output)
    assert sorted(r["abs_path"] for r in records) == sorted(map(str, broken))
    assert all(r["metadata_status"] == "error" and r["error"] for r in records)


def test_stats_says_unknown_for_a_missing_make_or_model(tmp_path):
    _jpeg(tmp_path / "in" / "a.jpg")                                      # Canon / Canon EOS R5
    _jpeg(tmp_path / "in" / "b.jpg", make=None, model=None)
    _jpeg(tmp_path / "in" / "c.jpg", make=b"Sigma", model=None)
    db = tmp_path / "catalog.db"
    assert runner.invoke(app, ["catalog", "ingest", str(tmp_path / "in"), "--catalog", str(db)]).exit_code == 0
    cameras = json.loads(runner.invoke(app, ["catalog", "stats", "--json", "--catalog", str(db)]).output)["cameras"]
    assert cameras == {"Canon EOS R5": 1, "unknown": 1, "Sigma (model unknown)": 1}
    result = runner.invoke(app, ["catalog", "stats", "--catalog", str(db)])
    assert "?" not in result.output and "unknown 1" in result.output


def test_catalog_migrations_are_numbered_forward():
    assert [m.version for m in MIGRATIONS] == sorted({m.version for m in MIGRATIONS})


def _open_handles(path: Path) -> int:
    """This process's file descriptors on `path` (Linux /proc)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


def test_a_refused_open_leaves_no_connection_behind(foreign, tmp_path, future_catalog):
    """A long-lived process (the server, a notebook) that is refused a catalog keeps no handle on the file:
    neither a foreign database (refused before writing) nor a newer release's catalog (refused while migrating)."""
    from capture.catalog import CatalogError, CatalogVersionError

    newer = future_catalog(tmp_path / "newer.db", 1)
    for path, error in ((foreign, CatalogError), (newer, CatalogVersionError)):
        with pytest.raises(error) as refused:
            Catalog(path)
        assert _open_handles(path) == 0, (path, refused.value)
