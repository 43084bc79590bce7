"""`cinectrl capture import`: real sweeps from tests/data/real-sweeps become sessions like captured ones, and
what is not a sweep is refused with one line (the file, the value, the fix) before anything is written.

Everything here runs the real path: the CLI, EXIF through capture.ingest, clips through PyAV, pairs and QC
through capture.pairs / capture.clips, on real photographs as published (no mocks)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tomllib
from fractions import Fraction
from pathlib import Path

import piexif
import pytest
from typer.testing import CliRunner

from rigs.video import read_still, write_video
from cinectrl.main import app

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "real-sweeps"
SWEEPS = sorted(p.parent for p in CORPUS.glob("*/sweep.toml"))


def _spec(folder: Path) -> dict:
    return tomllib.loads((folder / "sweep.toml").read_text())


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff",
                                                                        ".mp4", ".mov"))


def _exif_has_axis(spec: dict) -> bool:
    return str(spec.get("values_source", spec.get("source", ""))).startswith("EXIF")


def _axis_values(spec: dict) -> list[float]:
    """What the session must record for the axis: EXIF's own times where the corpus gives values derived from
    them (a bracket whose body also moved ISO lists equivalent times in `values`)."""
    return [float(v) for v in spec.get("exif_exposure_time", spec["values"])]


def _args(folder: Path, spec: dict, catalog: Path, *, with_values: bool | None = None) -> list[str]:
    args = ["capture", "import", str(folder), "--axis", spec["axis"], "--catalog", str(catalog), "--init"]
    if with_values if with_values is not None else not _exif_has_axis(spec):
        args += ["--values", ",".join(str(v) for v in spec["values"])]
    for key in ("make", "model", "lens", "reference"):
        if key in spec:
            args += [f"--{key}", str(spec[key])]
    return args


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _rows(catalog: Path, sql: str, *params) -> list[tuple]:
    db = sqlite3.connect(catalog)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def test_the_corpus_has_each_kind_of_sweep():
    axes = {_spec(f)["axis"] for f in SWEEPS}
    assert {"aperture", "focus", "focal", "shutter", "kelvin"} <= axes
    for folder in SWEEPS:
        spec = _spec(folder)
        assert len(spec["values"]) == len(_files(folder)) >= 2, folder


@pytest.mark.parametrize("folder", SWEEPS, ids=[f.name for f in SWEEPS])
def test_a_real_sweep_becomes_a_session_like_a_captured_one(folder: Path, tmp_path: Path):
    spec = _spec(folder)
    files = _files(folder)
    catalog = tmp_path / "lab" / "catalog.db"
    result = _invoke(_args(folder, spec, catalog))
    assert result.exit_code == 0, result.output
    assert f"{len(files)} settings of {spec['axis']}" in result.output

    (sid, state, mode), = _rows(catalog, "SELECT id, state, mode FROM sessions")
    assert state == "complete" and mode == "stills"
    # every file catalogued in place through the ingest path: hashed, its settings, EXIF where it has some
    assets = _rows(catalog, "SELECT a.path, a.kind, a.sha256, a.metadata_status, p.settings_json FROM assets a "
                            "JOIN points p ON p.id = a.point_id WHERE a.session_id = ? ORDER BY p.ordinal", sid)
    assert [Path(a[0]).name for a in assets] == [f.name for f in files]
    assert all(a[1] == "still" and a[2] for a in assets)
    axis_values = [float(Fraction(json.loads(a[4])[spec["axis"]])) for a in assets]
    assert axis_values == pytest.approx(_axis_values(spec), rel=1e-3)
    if _exif_has_axis(spec):       # the values came from EXIF, not from the test
        assert all(a[3] == "parsed" for a in assets)
        exif_side = _rows(catalog, "SELECT s.exif_text FROM asset_settings s JOIN assets a ON a.id = s.asset_id "
                                   "JOIN points p ON p.id = a.point_id WHERE a.session_id = ? AND s.role = ? "
                                   "ORDER BY p.ordinal", sid, spec["axis"])
        assert [float(Fraction(r[0])) for r in exif_side] == pytest.approx(_axis_values(spec), rel=1e-3)
    # one clip per setting, a still being a 1-frame clip
    clips = _rows(catalog, "SELECT frames, settings_json FROM clips WHERE session_id = ? ORDER BY combination_key", sid)
    assert [c[0] for c in clips] == [1] * len(files)
    if "reference" in spec:
        (ref,), = set(_rows(catalog, "SELECT c.settings_json FROM pairs p JOIN clips c ON c.id = p.reference_clip_id"))
        assert float(Fraction(json.loads(ref)[spec["axis"]])) == pytest.approx(float(spec["reference"]), rel=1e-3)
    # pairs against the reference, with the axis's delta, the controls and QC, as capture.pairs makes them
    pairs = _rows(catalog, "SELECT deltas_json, controls_json, qc_json, review_state FROM pairs WHERE session_id = ?",
                  sid)
    assert len(pairs) == len(files) - 1
    delta = {"aperture": "aperture_stops", "focus": "focus_m", "focal": "focal_ratio", "shutter": "shutter_stops",
             "iso": "iso_stops", "kelvin": "mired_shift"}[spec["axis"]]
    for deltas, controls, qc, review in pairs:
        deltas, controls, qc = json.loads(deltas), json.loads(controls), json.loads(qc)
        assert deltas[delta] != 0 or deltas.get("exposure_ev", 0) != 0    # a bracket may move ISO instead
        assert {"K", "f", "S", "T", "d_f"} <= set(controls)
        assert {"alignment_px", "passed", "flags"} <= set(qc)
        assert review == "unreviewed"           # ready for `review push`
    assert (catalog.parent / _rows(catalog, "SELECT data_dir FROM sessions")[0][0] / "report.html").is_file()
    # `capture status` shows it as any finished session: all points done, no faults survived
    status = _invoke(["capture", "status", "--catalog", str(catalog), "--session", str(sid), "--json"])
    record = json.loads(status.output)
    assert record["status"] == "complete" and record["faults"] == 0
    assert record["points"] == {"total": len(files), "done": len(files), "failed": 0}
    assert record["clips"] == len(files) and record["pairs"] == len(files) - 1


@pytest.mark.parametrize("folder", SWEEPS, ids=[f.name for f in SWEEPS])
def test_a_rerun_imports_nothing_twice(folder: Path, tmp_path: Path):
    spec = _spec(folder)
    catalog = tmp_path / "catalog.db"
    assert _invoke(_args(folder, spec, catalog)).exit_code == 0
    count = "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM assets), (SELECT count(*) FROM clips), " \
            "(SELECT count(*) FROM pairs), (SELECT count(*) FROM points)"
    before = _rows(catalog, count)
    again = _invoke(_args(folder, spec, catalog))
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output
    assert _rows(catalog, count) == before


def test_an_interrupted_import_finishes_on_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import capture.imports as imports

    folder = CORPUS / "focus-focus-stack-pcb"
    spec = _spec(folder)
    catalog = tmp_path / "catalog.db"
    real_commit = imports._commit
    calls = []

    def crash_on_the_third(ledger, session_id, point, f):
        calls.append(point.key)
        if len(calls) == 3:
            raise RuntimeError("the power went")
        real_commit(ledger, session_id, point, f)

    monkeypatch.setattr(imports, "_commit", crash_on_the_third)
    with pytest.raises(RuntimeError, match="power"):
        _invoke(_args(folder, spec, catalog))
    assert _rows(catalog, "SELECT count(*) FROM points WHERE status = 'done'") == [(2,)]
    monkeypatch.setattr(imports, "_commit", real_commit)
    result = _invoke(_args(folder, spec, catalog))
    assert result.exit_code == 0, result.output
    assert "imported 5 file(s)" in result.output
    assert _rows(catalog, "SELECT count(*) FROM sessions") == [(1,)]
    assert _rows(catalog, "SELECT count(*) FROM assets WHERE point_id IS NOT NULL") == [(7,)]
    assert _rows(catalog, "SELECT count(*) FROM pairs") == [(6,)]


def test_an_aperture_priority_series_counts_its_shutter_as_holding_the_exposure(tmp_path: Path):
    folder = CORPUS / "aperture-jordan9724-keyboard"
    catalog = tmp_path / "catalog.db"
    result = _invoke(_args(folder, _spec(folder), catalog))
    assert result.exit_code == 0, result.output
    assert "held the exposure: shutter followed aperture" in result.output
    (deltas,), = _rows(catalog, "SELECT deltas_json FROM pairs")
    deltas = json.loads(deltas)
    assert abs(deltas["exposure_ev"]) < 0.5 and abs(deltas["aperture_stops"]) > 5


def test_an_exposure_bracket_in_which_the_body_also_moved_iso_keeps_each_files_settings(tmp_path: Path):
    folder = CORPUS / "exposure-rx100m6-night-1"
    catalog = tmp_path / "catalog.db"
    result = _invoke(["capture", "import", str(folder), "--axis", "shutter", "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output
    assert "the body also moved iso" in result.output
    settings = [json.loads(r[0]) for r in _rows(catalog, "SELECT settings_json FROM points ORDER BY ordinal")]
    assert [s["iso"] for s in settings] == ["6400", "6400", "6400", "4000", "6400"]
    spec = _spec(folder)
    light = [float(Fraction(s["shutter"])) * int(s["iso"]) / 6400 for s in settings]
    assert light == pytest.approx([float(v) for v in spec["values"]], rel=1e-3)   # the corpus's equivalent times


def test_refused_when_values_contradict_exif(tmp_path: Path):
    folder = CORPUS / "exposure-rx100m6-night-1"
    catalog = tmp_path / "c.db"
    values = ",".join(str(v) for v in _spec(folder)["values"])
    _refused(["capture", "import", str(folder), "--axis", "shutter", "--values", values, "--catalog", str(catalog)],
             catalog, "DSC08199.JPG", "EXIF records shutter 1/30", "0.020833", "drop --values")


def test_reference_chooses_the_pairs_reference(tmp_path: Path):
    folder = CORPUS / "aperture-jordan9724-keyboard"
    catalog = tmp_path / "catalog.db"
    result = _invoke(_args(folder, _spec(folder), catalog) + ["--reference", "f/1.8"])
    assert result.exit_code == 0, result.output
    (ref,), = _rows(catalog, "SELECT c.settings_json FROM pairs p JOIN clips c ON c.id = p.reference_clip_id")
    assert json.loads(ref)["aperture"] == "1.8"


def test_a_video_sweep_stays_a_video(tmp_path: Path):
    """Two short videos (made here from the real focus stack's frames; no EXIF, so --values)."""
    stack = _files(CORPUS / "focus-cmcguinness")
    folder = tmp_path / "videos"
    folder.mkdir()
    for i, still in enumerate(stack[:2]):
        frame = read_still(still)[:480, :640]
        write_video(folder / f"take{i}.mp4", [frame] * 5, fps=10)
    catalog = tmp_path / "catalog.db"
    result = _invoke(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2", "--catalog",
                      str(catalog)])
    assert result.exit_code == 0, result.output
    assert _rows(catalog, "SELECT kind FROM assets WHERE point_id IS NOT NULL") == [("clip",), ("clip",)]
    clips = _rows(catalog, "SELECT c.frames, a.path FROM clips c JOIN assets a ON a.id = c.asset_id ORDER BY "
                           "c.combination_key")
    assert [c[0] for c in clips] == [5, 5]
    assert [Path(c[1]).name for c in clips] == ["take0.mp4", "take1.mp4"]    # the video itself is the clip
    assert _rows(catalog, "SELECT count(*) FROM pairs") == [(1,)]


# ------------------------------------------------------------------------------------------------ refusals

def _refused(args: list[str], catalog: Path, *needles: str) -> str:
    result = _invoke(args)
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    for needle in needles:
        assert needle in line, line
    if catalog.exists():
        assert _rows(catalog, "SELECT count(*) FROM sessions") == [(0,)]
        assert _rows(catalog, "SELECT count(*) FROM assets") == [(0,)]
    return line


def _copy(tmp_path: Path, *files: Path) -> Path:
    folder = tmp_path / "sweep"
    folder.mkdir(exist_ok=True)
    for f in files:
        shutil.copy2(f, folder / f.name)
    return folder


def test_refused_when_sizes_differ(tmp_path: Path):
    pcb = _files(CORPUS / "focus-focus-stack-pcb")[0]
    other = _files(CORPUS / "focus-cmcguinness")[0]
    folder = _copy(tmp_path, pcb, other)
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2", "--catalog", str(catalog)],
             catalog, "step0.jpg", "1521x1141", "2048x1536", "one size")


def test_refused_when_two_settings_change(tmp_path: Path):
    """The focus stack's frames with one file's focal length edited in its EXIF: focus and focal both change."""
    a, b = _files(CORPUS / "focus-focus-stack-pcb")[:2]
    folder = _copy(tmp_path, a, b)
    exif = piexif.load(str(folder / b.name))
    exif["Exif"][piexif.ExifIFD.FocalLength] = (50, 10)
    piexif.insert(piexif.dump(exif), str(folder / b.name))
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2", "--catalog", str(catalog)],
             catalog, "pcb_002.jpg", "focal 5", "2.5", "two settings change")


def test_refused_when_the_exposure_moves_with_the_aperture(tmp_path: Path):
    """The aperture pair with one file's ISO raised two stops: the shutter no longer just held the exposure."""
    a, b = _files(CORPUS / "aperture-jordan9724-keyboard")
    folder = _copy(tmp_path, a, b)
    exif = piexif.load(str(folder / b.name))
    exif["Exif"][piexif.ExifIFD.ISOSpeedRatings] = 400
    piexif.insert(piexif.dump(exif), str(folder / b.name))
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "aperture", "--catalog", str(catalog)],
             catalog, "two settings change", "stops")


def test_refused_when_values_are_missing(tmp_path: Path):
    folder = CORPUS / "zoom-city100-d5500"
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focal", "--catalog", str(catalog)],
             catalog, "001H.PNG", "records no focal", "--values")


def test_refused_when_the_count_of_values_differs(tmp_path: Path):
    folder = CORPUS / "focus-cmcguinness"
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2,3", "--catalog", str(catalog)],
             catalog, "3 value(s) for 6 files", "step0.jpg")
    listed = tmp_path / "values.txt"
    listed.write_text("# focus steps\n1\n2, 3\n4  # the middle\n5\n")
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", f"@{listed}", "--catalog",
              str(catalog)], catalog, "5 value(s) for 6 files")


def test_refused_when_a_value_repeats_or_is_not_a_value(tmp_path: Path):
    folder = CORPUS / "zoom-city100-d5500"
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focal", "--values", "35,35", "--catalog", str(catalog)],
             catalog, "001H.PNG", "001L.PNG", "both at focal 35")
    _refused(["capture", "import", str(folder), "--axis", "focal", "--values", "35,wide", "--catalog", str(catalog)],
             catalog, "001L.PNG", "'wide'")


def test_refused_for_an_unknown_axis_or_reference(tmp_path: Path):
    folder = CORPUS / "aperture-jordan9724-keyboard"
    catalog = tmp_path / "c.db"
    line = _refused(["capture", "import", str(folder), "--axis", "white_balance", "--catalog", str(catalog)],
                    catalog, "'white_balance'")
    from capture.imports import AXES
    assert all(axis in line for axis in AXES)
    _refused(["capture", "import", str(folder), "--axis", "aperture", "--reference", "f/8", "--catalog",
              str(catalog)], catalog, "'f/8'", "13, 1.8")


def test_refused_when_stills_and_videos_mix(tmp_path: Path):
    still = _files(CORPUS / "focus-cmcguinness")[0]
    folder = _copy(tmp_path, still)
    write_video(folder / "take.mp4", [read_still(still)] * 3, fps=10)
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2", "--catalog", str(catalog)],
             catalog, "take.mp4", "step0.jpg", "two sweeps")


def test_refused_when_a_file_cannot_be_decoded(tmp_path: Path):
    broken = REPO / "tests" / "data" / "camera-files" / "broken" / "x.jpg"       # 4096 random bytes named .jpg
    folder = _copy(tmp_path, *_files(CORPUS / "focus-cmcguinness")[:2], broken)
    catalog = tmp_path / "c.db"
    _refused(["capture", "import", str(folder), "--axis", "focus", "--values", "1,2,3", "--catalog", str(catalog)],
             catalog, "x.jpg", "cannot be decoded", "remove it")


def test_refused_when_the_files_belong_to_another_import(tmp_path: Path):
    folder = CORPUS / "zoom-city100-d5500"
    catalog = tmp_path / "c.db"
    base = ["capture", "import", str(folder), "--axis", "focal", "--catalog", str(catalog)]
    assert _invoke(base + ["--values", "2.9,1"]).exit_code == 0
    result = _invoke(base + ["--values", "3,1"])         # another plan for the same bytes
    assert result.exit_code == 1
    assert "001H.PNG is already in session 1" in result.output
    assert _rows(catalog, "SELECT count(*) FROM sessions") == [(1,)]


def test_refused_when_a_rerun_finds_other_bytes(tmp_path: Path):
    """Same folder name, same values, different photographs: not a resume of the first import."""
    a = _copy(tmp_path, *_files(CORPUS / "focus-cmcguinness")[:2])
    catalog = tmp_path / "c.db"
    args = ["capture", "import", str(a), "--axis", "focus", "--values", "1,2", "--catalog", str(catalog)]
    assert _invoke(args).exit_code == 0
    for f, g in zip(sorted(a.iterdir()), _files(CORPUS / "focus-cmcguinness")[2:4]):
        shutil.copy2(g, f)
    result = _invoke(args)
    assert result.exit_code == 1
    assert "session 1 imported other bytes" in result.output and "--scene" in result.output


def test_imported_pairs_are_what_training_reads(tmp_path: Path):
    """train/data.py takes an imported sweep's QC-passed pairs like captured ones (a still: a 1-frame clip)."""
    from capture.catalog import open_catalog
    from train.data import load_clip, records_from_catalog

    folder = CORPUS / "focus-cmcguinness"
    catalog = tmp_path / "catalog.db"
    assert _invoke(_args(folder, _spec(folder), catalog)).exit_code == 0
    cat = open_catalog(catalog)
    try:
        skipped: dict[str, str] = {}
        records = records_from_catalog(cat, train_ready_only=False, skipped=skipped)
    finally:
        cat.close()
    assert len(records) + len(skipped) == 5 and records, skipped
    record = records[0]
    assert record.scene == "focus-cmcguinness" and record.controls["d_f"] != 0
    assert load_clip(record.source, 1, (48, 64)).shape == (1, 48, 64, 3)
    assert load_clip(record.target, 1, (48, 64)).shape == (1, 48, 64, 3)
