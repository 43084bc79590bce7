"""One owner per session: a second run is refused and told who runs it; a dead owner's session shows as
interrupted and the next run takes it over (and says so); a failed start leaves nothing `running`.
Real processes: the owner is `_run_session.py` on the simulated camera and the GRBL emulator."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capture import status as words
from capture.catalog import SESSION_STATUSES
from capture.owner import SessionBusy, SessionLock, holder
from capture.plan import load_plan, parse_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRefused, SessionRunner
from cinectrl.main import app
from rigs.camera.protocol import CameraDisconnected

from .conftest import REPO, done_points, STILLS_PLAN, ledger_check, tiny_sim, write_plan

pytestmark = pytest.mark.timeout(180)
runner = CliRunner()


def _status(catalog: Path, *args: str) -> str:
    result = runner.invoke(app, ["capture", "status", "--catalog", str(catalog), *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _run_here(plan_path: Path, catalog: Path):
    plan = load_plan(plan_path)
    rig = Rig(plan)
    return SessionRunner(plan, catalog, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                         options=RunnerOptions(build_outputs=False, plan_path=str(plan_path.resolve()))).run()


def test_one_owner_refusal_interrupted_status_and_takeover(tmp_path):
    plan = write_plan(tmp_path, STILLS_PLAN.replace("[100, 110, 120, 130]", "[100, 105, 110, 115, 120, 125, 130]"),
                      speed=3)
    catalog = tmp_path / "lab" / "catalog.db"
    owner = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_run_session.py"), str(plan),
                              str(catalog)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while done_points(catalog) < 1 and owner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert owner.poll() is None, owner.stderr.read()
        with pytest.raises(SessionBusy, match=rf"session 1 is being run by PID {owner.pid} on "):
            _run_here(plan, catalog)                         # refused before it opens a device
        shown = _status(catalog)
        assert "running" in shown and f"run by PID {owner.pid}" in shown
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert "interrupted (owner gone)" in _status(catalog)
    record = runner.invoke(app, ["capture", "status", "--catalog", str(catalog), "--session", "1", "--json"])
    assert '"status": "interrupted (owner gone)"' in record.output and '"owner": null' in record.output
    result = _run_here(plan, catalog)
    assert (result.status, result.session_id, result.resumed) == ("complete", 1, True)
    db = sqlite3.connect(catalog)
    takeovers = db.execute("SELECT message FROM capture_events WHERE kind = 'takeover'").fetchall()
    db.close()
    assert len(takeovers) == 1 and f"PID {owner.pid}" in takeovers[0][0] and "is gone" in takeovers[0][0]
    ledger_check(catalog)                                    # every point once, every hash matches its file


def test_the_lock_file_names_its_owner_and_frees_itself(tmp_path):
    lock = SessionLock(tmp_path / "s", what="session 7")
    assert lock.acquire(command="capture run x.toml") is None          # free: no takeover
    seen = holder(tmp_path / "s")
    assert seen is not None and seen.pid == os.getpid() and seen.command == "capture run x.toml"
    with pytest.raises(SessionBusy, match=rf"session 7 is being run by PID {os.getpid()}"):
        SessionLock(tmp_path / "s", what="session 7").acquire()
    lock.release()
    assert holder(tmp_path / "s") is None
    assert SessionLock(tmp_path / "s").acquire() is None               # released cleanly: not a takeover


def test_a_failed_start_leaves_no_session_running(tmp_path):
    plan = parse_plan('[session]\nscene = "s"\noperator = "o"\n[axes]\naperture = ["f/2.8", "f/4"]\n')
    catalog = tmp_path / "catalog.db"

    def gone():
        raise CameraDisconnected("no camera detected: check the USB cable", camera="gphoto2")

    with pytest.raises(SessionRefused, match="no session was started"):   # a new take: nothing to resume
        SessionRunner(plan, catalog, camera_factory=gone, slider_factory=lambda: None).run()
    db = sqlite3.connect(catalog)
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0       # nothing half-started
    db.close()
    first = SessionRunner(plan, catalog, camera_factory=tiny_sim, slider_factory=lambda: None,
                          options=RunnerOptions(stop_after=1, build_outputs=False)).run()
    assert first.status == words.PAUSED
    with pytest.raises(CameraDisconnected):
        SessionRunner(plan, catalog, camera_factory=gone, slider_factory=lambda: None).run()
    db = sqlite3.connect(catalog)
    assert db.execute("SELECT status, state FROM sessions").fetchall() == [("paused", "paused")]
    assert db.execute("SELECT count(*) FROM points WHERE status = 'running'").fetchone()[0] == 0
    db.close()
    assert holder(first.session_dir) is None                 # and the lock was let go


def test_one_vocabulary_stored_and_shown():
    assert set(words.WORDS) == set(words.MEANING) - set(words.ACTIVE.values())
    for word in words.WORDS:
        assert words.stored(word) in SESSION_STATUSES                       # fits the catalog's CHECK
        assert words.word(words.stored(word), word) == word                  # and reads back as itself
    assert words.word("paused", None) == words.PAUSED                        # rows from before the state column
    assert words.word("done", None) == words.COMPLETE
    assert words.word("running", "running", owner_alive=False) == words.INTERRUPTED
    assert words.word("running", words.BUILDING, owner_alive=False) == words.OUTPUTS_INTERRUPTED
    assert words.word("running", words.BUILDING, owner_alive=True) == words.BUILDING
    assert words.word("running", None) == words.RUNNING                      # never taken for building


@pytest.mark.parametrize("round_", range(2))
def test_two_simultaneous_runs_of_a_new_plan_make_one_session_and_one_refusal(tmp_path, round_):
    """Two real processes start the same plan at the same instant, before it has any session: the plan's lock
    is taken before either decides "take 1", so one shoots and the other is refused with the owner's PID."""
    plan = write_plan(tmp_path, STILLS_PLAN, speed=20)
    catalog = tmp_path / "lab" / "catalog.db"
    cmd = [sys.executable, str(Path(__file__).parent / "_run_session.py"), str(plan), str(catalog)]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert f"is being run by PID {procs[winner].pid} on " in outs[loser][1], outs[loser][1]
    db = sqlite3.connect(catalog)
    try:
        assert db.execute("SELECT count(*), max(take) FROM sessions").fetchone() == (1, 1)
    finally:
        db.close()
    ledger_check(catalog)
