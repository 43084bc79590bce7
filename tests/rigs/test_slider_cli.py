"""`cinectrl rig slider` and `cinectrl rig emulate-slider`: real emulator on a pty, real pyserial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cinectrl.main import app

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


class Result:
    """CliRunner result with rich's line wrapping undone, so assertions do not depend on terminal width."""

    def __init__(self, result) -> None:
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split()).replace("  ", " ")


def rig(*args: str) -> Result:
    return Result(runner.invoke(app, ["rig", "slider", "--port", "emulator", "--speed", "50", *args]))


def test_status_prints_state_and_position():
    result = rig("status")
    assert result.exit_code == 0, result.output
    assert "Grbl 1.1h" in result.output and "travel 0..600 mm" in result.output
    assert "state Alarm position 0.000 mm" in result.output


def test_home_then_move_and_jog_print_positions():
    result = rig("home")
    assert result.exit_code == 0 and "state Idle position 0.000 mm" in result.output
    result = rig("move", "123.5")
    assert result.exit_code == 0, result.output
    assert "homing first" in result.output                         # each open resets the board (DTR)
    assert "moved to 123.500 mm: reads back 123.500 mm" in result.output
    result = rig("jog", "7.25")
    assert result.exit_code == 0 and "position 7.250 mm" in result.output


def test_out_of_travel_and_bad_input_are_one_line_errors():
    result = rig("move", "700")
    assert result.exit_code == 1
    assert "outside the travel 0..600 mm; nothing was sent" in result.output
    assert "Traceback" not in result.output
    assert rig("move").exit_code == 1 and "needs a distance" in rig("move").output
    assert rig("spin").exit_code == 1 and "unknown slider action 'spin'" in rig("spin").output
    result = rig("move", "10", "--no-home")
    assert result.exit_code == 1 and "locked (Alarm)" in result.output


def test_missing_port_is_named():
    result = Result(runner.invoke(app, ["rig", "slider", "--port", "/dev/does-not-exist", "status"]))
    assert result.exit_code == 1
    assert "/dev/does-not-exist" in result.output and "cannot open the port" in result.output


def test_hold_resume_reset_from_the_cli():
    for action in ("resume", "reset"):
        result = rig(action)
        assert result.exit_code == 0, result.output
    result = rig("hold")                                  # a locked board cannot hold: clear message
    assert result.exit_code == 1 and "home" in result.output


@pytest.fixture
def emulator_process():
    """`cinectrl rig emulate-slider` in its own process, as a technician would leave it running."""
    proc = subprocess.Popen([sys.executable, "-m", "cinectrl.main", "rig", "emulate-slider", "--speed", "20"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/"), path
        yield path, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cinectrl.main", "rig", "slider", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_status_after_move_reports_the_real_position(emulator_process):
    port, _ = emulator_process
    moved = cli("--port", port, "move", "120")
    assert moved.returncode == 0, moved.stderr
    assert "homing first" in moved.stdout and "moved to 120.000 mm: reads back 120.000 mm" in moved.stdout
    status = cli("--port", port, "status")
    assert "state Idle  position 120.000 mm" in status.stdout and "reset" not in status.stdout
    held = cli("--port", port, "hold")                       # the board is not reset: hold and resume work
    assert held.returncode == 0 and "state Hold:0  position 120.000 mm" in held.stdout
    resumed = cli("--port", port, "resume")
    assert resumed.returncode == 0 and "state Idle  position 120.000 mm" in resumed.stdout
    assert cli("--port", port, "jog", "5").returncode == 0
    assert "position 125.000 mm" in cli("--port", port, "status").stdout


def test_the_shell_holds_resumes_and_jogs_a_running_move(emulator_process):
    commands = "home\nmove 400 1200\nstatus\nhold\nstatus\nresume\nwait\njog -10\nwait\nspin\nmove x\nquit\n"
    shell = cli("--port", emulator_process[0], "shell", stdin=commands)
    assert shell.returncode == 0, shell.stderr
    lines = [line.removeprefix("slider> ") for line in shell.stdout.splitlines() if line.startswith("slider> ")]
    assert lines[1].startswith("moving to 400.000 mm")                           # the prompt came back at once
    assert lines[2].startswith("state Run")
    held = float(lines[3].split("position ")[1].split(" mm")[0])
    assert lines[3].startswith("state Hold:0") and 0 < held < 400                 # stopped mid-move, position kept
    assert lines[6] == "state Idle  position 400.000 mm  feed 0 mm/min"          # resumed, then waited for Idle
    assert lines[8] == "state Idle  position 390.000 mm  feed 0 mm/min"
    assert lines[9] == "error: unknown command 'spin'; type help"
    assert lines[10].startswith("error: move 'x': give numbers")
    assert "Traceback" not in shell.stderr


def test_emulate_slider_serves_until_interrupted(emulator_process):
    from rigs.slider.grbl import GrblSlider

    path, proc = emulator_process
    sl = GrblSlider(path)
    try:
        assert sl.home().state == "Idle"
        assert sl.move_to(42).position_mm == pytest.approx(42.0)
    finally:
        sl.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
