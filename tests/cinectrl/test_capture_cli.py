"""`cinectrl capture plan|run|status`: clear one-line errors, never tracebacks, for user mistakes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cinectrl.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_plan_offline_prints_summary_for_every_example():
    for path in sorted(p for p in EXAMPLES.glob("*.toml") if not p.name.startswith("train-")):
        result = runner.invoke(app, ["capture", "plan", str(path), "--offline"])
        assert result.exit_code == 0, result.output
        assert "points" in result.output and "estimate" in result.output


def test_bad_plan_lists_every_problem_with_lines_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[session]\noperator = "x"\n\n[axes]\naperture = ["f/2.8", "q"]\niso = ["fast"]\n')
    result = runner.invoke(app, ["capture", "plan", str(bad), "--offline"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "line 1 [session.scene]" in result.output
    assert "line 5 [axes.aperture]" in result.output and "line 6 [axes.iso]" in result.output
    assert "Traceback" not in result.output


def test_missing_plan_and_missing_catalog_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["capture", "run", str(tmp_path / "nope.toml"), "--catalog", str(tmp_path / "c.db")])
    assert result.exit_code == 1 and "no plan file" in result.output
    result = runner.invoke(app, ["capture", "status", "--catalog", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "no catalog" in result.output


VIRTUAL_PLAN = """[session]
scene = "virtual camera"
operator = "cli test"

[rig]
camera = "virtual:{jpegs}"
slider = "emulator"
speed = 50

[axes]
aperture = [{apertures}]
slider_mm = [120]
"""


def _virtual_plan(tmp_path, apertures):
    from PIL import Image

    jpegs = tmp_path / "jpegs"
    jpegs.mkdir(exist_ok=True)
    Image.new("RGB", (96, 64), (120, 110, 100)).save(jpegs / "DSC_0001.JPG", quality=85)
    plan = tmp_path / "plan.toml"
    plan.write_text(VIRTUAL_PLAN.format(jpegs=jpegs, apertures=apertures))
    return plan


def _cinectrl(*args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "cinectrl.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


import pytest  # noqa: E402


@pytest.mark.gphoto
@pytest.mark.timeout(200)
def test_run_on_the_virtual_camera_and_the_grbl_emulator(tmp_path):
    """The real CLI path: libgphoto2's virtual camera (worker process) + the GRBL emulator on a pty."""
    plan = _virtual_plan(tmp_path, '"f/8"')
    catalog = tmp_path / "lab" / "catalog.db"
    first = _cinectrl("capture", "run", str(plan), "--catalog", str(catalog), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "complete, 1/1 points done" in first.stdout and "contact sheet" in first.stdout
    again = _cinectrl("capture", "run", str(plan), "--catalog", str(catalog), "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and "already complete" in again.stdout and "already ran" in again.stdout
    status = _cinectrl("capture", "status", "--catalog", str(catalog), cwd=tmp_path)
    assert "1/1 points, 1 files" in status.stdout


@pytest.mark.gphoto
@pytest.mark.timeout(200)
def test_values_the_camera_does_not_offer_are_refused_before_anything_moves(tmp_path):
    """f/1.2 is not in the virtual camera's list (sending it would crash libgphoto2): refused, with its line."""
    plan = _virtual_plan(tmp_path, '"f/8", "f/1.2"')
    catalog = tmp_path / "lab" / "catalog.db"
    for command in ("plan", "run"):
        result = _cinectrl("capture", command, str(plan), "--catalog", str(catalog), cwd=tmp_path)
        assert result.returncode == 1
        assert "line 11 [axes.aperture]" in result.stderr and "does not offer aperture 'f/1.2'" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "lab" / "sessions").exists()      # nothing was shot
