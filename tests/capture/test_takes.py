"""A session is keyed by its plan's meaning: comments and formatting change nothing; an edited plan of an
unfinished session is refused with what changed, until the technician picks --new-take or --session N."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from capture.plan import describe_changes, parse_plan, plan_key
from capture.session import RunnerOptions, SessionRunner
from capture.takes import PlanChanged
from cinectrl.main import app

from .conftest import tiny_sim

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()

PLAN = """# a sweep, with comments
[session]
scene = "desk"
operator = "ana"
notes = "first try"

[rig]
camera = "sim"
slider = "none"
speed = 1000
camera_options = {{ width = 64, height = 48 }}

[axes]
aperture = ["f/2.8", "f/4", "f/5.6"]      # three stops
shutter = ["1/125"]
iso = ["{iso}"]
"""

REFORMATTED = """[axes]
iso=['{iso}']
shutter=['0.008']
aperture=['2.8','F4','f/5.6']
[rig]
slider='none'
speed=3
camera='sim'
camera_options={{height=48,width=64}}
[session]
operator='ana'
scene='desk'
notes="edited notes: notes, rig.speed and [costs] are not part of a plan's meaning"
[costs]
capture_s = 2.0
"""


def _run(tmp_path, text, **options):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return SessionRunner(parse_plan(text, source=str(path)), tmp_path / "catalog.db", camera_factory=tiny_sim,
                         slider_factory=lambda: None,
                         options=RunnerOptions(build_outputs=False, plan_path=str(path.resolve()), **options)).run()


def _sessions(tmp_path) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "catalog.db")
    try:
        return db.execute("SELECT id, take, state FROM sessions ORDER BY id").fetchall()
    finally:
        db.close()


def test_comments_formatting_and_spelling_do_not_make_a_new_session(tmp_path):
    assert plan_key(parse_plan(PLAN.format(iso=100))) == plan_key(parse_plan(REFORMATTED.format(iso=100)))
    first = _run(tmp_path, PLAN.format(iso=100), stop_after=1)
    assert (first.session_id, first.status) == (1, "paused")
    second = _run(tmp_path, REFORMATTED.format(iso=100))
    assert (second.session_id, second.resumed, second.status, second.done) == (1, True, "complete", 3)
    assert _sessions(tmp_path) == [(1, 1, "complete")]


def test_an_edited_plan_is_refused_with_what_changed(tmp_path):
    _run(tmp_path, PLAN.format(iso=100), stop_after=1)
    with pytest.raises(PlanChanged) as info:
        _run(tmp_path, PLAN.format(iso=400))
    message = str(info.value)
    assert "changed since session 1 (paused, 1/3 points done)" in message
    assert "axes.iso: [100] -> [400]" in message and "--new-take" in message and "--session 1" in message
    assert _sessions(tmp_path) == [(1, 1, "paused")]               # nothing was touched


def test_new_take_and_resuming_with_the_stored_plan(tmp_path):
    _run(tmp_path, PLAN.format(iso=100), stop_after=1)
    take = _run(tmp_path, PLAN.format(iso=400), new_take=True, stop_after=1)
    assert (take.session_id, take.take, take.resumed) == (2, 1, False)          # take 1 of the edited plan
    again = _run(tmp_path, PLAN.format(iso=100), new_take=True, stop_after=1)
    assert (again.session_id, again.take) == (3, 2)                            # take 2 of the first plan
    resumed = SessionRunner(None, tmp_path / "catalog.db", camera_factory=tiny_sim, slider_factory=lambda: None,
                            options=RunnerOptions(build_outputs=False, session_id=1)).run()
    assert (resumed.session_id, resumed.status, resumed.done) == (1, "complete", 3)
    db = sqlite3.connect(tmp_path / "catalog.db")
    isos = {json.loads(s)["iso"] for (s,) in db.execute("SELECT settings_json FROM points WHERE session_id = 1")}
    db.close()
    assert isos == {"100"}                                                    # the stored plan, not the file's


def test_a_finished_session_is_not_reshot_and_legacy_sessions_are_keyed(tmp_path):
    _run(tmp_path, PLAN.format(iso=100))
    db = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None)
    db.execute("UPDATE sessions SET plan_key = NULL, take = NULL")         # as written before plan keys existed
    db.close()
    again = _run(tmp_path, REFORMATTED.format(iso=100))
    assert (again.session_id, again.status) == (1, "complete") and "already complete" in again.message
    assert _sessions(tmp_path) == [(1, 1, "complete")]


def test_describe_changes_names_each_field():
    a = parse_plan(PLAN.format(iso=100))
    b = parse_plan(PLAN.format(iso=100).replace('"f/5.6"]', '"f/8"]').replace('scene = "desk"', 'scene = "bench"'))
    assert describe_changes(a, b) == ["axes.aperture: [f/2.8, f/4, f/5.6] -> [f/2.8, f/4, f/8]",
                                      "session.scene: desk -> bench"]


def test_cli_says_what_changed_and_how_to_go_on(tmp_path):
    plan, catalog = tmp_path / "plan.toml", tmp_path / "catalog.db"
    plan.write_text(PLAN.format(iso=100))
    first = runner.invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet", "--stop-after", "1"])
    assert first.exit_code == 3 and "paused: stopped after 1 frames" in first.output
    plan.write_text(PLAN.format(iso=400))
    preview = runner.invoke(app, ["capture", "plan", str(plan), "--catalog", str(catalog)])
    assert preview.exit_code == 0 and "axes.iso: [100] -> [400]" in preview.output
    refused = runner.invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet"])
    assert refused.exit_code == 1 and "--new-take" in refused.output and "Traceback" not in refused.output
    resumed = runner.invoke(app, ["capture", "run", "--session", "1", "--catalog", str(catalog), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert "session 1 (take 1) resumed: complete, 3/3 points" in " ".join(resumed.output.split())
    shown = json.loads(runner.invoke(app, ["capture", "status", "--catalog", str(catalog), "--session", "1",
                                           "--json"]).output)
    assert shown["status"] == "complete" and shown["points"] == {"total": 3, "done": 3, "failed": 0}
    assert shown["plan_path"] == str(plan.resolve()) and shown["take"] == 1 and shown["readback_mismatches"] == 0
    new = runner.invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet", "--new-take"])
    assert new.exit_code == 0 and "session 2 (take 1) ran: complete" in " ".join(new.output.split())


def test_suspended_is_shown_as_suspended(tmp_path):
    result = _run(tmp_path, PLAN.format(iso=100) + "\n[costs]\nbytes_per_still = 5000000\n",
                  disk_quota_bytes=1_000_000, disk_wait_s=0)
    assert result.status == "suspended"
    shown = " ".join(runner.invoke(app, ["capture", "status", "--catalog", str(tmp_path / "catalog.db")]).output.split())
    assert "): suspended," in shown and "fix it and rerun to resume" in shown
