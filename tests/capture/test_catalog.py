"""The catalog: schema, transactions, migrations, concurrent readers, crash consistency."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import piexif
import pytest
from PIL import Image

from capture.catalog import Catalog, CatalogError, CatalogVersionError, setting_number
from capture.schema import MIGRATIONS, SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]


def _session_with_points(cat: Catalog, n: int = 3) -> tuple[int, list[int]]:
    with cat.transaction():
        sid = cat.create_session("t", scene="desk", operator="pytest", mode="stills", plan_toml="[session]\n")
        cat.add_points(sid, [{"ordinal": i, "combination_key": f"c{i % 2}", "frame_index": i,
                              "settings": {"aperture": "f/2.8"}, "slider_target_mm": 10.0 * i} for i in range(n)])
    return sid, [cat.point_id(sid, i) for i in range(n)]


def test_new_catalog_is_wal_with_foreign_keys_and_current_version(tmp_path):
    cat = Catalog(tmp_path / "lab" / "catalog.db")
    assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert cat.schema_version == SCHEMA_VERSION
    assert [r["version"] for r in cat.rows("SELECT version FROM schema_migrations")] == \
        [m.version for m in MIGRATIONS]
    assert cat.station_id and len(cat.station_id) == 12
    indexes = {r["name"] for r in cat.rows("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"pairs_by_session", "assets_by_point", "reviews_by_pair"} <= indexes
    with pytest.raises(sqlite3.IntegrityError):   # foreign keys are enforced
        cat.add_asset(tmp_path / "x.jpg", sha256="00", bytes=1, point_id=999)


def test_frame_row_set_commits_together_or_not_at_all(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    sid, (pid, *_) = _session_with_points(cat)
    with pytest.raises(RuntimeError):
        with cat.transaction():
            aid = cat.add_asset(tmp_path / "a.jpg", sha256="aa", bytes=3, session_id=sid, point_id=pid)
            cat.set_settings(aid, requested={"aperture": "f/2.8"}, readback={"aperture": "f/2.8"})
            cat.set_slider(aid, target_mm=0.0, position_mm=0.004)
            cat.mark_point(pid, "done")
            raise RuntimeError("camera unplugged")
    assert cat.counts()["assets"] == 0 and cat.counts()["slider_positions"] == 0
    assert cat.points(sid)[0]["status"] == "pending"
    with cat.transaction():
        aid = cat.add_asset(tmp_path / "a.jpg", sha256="aa", bytes=3, session_id=sid, point_id=pid, frame_index=0)
        cat.set_settings(aid, requested={"aperture": "f/2.8", "shutter": "1/400", "focus": "1.5"},
                         readback={"aperture": "f/2.8", "shutter": "1/400"})
        cat.set_slider(aid, target_mm=0.0, position_mm=0.004)
        cat.mark_point(pid, "done")
    other = Catalog(tmp_path / "catalog.db")     # a second connection sees the committed frame
    assert other.points(sid)[0]["status"] == "done"
    s = other.settings(aid)
    assert s["shutter"]["requested_value"] == pytest.approx(0.0025) and s["focus"]["requested_value"] == 1.5
    assert other.assets(point_id=pid)[0]["path"] == "a.jpg"


def test_sqlite_utils_writes_stay_inside_the_open_transaction(tmp_path):
    """The helpers write through sqlite-utils (insert, lookup, update): inside `transaction()` none of them
    may commit on its own, or a crash would leave half a session behind."""
    cat = Catalog(tmp_path / "catalog.db")
    before = cat.counts()
    with pytest.raises(RuntimeError):
        with cat.transaction():
            sid = cat.create_session("s", scene="desk")
            cat.add_points(sid, [{"ordinal": 0, "settings": {"aperture": "f/2"}}])
            cat.link_device(sid, cat.add_device("camera", make="Canon", model="R5"), "camera")
            a = cat.add_asset(tmp_path / "a.mp4", sha256="a", bytes=1, kind="clip", session_id=sid)
            clip = cat.add_clip(sid, "c000", asset_id=a, fps=6)
            pair = cat.add_pair(sid, clip, clip, deltas={"aperture_stops": 1.0})
            cat.set_pair_state(pair, review_state="accepted", train_ready=True)
            cat.add_review(pair, annotator="ana", verdict="accept", external_id="ls-1")
            cat.start_training_run("run", config={}, pair_ids=[pair])
            raise RuntimeError("power cut")
    other = Catalog(tmp_path / "catalog.db", readonly=True)
    assert other.counts() == before and other.db["devices"].count == 0


def test_nested_transaction_rolls_back_only_the_inner_block(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    with cat.transaction():
        cat.add_asset(tmp_path / "a", sha256="a1", bytes=1)
        with pytest.raises(sqlite3.IntegrityError):
            with cat.transaction():
                cat.add_asset(tmp_path / "b", sha256="b1", bytes=1)
                cat.add_asset(tmp_path / "c", sha256="a1", bytes=1)   # duplicate sha256
    assert [r["sha256"] for r in cat.assets()] == ["a1"]


def test_fast_commits_skip_fsync_inside_and_restore_durability_after(tmp_path):
    """Bulk ingests commit every batch without an fsync; the catalog is back to synced commits afterwards,
    and what was committed inside is there for a fresh connection."""
    cat = Catalog(tmp_path / "catalog.db")
    assert cat.conn.execute("PRAGMA synchronous").fetchone()[0] == 2            # FULL
    with cat.fast_commits():
        assert cat.conn.execute("PRAGMA synchronous").fetchone()[0] == 1        # NORMAL
        for i in range(3):
            with cat.transaction():
                cat.add_asset(tmp_path / f"f{i}.jpg", sha256=f"s{i}", bytes=1)
    assert cat.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    other = sqlite3.connect(tmp_path / "catalog.db")
    assert other.execute("SELECT count(*) FROM assets").fetchone()[0] == 3
    other.close()
    with pytest.raises(RuntimeError), cat.fast_commits():                       # restored on errors too
        raise RuntimeError("boom")
    assert cat.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    cat.close()
    relaxed = Catalog(tmp_path / "relaxed.db", durable=False)
    with relaxed.fast_commits():
        pass
    assert relaxed.conn.execute("PRAGMA synchronous").fetchone()[0] == 1        # never made stricter
    relaxed.close()


def test_ledger_points_attempts_and_progress(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    sid, pids = _session_with_points(cat, 4)
    cat.set_session_status(sid, "running")
    cat.mark_point(pids[0], "running")
    cat.mark_point(pids[0], "failed", error="CameraBusy: busy")
    cat.mark_point(pids[0], "running")
    cat.mark_point(pids[0], "done")
    cat.mark_point(pids[1], "running")
    assert cat.reset_interrupted(sid) == 1
    first = cat.points(sid)[0]
    assert first["attempts"] == 2 and first["error"] is None and first["status"] == "done"
    assert cat.progress(sid) == {"pending": 3, "running": 0, "done": 1, "failed": 0, "total": 4}
    cat.set_session_status(sid, "done")
    session = cat.session(sid)
    assert session["started_at"] and session["stopped_at"] and session["plan_sha256"]
    with pytest.raises(sqlite3.IntegrityError):       # (session_id, ordinal) is unique
        cat.add_points(sid, [{"ordinal": 0}])
    with pytest.raises(ValueError):
        cat.set_session_status(sid, "finished")


def test_devices_clips_pairs_reviews_training_runs(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    sid, _ = _session_with_points(cat)
    cam = cat.add_device("camera", make="Canon", model="EOS R5", serial="012")
    assert cat.add_device("camera", make="Canon", model="EOS R5", serial="012") == cam
    cat.link_device(sid, cam, "camera")
    assert cat.session_devices(sid)[0]["model"] == "EOS R5"
    clip_a = cat.add_asset(tmp_path / "c0.mp4", sha256="c0", bytes=9, kind="clip")
    clip_b = cat.add_asset(tmp_path / "c1.mp4", sha256="c1", bytes=9, kind="clip")
    ref = cat.add_clip(sid, "c0", asset_id=clip_a, frames=24, fps=24, settings={"aperture": "f/2.8"})
    oth = cat.add_clip(sid, "c1", asset_id=clip_b, frames=24, fps=24, settings={"aperture": "f/8"})
    pair = cat.add_pair(sid, ref, oth, deltas={"stops": 3}, controls={"K": 0.35}, qc={"ssim": 0.9})
    cat.set_pair_state(pair, review_state="accepted", train_ready=True)
    assert cat.add_pair(sid, ref, oth, qc={"ssim": 0.95}) == pair       # idempotent; state kept
    (row,) = cat.pairs(session_id=sid)
    assert row["reference_path"] == "c0.mp4" and row["other_settings"] == {"aperture": "f/8"}
    assert row["qc"] == {"ssim": 0.95} and row["train_ready"] is True and row["review_state"] == "accepted"
    rid, created = cat.add_review(pair, annotator="ana", verdict="accept", defects=[[3, 5]], external_id="ls:17")
    again, created_again = cat.add_review(pair, annotator="ana", verdict="reject", external_id="ls:17")
    assert created and not created_again and rid == again
    assert [r["verdict"] for r in cat.reviews(pair)] == ["reject"]
    run = cat.start_training_run("ft", config={"lr": 1e-4}, code_version="abc", pair_ids={pair: "val"})
    cat.update_training_run(run, metrics={"loss": 0.5})
    cat.update_training_run(run, status="done", metrics={"psnr": 30}, checkpoints=["ckpt/1"])
    tr = cat.training_run(run)
    assert tr["metrics"] == {"loss": 0.5, "psnr": 30} and tr["finished_at"] and tr["pairs"] == {pair: "val"}


def test_setting_numbers():
    assert setting_number("aperture", "f/5.6") == 5.6
    assert setting_number("shutter", "1/400") == pytest.approx(0.0025)
    assert setting_number("kelvin", "5600K") == 5600
    assert setting_number("white_balance", "Daylight") is None
    assert setting_number("iso", "Auto") is None


# ------------------------------------------------------------------------------------------------ migrations

def _version_one_catalog(path: Path) -> None:
    """A file exactly as version 1 of the schema left it, with a row in it."""
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0].sql)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'v1', 0)")
    conn.execute("INSERT INTO catalog_info VALUES ('station_id', 'oldstation01')")
    conn.execute("INSERT INTO assets (path, sha256, bytes, kind, metadata_status, created_at, updated_at) "
                 "VALUES ('old.jpg', 'ab', 1, 'still', 'parsed', 0, 0), ('old.cr3', 'cd', 1, 'raw', 'parsed', 0, 0)")
    conn.execute("INSERT INTO exif (asset_id, source, f_number, exposure_s, iso, iso_source, tags_json) "
                 "VALUES (1, 'exifread', 2.8, NULL, 6400, 'RecommendedExposureIndex', '{}'), "
                 "(2, 'exiftool', NULL, 0.01, 100, 'ISO', '{}')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_older_catalog_is_upgraded_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    _version_one_catalog(path)
    cat = Catalog(path)
    assert cat.schema_version == SCHEMA_VERSION
    assert cat.station_id == "oldstation01"
    assert cat.asset_by_sha256("ab")["path"] == "old.jpg"
    assert "pairs" in cat.db.table_names() and "reviews" in cat.db.table_names()
    assert [r["version"] for r in cat.rows("SELECT version FROM schema_migrations ORDER BY 1")] == \
        [m.version for m in MIGRATIONS]
    assert cat.integrity_check() == "ok"
    # v3: each exposure field's source as reader:tag, filled from what the older code did
    sources = [(r["f_number_source"], r["exposure_source"], r["iso_source"]) for r in
               cat.rows("SELECT * FROM exif ORDER BY asset_id")]
    assert sources == [("exifread:EXIF FNumber", None, "exifread:EXIF RecommendedExposureIndex"),
                       (None, "exiftool:ExposureTime", "exiftool:ISO")]


def test_newer_catalog_is_refused_and_left_untouched(tmp_path, future_catalog):
    path = future_catalog(tmp_path / "future.db", 1)
    before = path.read_bytes()
    with pytest.raises(CatalogVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*upgrade cinectrl"):
        Catalog(path)
    assert path.read_bytes() == before


def test_not_a_catalog_and_missing_catalog_are_clear_errors(tmp_path):
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CatalogError, match="not a cinectrl catalog"):
        Catalog(junk)
    with pytest.raises(CatalogError, match="no catalog at"):
        Catalog(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    with pytest.raises(CatalogError, match="is a folder"):
        Catalog(tmp_path)


def test_a_catalog_created_by_another_process_mid_check_is_not_called_foreign(tmp_path):
    """Two `capture run`s starting a new catalog at the same instant: the second's "is this a catalog?" check
    reads the schema version and the table list, and the first commits its migrations in between. Read apart,
    that looked like another application's database (version 0, tables present) and the second run was
    refused; read in one snapshot, it sees either the empty file or the finished catalog."""
    import threading
    from capture.catalog_file import check_is_catalog, connect

    path = tmp_path / "lab" / "catalog.db"
    path.parent.mkdir()
    path.touch()
    created = threading.Event()

    def create() -> None:
        Catalog(path).close()
        created.set()

    class OtherProcessCommitsBetweenReads:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn, self.reads = conn, 0

        def execute(self, sql: str, *args):
            cursor = self.conn.execute(sql, *args)
            if sql.startswith(("PRAGMA user_version", "SELECT")):
                self.reads += 1
                if self.reads == 1:
                    rows = cursor.fetchall()
                    threading.Thread(target=create, daemon=True).start()
                    created.wait(1.0)             # the creator is done here unless this check holds its snapshot
                    return iter(rows) if sql.startswith("SELECT") else _Rows(rows)
            return cursor

    class _Rows(list):
        def fetchone(self):
            return self[0]

    conn = connect(path)
    try:
        assert check_is_catalog(OtherProcessCommitsBetweenReads(conn), path) is True
    finally:
        conn.close()
    assert created.wait(40)                        # and the creator finished once the check let go
    Catalog(path).close()


def test_a_new_catalog_being_written_by_another_process_is_waited_for_not_refused(tmp_path):
    """While another process holds the write lock of a file that is not yet in WAL mode (a `capture run` creating
    the catalog), SQLite answers the switch to WAL "database is locked" at once, without its busy timeout; this
    made the second of two simultaneous runs fail instead of waiting its turn."""
    import threading
    from capture.catalog_file import connect

    path = tmp_path / "lab" / "catalog.db"
    path.parent.mkdir()
    path.touch()
    other = connect(path)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: other.execute("ROLLBACK")).start()
    try:
        with Catalog(path) as cat:
            assert cat.schema_version == SCHEMA_VERSION
    finally:
        time.sleep(0.6)
        other.close()


# ------------------------------------------------------------------------------------------------ processes

def _write_jpegs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"f{i:04d}.jpg"
        exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Test", piexif.ImageIFD.Model: f"M{i}".encode()},
                            "Exif": {piexif.ExifIFD.FNumber: (28, 10), piexif.ExifIFD.ExposureTime: (1, 100 + i)}})
        Image.new("RGB", (16, 16), (i % 256, 0, 0)).save(p, exif=exif)
        paths.append(p)
    return paths


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from capture.catalog import Catalog
    from capture.bulk import ingest_paths, expand_paths
    cat = Catalog(sys.argv[1])
    files = list(expand_paths([sys.argv[2]]))
    def slow(result):
        print(result.path.name, flush=True)
        time.sleep(float(sys.argv[3]))
    summary = ingest_paths(cat, files, batch=int(sys.argv[4]), on_file=slow)
    print("DONE", summary.line(), flush=True)
""")


def _writer(db: Path, folder: Path, delay: float, batch: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(folder), str(delay), str(batch)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.timeout(120)
def test_reader_browses_while_a_writer_holds_its_transaction(tmp_path):
    """A second process (as datasette would) reads committed rows while the writer is mid-transaction."""
    db = tmp_path / "catalog.db"
    _write_jpegs(tmp_path / "files", 3)
    cat = Catalog(db)
    cat.add_asset(tmp_path / "committed.jpg", sha256="c0", bytes=1)
    proc = _writer(db, tmp_path / "files", delay=30.0, batch=100)  # holds its write transaction open
    try:
        assert proc.stdout.readline().strip() == "f0000.jpg"       # first file written, not committed
        t0 = time.monotonic()
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        n = reader.execute("SELECT count(*) FROM assets").fetchone()[0]
        assert time.monotonic() - t0 < 1.0
        assert n == 1                                              # sees committed rows only
        reader.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.timeout(120)
def test_writer_commits_while_a_reader_holds_a_snapshot(tmp_path):
    """WAL: a browser holding a read transaction open neither blocks the session's commits nor sees half
    of them; after its transaction it sees everything."""
    db = tmp_path / "catalog.db"
    _write_jpegs(tmp_path / "files", 12)
    Catalog(db).close()
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM assets").fetchone()[0] == 0   # snapshot taken
    proc = _writer(db, tmp_path / "files", delay=0.0, batch=5)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "12 ok" in out
    assert reader.execute("SELECT count(*) FROM assets").fetchone()[0] == 0   # still its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM assets").fetchone()[0] == 12
    reader.close()


@pytest.mark.timeout(180)
def test_kill_9_mid_ingest_leaves_a_sound_catalog_and_a_rerun_completes(tmp_path):
    db = tmp_path / "catalog.db"
    files = _write_jpegs(tmp_path / "files", 40)
    Catalog(db).close()
    proc = _writer(db, tmp_path / "files", delay=0.02, batch=7)
    seen = 0
    for line in proc.stdout:
        seen += 1
        if seen == 25:          # mid-batch: three batches committed, the fourth in flight
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    cat = Catalog(db)
    assert cat.integrity_check() == "ok"
    committed = cat.counts()["assets"]
    assert committed % 7 == 0 and 0 < committed < 40            # whole batches, nothing half-written
    orphans = cat.rows("SELECT count(*) n FROM exif WHERE asset_id NOT IN (SELECT id FROM assets)")[0]["n"]
    assert orphans == 0
    assert cat.counts()["exif"] == committed
    cat.close()
    rerun = _writer(db, tmp_path / "files", delay=0.0, batch=7)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"{40 - committed} ok" in out and f"{committed} already catalogued" in out
    cat = Catalog(db)
    assert cat.counts()["assets"] == len(files) and cat.integrity_check() == "ok"


def test_a_migration_the_file_skipped_is_applied(tmp_path, gap_catalog):
    """A file written between the landing of two migrations numbered out of order (it has the last but not the
    one before) gets the one it lacks; reading commands ask for the upgrade instead of failing on a missing
    table."""
    from capture.catalog import Catalog, CatalogError
    path = gap_catalog(tmp_path / "gap.db")
    with pytest.raises(CatalogError, match="upgrade it once"):
        Catalog(path, readonly=True)
    with Catalog(path) as cat:
        assert [r["version"] for r in cat.rows("SELECT version FROM schema_migrations ORDER BY 1")] == \
            [m.version for m in MIGRATIONS]
        assert cat.upgraded_from == MIGRATIONS[-1].version and cat.schema_version == MIGRATIONS[-1].version
    Catalog(path, readonly=True).close()
