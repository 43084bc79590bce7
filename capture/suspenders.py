"""Conditions that pause a session and clear by themselves (bluesky's suspenders), and the Ctrl-C pause.

A suspender is checked at every safe point (between frames, between passes). When it trips, the runner
waits, polling the condition, and resumes when it clears (sending every setting again before the next
frame: the operator may have touched the camera) or stops cleanly when it has not cleared within its
time limit. Nothing is lost either way: the ledger holds every point still to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


class SessionStopped(Exception):
    """The session stopped cleanly (abort, or a suspender that did not clear); a rerun resumes it."""

    def __init__(self, message: str, *, status: str = "paused") -> None:
        super().__init__(message)
        self.status = status


class DiskLow(Exception):
    """Free space is below what the remaining points need."""


@dataclass
class DiskGuard:
    """Free bytes where frames are written, optionally capped by a quota on what this session may use.

    The quota is how tests (and a cautious lab) simulate a full disk without a loop filesystem: the
    session behaves exactly as if the filesystem had that little room left.
    """

    root: Path
    quota_bytes: int | None = None
    reserve_bytes: int = 50_000_000      # never fill the last 50 MB of a real disk

    def used(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
        return total

    def free(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free - self.reserve_bytes
        if self.quota_bytes is not None:
            free = min(free, self.quota_bytes - self.used())
        return max(0, free)

    def check(self, need_bytes: float) -> None:
        free = self.free()
        if free < need_bytes:
            raise DiskLow(f"{_mb(free)} free under {self.root}, the next frames need {_mb(need_bytes)}; "
                          "free some space (or raise the quota) and the session resumes")


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class InterruptHandler:
    """First Ctrl-C (or SIGTERM): `on_signal()` runs at once (the runner sends the slider a feed hold from it)
    and the session pauses at the next safe point; SIGTERM then stops without asking. Second signal: stop now
    (KeyboardInterrupt)."""

    def __init__(self, on_signal: Callable[[], None] | None = None) -> None:
        self.requested = threading.Event()
        self.terminate = False               # SIGTERM: stop at the pause, never ask
        self.on_signal = on_signal
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "InterruptHandler":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_sigint(self, signum, frame) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.terminate = self.terminate or signum == signal.SIGTERM
        self.requested.set()
        if self.on_signal is not None:
            self.on_signal()

    def clear(self) -> None:
        self.requested.clear()


Decision = Callable[[str], str]   # reason -> "resume" | "abort"


def abort_decision(reason: str) -> str:
    """Non-interactive runs stop cleanly at a pause; a rerun resumes."""
    return "abort"
