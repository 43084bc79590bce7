"""Plan-time refusals that used to surface late, or never: a relative `virtual:DIR` is read from the plan file's
folder and a missing one is refused at plan time; duplicate slider positions; a misspelt camera kind, also with
`capture plan --offline`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from capture.plan import PlanError, load_plan, parse_plan
from cinectrl.main import app

PLAN = """
[session]
scene = "s"
operator = "o"

[rig]
camera = "{camera}"
slider = "none"

[axes]
aperture = ["f/2.8", "f/8"]
{extra}
"""


def _write(folder: Path, camera: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.toml"
    path.write_text(PLAN.format(camera=camera, extra=extra))
    return path


def test_a_relative_virtual_folder_is_read_from_the_plan_files_folder(tmp_path, monkeypatch):
    plan_dir = tmp_path / "plans"
    (plan_dir / "frames").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)                                    # the shell is elsewhere
    plan = load_plan(_write(plan_dir, "virtual:frames"))
    assert plan.camera_spec() == f"virtual:{(plan_dir / 'frames').resolve()}"
    assert plan.camera == "virtual:frames"                         # the plan's identity is what it says


def test_a_missing_virtual_folder_is_refused_at_plan_time(tmp_path):
    with pytest.raises(PlanError, match=r"virtual camera folder .*plans/nope does not exist \(read from the plan "
                                        r"file's folder"):
        load_plan(_write(tmp_path / "plans", "virtual:nope"))


def test_duplicate_slider_positions_are_refused():
    with pytest.raises(PlanError, match=r"slider_mm lists 20 mm twice"):
        parse_plan(PLAN.format(camera="sim", extra="slider_mm = [10, 20, 20]"))


def test_a_misspelt_camera_is_refused_even_offline(tmp_path):
    with pytest.raises(PlanError, match=r"camera 'simm' is not a camera kind: did you mean 'sim'\?"):
        parse_plan(PLAN.format(camera="simm", extra=""))
    result = CliRunner().invoke(app, ["capture", "plan", str(_write(tmp_path, "simm")), "--offline"])
    assert result.exit_code != 0 and "did you mean 'sim'" in " ".join(result.output.split())
    parse_plan(PLAN.format(camera="usb:001,004", extra=""))         # ports and serial numbers still pass
    parse_plan(PLAN.format(camera="2031234567", extra=""))


def test_capture_status_and_plan_read_the_catalog_read_only(tmp_path):
    """Both only read: their connection refuses writes (so a read-only mount or another user's lab works)."""
    import sqlite3

    from capture.ledger import Ledger

    catalog = tmp_path / "lab" / "catalog.db"
    plan = _write(tmp_path, "sim")
    ran = CliRunner().invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet", "--init"])
    assert ran.exit_code == 0, ran.output
    ledger = Ledger(catalog, readonly=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
            ledger.conn.execute("UPDATE sessions SET state = 'x'")
    finally:
        ledger.close()
    before = catalog.read_bytes()
    for args in (["capture", "status"], ["capture", "plan", str(plan)]):
        result = CliRunner().invoke(app, [*args, "--catalog", str(catalog)])
        assert result.exit_code == 0, result.output
    assert catalog.read_bytes() == before


def test_status_words_an_interrupted_session_and_a_refused_new_take_truthfully(tmp_path):
    import sqlite3

    from capture import status as words
    from capture.ledger import Ledger
    from capture.plan import plan_key
    from capture.session import RunnerOptions, SessionRefused, SessionRunner
    from rigs.camera.protocol import CameraDisconnected

    from .conftest import tiny_sim

    plan = parse_plan(PLAN.format(camera="sim", extra=""))
    catalog = tmp_path / "catalog.db"

    def no_camera():
        raise CameraDisconnected("no camera found on USB")

    with pytest.raises(SessionRefused, match=r"no session was started .* rerun to start it") as refused:
        SessionRunner(plan, catalog, camera_factory=no_camera, slider_factory=lambda: None).run()
    assert "resume" not in str(refused.value).split("nothing to")[0]
    result = SessionRunner(plan, catalog, camera_factory=tiny_sim, slider_factory=lambda: None,
                           options=RunnerOptions(stop_after=1, build_outputs=False)).run()
    db = sqlite3.connect(catalog)                 # what a kill -9 leaves: 'running', and nobody holds the lock
    db.execute("UPDATE sessions SET status = 'running', state = 'running'")
    db.commit()
    db.close()
    ledger = Ledger(catalog, readonly=True)
    try:
        assert ledger.session(result.session_id)["word"] == words.INTERRUPTED
        assert [s["word"] for s in ledger.sessions_of_plan(plan_key(plan))] == [words.INTERRUPTED]
    finally:
        ledger.close()


def test_contact_sheet_rows_show_shutters_as_fractions_and_camera_path_offsets():
    from capture.report import row_label, shown

    assert shown({"shutter": "0.5", "aperture": "f/8"}) == {"shutter": "1/2", "aperture": "f/8"}
    assert shown({"shutter": "0.0100s"})["shutter"] == "1/100"
    assert row_label({"shutter": "0.5", "aperture": "f/8"}, ["shutter"], 20.0) == "1/2 @ +20 mm"
    assert row_label({"shutter": "2"}, ["shutter"], None) == "2"


def test_catalog_show_problems_is_not_flooded_by_the_runners_own_clips(tmp_path):
    """A passes session on the simulated camera: its recorded clips (no EXIF in video) and rendered proxies
    are unparsed, but the runner recorded their settings; `--problems` lists only files nobody can describe."""
    catalog = tmp_path / "lab" / "catalog.db"
    plan = tmp_path / "plan.toml"
    plan.write_text("""
[session]
scene = "s"
operator = "o"
[rig]
camera = "sim"
slider = "emulator"
speed = 50
camera_options = { width = 64, height = 48, clip_width = 64, clip_height = 48 }
[axes]
aperture = ["f/2.8", "f/8"]
[trajectory]
start_mm = 100
end_mm = 110
speed_mm_s = 20
frames = 6
fps = 10
[order]
mode = "passes"
""")
    ran = CliRunner().invoke(app, ["capture", "run", str(plan), "--catalog", str(catalog), "--quiet", "--init"])
    assert ran.exit_code == 0, ran.output
    (tmp_path / "lab" / "stray.jpg").write_bytes(b"not a jpeg")
    CliRunner().invoke(app, ["catalog", "ingest", str(tmp_path / "lab" / "stray.jpg"), "--catalog", str(catalog)])
    shown = CliRunner().invoke(app, ["catalog", "show", "--catalog", str(catalog), "--problems"])
    text = " ".join(shown.output.split())
    assert "stray.jpg" in text and "1 files unparsed or in error" in text, text
    assert ".mp4" not in text and "capture clips and outputs without EXIF left out" in text
