"""`cinectrl catalog merge`: another station's rows and files come over once, with ids remapped."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import piexif
import pytest
from PIL import Image
from typer.testing import CliRunner

from capture.catalog import Catalog, CatalogError
from capture.export import asset_records
from capture.bulk import ingest_paths
from capture.ingest import ingest_file
from capture.merge import merge_catalog
from capture.schema import SCHEMA_VERSION
from cinectrl.main import app


def _jpeg(path: Path, shade: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Sim"}, "Exif": {piexif.ExifIFD.FNumber: (40, 10)}})
    Image.new("RGB", (16, 16), ((shade * 53) % 256, 40, 40)).save(path, exif=exif)
    return path


def _station(root: Path, name: str, shade0: int) -> Path:
    """A station catalog with a session of 2 frames, clips, a pair and a review."""
    cat = Catalog(root / "catalog.db")
    with cat.transaction():
        sid = cat.create_session(name, mode="passes", operator=name)
        cam = cat.add_device("camera", make="Sim", model="SimCam", serial=name)
        cat.link_device(sid, cam, "camera")
        cat.add_points(sid, [{"ordinal": i, "combination_key": f"c{i}", "settings": {"aperture": "f/4"}}
                             for i in range(2)])
    clips = []
    for i in range(2):
        pid = cat.point_id(sid, i)
        frame = _jpeg(root / "sessions" / name / f"f{i}.jpg", shade0 + i)
        with cat.transaction():
            aid = ingest_file(cat, frame, session_id=sid, point_id=pid, frame_index=i,
                              requested={"aperture": "f/4"}, readback={"aperture": "f/4"},
                              slider={"target_mm": 10.0 * i, "position_mm": 10.0 * i + 0.001})
            cat.mark_point(pid, "done")
        clips.append(cat.add_clip(sid, f"c{i}", asset_id=aid, frames=1, fps=1))
    pair = cat.add_pair(sid, clips[0], clips[1], controls={"K": 0.2})
    cat.add_review(pair, annotator="ana", verdict="accept", external_id=f"{name}:1")
    cat.close()
    return root / "catalog.db"


def test_merge_brings_everything_once_and_again_adds_nothing(tmp_path):
    a = _station(tmp_path / "a", "a", 0)
    b = _station(tmp_path / "b", "b", 10)
    target = Catalog(a)
    before = target.counts()
    summary = merge_catalog(target, b)
    after = target.counts()
    for table in ("sessions", "points", "assets", "exif", "asset_settings", "slider_positions", "clips", "pairs",
                  "reviews"):
        assert after[table] == 2 * before[table], table
    assert after["devices"] == 2 and summary.added["assets"] == 2
    again = merge_catalog(target, b)
    assert target.counts() == after and sum(again.added.values()) == 0
    # ids were remapped: b's pair points at b's clips, which point at b's files (referenced in place)
    (pair,) = [p for p in target.pairs() if target.session(p["session_id"])["name"] == "b"]
    assert pair["reference_path"] == "../b/sessions/b/f0.jpg" and pair["controls"] == {"K": 0.2}
    assert target.abspath(pair["other_path"]).is_file()
    assert target.reviews(pair["pair_id"])[0]["external_id"] == "b:1"
    b_session = next(s for s in target.sessions() if s["name"] == "b")
    assert target.progress(b_session["id"])["done"] == 2
    assert target.integrity_check() == "ok"
    assert target.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_merge_with_copy_files_copies_and_verifies(tmp_path):
    a = _station(tmp_path / "a", "a", 0)
    b = _station(tmp_path / "b", "b", 20)
    station_b = Catalog(b).station_id
    target = Catalog(a)
    summary = merge_catalog(target, b, copy_files=True)
    assert summary.copied == 2
    for row in asset_records(target):
        if row["path"].startswith("stations/"):
            assert row["path"].startswith(f"stations/{station_b}/sessions/b/")
            assert hashlib.sha256(target.abspath(row["path"]).read_bytes()).hexdigest() == row["sha256"]


def test_same_files_ingested_on_both_stations_are_not_duplicated(tmp_path):
    shared = [_jpeg(tmp_path / "card" / f"{i}.jpg", 30 + i) for i in range(3)]
    for name in ("a", "b"):
        cat = Catalog(tmp_path / name / "catalog.db")
        ingest_paths(cat, shared)
        cat.close()
    target = Catalog(tmp_path / "a" / "catalog.db")
    summary = merge_catalog(target, tmp_path / "b" / "catalog.db")
    assert target.counts()["assets"] == 3 and summary.present["assets"] == 3


def test_schema_mismatch_and_self_merge_are_refused_and_change_nothing(tmp_path):
    a = _station(tmp_path / "a", "a", 0)
    b = _station(tmp_path / "b", "b", 10)
    conn = sqlite3.connect(b)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    target = Catalog(a)
    before = target.counts()
    with pytest.raises(CatalogError, match=rf"cannot merge.*schema version {SCHEMA_VERSION + 1}.*nothing was changed"):
        merge_catalog(target, b)
    with pytest.raises(CatalogError, match="is this catalog"):
        merge_catalog(target, a)
    assert target.counts() == before
    result = CliRunner().invoke(app, ["catalog", "merge", str(b), "--catalog", str(a)])
    assert result.exit_code == 1 and "schema version" in result.output and "Traceback" not in result.output


def test_merge_cli_prints_what_it_brought(tmp_path):
    a = _station(tmp_path / "a", "a", 0)
    b = _station(tmp_path / "b", "b", 10)
    result = CliRunner().invoke(app, ["catalog", "merge", str(b), "--catalog", str(a)])
    assert result.exit_code == 0, result.output
    assert "merged station" in result.output and "2 assets" in result.output
    result = CliRunner().invoke(app, ["catalog", "merge", str(b), "--catalog", str(a)])
    assert "nothing new" in result.output
