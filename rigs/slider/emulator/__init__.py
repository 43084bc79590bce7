"""A GRBL 1.1 controller on a pseudo-terminal, so every test and dry run exercises the real pyserial path.

Three parts, one job each: `pty` (the port and its DTR line, served by a thread), `interpreter` (bytes and
lines as Grbl reads them), `machine` (the board's state, motion and the carriage behind the motor).

What it models (see docs/slider.md for the list and the known gaps):
- the line protocol: `ok`/`error:N` per line, push messages, real-time bytes (`?`, `!`, `~`, 0x18, 0x85,
  overrides ignored), a 128-byte RX buffer (bytes beyond it are dropped, as on the board) and a 15-block
  planner, so character-counting senders see the same back-pressure as on an Arduino;
- the DTR reset of a classic Arduino: the first open reboots the board (position 0, Alarm until `$H`,
  banner), and so does every open after a client that closed with HUPCL set; after a client that cleared
  HUPCL the board keeps its state; the banner also follows Ctrl-X; `$$`, `$#`, `$G`, `$I`, `$N`, `$C`,
  `$X`, `$H`, `$J=`, `$SLP`, `$RST=`, `$n=value`;
- G0/G1/G4/G10 L2/L20/G17-19/G20/G21/G53/G54-59/G80/G90/G91/G92/G92.1/G94, M0-M9, F/S/T/N, comments;
- trapezoidal motion at `$110`/`$120` (time scaled by `speed`), feed hold (Hold:1 -> Hold:0) and resume,
  soft limits (ALARM:2), hard limit switches at both ends (ALARM:1), reset while moving (ALARM:3);
- the carriage as a physical thing behind the motor: backlash (play), position noise, stalls. MPos is what
  the controller counts (open loop), `carriage_mm` is where the carriage really is;
- fault injection: alarm mid-move, stalled axis, port vanishing.
"""

from __future__ import annotations

import threading
import time

from .interpreter import GcodeError, Interpreter
from .machine import (BUILD_DATE, LINE_BUFFER_SIZE, PLANNER_BLOCKS, RX_BUFFER_SIZE, VERSION, EmulatorOptions,
                      Machine, default_settings)
from .pty import PtyTransport

__all__ = ["BUILD_DATE", "EmulatorOptions", "GcodeError", "GrblEmulator", "LINE_BUFFER_SIZE", "PLANNER_BLOCKS",
           "RX_BUFFER_SIZE", "VERSION", "default_settings"]


class GrblEmulator:
    """Start with `start()`; connect pyserial to `.path`; `stop()` closes the pty and ends the thread."""

    def __init__(self, **options) -> None:
        unknown = set(options) - set(EmulatorOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown emulator option(s) {sorted(unknown)}; use "
                            f"{', '.join(EmulatorOptions.__dataclass_fields__)}")
        self.opt = EmulatorOptions(**options)
        self._lock = threading.RLock()
        self.machine = Machine(self.opt, on_disconnect=self._pull_cable)
        self.interpreter = Interpreter(self.machine)
        self.transport = PtyTransport(self, self._lock)

    # ---------------------------------------------------------------------------------------- the device

    @property
    def out(self) -> bytearray:
        return self.machine.out

    def on_open(self, reset: bool, now: float) -> None:
        if reset:
            self.machine.update(now)
            self.machine.boot()

    def on_bytes(self, data: bytes, now: float) -> None:
        self.interpreter.feed(data, now)

    def tick(self, now: float) -> None:
        self.machine.update(now)
        self.interpreter.run_lines(now)

    def next_timeout(self, now: float) -> float | None:
        return self.machine.next_timeout(now)

    def _pull_cable(self) -> None:
        self.transport.close()

    # ---------------------------------------------------------------------------------------- lifecycle

    def start(self) -> str:
        return self.transport.start()

    def stop(self) -> None:
        self.transport.stop()

    def __enter__(self) -> "GrblEmulator":
        if not self.path:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def path(self) -> str:
        return self.transport.path

    @property
    def master(self) -> int:
        return self.transport.master

    # ---------------------------------------------------------------------------------------- faults

    def inject_alarm(self, after_moves: int = 1, code: int = 1, fraction: float = 0.5) -> None:
        """The `after_moves`-th motion block from now stops at `fraction` of its way with ALARM:code."""
        with self._lock:
            self.machine.inject_alarm(after_moves, code, fraction)
        self.transport.wake()

    def inject_stall(self, after_moves: int = 1, fraction: float = 0.5) -> None:
        """From `fraction` of that move on, the carriage stops following the motor (MPos keeps counting)."""
        with self._lock:
            self.machine.inject_stall(after_moves, fraction)
        self.transport.wake()

    def inject_disconnect(self, after_moves: int | None = None, fraction: float = 0.5) -> None:
        """The port vanishes now, or at `fraction` of the `after_moves`-th motion block from now."""
        with self._lock:
            self.machine.inject_disconnect(after_moves, fraction)
        self.transport.wake()

    # ---------------------------------------------------------------------------------------- what tests look at

    @property
    def carriage_mm(self) -> float:
        """Where the carriage really is, in machine coordinates (what a ruler on the rail would say)."""
        with self._lock:
            return self.machine.carriage_mm(time.monotonic())

    @property
    def mpos_mm(self) -> float:
        """What the controller counts (MPos X), brought up to now."""
        with self._lock:
            self.machine.update(time.monotonic())
            return self.machine.mpos[0]

    @property
    def state(self) -> str:
        with self._lock:
            self.machine.update(time.monotonic())
            return self.machine.state

    @property
    def settings(self) -> dict[int, float]:
        return self.machine.settings

    @property
    def homed(self) -> bool:
        return self.machine.homed

    @property
    def idle_at(self) -> float | None:
        return self.machine.idle_at

    @property
    def disconnected(self) -> bool:
        return self.machine.disconnected

    @property
    def lines_received(self) -> int:
        return self.interpreter.lines_received

    @property
    def rx_dropped(self) -> int:
        return self.interpreter.rx_dropped

    @property
    def log(self):
        return self.interpreter.log

    @property
    def resets_on_open(self) -> int:
        """How many client opens rebooted the board (DTR); the others found it as it was left."""
        return self.transport.resets_on_open
