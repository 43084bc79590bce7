"""The emulator's port: a pseudo-terminal served by one thread, and the DTR line a real board sees.

Packet mode on the master side tells us when a client opens the slave: pyserial flushes its input on
open, which arrives here as TIOCPKT_FLUSHREAD. A classic Arduino reboots when DTR rises on open, and DTR
only fell if the previous client closed the port with HUPCL set (the termios default). So an open resets
the board when it is the first one, or when the client before it left HUPCL set; a client that cleared
HUPCL (as `GrblSlider` does) finds the board as it left it -- position, homing and all. A pty has no real
DTR line, so the emulator reads the slave's HUPCL flag instead: sampled whenever the client talks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import threading
import time
import tty
from typing import Protocol


class Device(Protocol):
    """What the transport drives: the board behind the port."""

    out: bytearray

    def on_open(self, reset: bool, now: float) -> None: ...

    def on_bytes(self, data: bytes, now: float) -> None: ...

    def tick(self, now: float) -> None: ...

    def next_timeout(self, now: float) -> float | None: ...


class PtyTransport:
    """`start()` opens the pty and serves it until `stop()`; `close()` makes the port vanish (a pulled cable)."""

    def __init__(self, device: Device, lock: threading.RLock, *, name: str = "grbl-emulator") -> None:
        self.device = device
        self.lock = lock
        self.name = name
        self.master = self.slave = -1
        self.path = ""
        self.opens = 0                     # clients that opened the port so far
        self.resets_on_open = 0            # ... and how many of those opens reset the board (DTR)
        self._hupcl: bool | None = None    # HUPCL as the last client left it; None = no client yet
        self._thread: threading.Thread | None = None
        self._running = False
        self._wake_r, self._wake_w = os.pipe()

    def start(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        attrs[2] |= termios.HUPCL          # as a USB serial port comes up: DTR drops when its last user closes it
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"{self.name} {self.path}", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._running = False
        self.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def close(self) -> None:
        with self.lock:
            for fd in (self.master, self.slave):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self.slave = -1

    def wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    # ---------------------------------------------------------------------------------------- DTR

    def _sample_hupcl(self) -> None:
        try:
            self._hupcl = bool(termios.tcgetattr(self.slave)[2] & termios.HUPCL)
        except (termios.error, OSError):
            pass

    def _client_opened(self, now: float) -> None:
        reset = self._hupcl is None or self._hupcl     # DTR was low: never raised, or dropped at the last close
        self.opens += 1
        self.resets_on_open += reset
        self._sample_hupcl()
        self.device.on_open(reset, now)

    # ---------------------------------------------------------------------------------------- serving

    def _serve(self) -> None:
        while self._running:
            with self.lock:
                master = self.master
                timeout = self.device.next_timeout(time.monotonic())
                want_write = bool(self.device.out)
            if master < 0:
                self._running = False
                break
            try:
                readable, _, _ = select.select([master, self._wake_r], [master] if want_write else [], [], timeout)
            except (OSError, ValueError):
                if self.master < 0:
                    break
                raise
            if self._wake_r in readable:
                os.read(self._wake_r, 1024)
            with self.lock:
                if self.master < 0:
                    break
                if master in readable:
                    self._read(master)
                self.device.tick(time.monotonic())
                self._flush()

    def _read(self, master: int) -> None:
        try:
            packet = os.read(master, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EIO):
                return                             # EIO: no client holds the slave right now
            raise
        if not packet:
            return
        ctrl, data = packet[0], packet[1:]
        if ctrl != 0:
            if ctrl & termios.TIOCPKT_FLUSHREAD:
                self._client_opened(time.monotonic())
            return
        self._sample_hupcl()
        self.device.on_bytes(data, time.monotonic())

    def _flush(self) -> None:
        out = self.device.out
        if not out or self.master < 0:
            return
        try:
            n = os.write(self.master, bytes(out))
            del out[:n]
        except BlockingIOError:
            pass
        except OSError:
            out.clear()
