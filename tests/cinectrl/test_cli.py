from typer.testing import CliRunner

from cinectrl.main import app


def test_help_lists_every_group():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("rig", "capture", "catalog", "review", "train", "serve"):
        assert group in result.output
