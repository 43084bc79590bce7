"""The `Slider` protocol (GRBL driver, emulator-backed driver, or none) and its typed errors.

Positions are millimetres in machine coordinates along the slider's one axis. A move returns the
read-back machine position so the catalog records where the carriage *says* it is, not where we
asked it to go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class SliderError(Exception):
    """Base of every slider failure; the message names the port, the command and what to do."""

    def __init__(self, message: str, *, port: str = "") -> None:
        super().__init__(f"slider {port}: {message}" if port else message)
        self.port = port


class TravelError(SliderError, ValueError):
    """A target outside the slider's travel; refused before anything is sent."""


class SliderAlarm(SliderError):
    """The controller is in ALARM (limit hit, reset while moving...): position may be lost."""

    def __init__(self, message: str, *, code: int | None = None, port: str = "") -> None:
        super().__init__(message, port=port)
        self.code = code


class SliderCommandError(SliderError):
    """The controller answered `error:N` to a line."""

    def __init__(self, message: str, *, code: int | None = None, port: str = "") -> None:
        super().__init__(message, port=port)
        self.code = code


class SliderTimeout(SliderError):
    """No answer, or no Idle, within the time allowed."""


class MotionHeld(SliderError):
    """A feed hold was requested (Ctrl-C, SIGTERM) while a motion command waited: the wait stops at once so
    the caller can confirm the hold (`hold()`) and say where the carriage stopped."""


class SliderDisconnected(SliderError):
    """The serial port vanished (unplugged, controller reset, emulator stopped)."""


@dataclass(frozen=True)
class SliderInfo:
    firmware: str                   # e.g. "Grbl 1.1h"
    build: str = ""                 # from $I
    port: str = ""
    travel_mm: tuple[float, float] = (0.0, 600.0)   # (min, max) machine coordinates after homing
    max_rate_mm_min: float = 0.0    # $110
    accel_mm_s2: float = 0.0        # $120
    settings: dict[str, str] = field(default_factory=dict)  # the full $$ table


@dataclass(frozen=True)
class SliderStatus:
    state: str                      # Idle, Run, Hold:0, Alarm, Home, ...
    position_mm: float              # machine position of the slider axis
    feed_mm_min: float = 0.0


@dataclass(frozen=True)
class MoveResult:
    target_mm: float
    position_mm: float              # read back after Idle + settle
    started_at: float               # host time.time() when the move was sent
    finished_at: float              # host time.time() when Idle was seen


@dataclass(frozen=True)
class TrajectoryRun:
    start_mm: float
    end_mm: float
    speed_mm_s: float
    motion_started_at: float        # host time at which the carriage left start_mm
    finished_at: float | None = None


@runtime_checkable
class Slider(Protocol):
    @property
    def info(self) -> SliderInfo: ...

    def status(self) -> SliderStatus: ...

    def home(self, *, timeout: float = 120.0) -> SliderStatus: ...

    def move_to(self, mm: float, *, feed_mm_min: float | None = None) -> MoveResult:
        """Absolute move, approaching from the configured side; returns after Idle + settle."""
        ...

    def check_target(self, mm: float) -> None:
        """Raise TravelError if `mm` is outside travel; sends nothing."""
        ...

    def run_trajectory(self, start_mm: float, end_mm: float, *, speed_mm_s: float,
                       wait: bool = True) -> TrajectoryRun:
        """Go to start, then move to end at speed; reports when motion started so clips align."""
        ...

    def wait_idle(self, *, timeout: float = 60.0) -> SliderStatus: ...

    def hold(self) -> None: ...

    def resume(self) -> None: ...

    def reset(self) -> None:
        """Soft reset (0x18). Position is lost if moving; re-home afterwards."""
        ...

    def close(self) -> None: ...
