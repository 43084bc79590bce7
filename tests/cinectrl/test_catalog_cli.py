"""`cinectrl catalog ingest|stats|show`: summaries, exit statuses, problems with full paths, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capture.catalog import Catalog
from capture.exif import ExifTool
from capture.export import EXPORTS
from capture.schema import SCHEMA_VERSION
from cinectrl.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
ASSET_FIELDS = ["path", "sha256", "bytes", "kind", "make", "model", "lens", "serial", "f_number", "exposure_s", "iso",
                "focal_mm", "focal_35mm", "white_balance", "kelvin", "datetime_original", "width", "height",
                "orientation", "metadata_status", "error", "session_id", "point_id", "frame_index",
                "requested_f_number", "requested_exposure_s", "requested_iso", "requested_kelvin",
                "requested_focus_m", "requested_focal_mm", "readback_f_number", "readback_exposure_s",
                "readback_iso", "readback_kelvin", "readback_focus_m", "readback_focal_mm", "slider_mm"]


@pytest.fixture(scope="module")
def ingested(camera_files, tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "catalog.db"
    result = runner.invoke(app, ["catalog", "ingest", str(camera_files / "jpeg"), str(camera_files / "broken"),
                                 str(camera_files / "raw" / "exiftool-CanonRaw.cr3"), "--catalog", str(db)])
    return db, result


def test_ingest_prints_a_summary_and_reasons_for_bad_files(ingested):
    db, result = ingested
    assert result.exit_code == 3, result.output           # files in error: the documented status 3
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    unparsed = 0 if ExifTool.available() else 1     # the CR3 without exiftool
    assert re.match(rf"\d+ ok, {unparsed} unparsed, 3 errors \(\d+ files\) -> ", last), last
    assert "empty file (0 bytes)" in result.output and "truncated JPEG" in result.output


def test_ingesting_the_lab_folder_skips_the_catalog_itself(tmp_path, camera_files):
    db = tmp_path / "catalog.db"
    shutil.copy(camera_files / "jpeg" / "Canon_40D.jpg", tmp_path / "a.jpg")
    result = runner.invoke(app, ["catalog", "ingest", str(tmp_path), "--catalog", str(db)])
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in Catalog(db).assets()] == ["a.jpg"]


def test_reingest_summary_says_everything_is_already_there(ingested, camera_files):
    db, _ = ingested
    result = runner.invoke(app, ["catalog", "ingest", str(camera_files / "broken"), "--catalog", str(db)])
    assert result.exit_code == 3          # the broken files are still broken: a rerun says so again
    assert result.output.strip().splitlines()[-1].startswith("0 ok, 0 unparsed, 0 errors, 19 already catalogued")
    result = runner.invoke(app, ["catalog", "ingest", str(camera_files / "jpeg"), "--catalog", str(db)])
    assert result.exit_code == 0, result.output            # none of these is an error


def test_export_jsonl_and_csv_have_every_field(ingested):
    db, _ = ingested
    assert set(ASSET_FIELDS) <= set(EXPORTS["assets"].names)
    result = runner.invoke(app, ["catalog", "export", "--format", "jsonl", "--catalog", str(db)])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == Catalog(db).counts()["assets"]
    assert all(set(ASSET_FIELDS) <= set(r) for r in records)
    canon = next(r for r in records if r["path"].endswith("jpeg/Canon_40D.jpg"))
    assert canon["metadata_status"] == "parsed" and canon["exposure_s"] == pytest.approx(1 / 160)
    assert canon["requested_f_number"] is None and canon["slider_mm"] is None
    assert {r["metadata_status"] for r in records} >= {"parsed", "error"}
    out = db.parent / "assets.csv"
    result = runner.invoke(app, ["catalog", "export", "--format", "csv", "-o", str(out), "--catalog", str(db)])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(records) and set(ASSET_FIELDS) <= set(rows[0])


def test_stats_and_show(ingested):
    db, _ = ingested
    result = runner.invoke(app, ["catalog", "stats", "--catalog", str(db), "--json"])
    assert result.exit_code == 0
    figures = json.loads(result.output)
    assert figures["schema_version"] == SCHEMA_VERSION and figures["rows"]["assets"] > 100
    assert figures["assets_by_status"]["error"] >= 3
    result = runner.invoke(app, ["catalog", "stats", "--catalog", str(db)])
    assert result.exit_code == 0 and "metadata:" in result.output
    result = runner.invoke(app, ["catalog", "show", "--catalog", str(db), "--problems"])
    assert result.exit_code == 0 and "error" in result.output
    result = runner.invoke(app, ["catalog", "show", "Canon_40D.jpg", "--catalog", str(db), "--tags"])
    assert result.exit_code == 0 and "Canon EOS 40D" in result.output and "EXIF ExposureTime" in result.output
    result = runner.invoke(app, ["catalog", "show", "nosuchfile.jpg", "--catalog", str(db)])
    assert result.exit_code == 1 and "no file 'nosuchfile.jpg'" in result.output


def test_user_errors_are_one_line_without_traceback(tmp_path, future_catalog):
    result = runner.invoke(app, ["catalog", "stats", "--catalog", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no catalog at" in result.output and not (tmp_path / "none.db").exists()
    result = runner.invoke(app, ["catalog", "ingest", str(tmp_path / "missing"), "--catalog", str(tmp_path / "c.db")])
    assert result.exit_code == 1 and "no such file or folder" in result.output
    assert not (tmp_path / "c.db").exists()
    future = future_catalog(tmp_path / "future.db", 3)
    result = runner.invoke(app, ["catalog", "show", "--catalog", str(future)])
    assert result.exit_code == 1 and "upgrade cinectrl" in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)


def test_env_var_names_the_default_catalog(tmp_path, camera_files, monkeypatch):
    monkeypatch.setenv("CINECTRL_CATALOG", str(tmp_path / "env.db"))
    result = runner.invoke(app, ["catalog", "ingest", str(camera_files / "jpeg" / "Canon_40D.jpg")])
    assert result.exit_code == 0 and (tmp_path / "env.db").exists()


@pytest.mark.timeout(60)
def test_without_exiftool_on_path_cr3_is_recorded_unparsed_with_the_reason(tmp_path, camera_files):
    """The real CLI in a subprocess whose PATH has no exiftool."""
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": str(venv_bin), "PYTHONPATH": str(REPO)}
    db = tmp_path / "c.db"
    proc = subprocess.run([sys.executable, "-m", "cinectrl.main", "catalog", "ingest",
                           str(camera_files / "raw" / "exiftool-CanonRaw.cr3"), "--catalog", str(db)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "metadata not parsed: exiftool needed for CR3" in proc.stdout
    assert "0 ok, 1 unparsed, 0 errors" in proc.stdout
