"""Installing the server into its own venv: pip runs without the caller's PYTHONPATH (a test's network audit
hook, the toolkit's own tree must not reach pip). The venv's pip is a recording script here: installing the
real label-studio takes minutes and the package index, and the real install runs in the review tests."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from annotate import server

pytestmark = pytest.mark.timeout(60)


def test_pip_installs_the_server_without_the_callers_pythonpath(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    record = tmp_path / "pip-env.json"
    pip = venv / "bin" / "pip"
    pip.write_text(f"#!{sys.executable}\nimport json, os, pathlib, sys\n"
                   f"pathlib.Path({str(record)!r}).write_text(json.dumps({{'env': dict(os.environ), 'argv': sys.argv}}))\n"
                   f"exe = pathlib.Path({str(venv / 'bin' / 'label-studio')!r}); exe.write_text('#!/bin/sh\\n')\n"
                   f"exe.chmod(0o755)\n")
    pip.chmod(pip.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "audit-hook"))
    monkeypatch.setenv("CINECTRL_TEST_MARKER", "kept")

    exe = server.ensure_venv(venv)

    assert exe == venv / "bin" / "label-studio" and exe.exists()
    seen = json.loads(record.read_text())
    assert "PYTHONPATH" not in seen["env"]
    assert seen["env"]["CINECTRL_TEST_MARKER"] == "kept"          # the rest of the environment is passed on
    assert f"label-studio=={server.LABEL_STUDIO_VERSION}" in seen["argv"]
    assert os.environ["PYTHONPATH"] == str(tmp_path / "audit-hook")  # the caller's own environment is untouched
