"""The live display renders progress, the current point, the last frame and fault counters."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from capture.display import LiveDisplay


def test_live_display_shows_point_frame_and_faults():
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, force_terminal=False, width=120))
    display.start(10, 3, "demo")
    display.point("p0004 f/2.8 1/250 100 @ 120 mm")
    display.frame(Path("sessions/0001-demo/c000_f0001_p0004.jpg"), 0.05)
    display.fault("busy", "camera busy")
    display.fault("busy", "camera busy")
    display.stop()
    text = out.getvalue()
    assert "p0004 f/2.8" in text and "c000_f0001_p0004.jpg" in text and "busy 2" in text
    assert "4/10" in text
