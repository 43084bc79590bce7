"""A third-party GRBL sender, unchanged, against the emulator: grbl-streamer in character-counting mode.

grbl-streamer is a test-only peer: the `test` extra installs it (pyproject.toml), so this always runs.
Checked by hand with 2.0.2: 301 lines streamed at 100 % RX fill, no error, no dropped byte.
"""

from __future__ import annotations

import threading
import time

import grbl_streamer
import pytest

from rigs.slider.emulator import GrblEmulator


@pytest.mark.timeout(60)
def test_grbl_streamer_character_counting_stream():
    emu = GrblEmulator(speed=50)
    emu.start()
    booted, completed = threading.Event(), threading.Event()
    problems: list[tuple] = []

    def callback(event, *data):
        if event == "on_boot":
            booted.set()
        elif event == "on_job_completed":
            completed.set()
        elif event in ("on_error", "on_alarm"):
            problems.append((event, data))

    g = grbl_streamer.GrblStreamer(callback)
    g.cnect(emu.path, 115200)
    try:
        assert booted.wait(5)
        g.poll_start()
        g.killalarm()
        time.sleep(0.2)
        g.homing()
        deadline = time.time() + 10
        while not emu.homed and time.time() < deadline:
            time.sleep(0.05)
        g.incremental_streaming = False
        g.write("\n".join([f"G1 X{1 + (i % 40) * 0.5:.3f} F3000" for i in range(300)] + ["G1 X250.5 F3000"]))
        completed.clear()
        g.job_run()
        assert completed.wait(30)
        deadline = time.time() + 30
        while (g.cmode != "Idle" or emu.lines_received < 303) and time.time() < deadline:
            time.sleep(0.05)
        assert problems == [] and emu.rx_dropped == 0
        assert g.cmpos[0] == pytest.approx(250.5)
    finally:
        g.poll_stop()
        g.disconnect()
        emu.stop()
