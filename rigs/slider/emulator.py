"""A GRBL 1.1 controller on a pseudo-terminal, so every test and dry run exercises the real pyserial path.

What it models (see docs/slider.md for the list and the known gaps):
- the line protocol: `ok`/`error:N` per line, push messages, real-time bytes (`?`, `!`, `~`, 0x18, 0x85,
  overrides ignored), a 128-byte RX buffer (bytes beyond it are dropped, as on the board) and a 15-block
  planner, so character-counting senders see the same back-pressure as on an Arduino;
- the banner after the client opens the port (a DTR reset reboots the board: position 0, Alarm until `$H`)
  and after Ctrl-X; `$$`, `$#`, `$G`, `$I`, `$N`, `$C`, `$X`, `$H`, `$J=`, `$SLP`, `$RST=`, `$n=value`;
- G0/G1/G4/G10 L2/L20/G17-19/G20/G21/G53/G54-59/G80/G90/G91/G92/G92.1/G94, M0-M9, F/S/T/N, comments;
- trapezoidal motion at `$110`/`$120` (time scaled by `speed`), feed hold (Hold:1 -> Hold:0) and resume,
  soft limits (ALARM:2), hard limit switches at both ends (ALARM:1), reset while moving (ALARM:3);
- the carriage as a physical thing behind the motor: backlash (play), position noise, stalls. MPos is what
  the controller counts (open loop), `carriage_mm` is where the carriage really is;
- fault injection: alarm mid-move, stalled axis, port vanishing.

Packet mode on the master side tells us when the client opens the slave: pyserial flushes its input on
open, which arrives here as TIOCPKT_FLUSHREAD - our stand-in for the DTR reset a real board sees.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import random
import re
import select
import struct
import termios
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass, field

from .motion import Trapezoid

VERSION = "1.1h"
BUILD_DATE = "20190825"
RX_BUFFER_SIZE = 128          # the AVR serial ring (RX_BUFFER_SIZE+1 slots in 1.1: all 128 bytes usable)
PLANNER_BLOCKS = 15           # BLOCK_BUFFER_SIZE 16, one kept free
LINE_BUFFER_SIZE = 80
WCO_REFRESH_BUSY, WCO_REFRESH_IDLE = 30, 10
AXES = "XYZ"

BUSY_STATES = ("Run", "Jog", "Home", "Hold:1")
GWORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")


def default_settings(travel_mm: float, max_rate: float, accel: float, positive_space: bool) -> dict[int, float]:
    return {
        0: 10, 1: 255, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
        20: 1, 21: 1, 22: 1, 23: 1 if positive_space else 0, 24: 100.0, 25: 1500.0, 26: 250, 27: 1.0,
        30: 1000, 31: 0, 32: 0,
        100: 80.0, 101: 80.0, 102: 80.0, 110: max_rate, 111: max_rate, 112: max_rate,
        120: accel, 121: accel, 122: accel, 130: travel_mm, 131: 0.0, 132: 0.0,
    }


INT_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}


class GcodeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Block:
    target: list[float]              # machine mm, 3 axes
    feed_mm_s: float
    rapid: bool = False
    jog: bool = False


@dataclass
class Motion:
    start: list[float]
    unit: list[float]
    profile: Trapezoid
    t0: float                        # host monotonic start
    block: Block
    event_dist: float | None = None  # distance along the move at which `event` fires
    event: str = ""                  # "alarm:N", "stall", "disconnect", "hardlimit", "hold"
    carriage0: float = 0.0


@dataclass
class Faults:
    alarm_after: int | None = None
    alarm_code: int = 1
    stall_after: int | None = None
    disconnect_after: int | None = None
    fraction: float = 0.5
    moves_seen: int = 0


@dataclass
class Modal:
    motion: int = 0
    absolute: bool = True
    inches: bool = False
    coord: int = 0                   # 0..5 = G54..G59
    feed_mm_min: float = 0.0
    spindle: str = "M5"
    coolant: str = "M9"
    plane: str = "G17"
    tool: int = 0
    speed: float = 0.0


@dataclass
class Pending:
    """A line that cannot complete yet: G4 / G10 / G92 wait for an empty planner, $H for the cycle."""
    kind: str                        # "sync" | "home"
    until: float = 0.0               # host time when a dwell ends (after sync)
    dwell_s: float = 0.0
    synced: bool = False
    action: object = None


@dataclass
class EmulatorOptions:
    travel_mm: float = 600.0
    max_rate_mm_min: float = 3000.0
    accel_mm_s2: float = 250.0
    speed: float = 1.0               # time compression for tests: 50 = fifty times faster than real
    positive_space: bool = True      # HOMING_FORCE_SET_ORIGIN + home to min: travel 0..$130
    soft_limits: bool = True
    hard_limits: bool = True
    homing: bool = True
    backlash_mm: float = 0.0
    noise_mm: float = 0.0
    start_mm: float = 250.0          # where the carriage sits physically at power-up (mm from the min switch)
    boot_s: float = 0.0              # real boards take ~1.5 s after a DTR reset; scaled by speed
    seed: int | None = None
    settings: dict[int, float] = field(default_factory=dict)


class GrblEmulator:
    """Start with `start()`; connect pyserial to `.path`; `stop()` closes the pty and ends the thread."""

    def __init__(self, **options) -> None:
        unknown = set(options) - set(EmulatorOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown emulator option(s) {sorted(unknown)}; use "
                            f"{', '.join(EmulatorOptions.__dataclass_fields__)}")
        self.opt = EmulatorOptions(**options)
        if self.opt.speed <= 0:
            raise ValueError(f"emulator speed must be > 0, got {self.opt.speed}")
        self.settings = default_settings(self.opt.travel_mm, self.opt.max_rate_mm_min, self.opt.accel_mm_s2,
                                         self.opt.positive_space)
        self.settings[20] = 1 if self.opt.soft_limits else 0
        self.settings[21] = 1 if self.opt.hard_limits else 0
        self.settings[22] = 1 if self.opt.homing else 0
        self.settings.update(self.opt.settings)
        self.rng = random.Random(self.opt.seed)
        self.faults = Faults()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._running = False
        self.master = self.slave = -1
        self.path = ""
        self._wake_r, self._wake_w = os.pipe()
        self._out = bytearray()
        # physical: switches at 0 and length; carriage position in mm from the min switch
        self.length_mm = self.opt.travel_mm + 2 * self.settings[27]
        self.carriage_phys = min(max(self.opt.start_mm, 0.5), self.length_mm - 0.5)
        self.stalled = False
        self.disconnected = False
        self.idle_at: float | None = None       # host time the last motion ended (for the benchmark)
        self.lines_received = 0
        self.rx_dropped = 0
        self.log: deque[str] = deque(maxlen=200)
        self._power_up()

    # ---------------------------------------------------------------------------------------- lifecycle

    def start(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"grbl-emulator {self.path}", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> "GrblEmulator":
        if not self.path:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _close_pty(self) -> None:
        with self._lock:
            for fd in (self.master, self.slave):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self.slave = -1

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    # ---------------------------------------------------------------------------------------- faults

    def inject_alarm(self, after_moves: int = 1, code: int = 1, fraction: float = 0.5) -> None:
        """The `after_moves`-th motion block from now stops at `fraction` of its way with ALARM:code."""
        with self._lock:
            self.faults.alarm_after = self.faults.moves_seen + after_moves
            self.faults.alarm_code, self.faults.fraction = code, fraction
            if after_moves <= 0 and self.motion is not None:
                self._trip(time.monotonic(), f"alarm:{code}")
        self._wake()

    def inject_stall(self, after_moves: int = 1, fraction: float = 0.5) -> None:
        """From `fraction` of that move on, the carriage stops following the motor (MPos keeps counting)."""
        with self._lock:
            self.faults.stall_after = self.faults.moves_seen + after_moves
            self.faults.fraction = fraction
        self._wake()

    def inject_disconnect(self, after_moves: int | None = None, fraction: float = 0.5) -> None:
        """The port vanishes now, or at `fraction` of the `after_moves`-th motion block from now."""
        with self._lock:
            if after_moves is None:
                self._disconnect()
            else:
                self.faults.disconnect_after = self.faults.moves_seen + after_moves
                self.faults.fraction = fraction
        self._wake()

    def _disconnect(self) -> None:
        self.disconnected = True
        self.motion = None
        self._close_pty()

    # ---------------------------------------------------------------------------------------- state

    def _power_up(self) -> None:
        """Power-up or DTR reset: position counts from 0 wherever the carriage is; Alarm until homed."""
        self.mpos = [0.0, 0.0, 0.0]
        self.motor_phys = self.carriage_phys          # motor x (mm from min switch) where MPos x = 0
        self.phys_offset = self.carriage_phys
        self._reset_runtime()
        self.state = "Alarm" if self.settings[22] else "Idle"
        self.critical = False
        self.homed = False
        self.coords = [[0.0, 0.0, 0.0] for _ in range(6)]
        self.g92 = [0.0, 0.0, 0.0]
        self.check_mode = False

    def _reset_runtime(self) -> None:
        self.rx = bytearray()
        self.line_overflow = False
        self.planner: deque[Block] = deque()
        self.motion: Motion | None = None
        self.pending: Pending | None = None
        self.hold = False
        self.modal = Modal()
        self.wco_counter = 0
        self.ovr_counter = 0
        self.current_feed = 0.0

    @property
    def carriage_mm(self) -> float:
        """Where the carriage really is, in machine coordinates (what a ruler on the rail would say)."""
        with self._lock:
            self._update(time.monotonic())
            return self.carriage_phys - self.phys_offset

    def wco(self) -> list[float]:
        return [self.coords[self.modal.coord][i] + self.g92[i] for i in range(3)]

    # ---------------------------------------------------------------------------------------- serving

    def _serve(self) -> None:
        while self._running:
            with self._lock:
                master = self.master
                timeout = self._next_timeout(time.monotonic())
                want_write = bool(self._out)
            if master < 0:
                self._running = False
                break
            try:
                readable, writable, _ = select.select([master, self._wake_r], [master] if want_write else [],
                                                      [], timeout)
            except (OSError, ValueError):
                if self.master < 0:
                    break
                raise
            if self._wake_r in readable:
                os.read(self._wake_r, 1024)
            with self._lock:
                if self.master < 0:
                    break
                if master in readable:
                    try:
                        packet = os.read(master, 4096)
                    except OSError as exc:
                        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                            packet = b""
                        elif exc.errno == errno.EIO:
                            packet = b""
                        else:
                            raise
                    if packet:
                        self._on_packet(packet, time.monotonic())
                self._update(time.monotonic())
                self._run_lines(time.monotonic())
                self._flush()

    def _next_timeout(self, now: float) -> float | None:
        times = []
        if self.motion is not None:
            times.append(self._motion_end_time(self.motion))
        if self.pending is not None and self.pending.kind == "home":
            times.append(self.pending.until)
        if self.pending is not None and self.pending.synced:
            times.append(self.pending.until)
        if not times:
            return None if not self._out else 0.05
        return max(0.0, min(times) - now)

    def _flush(self) -> None:
        if not self._out or self.master < 0:
            return
        try:
            n = os.write(self.master, bytes(self._out))
            del self._out[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._out.clear()

    def _send(self, text: str) -> None:
        self._out += text.encode() + b"\r\n"

    # ---------------------------------------------------------------------------------------- input

    def _on_packet(self, packet: bytes, now: float) -> None:
        ctrl, data = packet[0], packet[1:]
        if ctrl != 0:
            if ctrl & termios.TIOCPKT_FLUSHREAD:
                self._dtr_reset(now)
            return
        for byte in data:
            self._on_byte(byte, now)

    def _dtr_reset(self, now: float) -> None:
        """The client opened the port: a classic Arduino reboots, loses its position and prints the banner."""
        self._out.clear()
        self._update(now)
        self.motion = None
        self._power_up()
        if self.opt.boot_s > 0:
            time.sleep(self.opt.boot_s / self.opt.speed)
        self._banner()

    def _banner(self) -> None:
        self._send("")
        self._send(f"Grbl {VERSION} ['$' for help]")
        if self.state in ("Alarm", "Sleep"):
            self.state = "Alarm"
            self._send("[MSG:'$H'|'$X' to unlock]")

    def _on_byte(self, byte: int, now: float) -> None:
        if byte == ord("?"):
            self._status_report(now)
        elif byte == ord("!"):
            self._feed_hold(now)
        elif byte == ord("~"):
            self._cycle_start(now)
        elif byte == 0x18:
            self._soft_reset(now)
        elif byte == 0x85:
            self._jog_cancel(now)
        elif byte >= 0x80:
            pass                                  # overrides and other real-time commands: accepted, no effect
        elif self.critical:
            pass                                  # after a critical alarm Grbl listens for reset only
        elif self.line_overflow:
            if byte in (10, 13):                  # end of a line longer than the buffer: report it
                self.line_overflow = False
                self._send("error:11")
        elif len(self.rx) < RX_BUFFER_SIZE:
            self.rx.append(byte)
            if byte in (10, 13):
                self._run_lines(now)              # Grbl's main loop drains the ring as lines complete
        elif b"\n" not in self.rx and b"\r" not in self.rx:
            self.rx.clear()                       # one partial line fills the ring: Grbl would be reading it
            self.line_overflow = True             # into its 80-byte line buffer; drop it up to its newline
        else:
            self.rx_dropped += 1                  # planner full and ring full: the byte is lost, as on the AVR

    # ---------------------------------------------------------------------------------------- real-time

    def _status_report(self, now: float) -> None:
        if self.state == "Home" or self.critical:
            return                                # ignored during homing and after a critical alarm
        self._update(now)
        mask = int(self.settings[10])
        wco = self.wco()
        if mask & 1:
            pos = "MPos:" + ",".join(f"{v:.3f}" for v in self.mpos)
        else:
            pos = "WPos:" + ",".join(f"{self.mpos[i] - wco[i]:.3f}" for i in range(3))
        parts = [self.state, pos]
        if mask & 2:
            parts.append(f"Bf:{PLANNER_BLOCKS - len(self.planner)},{RX_BUFFER_SIZE - len(self.rx)}")
        parts.append(f"FS:{self.current_feed * 60:.0f},0")
        if self.wco_counter > 0:
            self.wco_counter -= 1
        else:
            self.wco_counter = (WCO_REFRESH_BUSY if self.state in BUSY_STATES else WCO_REFRESH_IDLE) - 1
            parts.append("WCO:" + ",".join(f"{v:.3f}" for v in wco))
            if self.ovr_counter == 0:
                self.ovr_counter = 1                  # as report.c: Ov comes in the report after a WCO one
        if self.ovr_counter > 0:
            self.ovr_counter -= 1
        else:
            self.ovr_counter = (20 if self.state in BUSY_STATES else 10) - 1
            parts.append("Ov:100,100,100")
        self._send("<" + "|".join(parts) + ">")

    def _feed_hold(self, now: float) -> None:
        if self.state in ("Alarm", "Home", "Sleep", "Check") or self.critical:
            return
        self._update(now)
        if self.state == "Idle":
            self.state, self.hold = "Hold:0", True
            return
        if self.hold:
            return
        self.hold = True
        if self.motion is None:
            self.state = "Hold:0"
            return
        self.state = "Hold:1"
        self._decelerate(now, "hold", requeue=True)

    def _decelerate(self, now: float, event: str, *, requeue: bool) -> None:
        """Brake the current move at the acceleration limit; the rest of its block runs after a resume."""
        m = self.motion
        assert m is not None
        d, v = m.profile.at((now - m.t0) * self.opt.speed)
        stop = v * v / (2 * m.profile.accel)
        if stop >= m.profile.distance - d:
            m.event = event if m.event in ("", "hold", "cancel") else m.event
            return                                 # it stops at its target anyway
        pos = [m.start[i] + m.unit[i] * d for i in range(3)]
        if requeue:
            self.planner.appendleft(m.block)
        self.motion = Motion(pos, m.unit, Trapezoid.plan(stop, v, m.profile.accel, v0=v), now,
                             Block([pos[i] + m.unit[i] * stop for i in range(3)], v, m.block.rapid, m.block.jog),
                             carriage0=self.carriage_phys, event=event)

    def _cycle_start(self, now: float) -> None:
        if self.state == "Hold:0":
            self.hold = False
            self.state = "Idle"
            self._start_next(now)

    def _jog_cancel(self, now: float) -> None:
        """0x85: brake and drop every queued jog; Grbl then returns to Idle."""
        if self.state != "Jog":
            return
        self._update(now)
        self.planner = deque(b for b in self.planner if not b.jog)
        if self.motion is not None:
            self._decelerate(now, "cancel", requeue=False)

    def _soft_reset(self, now: float) -> None:
        self._update(now)
        moving = self.state in ("Run", "Jog", "Home", "Hold:1")
        was_alarm = self.state in ("Alarm", "Sleep") or self.critical
        alarm = None
        if moving:
            alarm = 6 if self.state == "Home" else 3
        self.motion = None
        self._reset_runtime()
        self.critical = False
        if alarm is not None:
            self._send(f"ALARM:{alarm}")
            self.homed = False
        self.state = "Alarm" if (alarm is not None or was_alarm) else "Idle"
        self._banner()

    # ---------------------------------------------------------------------------------------- motion

    def _axis_limits(self, unit: list[float]) -> tuple[float, float]:
        rate, accel = math.inf, math.inf
        for i in range(3):
            if abs(unit[i]) > 1e-12:
                rate = min(rate, self.settings[110 + i] / 60.0 / abs(unit[i]))
                accel = min(accel, self.settings[120 + i] / abs(unit[i]))
        return rate, accel

    def _start_next(self, now: float) -> None:
        while self.motion is None and self.planner and not self.hold and self.state not in ("Alarm",):
            block = self.planner.popleft()
            delta = [block.target[i] - self.mpos[i] for i in range(3)]
            dist = math.sqrt(sum(d * d for d in delta))
            if dist < 1e-9:
                continue
            unit = [d / dist for d in delta]
            rate, accel = self._axis_limits(unit)
            v = rate if block.rapid else min(rate, block.feed_mm_s)
            motion = Motion(list(self.mpos), unit, Trapezoid.plan(dist, v, accel), now, block,
                            carriage0=self.carriage_phys)
            self.faults.moves_seen += 1
            n = self.faults.moves_seen
            f = self.faults
            if f.alarm_after == n:
                motion.event, motion.event_dist = f"alarm:{f.alarm_code}", dist * f.fraction
                f.alarm_after = None
            elif f.disconnect_after == n:
                motion.event, motion.event_dist = "disconnect", dist * f.fraction
                f.disconnect_after = None
            elif f.stall_after == n:
                motion.event, motion.event_dist = "stall", dist * f.fraction
                f.stall_after = None
            hit = self._switch_distance(motion)
            if hit is not None and (motion.event_dist is None or hit < motion.event_dist):
                motion.event, motion.event_dist = "hardlimit", hit
            self.motion = motion
            self.state = "Jog" if block.jog else "Run"

    def _switch_distance(self, m: Motion) -> float | None:
        """Distance along the move at which the carriage would touch a limit switch (hard limits on)."""
        if not self.settings[21] or abs(m.unit[0]) < 1e-12 or self.stalled:
            return None
        half = self.opt.backlash_mm / 2
        # the carriage trails the motor by half the backlash once the play is taken up
        motor_phys0 = m.start[0] + self.phys_offset
        reach = (self.length_mm + half - motor_phys0) if m.unit[0] > 0 else (motor_phys0 + half)
        d = max(0.0, reach) / abs(m.unit[0])
        return d if d < m.profile.distance else None

    def _motion_end_time(self, m: Motion) -> float:
        if m.event_dist is not None and m.event not in ("hold", "cancel"):
            return m.t0 + self._time_at(m.profile, m.event_dist) / self.opt.speed
        return m.t0 + m.profile.duration / self.opt.speed

    @staticmethod
    def _time_at(profile: Trapezoid, dist: float) -> float:
        lo, hi = 0.0, profile.duration
        for _ in range(60):
            mid = (lo + hi) / 2
            if profile.at(mid)[0] < dist:
                lo = mid
            else:
                hi = mid
        return hi

    def _set_motor(self, m: Motion, d: float) -> None:
        self.mpos = [m.start[i] + m.unit[i] * d for i in range(3)]
        if self.stalled:
            return
        motor = self.mpos[0] + self.phys_offset
        half = self.opt.backlash_mm / 2
        if motor > self.carriage_phys + half:
            self.carriage_phys = motor - half
        elif motor < self.carriage_phys - half:
            self.carriage_phys = motor + half

    def _update(self, now: float) -> None:
        """Bring motion up to `now`: finish blocks, fire injected events, start the next block."""
        while self.motion is not None:
            m = self.motion
            end = self._motion_end_time(m)
            if now < end:
                d, v = m.profile.at((now - m.t0) * self.opt.speed)
                self._set_motor(m, d)
                self.current_feed = v
                return
            if m.event and m.event not in ("hold", "cancel"):
                self._set_motor(m, m.event_dist or 0.0)
                self._fire(m, end)
                if self.motion is m:            # stall: the move goes on
                    continue
                return
            self._set_motor(m, m.profile.distance)
            if self.opt.noise_mm and not self.stalled:
                self.carriage_phys += self.rng.gauss(0.0, self.opt.noise_mm)
            self.motion = None
            self.current_feed = 0.0
            if m.event == "cancel":
                self.hold = False
            elif m.event == "hold" or self.hold:
                self.state = "Hold:0"
                self.idle_at = end
                return
            self.state = "Idle"
            self._start_next(end)
            if self.motion is None:
                self.idle_at = end
        if self.pending is not None:
            self._advance_pending(now)

    def _fire(self, m: Motion, at: float) -> None:
        event = m.event
        m.event, m.event_dist = "", None
        if event == "stall":
            self.stalled = True
            return
        if event == "disconnect":
            self._disconnect()
            return
        code = 1 if event == "hardlimit" else int(event.split(":")[1])
        self.current_feed = 0.0
        self._alarm(code, at)

    def _alarm(self, code: int, at: float) -> None:
        self.motion = None
        self.planner.clear()
        self.pending = None
        self.rx.clear()
        self.hold = False
        self.state = "Alarm"
        self.homed = False if code != 2 else self.homed
        self._send(f"ALARM:{code}")
        if code in (1, 2, 10):
            self.critical = True
            self._send("[MSG:Reset to continue]")
        self.idle_at = at

    def _trip(self, now: float, event: str) -> None:
        if self.motion is not None:
            self._update(now)
            self.motion.event = event
            self._fire(self.motion, now)

    # ---------------------------------------------------------------------------------------- lines

    def _run_lines(self, now: float) -> None:
        while self.master >= 0 and not self.critical:
            if self.pending is not None:
                self._advance_pending(now)
                if self.pending is not None:
                    return
            if len(self.planner) >= PLANNER_BLOCKS:
                return                               # planner full: the line waits in the RX buffer
            nl = self.rx.find(b"\n")
            cr = self.rx.find(b"\r")
            ends = [i for i in (nl, cr) if i >= 0]
            if not ends:
                return
            end = min(ends)
            raw = bytes(self.rx[:end])
            del self.rx[:end + 1]
            line = raw.decode("ascii", "replace")
            if not line.strip():
                continue                              # empty lines (the \n of \r\n) get no answer
            self.lines_received += 1
            self.log.append(line)
            try:
                result = self._execute(line, now)
            except GcodeError as exc:
                self._send(f"error:{exc.code}")
                continue
            if result == "pending" or self.critical:
                continue
            self._send("ok")

    def _advance_pending(self, now: float) -> None:
        p = self.pending
        assert p is not None
        if p.kind == "home":
            if now >= p.until:
                self.pending = None
                p.action()
                self._send("ok")
            return
        if not p.synced:
            if self.motion is None and not self.planner and not self.hold:
                p.synced = True
                p.until = now + p.dwell_s / self.opt.speed
            else:
                return
        if now >= p.until:
            self.pending = None
            if p.action is not None:
                p.action()
            self._send("ok")

    def _execute(self, line: str, now: float) -> str | None:
        if len(line) > LINE_BUFFER_SIZE:
            raise GcodeError(11)
        if line.startswith("$"):
            return self._system(line.strip(), now)
        if self.state == "Alarm" or self.state == "Jog":
            # Grbl still parses (to report syntax errors) but locks motion out
            self._parse(line)
            raise GcodeError(9)
        return self._gcode(line, now)

    # ---------------------------------------------------------------------------------------- $ commands

    def _system(self, line: str, now: float) -> str | None:
        cmd = line[1:].upper().replace(" ", "")
        idle_or_alarm = self.state in ("Idle", "Alarm")
        if cmd == "":
            self._send("[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]")
            return None
        if cmd.startswith("J="):
            return self._jog(cmd[2:], now)
        if cmd == "$":
            if self.state in ("Run", "Hold:0", "Hold:1"):
                raise GcodeError(8)
            for key in sorted(self.settings):
                self._send(f"${key}={self._fmt_setting(key)}")
            return None
        if cmd == "G":
            m = self.modal
            self._send(f"[GC:G{m.motion} G{54 + m.coord} {m.plane} G{20 if m.inches else 21} "
                       f"G{90 if m.absolute else 91} G94 {m.spindle} {m.coolant} T{m.tool} "
                       f"F{m.feed_mm_min:g} S{m.speed:g}]")
            return None
        if cmd == "C":
            if self.state not in ("Idle", "Alarm") and not self.check_mode:
                raise GcodeError(8)
            if self.check_mode:
                self.check_mode = False
                self.state = "Idle"
                self._send("[MSG:Disabled]")
                self._send("ok")
                self._soft_reset(now)             # leaving check mode resets Grbl (banner follows)
                return "pending"
            if self.state == "Alarm":
                raise GcodeError(9)
            self.check_mode = True
            self.state = "Check"
            self._send("[MSG:Enabled]")
            return None
        if cmd == "X":
            if self.state == "Alarm":
                self._send("[MSG:Caution: Unlocked]")
                self.state = "Idle"
            return None
        if not idle_or_alarm:
            raise GcodeError(8)
        if cmd == "#":
            for i, name in enumerate(("G54", "G55", "G56", "G57", "G58", "G59")):
                self._send(f"[{name}:" + ",".join(f"{v:.3f}" for v in self.coords[i]) + "]")
            self._send("[G28:0.000,0.000,0.000]")
            self._send("[G30:0.000,0.000,0.000]")
            self._send("[G92:" + ",".join(f"{v:.3f}" for v in self.g92) + "]")
            self._send("[TLO:0.000]")
            self._send("[PRB:0.000,0.000,0.000:0]")
            return None
        if cmd == "I":
            opts = "V" + ("Z" if self.opt.positive_space else "") + "L"
            self._send(f"[VER:{VERSION}.{BUILD_DATE}:cinectrl emulator]")
            self._send(f"[OPT:{opts},{PLANNER_BLOCKS},{RX_BUFFER_SIZE}]")
            return None
        if cmd == "N":
            self._send("$N0=")
            self._send("$N1=")
            return None
        if cmd == "H":
            if not self.settings[22]:
                raise GcodeError(5)
            return self._home(now)
        if cmd == "SLP":
            self.state = "Sleep"
            self._send("[MSG:Sleeping]")
            return None
        if cmd.startswith("RST="):
            if cmd[4:] not in ("$", "#", "*"):
                raise GcodeError(3)
            if cmd[4:] in ("$", "*"):
                self.settings = default_settings(self.opt.travel_mm, self.opt.max_rate_mm_min,
                                                 self.opt.accel_mm_s2, self.opt.positive_space)
            if cmd[4:] in ("#", "*"):
                self.coords = [[0.0, 0.0, 0.0] for _ in range(6)]
            self._send("[MSG:Restoring defaults]")
            return None
        if cmd.startswith("N") and "=" in cmd:
            return None
        match = re.fullmatch(r"(\d+)=([-+]?(?:\d+\.?\d*|\.\d+))", cmd)
        if not match:
            raise GcodeError(3)
        key, value = int(match.group(1)), float(match.group(2))
        if key not in self.settings:
            raise GcodeError(3)
        if value < 0:
            raise GcodeError(4)
        if key == 20 and value and not self.settings[22]:
            raise GcodeError(10)
        self.settings[key] = int(value) if key in INT_SETTINGS else value
        return None

    def _fmt_setting(self, key: int) -> str:
        value = self.settings[key]
        return str(int(value)) if key in INT_SETTINGS else f"{value:.3f}"

    def _home(self, now: float) -> str:
        """Seek the switch at $25, locate at $24, pull off $27; `?` is ignored until it is done."""
        self._update(now)
        seek, locate, pulloff = self.settings[25] / 60, self.settings[24] / 60, self.settings[27]
        positive = bool(int(self.settings[23]) & 1)      # $23 bit 0 set: X homes toward its min end
        switch = 0.0 if positive else self.length_mm
        dist = abs(self.carriage_phys - switch)
        duration = dist / seek + 2 * pulloff / locate + pulloff / seek + 0.05
        self.state = "Home"

        def done() -> None:
            half = self.opt.backlash_mm / 2
            self.stalled = False
            self.critical = False
            if positive:
                self.carriage_phys = switch + pulloff
                motor = self.carriage_phys + half
                home_mpos = 0.0 if self.opt.positive_space else -(self.settings[130] - pulloff)
            else:
                self.carriage_phys = switch - pulloff
                motor = self.carriage_phys - half
                home_mpos = 0.0 if self.opt.positive_space else -pulloff
            self.mpos = [home_mpos, 0.0, 0.0]
            self.phys_offset = motor - home_mpos
            self.state = "Idle"
            self.homed = True
            self.idle_at = time.monotonic()

        self.pending = Pending("home", until=now + duration / self.opt.speed, action=done)
        return "pending"

    # ---------------------------------------------------------------------------------------- G-code

    def _parse(self, line: str) -> list[tuple[str, float]]:
        text = re.sub(r"\([^)]*\)", "", line)
        text = text.split(";", 1)[0].upper().replace(" ", "").replace("\t", "")
        if text.startswith("/"):
            return []
        words, pos = [], 0
        while pos < len(text):
            if not text[pos].isalpha():
                raise GcodeError(1)
            m = GWORD.match(text, pos)
            if not m:
                raise GcodeError(2)
            words.append((m.group(1), float(m.group(2))))
            pos = m.end()
        return words

    def _gcode(self, line: str, now: float) -> str | None:
        words = self._parse(line)
        modal = self.modal
        gcodes: list[float] = []
        values: dict[str, float] = {}
        for letter, value in words:
            if letter == "G":
                gcodes.append(value)
            elif letter == "M":
                if value not in (0, 1, 2, 3, 4, 5, 7, 8, 9, 30):
                    raise GcodeError(20)
                if value in (3, 4, 5):
                    modal.spindle = f"M{int(value)}"
                elif value in (7, 8, 9):
                    modal.coolant = f"M{int(value)}"
                elif value in (2, 30):
                    self.modal = modal = Modal(feed_mm_min=0.0)
            elif letter in values:
                raise GcodeError(25)
            elif letter in "XYZFPLNST":
                values[letter] = value
            else:
                raise GcodeError(20)
        if "N" in values and not 0 <= values["N"] <= 9999999:
            raise GcodeError(27)
        if "S" in values:
            modal.speed = values["S"]
        if "T" in values:
            modal.tool = int(values["T"])
        scale = 25.4 if modal.inches else 1.0
        motion = None
        machine = False
        non_modal = None
        seen_groups: set[str] = set()

        def group(name: str) -> None:
            if name in seen_groups:
                raise GcodeError(21)
            seen_groups.add(name)

        for g in gcodes:
            gi = round(g * 10)
            if gi in (0, 10):
                group("motion")
                motion = gi // 10
            elif gi in (800,):
                group("motion")
                motion = -1
            elif gi in (900, 910):
                group("distance")
                modal.absolute = gi == 900
            elif gi in (200, 210):
                group("units")
                modal.inches = gi == 200
                scale = 25.4 if modal.inches else 1.0
            elif gi in (170, 180, 190):
                group("plane")
                modal.plane = f"G{gi // 10}"
            elif gi in (540, 550, 560, 570, 580, 590):
                group("coord")
                modal.coord = gi // 10 - 54
            elif gi == 940:
                group("feedmode")
            elif gi == 530:
                machine = True
            elif gi in (40, 100, 920, 921):
                group("nonmodal")
                non_modal = gi
            else:
                raise GcodeError(20)
        if "F" in values:
            if values["F"] < 0:
                raise GcodeError(4)
            modal.feed_mm_min = values["F"] * scale
        axes = {a: values[a] * scale for a in AXES if a in values}
        if non_modal == 40:
            if "P" not in values:
                raise GcodeError(28)
            if values["P"] < 0:
                raise GcodeError(4)
            return self._sync(values["P"], None)
        if non_modal == 100:
            lval, pval = values.get("L"), int(values.get("P", 1))
            if lval not in (2, 20) or not 0 <= pval <= 6:
                raise GcodeError(28)
            if not axes:
                raise GcodeError(26)
            index = (modal.coord if pval == 0 else pval - 1)

            def set_coord() -> None:
                for i, a in enumerate(AXES):
                    if a in axes:
                        self.coords[index][i] = (self.mpos[i] - self.g92[i] - axes[a] if lval == 20 else axes[a])
                self.wco_counter = 0
            return self._sync(0.0, set_coord)
        if non_modal in (920, 921):
            if non_modal == 920 and not axes:
                raise GcodeError(26)

            def set_g92() -> None:
                for i, a in enumerate(AXES):
                    if non_modal == 921:
                        self.g92[i] = 0.0
                    elif a in axes:
                        self.g92[i] = self.mpos[i] - self.coords[modal.coord][i] - axes[a]
                self.wco_counter = 0
            return self._sync(0.0, set_g92)
        if motion is not None and motion >= 0:
            modal.motion = motion
        if not axes:
            return None
        if motion == -1 or (motion is None and modal.motion not in (0, 1)):
            raise GcodeError(31)
        mode = motion if motion is not None else modal.motion
        if mode == 1 and modal.feed_mm_min <= 0:
            raise GcodeError(22)
        target = self._target(axes, machine)
        if self.check_mode:
            return None
        if self.settings[20] and self._beyond_travel(target):
            self._soft_limit(now)
            return "pending"
        self.planner.append(Block(target, modal.feed_mm_min / 60.0, rapid=mode == 0))
        self._start_next(now)
        return None

    def _target(self, axes: dict[str, float], machine: bool) -> list[float]:
        wco = self.wco()
        base = self.planner[-1].target if self.planner else (self.motion.block.target if self.motion else self.mpos)
        target = list(base)
        for i, a in enumerate(AXES):
            if a not in axes:
                continue
            if machine:
                target[i] = axes[a]
            elif self.modal.absolute:
                target[i] = axes[a] + wco[i]
            else:
                target[i] = base[i] + axes[a]
        return target

    def _travel(self, axis: int) -> tuple[float, float]:
        """Soft-limit range: [0, $13x] with HOMING_FORCE_SET_ORIGIN and homing toward min, else [-$13x, 0]."""
        travel = self.settings[130 + axis]
        if self.opt.positive_space and int(self.settings[23]) & (1 << axis):
            return 0.0, travel
        return -travel, 0.0

    def _beyond_travel(self, target: list[float]) -> bool:
        for i in range(3):
            lo, hi = self._travel(i)
            if not lo - 1e-6 <= target[i] <= hi + 1e-6:
                return True
        return False

    def _soft_limit(self, now: float) -> None:
        """Grbl holds the motion, then resets into ALARM:2 (position kept); the line gets no ok."""
        self._update(now)
        if self.motion is not None:
            m = self.motion
            d, v = m.profile.at((now - m.t0) * self.opt.speed)
            stop = min(m.profile.distance - d, v * v / (2 * m.profile.accel))
            self._set_motor(m, d + stop)
        self._alarm(2, now)

    def _sync(self, dwell_s: float, action) -> str:
        self.pending = Pending("sync", dwell_s=dwell_s, action=action)
        self._advance_pending(time.monotonic())
        return "pending"                          # its ok is sent when the planner has drained

    def _jog(self, text: str, now: float) -> str | None:
        if self.state not in ("Idle", "Jog"):
            raise GcodeError(8 if self.state != "Alarm" else 9)
        words = self._parse(text)
        saved = self.modal
        jog_modal = Modal(absolute=saved.absolute, inches=saved.inches, coord=saved.coord)
        values: dict[str, float] = {}
        machine = False
        for letter, value in words:
            if letter == "G":
                gi = round(value * 10)
                if gi in (900, 910):
                    jog_modal.absolute = gi == 900
                elif gi in (200, 210):
                    jog_modal.inches = gi == 200
                elif gi == 530:
                    machine = True
                else:
                    raise GcodeError(16)
            elif letter in "XYZFN":
                if letter in values:
                    raise GcodeError(25)
                values[letter] = value
            else:
                raise GcodeError(16)
        if "F" not in values:
            raise GcodeError(22)
        scale = 25.4 if jog_modal.inches else 1.0
        axes = {a: values[a] * scale for a in AXES if a in values}
        if not axes:
            raise GcodeError(26)
        self.modal = jog_modal
        try:
            target = self._target(axes, machine)
        finally:
            self.modal = saved
        if self.settings[20] and self._beyond_travel(target):
            raise GcodeError(15)
        self.planner.append(Block(target, values["F"] * scale / 60.0, jog=True))
        self._start_next(now)
        return None
