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
