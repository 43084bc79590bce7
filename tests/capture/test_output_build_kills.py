"""Outputs are part of a session's completion: a session is `complete` only once every clip, proxy, pair,
contact sheet and report exists and is catalogued. The build is killed (os._exit, as kill -9 leaves it) after
each of its steps in turn; `capture status` must never say complete before the end, and a rerun must finish
with exactly the rows and files of an uninterrupted build: nothing duplicated, no `.part` left."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from capture import status as words
from capture.ledger import Ledger
from capture.report import KILL_AT_STEP_ENV

from .conftest import REPO, STILLS_PLAN, ledger_check, write_plan

pytestmark = pytest.mark.timeout(300)
RUNNER = REPO / "tests" / "capture" / "_run_session.py"


def _run(lab: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(KILL_AT_STEP_ENV, None)
    if kill_at is not None:
        env[KILL_AT_STEP_ENV] = str(kill_at)
    return subprocess.run([sys.executable, str(RUNNER), str(lab / "plan.toml"), str(lab / "catalog.db"), "--outputs"],
                          env=env, capture_output=True, text=True, timeout=120)


def _word(lab: Path) -> str:
    ledger = Ledger(lab / "catalog.db", readonly=True)
    try:
        (row,) = ledger.summaries()
        return row["word"]
    finally:
        ledger.close()


def _state(lab: Path) -> dict:
    """Everything the build leaves: output asset rows (each matching its file's bytes), clip and pair rows, files
    on disk. (Hashes are not compared across runs: x264 does not always encode the small proxies byte-identically.)"""
    db = sqlite3.connect(lab / "catalog.db")
    try:
        rows = db.execute("SELECT path, sha256, kind FROM assets WHERE point_id IS NULL").fetchall()
        for path, sha, _ in rows:
            assert hashlib.sha256((lab / path).read_bytes()).hexdigest() == sha, path
        assets = sorted((path, kind) for path, _, kind in rows)
        clips = sorted(db.execute("SELECT c.combination_key, a.path, p.path, c.frames FROM clips c "
                                  "JOIN assets a ON a.id = c.asset_id JOIN assets p ON p.id = c.proxy_asset_id"))
        pairs = sorted(db.execute("SELECT rc.combination_key, oc.combination_key, p.deltas_json, p.qc_json FROM pairs p "
                                  "JOIN clips rc ON rc.id = p.reference_clip_id "
                                  "JOIN clips oc ON oc.id = p.other_clip_id"))
        status = db.execute("SELECT status, state FROM sessions").fetchall()
    finally:
        db.close()
    files = sorted(str(p.relative_to(lab)) for p in (lab / "sessions").rglob("*") if p.is_file())
    return {"assets": assets, "clips": clips, "pairs": pairs, "status": status, "files": files}


def _catalogued_outputs(lab: Path) -> dict[str, int]:
    """Output files already catalogued (by a clip row): a rerun must keep them, not encode them again."""
    db = sqlite3.connect(lab / "catalog.db")
    try:
        paths = [r[0] for r in db.execute("SELECT a.path FROM clips c JOIN assets a ON a.id IN (c.asset_id, "
                                          "c.proxy_asset_id)")]
    finally:
        db.close()
    return {p: (lab / p).stat().st_mtime_ns for p in paths}


def test_a_kill_at_every_step_of_the_output_build_is_finished_by_a_rerun(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    write_plan(base, STILLS_PLAN, speed=200)
    first = _run(base, kill_at=1)                  # shoots everything, then dies after the first output file
    assert first.returncode == 137, first.stdout + first.stderr
    ledger_check(base / "catalog.db")
    assert _word(base) == words.OUTPUTS_INTERRUPTED          # never "complete" with outputs missing
    assert _state(base)["clips"] == []

    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    done = _run(reference)
    assert done.returncode == 0, done.stdout + done.stderr
    want = _state(reference)
    assert want["status"] == [("done", words.COMPLETE)] and len(want["clips"]) == 2 and len(want["pairs"]) == 1
    assert not [f for f in want["files"] if f.endswith(".part")]

    kill = 0
    while True:
        kill += 1
        lab = tmp_path / f"kill{kill}"
        shutil.copytree(base, lab)
        killed = _run(lab, kill_at=kill)
        if killed.returncode == 0:                 # past the last step: the build ran to the end
            break
        assert killed.returncode == 137, killed.stdout + killed.stderr
        assert _word(lab) == words.OUTPUTS_INTERRUPTED, killed.stdout   # status tells the truth at every step
        built = _catalogued_outputs(lab)
        rerun = _run(lab)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert {p: (lab / p).stat().st_mtime_ns for p in built} == built, "a catalogued output was rebuilt"
        assert _state(lab) == want, f"after a kill at step {kill}: {killed.stdout}"
        assert _word(lab) == words.COMPLETE
        again = _run(lab)                          # and once complete, a rerun changes nothing
        assert again.returncode == 0 and _state(lab) == want
    assert kill > 8      # clips, proxies, catalogue rows, pair, contact sheet (.part and final), report (.part, final)
    assert _state(lab) == want
