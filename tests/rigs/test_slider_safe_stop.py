"""A safe stop for a one-shot motion command: Ctrl-C (SIGINT) or SIGTERM during `cinectrl rig slider ... move`
sends a feed hold at once; the controller ends in Hold (not at the target), and the command says where the
carriage stopped. The GRBL emulator runs in this process on a pty; the command is a real second process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rigs.slider.emulator import GrblEmulator

pytestmark = pytest.mark.timeout(90)
REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cinectrl.main", "rig", "slider", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_move_holds_the_carriage_and_names_where(sig):
    emu = GrblEmulator(speed=1.0, max_rate_mm_min=3000.0)     # 500 mm at 50 mm/s: ~10 s, plenty to interrupt
    port = emu.start()
    try:
        homed = subprocess.run(_cli("--port", port, "home"), cwd=REPO, env=_env(), capture_output=True, text=True,
                               timeout=60)
        assert homed.returncode == 0, homed.stderr
        proc = subprocess.Popen(_cli("--port", port, "move", "500"), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while emu.mpos_mm < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert emu.state == "Run", (emu.state, proc.poll())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + sig, (proc.returncode, out, err)
        time.sleep(0.3)
        assert emu.state == "Hold:0"                           # the controller holds; it did not finish the move
        stopped = emu.mpos_mm
        assert 20 <= stopped < 400
        time.sleep(0.5)
        assert emu.mpos_mm == stopped                          # and it stays where it stopped
        text = " ".join(err.split())
        assert f"slider held at {stopped:.3f} mm (controller reports Hold:0)" in text, text
    finally:
        emu.stop()


class _Recorder:
    """A display that keeps what the runner told the technician (the runner's only output channel)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __getattr__(self, name):
        return lambda *a, **k: None

    def message(self, text: str) -> None:
        self.messages.append(text)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_capture_run_holds_the_carriage_mid_move_at_once(tmp_path, sig):
    """`capture run`: the signal holds the slider in the middle of the move (not after the point), the pause
    says "held" with the position the controller confirmed, and the session stops cleanly (paused)."""
    import threading

    from capture.plan import parse_plan
    from capture.session import RunnerOptions, SessionRunner
    from rigs.camera.sim import SimCamera
    from rigs.slider import open_slider

    plan = parse_plan("""
[session]
name = "safe stop"
scene = "s"
operator = "t"
[rig]
camera = "sim"
slider = "emulator"
[axes]
aperture = ["f/8"]
shutter = ["1/60"]
iso = ["100"]
slider_mm = [20, 580]
""")
    slider = open_slider("emulator", speed=4)
    emu = slider.emulator
    seen: dict[str, object] = {}

    def interrupt_mid_move() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (emu.state == "Run" and emu.mpos_mm > 100):
            time.sleep(0.005)
        os.kill(os.getpid(), sig)

    def decide(reason: str) -> str:
        seen["state"], seen["mpos"] = emu.state, emu.mpos_mm
        return "abort"

    display = _Recorder()
    threading.Thread(target=interrupt_mid_move, daemon=True).start()
    result = SessionRunner(plan, tmp_path / "catalog.db", slider_factory=lambda: slider, display=display,
                           camera_factory=lambda: SimCamera(width=64, height=48, speed=1000.0, slider=slider),
                           decide=decide, options=RunnerOptions(build_outputs=False)).run()
    assert result.status == "paused" and result.done == 1, result
    held = [m for m in display.messages if "slider held at" in m]
    assert held, display.messages
    if sig == signal.SIGINT:
        assert seen["state"] == "Hold:0" and 100 < seen["mpos"] < 560     # held mid-way, before asking
    assert "controller reports Hold:0" in held[0]


def test_held_is_said_only_when_the_controller_confirms_it():
    from rigs.slider import open_slider
    from rigs.slider.stop import confirm_hold

    slider = open_slider("emulator", speed=50)
    try:
        slider.home()
        held, message = confirm_hold(slider, "Ctrl-C")
        assert held and "controller reports Hold:0" in message   # the controller confirmed it
        slider.emulator.inject_disconnect()                     # the cable is pulled: no confirmation can come
        held, message = confirm_hold(slider, "Ctrl-C")
        assert not held and "did not confirm" in message and "held at" not in message, message
    finally:
        slider.close()


def test_a_new_client_ignores_the_late_answers_of_a_killed_one():
    """A client killed mid-queue (here: a raw one that leaves a move, a sync and two `$$` behind and closes
    without reading) must not have its late answers taken as the next client's: no travel -600..0."""
    import termios
    import tty

    from rigs.slider.grbl import GrblSlider

    emu = GrblEmulator(speed=5, homing=False)
    port = emu.start()
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~termios.HUPCL                     # closing does not reboot the board (as our driver does)
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        os.write(fd, b"G90 G1 X200 F3000\nG4 P0\n$$\n$$\n")
        time.sleep(0.05)
        os.close(fd)
        slider = GrblSlider(port)
        try:
            assert slider.info_pending and slider.status().state == "Run"     # busy: its settings not read yet
            deadline = time.monotonic() + 20
            while slider.status().state != "Idle" and time.monotonic() < deadline:
                time.sleep(0.05)
            slider.check_target(100)                   # reads the settings now, after a resync
            assert slider.info.travel_mm == (0.0, 600.0) and not slider.info_pending
            assert slider.move_to(150).position_mm == pytest.approx(150.0)   # requests and answers still paired
        finally:
            slider.close()
    finally:
        emu.stop()


def test_a_held_controller_is_reported_as_held_not_as_a_silent_cable():
    from rigs.slider import open_slider
    from rigs.slider.protocol import SliderTimeout

    slider = open_slider("emulator", speed=2)
    try:
        slider.home()
        slider.start_move(500)
        time.sleep(0.2)
        slider.hold()
        with pytest.raises(SliderTimeout, match=r"the controller is held \(Hold:0\) at .* mm, so the move cannot "
                                                r"finish: resume it") as caught:
            slider._sync(timeout=0.5)          # the sync move_to waits on (its own timeout is the move's length)
        assert "cable" not in str(caught.value)
    finally:
        slider.close()
