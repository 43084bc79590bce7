"""`cinectrl rig calibrate` and `cinectrl rig calibration`: plans, files shot elsewhere, profiles; every user mistake
a one-line error, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cinectrl.main import app
from rigs.camera.sim import SimCamera

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "calibration"
runner = CliRunner()

pytestmark = pytest.mark.timeout(600)


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(args: list[str], *needles: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in " ".join(result.output.split()), result.output
    return result.output


@pytest.fixture(scope="module")
def bracket_files(tmp_path_factory) -> list[Path]:
    """A bracket shot 'elsewhere': SimCamera JPEGs whose EXIF carries the exposure times."""
    folder = tmp_path_factory.mktemp("bracket")
    cam = SimCamera(speed=1e6, body="secret", scene="step_chart", jpeg_quality=95, jpeg_subsampling="4:2:2",
                    capture_latency_s=0.0)
    cam.set("aperture", "f/2.8")
    cam.set("focus", "1.5")
    files = []
    for i, shutter in enumerate(("1/250", "1/160", "1/100", "1/60", "1/40", "1/25", "1/15", "1/10", "1/6", "1/4",
                                 "0.4", "0.6", "1")):
        cam.set("shutter", shutter)
        files.append(cam.capture_still(folder, stem=f"b{i:02d}")[0].path)
    return files


def test_every_example_plan_checks_offline():
    for name in ("response", "white-balance", "geometry", "defocus", "noise"):
        out = _ok(["rig", "calibrate", str(EXAMPLES / f"{name}.toml"), "--check"])
        assert "points" in out and "measures" in out


def test_a_plan_runs_measures_and_stores_a_profile(tmp_path):
    catalog = tmp_path / "lab" / "catalog.db"
    out = _ok(["rig", "calibrate", str(EXAMPLES / "white-balance.toml"), "--catalog", str(catalog), "--quiet"])
    assert "session 1 complete" in out and "K  gains R" in out and "stored" in out and "(v1)" in out
    assert "white_balance measured" in " ".join(out.split())
    out = _ok(["rig", "calibrate", str(EXAMPLES / "white-balance.toml"), "--catalog", str(catalog), "--quiet"])
    assert "already gave" in " ".join(out.split())
    shown = _ok(["rig", "calibration", "show", "--catalog", str(catalog)])
    assert "white_balance  measured" in shown and "response       ideal (sRGB)" in shown
    # a check now predicts time and disk from the calibration session it measured, not the 8 MB defaults
    check = " ".join(_ok(["rig", "calibrate", str(EXAMPLES / "white-balance.toml"), "--catalog", str(catalog),
                          "--check"]).split())
    assert "costs: measured over" in check and "earlier points of camera 'sim'" in check, check


def test_files_shot_elsewhere_take_exif_times_or_given_ones(bracket_files, tmp_path):
    catalog = tmp_path / "c.db"
    out = _ok(["rig", "calibrate", "response", *map(str, bracket_files), "--catalog", str(catalog),
               "--out", str(tmp_path / "p.json")])
    assert "response  debevec from 13 frames" in out and "SIM-SECRET" in out
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["format"] == "cinectrl.calibration/1" and data["version"] == 1
    times = ",".join(("1/250", "1/160", "1/100", "1/60", "1/40", "1/25", "1/15", "1/10", "1/6", "1/4", "0.4",
                      "0.6", "1"))
    out = _ok(["rig", "calibrate", "response", *map(str, bracket_files), "--catalog", str(catalog),
               "--exposure-times", times, "--method", "robertson"])
    assert "robertson" in out and "(v2)" in out
    _fails(["rig", "calibrate", "response", *map(str, bracket_files[:1]), "--catalog", str(catalog)],
           "1 frame(s) given, at least 2 needed")
    _fails(["rig", "calibrate", "response", *map(str, bracket_files), "--catalog", str(catalog),
            "--exposure-times", "1/250,fast"], "--exposure-times 'fast' is not a value such as 1/250")
    _fails(["rig", "calibrate", "response", str(tmp_path / "none.jpg"), "--catalog", str(catalog)], "no such file")


def test_profiles_export_and_import_between_catalogs(bracket_files, tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    _ok(["rig", "calibrate", "response", *map(str, bracket_files), "--catalog", str(first)])
    exported = tmp_path / "secret.json"
    _ok(["rig", "calibration", "export", "SIM-SECRET", "--catalog", str(first), "--out", str(exported)])
    out = _ok(["rig", "calibration", "import", str(exported), "--catalog", str(second)])
    assert "imported as cinectrl SimCam #SIM-SECRET" in out and "(v1)" in out
    out = _ok(["rig", "calibration", "import", str(exported), "--catalog", str(second)])
    assert "already stored as" in out
    listing = _ok(["rig", "calibration", "show", "--versions", "--catalog", str(second)])
    assert "v1: response; imported from secret.json" in " ".join(listing.split())
    as_json = _ok(["rig", "calibration", "show", "--json", "--catalog", str(second)])
    assert json.loads(as_json)["serial"] == "SIM-SECRET"


def test_profile_and_plan_mistakes_are_one_line_errors(tmp_path):
    catalog = tmp_path / "c.db"
    _fails(["rig", "calibration", "show", "--catalog", str(tmp_path / "missing.db")], "no catalog at")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    _fails(["rig", "calibration", "import", str(bad), "--catalog", str(catalog)], "not a cinectrl calibration profile")
    _fails(["rig", "calibration", "import", str(tmp_path / "nope.json"), "--catalog", str(catalog)], "cannot read it")
    plan = tmp_path / "plan.toml"
    plan.write_text((EXAMPLES / "response.toml").read_text().replace('measure = "response"', 'measure = "lens"'))
    _fails(["rig", "calibrate", str(plan), "--check"], "[calibration.measure]: unknown measurement 'lens'")
    _fails(["rig", "calibrate", str(tmp_path / "missing.toml")], "no plan file at")
    _fails(["rig", "calibrate", "geometry", str(plan), "--board", "12by9"], "--board '12by9'")


REAL = Path(__file__).resolve().parents[1] / "data" / "real-sweeps" / "exposure-rx100m6-night-1"


def test_a_real_in_camera_bracket_calibrates_with_opencv_as_the_reference_line(tmp_path):
    """A real auto bracket as published (ISO changed inside it, hand-held): the exposure comes from EXIF time x
    ISO, the frames are aligned, and the output names OpenCV's bare solver on the same frames."""
    files = [str(p) for p in sorted(REAL.glob("*.JPG"))]
    out = _ok(["rig", "calibrate", "response", *files, "--catalog", str(tmp_path / "c.db")])
    flat = " ".join(out.split())
    assert "reference OpenCV's bare CalibrateDebevec on the same frames" in flat
    assert "DSC-RX100M6" in flat and "ratio 0.6" in flat
