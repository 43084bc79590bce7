"""What a technician sees while a session runs: progress with ETA, current point, last frame, fault counters."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.table import Table


class Display(Protocol):
    def start(self, total: int, done: int, title: str) -> None: ...
    def point(self, description: str) -> None: ...
    def frame(self, path: Path, seconds: float) -> None: ...
    def fault(self, kind: str, message: str) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


class QuietDisplay:
    """No terminal output (tests, benchmarks); still counts faults so reports can show them."""

    def __init__(self) -> None:
        self.faults: Counter[str] = Counter()
        self.messages: list[str] = []

    def start(self, total: int, done: int, title: str) -> None: ...
    def point(self, description: str) -> None: ...
    def frame(self, path: Path, seconds: float) -> None: ...

    def fault(self, kind: str, message: str) -> None:
        self.faults[kind] += 1
        self.messages.append(f"{kind}: {message}")

    def message(self, text: str) -> None:
        self.messages.append(text)

    def stop(self) -> None: ...


class LiveDisplay:
    """rich Live panel: a progress bar with ETA over a small table of the session's state."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.faults: Counter[str] = Counter()
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console)
        self.task = None
        self.current = "-"
        self.last_frame = "-"
        self.last_seconds = 0.0
        self.last_message = ""
        self.live: Live | None = None

    def _render(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_row("point", self.current)
        table.add_row("last frame", f"{self.last_frame} ({self.last_seconds * 1000:.0f} ms)")
        table.add_row("faults", ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none")
        if self.last_message:
            table.add_row("status", self.last_message)
        return Group(self.progress, table)

    def start(self, total: int, done: int, title: str) -> None:
        self.task = self.progress.add_task(title, total=total, completed=done)
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._render)
        self.live.start()

    def point(self, description: str) -> None:
        self.current = description

    def frame(self, path: Path, seconds: float) -> None:
        self.last_frame = str(path)
        self.last_seconds = seconds
        if self.task is not None:
            self.progress.advance(self.task)

    def fault(self, kind: str, message: str) -> None:
        self.faults[kind] += 1
        self.last_message = f"{kind}: {message}"

    def message(self, text: str) -> None:
        self.last_message = text

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
