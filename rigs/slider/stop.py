"""The safe stop of a motion command: Ctrl-C (SIGINT) or SIGTERM sends a feed hold at once and the command
reports where the carriage stopped, saying "held" only once the controller confirms it (status `Hold:0`).

A bare Ctrl-C would end the process and leave the controller finishing its queued move (Grbl runs what it
has buffered whether its host is alive or not); a soft reset would stop it but loses position (ALARM:3).
The feed hold `!` is a real-time byte: `request_hold()` writes it from the signal handler itself, and the
motion wait in progress ends with MotionHeld, so the hold costs no more than the controller's deceleration.
A second signal stops the command at once (KeyboardInterrupt), the hold already sent.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from .protocol import SliderError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SafeStop:
    """`with SafeStop(slider) as stop:` around a motion command; `stop.signal` is set once a signal came."""

    def __init__(self, slider: Any) -> None:
        self.slider = slider
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "SafeStop":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        request = getattr(self.slider, "request_hold", None)
        if request is not None:
            request()

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signal in (None, signal.SIGINT) else signal.Signals(self.signal).name

    @property
    def exit_code(self) -> int:
        """What a shell expects from a process stopped by this signal (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + int(self.signal or signal.SIGINT)

    def confirm(self) -> tuple[bool, str]:
        """(held, message): ask the controller to confirm the hold and say where the carriage is."""
        return confirm_hold(self.slider, self.name)


def confirm_hold(slider: Any, why: str = "Ctrl-C") -> tuple[bool, str]:
    """Send (again) the feed hold and wait for the controller to confirm it. (True, "held at X mm ...") once the
    status says Hold (or Idle: nothing was moving); (False, why not) when it did not confirm."""
    try:
        st = slider.hold()
    except SliderError as exc:
        return False, (f"{why}: feed hold sent but the controller did not confirm it ({exc}); the carriage may "
                       "still be moving: check it, and reset the controller if it is")
    if st is None:
        return True, f"{why}: slider held"
    if str(st.state).startswith("Hold"):
        return True, (f"{why}: slider held at {st.position_mm:.3f} mm (controller reports {st.state}); "
                      "`resume` finishes the move, `reset` drops it (re-home after a reset)")
    return True, f"{why}: slider stopped at {st.position_mm:.3f} mm (controller {st.state}: nothing was moving)"
