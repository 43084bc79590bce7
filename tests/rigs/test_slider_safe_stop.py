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
