"""`cinectrl rig cameras|settings|capture` on libgphoto2's virtual camera: results, and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cinectrl.main import app

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


def test_cameras_lists_the_virtual_body_with_its_serial(vcam_dir):
    result = runner.invoke(app, ["rig", "cameras", "--virtual", str(vcam_dir)])
    assert result.exit_code == 0, result.output
    assert "0.1" in result.output and "D750" in result.output and "usb:001,001" in result.output


def test_cameras_with_a_missing_virtual_folder_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["rig", "cameras", "--virtual", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such folder" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_settings_lists_widgets_roles_and_choices(vcam_dir):
    result = runner.invoke(app, ["rig", "settings", "--camera", f"virtual:{vcam_dir}", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["f-number"]["role"] == "aperture" and "f/22" in rows["f-number"]["choices"]
    table = runner.invoke(app, ["rig", "settings", "--camera", f"virtual:{vcam_dir}"])
    assert table.exit_code == 0 and "f-number" in table.output


def test_capture_sets_reads_back_and_writes(vcam_dir, out):
    result = runner.invoke(app, ["rig", "capture", "--camera", f"virtual:{vcam_dir}", "--set", "aperture=f/8",
                                 "--set", "shutterspeed=1/50", "--out", str(out), "--name", "shot"])
    assert result.exit_code == 0, result.output
    assert "camera reports f/8" in result.output and "camera reports 0.0200s" in result.output
    assert (out / "shot.jpg").read_bytes() == (vcam_dir / "DSC_0001.JPG").read_bytes()


@pytest.mark.parametrize("setting, message", [
    ("aperture=f/1.2", "not one of the body's choices"),
    ("iso=400", "iso is not available"),
    ("exposurecompensation=1", "unknown setting"),
])
def test_capture_refusals_are_one_line_errors_and_write_nothing(vcam_dir, out, setting, message):
    result = runner.invoke(app, ["rig", "capture", "--camera", f"virtual:{vcam_dir}", "--set", setting,
                                 "--out", str(out)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_unknown_serial_is_a_one_line_error(vcam_dir):
    result = runner.invoke(app, ["rig", "settings", "--camera", "4242"])
    assert result.exit_code == 1 and "no camera" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_capture_with_the_simulated_camera_still_works(out):
    result = runner.invoke(app, ["rig", "capture", "--camera", "sim", "--out", str(out), "--name", "s"])
    assert result.exit_code == 0, result.output
    assert any(p.name.startswith("s.") for p in out.iterdir())
