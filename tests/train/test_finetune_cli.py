"""`cinectrl train run` then `cinectrl train eval` on a real tiny catalog with captured exposure sweeps."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cinectrl.main import app

from .conftest import TINY_CONFIG, make_pair_catalog


@pytest.mark.timeout(180)
def test_train_run_then_eval(tmp_path):
    catalog = make_pair_catalog(tmp_path / "lab")
    config = tmp_path / "train.toml"
    config.write_text(TINY_CONFIG.format(name="cli", out=tmp_path / "run", catalog=catalog, extra=""))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "run", str(config), "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.output
    model = tmp_path / "run" / "model"
    result = runner.invoke(app, ["train", "eval", "--model", str(model), "--catalog", str(catalog),
                                 "--out", str(tmp_path / "report"), "--steps", "2", "--max-frames", "9"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["methods"]) >= {"model", "identity"}
    assert {s["reference_kind"] for s in metrics["sweeps"]} == {"captured"}
    identity = metrics["methods"]["identity"]["axes"]["S"]
    assert identity["corrcoef"] == 0.0 and identity["corrcoef_undefined"] == identity["sweeps"] >= 1
    assert "S" in metrics["methods"]["model"]["axes"]
    assert (tmp_path / "report" / "report.html").is_file()


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\noutput_dir = "o"\n[train]\ntrainable = "nope"\n')
    result = runner.invoke(app, ["train", "run", str(bad)])
    assert result.exit_code == 2 and "trainable = 'nope'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "eval", "--model", str(tmp_path)])
    assert result.exit_code == 1 and "not a cinectrl model directory" in result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path)], env={"CINECTRL_SERVE_TOKEN": ""})
    assert result.exit_code == 1 and "CINECTRL_SERVE_TOKEN" in result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path)], env={"CINECTRL_SERVE_TOKEN": "t"})
    assert result.exit_code == 1 and "not a cinectrl model directory" in result.output
