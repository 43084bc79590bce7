"""One owner per session: an exclusive flock on `<session folder>/.owner`, held while a process runs it.

The file records who holds it (PID, host, start time, command) so a refused second run can name the
owner. The kernel drops the lock when its process dies, however it dies, so a lock nobody holds is free:
the next run takes it over and says whose it was. `holder()` asks without taking it (`capture status`
uses it to tell a running session from one whose process is gone). The file is never deleted: unlinking
a lock file others may have open would let two processes hold two different files.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_NAME = ".owner"


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    started_at: float
    command: str = ""
    released_at: float | None = None

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"PID {self.pid} on {self.host} since {since}" + (f" ({self.command})" if self.command else "")


class SessionBusy(Exception):
    """Another live process runs this session."""

    def __init__(self, what: str, owner: Owner | None) -> None:
        who = owner.describe() if owner else "another process (it has not written its name yet)"
        super().__init__(f"{what} is being run by {who}; wait for it to finish, or stop that process "
                         "(Ctrl-C there) and rerun")
        self.owner = owner


def _read(fd: int) -> Owner | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536) or b"null")
        return Owner(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def _write(fd: int, owner: Owner) -> None:
    data = json.dumps(asdict(owner)).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


class SessionLock:
    """`acquire()` takes the lock (or raises SessionBusy); `release()` marks it released and lets go."""

    def __init__(self, folder: Path, *, what: str = "this session", name: str = LOCK_NAME) -> None:
        self.path = Path(folder) / name
        self.what = what
        self.fd: int | None = None
        self.owner: Owner | None = None

    def acquire(self, *, command: str = "", attempts: int = 5) -> Owner | None:
        """Take the lock. Returns the previous owner when it held the session and is gone (a takeover to
        log), None when the session was free. OSError (read-only or full disk) goes to the caller."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        for attempt in range(attempts):          # `holder()` takes a shared lock for an instant: try again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts - 1:
                    owner = _read(fd)
                    os.close(fd)
                    raise SessionBusy(self.what, owner) from None
                time.sleep(0.05)
        previous = _read(fd)
        self.owner = Owner(os.getpid(), socket.gethostname(), time.time(), command)
        try:
            _write(fd, self.owner)
        except OSError:
            os.close(fd)
            raise
        self.fd = fd
        if previous is not None and previous.released_at is None and previous.pid != os.getpid():
            return previous
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if self.owner is not None:
                _write(fd, Owner(**{**asdict(self.owner), "released_at": time.time()}))
        except OSError:
            pass                                   # the record is advice; the flock is the lock
        finally:
            os.close(fd)                           # closing drops the flock

    def __enter__(self) -> "SessionLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


PLAN_LOCKS = ".locks"


def plan_lock(data_root: Path, key: str) -> SessionLock:
    """The lock a run takes on a plan before it decides which session (which take) it is: held from before
    `choose_take` until the session it chose is claimed, so two runs of a plan with no session yet cannot both
    decide "take 1". One file per plan key under `<data root>/.locks/`."""
    return SessionLock(Path(data_root) / PLAN_LOCKS, what="this plan (deciding its session)", name=f"plan-{key}.owner")


def holder(folder: Path) -> Owner | None:
    """The live process holding a session folder's lock, or None when nobody does (never taken, released,
    or its process is gone). Read-only: works on a read-only lab folder."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or Owner(0, "?", 0.0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
