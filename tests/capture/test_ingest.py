"""Ingestion bookkeeping: idempotent by content, moved files recognised, the runner's one-file door."""

from __future__ import annotations

import shutil
from pathlib import Path

import piexif
import pytest
from PIL import Image

from capture.catalog import Catalog
from capture.bulk import expand_paths, ingest_paths
from capture.export import asset_records
from capture.ingest import DUPLICATE, KNOWN, MOVED, REPARSED, ingest_file


def _jpeg(path: Path, shade: int, f_number=(28, 10), exposure=(1, 125)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Sim", piexif.ImageIFD.Model: b"Cam"},
                        "Exif": {piexif.ExifIFD.FNumber: f_number, piexif.ExifIFD.ExposureTime: exposure,
                                 piexif.ExifIFD.ISOSpeedRatings: 400}})
    Image.new("RGB", (24, 16), ((shade * 37) % 256, 10, 10)).save(path, exif=exif)
    return path


@pytest.fixture
def lab(tmp_path):
    cat = Catalog(tmp_path / "lab" / "catalog.db")
    yield cat, tmp_path / "lab"
    cat.close()


def test_reingesting_adds_nothing(lab):
    cat, root = lab
    for i in range(5):
        _jpeg(root / "in" / f"{i}.jpg", i)
    first = ingest_paths(cat, expand_paths([root / "in"]))
    counts = cat.counts()
    second = ingest_paths(cat, expand_paths([root / "in"]))
    assert first.line().startswith("5 ok, 0 unparsed, 0 errors")
    assert second.counts == {KNOWN: 5} and cat.counts() == counts
    assert {r["path"] for r in cat.assets()} == {f"in/{i}.jpg" for i in range(5)}


def test_moved_file_is_recognised_and_a_copy_is_a_duplicate(lab):
    cat, root = lab
    original = _jpeg(root / "card" / "IMG_1.jpg", 7)
    ingest_paths(cat, [original])
    (aid,) = [r["id"] for r in cat.assets()]
    moved = root / "archive" / "2026" / "IMG_1.jpg"
    moved.parent.mkdir(parents=True)
    shutil.move(original, moved)
    summary = ingest_paths(cat, [moved])
    assert summary.counts == {MOVED: 1}
    assert cat.asset(aid)["path"] == "archive/2026/IMG_1.jpg" and cat.counts()["assets"] == 1
    copy = root / "backup" / "IMG_1.jpg"
    copy.parent.mkdir()
    shutil.copy(moved, copy)
    summary = ingest_paths(cat, [copy])
    assert summary.counts == {DUPLICATE: 1} and cat.asset(aid)["path"] == "archive/2026/IMG_1.jpg"


def test_runner_ingests_one_frame_inside_its_own_transaction(lab):
    cat, root = lab
    with cat.transaction():
        sid = cat.create_session("s", mode="stills")
        cat.add_points(sid, [{"ordinal": 0, "settings": {"aperture": "f/2.8"}, "slider_target_mm": 12.5}])
    pid = cat.point_id(sid, 0)
    frame = _jpeg(root / "sessions" / "0001" / "c000_f0000.jpg", 1, f_number=(28, 10), exposure=(1, 60))
    # a failure after the file was catalogued rolls the whole frame back
    with pytest.raises(RuntimeError):
        with cat.transaction():
            ingest_file(cat, frame, kind="still", session_id=sid, point_id=pid, frame_index=0)
            raise RuntimeError("slider alarm")
    assert cat.counts()["assets"] == 0 and cat.counts()["exif"] == 0
    with cat.transaction():
        aid = ingest_file(cat, frame, kind="still", session_id=sid, point_id=pid, frame_index=0,
                          requested={"aperture": "f/2.8", "shutter": "1/60", "iso": "400"},
                          readback={"aperture": "f/2.8", "shutter": "1/60", "iso": "400"},
                          slider={"target_mm": 12.5, "position_mm": 12.498, "at": 1.0})
        cat.mark_point(pid, "done")
    row = next(r for r in asset_records(cat) if r["asset_id"] == aid)
    assert (row["session_id"], row["point_id"], row["frame_index"]) == (sid, pid, 0)
    assert row["requested_f_number"] == 2.8 and row["readback_exposure_s"] == pytest.approx(1 / 60)
    assert row["f_number"] == 2.8 and row["exposure_text"] == "1/60" and row["slider_mm"] == 12.498
    s = cat.settings(aid)["shutter"]
    assert (s["requested_text"], s["readback_text"], s["exif_text"]) == ("1/60", "1/60", "1/60")
    assert cat.points(sid)[0]["status"] == "done"
    assert cat.asset(aid)["path"] == "sessions/0001/c000_f0000.jpg"


def test_runner_ingest_of_an_unreadable_file_raises_for_the_caller(lab):
    cat, root = lab
    with pytest.raises(OSError):
        ingest_file(cat, root / "never-written.jpg")


def test_unreadable_path_in_a_bulk_ingest_gets_an_error_row_once(lab):
    cat, root = lab
    dangling = root / "dangling.jpg"
    dangling.symlink_to(root / "gone.jpg")
    for _ in range(2):
        summary = ingest_paths(cat, [dangling])
    assert cat.counts()["assets"] == 1
    (row,) = cat.assets()
    assert row["metadata_status"] == "error" and "cannot read file" in row["error"] and row["sha256"] is None
    assert summary.counts == {KNOWN: 1}


def test_unparsed_file_is_parsed_when_exiftool_becomes_available(lab, camera_files, exiftool):
    cat, _ = lab
    cr3 = camera_files / "raw" / "exiftool-CanonRaw.cr3"
    first = ingest_paths(cat, [cr3], use_exiftool=False)
    assert first.counts == {"unparsed": 1}
    assert cat.assets()[0]["error"] == "metadata not parsed: exiftool needed for CR3"
    second = ingest_paths(cat, [cr3])
    assert second.counts == {REPARSED: 1}
    (row,) = list(asset_records(cat))
    assert row["metadata_status"] == "parsed" and row["model"] == "Canon EOS M50" and row["error"] is None


@pytest.mark.timeout(120)
def test_parallel_parsing_gives_the_same_rows_as_one_process(tmp_path):
    files = [_jpeg(tmp_path / "in" / f"{i:03d}.jpg", i, exposure=(1, 50 + i)) for i in range(230)]
    shutil.copy(files[0], tmp_path / "in" / "zz-copy.jpg")
    results = {}
    for jobs in (1, 2):
        cat = Catalog(tmp_path / f"c{jobs}.db")
        summary = ingest_paths(cat, expand_paths([tmp_path / "in"]), jobs=jobs, batch=50)
        assert summary.counts == {"parsed": 230, DUPLICATE: 1}
        results[jobs] = [(r["path"], r["sha256"], r["exposure_text"], r["make"]) for r in asset_records(cat)]
        again = ingest_paths(cat, expand_paths([tmp_path / "in"]), jobs=jobs)
        assert again.counts == {KNOWN: 230, DUPLICATE: 1}
        cat.close()
    assert results[1] == results[2] and len(results[1]) == 230


def test_big_files_are_streamed_not_held_in_memory(lab, monkeypatch, camera_files):
    """Above the in-memory limit the file is hashed in blocks and exifread reads it from disk; the
    result is the same as for a small file (limit lowered so the real corpus files take that path)."""
    import hashlib

    import capture.ingest as ingest_module

    cat, root = lab
    monkeypatch.setattr(ingest_module, "WHOLE_FILE_LIMIT", 1000)
    monkeypatch.setattr(ingest_module, "HEAD_BYTES", 4096)
    monkeypatch.setattr(ingest_module, "TAIL_BYTES", 512)   # past the EXIF thumbnail's own end marker
    canon = camera_files / "jpeg" / "Canon_40D.jpg"
    truncated = root / "cut.jpg"
    truncated.write_bytes(canon.read_bytes()[:-2000])
    summary = ingest_paths(cat, [canon, truncated])
    assert summary.counts == {"parsed": 1, "error": 1}
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in asset_records(cat)}
    assert rows["Canon_40D.jpg"]["sha256"] == hashlib.sha256(canon.read_bytes()).hexdigest()
    assert rows["Canon_40D.jpg"]["bytes"] == canon.stat().st_size and rows["Canon_40D.jpg"]["exposure_text"] == "1/160"
    assert rows["cut.jpg"]["error"].startswith("truncated JPEG")


def test_runner_may_pass_the_hash_it_computed_while_writing(lab):
    import hashlib

    cat, root = lab
    frame = _jpeg(root / "f.jpg", 3)
    digest = hashlib.sha256(frame.read_bytes()).hexdigest()
    with cat.transaction():
        aid = ingest_file(cat, frame, sha256=digest)
    assert cat.asset(aid)["sha256"] == digest and cat.exif(aid)["make"] == "Sim"


def test_runner_sidecars_are_unparsed_with_a_reason_not_errors(lab):
    cat, root = lab
    sidecar = root / "clip.json"
    sidecar.write_text('{"frames": 4}')
    depth = root / "clip.depth.npz"
    depth.write_bytes(b"PK\x03\x04 not really a zip, but never parsed")
    for path, kind in ((sidecar, "sidecar"), (depth, "depth")):
        with cat.transaction():
            asset_id = ingest_file(cat, path, kind=kind)
        asset = cat.asset(asset_id)
        assert (asset["kind"], asset["metadata_status"]) == (kind, "unparsed")
        assert "no camera metadata" in asset["error"]
