"""Camera faults decided before a session starts: which call of which operation fails, and how.

A schedule is shared by every camera object a session opens (a reopened camera continues it), so a
test knows exactly how many faults were injected and can check the runner's counts against them. Real
bodies fail the way the kinds say: `busy` (PTP Device Busy right after a capture), `timeout` (the body
stopped answering), `disconnect` (the USB device is gone).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from typing import Mapping, Sequence

from .protocol import CameraBusy, CameraDisconnected, CameraError, CameraTimeout

KINDS = ("busy", "timeout", "disconnect")
OPERATIONS = ("set", "capture")


class FaultSchedule:
    """`script[op][n]` lists the faults raised by the n-th call of `op` (1-based, every call counted, failed
    ones too) and the calls right after it: `{"capture": {4: ["busy", "busy"]}}` makes calls 4 and 5 busy."""

    def __init__(self, script: Mapping[str, Mapping[int, Sequence[str]]] | None = None) -> None:
        self.script: dict[str, dict[int, list[str]]] = {}
        for op, calls in (script or {}).items():
            if op not in OPERATIONS:
                raise ValueError(f"fault schedule: unknown operation {op!r}; use {', '.join(OPERATIONS)}")
            for n, kinds in calls.items():
                bad = [k for k in kinds if k not in KINDS]
                if bad or int(n) < 1:
                    raise ValueError(f"fault schedule {op} call {n}: {bad or n!r} (kinds: {', '.join(KINDS)})")
                self.script.setdefault(op, {})[int(n)] = list(kinds)
        self.calls: Counter[str] = Counter()
        self._queued: dict[str, deque[str]] = {op: deque() for op in OPERATIONS}
        self.injected: list[tuple[str, int, str]] = []      # (operation, call number, kind)

    @classmethod
    def seeded(cls, seed: int, *, calls: Mapping[str, int], rate: float, bursts: Sequence[int] = (1, 2, 3),
               kinds: Sequence[str] = ("busy",)) -> "FaultSchedule":
        """A random schedule over the first `calls[op]` calls of each operation: with probability `rate` a
        call starts a burst of `random.choice(bursts)` faults of one kind. Bursts never overlap."""
        rng = random.Random(seed)
        script: dict[str, dict[int, list[str]]] = {}
        for op, count in calls.items():
            n = 1
            while n <= count:
                if rng.random() < rate:
                    burst = rng.choice(list(bursts))
                    script.setdefault(op, {})[n] = [rng.choice(list(kinds))] * burst
                    n += burst + 1
                else:
                    n += 1
        return cls(script)

    def next(self, op: str) -> str | None:
        """Called by the camera before each `op`; the fault kind to raise, or None."""
        self.calls[op] += 1
        n = self.calls[op]
        self._queued[op].extend(self.script.get(op, {}).get(n, ()))
        if not self._queued[op]:
            return None
        kind = self._queued[op].popleft()
        self.injected.append((op, n, kind))
        return kind

    def count(self, kind: str | None = None, op: str | None = None) -> int:
        return sum(1 for o, _, k in self.injected if (kind is None or k == kind) and (op is None or o == op))


def fault_error(kind: str, op: str, camera: str) -> CameraError:
    cls = {"busy": CameraBusy, "timeout": CameraTimeout, "disconnect": CameraDisconnected}[kind]
    text = {"busy": "PTP Device Busy", "timeout": "PTP Timeout", "disconnect": "USB device gone"}[kind]
    return cls(f"{text} during {op} (scheduled)", camera=camera)
