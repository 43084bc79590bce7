import pytest

from typer.testing import CliRunner

from cinectrl.main import app


def test_help_lists_every_group():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("rig", "capture", "catalog", "review", "train", "serve"):
        assert group in result.output


@pytest.mark.timeout(300)
def test_python_dash_m_cinectrl_is_the_same_app(tmp_path):
    """`python -m cinectrl` works (cinectrl/__main__.py), named as the console script, with its exit codes."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "cinectrl", "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: cinectrl " in done.stdout and all(g in done.stdout for g in ("capture", "train", "serve"))
    done = subprocess.run([sys.executable, "-m", "cinectrl", "train", "run", str(tmp_path / "missing.toml")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "missing.toml not found" in done.stdout + done.stderr
