"""`cinectrl catalog export` on a catalog a real capture session wrote (simulated camera + GRBL emulator on a
pty): flat records a researcher loads as they are, and the schema docs/catalog.md documents is the one the
real export writes, field by field, with types that hold for every value."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capture.catalog import Catalog
from capture.export import EXPORTS
from capture.pairs import DELTA_UNITS
from cinectrl.main import app
from rigs import controls

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"

PLAN = """
[session]
name = "export-stills"
scene = "desk with books"
operator = "pytest"

[rig]
camera = "sim"
slider = "emulator"
speed = 50

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["100"]
slider_mm = [100, 110, 120]

[order]
mode = "stills"
loop = ["slider", "aperture"]

[exposure]
constant = true
compensate = ["shutter", "iso"]
"""


@pytest.fixture(scope="module")
def session_catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    plan = root / "plan.toml"
    plan.write_text(PLAN)
    db = root / "lab" / "catalog.db"
    result = runner.invoke(app, ["capture", "run", str(plan), "--catalog", str(db), "--quiet", "--init"])
    assert result.exit_code == 0, result.output
    with Catalog(db) as cat:                    # one reviewed pair, so booleans show both ways
        pair_id = cat.pairs()[0]["pair_id"]
        cat.add_review(pair_id, annotator="alice@lab.test", verdict="accept", reasons=["clear"], rating=4,
                       defects=[(2, 3)], external_id="17")
        cat.set_pair_state(pair_id, review_state="accepted", train_ready=True)
    return db


def _export(db: Path, what: str, fmt: str) -> str:
    result = runner.invoke(app, ["catalog", "export", "--what", what, "--format", fmt, "--catalog", str(db)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.timeout(180)
def test_pairs_export_is_flat_with_scene_camera_fps_slider_path_controls_and_deltas(session_catalog):
    records = [json.loads(line) for line in _export(session_catalog, "pairs", "jsonl").splitlines()]
    rows = list(csv.DictReader(io.StringIO(_export(session_catalog, "pairs", "csv"))))
    assert len(records) == len(rows) == 1
    record, row = records[0], rows[0]
    assert record["scene"] == "desk with books" and record["session"] == "export-stills"
    assert record["camera"] and record["fps"] > 0 and record["frames"] == 3
    assert (record["slider_from_mm"], record["slider_to_mm"], record["slider_steps"]) == (100, 120, 3)
    assert record["reference_aperture"] == "f/8" and record["other_aperture"] == "f/2.8"
    for side in ("reference", "other"):
        for key in ("abs_path", "proxy_abs_path"):
            assert Path(record[f"{side}_{key}"]).is_absolute() and Path(record[f"{side}_{key}"]).is_file()
    assert record["delta_aperture_stops"] == pytest.approx(2 * math.log2(2.8 / 8))     # f/8 -> f/2.8
    assert record["control_K"] > 0 and isinstance(record["qc_alignment_px"], float)
    assert [k for k in record if k.startswith("control_")] == [f"control_{n}" for n in controls.NAMES]
    assert [k for k in record if k.startswith("delta_")] == [f"delta_{n}" for n in DELTA_UNITS]
    # booleans one way: JSON true/false, CSV true/false; no JSON blob or Python literal in any CSV cell
    assert record["train_ready"] is True and row["train_ready"] == "true"
    for key, cell in row.items():
        assert not cell.startswith(("{", "[")) and cell not in ("True", "False", "None"), (key, cell)
    assert float(row["control_K"]) == pytest.approx(record["control_K"])


def test_assets_export_has_absolute_paths(session_catalog):
    records = [json.loads(line) for line in _export(session_catalog, "assets", "jsonl").splitlines()]
    frames = [r for r in records if r["point_id"] is not None]
    assert len(frames) == 6
    for r in records:
        assert Path(r["abs_path"]).is_absolute() and Path(r["abs_path"]).is_file(), r["abs_path"]
        assert Path(r["abs_path"]) == (session_catalog.parent / r["path"]).resolve()
    assert all(r["requested_f_number"] in (2.8, 8.0) and r["slider_mm"] is not None for r in frames)
    assert all(r["f_number_source"] == "exifread:EXIF FNumber" for r in frames)


def _documented(name: str) -> list[tuple[str, str, str]]:
    """(field, type, unit) rows of docs/catalog.md's table for `--what NAME`."""
    text = DOCS.read_text()
    heading = re.search(rf"^#+ .*`--what {name}`.*$", text, re.M)
    assert heading, f"docs/catalog.md has no section for --what {name}"
    rows = []
    for line in text[heading.end():].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1], cells[2]))
    return rows


_TYPES = {"text": (str,), "integer": (int,), "real": (int, float), "boolean": (bool,)}


@pytest.mark.parametrize("what", sorted(EXPORTS))
def test_documented_schema_is_the_real_export(session_catalog, what):
    documented = _documented(what)
    spec = EXPORTS[what]
    assert documented == [(f.name, f.type, f.unit) for f in spec.fields], \
        f"docs/catalog.md is out of date: `cinectrl catalog export --what {what} --schema` prints the table"
    header = next(csv.reader(io.StringIO(_export(session_catalog, what, "csv"))))
    assert header == [name for name, _, _ in documented]
    records = [json.loads(line) for line in _export(session_catalog, what, "jsonl").splitlines()]
    assert records
    for record in records:
        assert list(record) == header
        for name, kind, _ in documented:
            value = record[name]
            assert value is None or (isinstance(value, _TYPES[kind])
                                     and not (kind != "boolean" and isinstance(value, bool))), (name, value)
