"""GRBL 1.1 slider driver over pyserial: the `Slider` protocol for a one-axis (X) camera slider.

Opening the port without resetting the board: a classic Arduino reboots when DTR rises, and DTR falls when
the port is closed with HUPCL set (the termios default). Before pyserial opens the port the driver clears
HUPCL on it (POSIX; Windows cannot), holding a second descriptor open meanwhile so no close drops DTR. The
first open after the board was plugged in (or after a program that left HUPCL set) still resets it; every
later open finds it as it was left: `move 120` then `status` reads 120 mm. Boards with native USB (grblHAL
on STM32/Teensy, 32u4) never reset on open. `reset_on_open` says what happened this time.

How it talks to the board:
- One line at a time, each answered by `ok` or `error:N` (no character-counting: settings and motion
  lines are few, and a line's answer tells us exactly which line failed).
- A reader "pump" turns every incoming line into state: answers complete the oldest outstanding request,
  `<...>` status reports update the last status, `ALARM:N` fails whatever is outstanding with a typed
  `SliderAlarm`, a banner means the board reset. Each request/response exchange holds one lock only to
  write and to read; waiting happens outside it (select on the port), so a camera thread polling
  `status()` interleaves safely with a motion the main thread is waiting on.
- Motion completion: `G4 P0` is queued behind the move; GRBL answers it only once the planner has
  drained (the documented sync), so its `ok` is the moment the axis went Idle. A `?` then reads back MPos.
- Backlash: every target is approached from the same side (`approach="below"`: last motion positive),
  overshooting by `overshoot_mm` when we come from the other side.
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import select
import termios
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import serial

from .codes import CRITICAL_ALARMS, alarm_message, error_message
from .motion import move_duration
from .protocol import (MotionHeld, MoveResult, SliderAlarm, SliderCommandError, SliderDisconnected, SliderError,
                       SliderInfo, SliderStatus, SliderTimeout, TrajectoryRun, TravelError)

EPS_MM = 1e-3
BY_ID_DIR = Path("/dev/serial/by-id")


def stable_port_name(port: str, by_id_dir: Path = BY_ID_DIR) -> str | None:
    """The udev `serial/by-id` link that points at `port` (stable across replugs), if there is one."""
    try:
        target = Path(port).resolve()
        for link in sorted(by_id_dir.iterdir()):
            if link.resolve() == target:
                return str(link)
    except OSError:
        return None
    return None


def settings_warnings(settings: dict[str, str]) -> list[str]:
    """Settings that work but cost a camera slider its repeatability (hardware notes, section 6)."""
    warnings = []
    if settings.get("$1", "255") != "255":
        warnings.append(f"$1={settings['$1']}: steppers are released after {settings['$1']} ms idle and the "
                        "carriage may drift between frames; set $1=255 to keep them energised")
    if settings.get("$22", "1") == "0":
        warnings.append("$22=0: homing is disabled, positions are only as good as manual zeroing")
    if settings.get("$20", "1") == "0":
        warnings.append("$20=0: soft limits are off; the driver still refuses targets outside travel")
    return warnings
STATUS_RE = re.compile(r"<([^|>]+)((?:\|[^|>]*)*)>")


@dataclass
class _Request:
    line: str
    lines: list[str] = field(default_factory=list)     # [..] and $N=.. lines that came before its ok
    done: bool = False
    error: int | None = None
    exc: SliderError | None = None


class GrblSlider:
    """Open, read `$$`/`$I`, and leave the board as found (Alarm until `home()` when homing is enabled)."""

    def __init__(self, port: str, *, baudrate: int = 115200, approach: str = "below", overshoot_mm: float = 2.0,
                 settle_s: float = 0.0, feed_mm_min: float | None = None,
                 travel_mm: tuple[float, float] | None = None, banner_timeout: float = 3.0,
                 command_timeout: float = 5.0, status_timeout: float = 1.0, poll_s: float = 0.01,
                 exclusive: bool = True, keep_dtr: bool = True, emulator=None) -> None:
        if approach not in ("below", "above", "none"):
            raise ValueError(f"approach={approach!r}: use 'below', 'above' or 'none'")
        self.port_name = port
        self.approach = approach
        self.overshoot_mm = overshoot_mm
        self.settle_s = settle_s
        self.command_timeout = command_timeout
        self.status_timeout = status_timeout
        self.poll_s = poll_s
        self.emulator = emulator            # the in-process emulator's fault-injection handle, if any
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._reading = False               # one thread at a time selects on the port; the others wait on _cond
        self._pending: deque[_Request] = deque()
        self._buf = bytearray()
        self._status = SliderStatus("Unknown", 0.0)
        self._status_seq = 0
        self._wco = [0.0, 0.0, 0.0]
        self._banners = 0
        self._alarm: int | None = None
        self._needs_reset = False
        self._homing = False
        self._closed = False
        self._disconnected: str | None = None
        self._hold_requested = False        # a signal handler sent `!`: motion waits raise MotionHeld
        self._syncing = 0                   # _resync: 1 = waiting for our `[GC:` line, 2 = for its ok
        self._last_target: float | None = None
        self._last_dir = 0
        self._firmware = ""
        self.messages: deque[str] = deque(maxlen=100)
        self._travel_override = travel_mm
        self._feed_override = feed_mm_min
        self.info_pending = False           # settings not read yet: the board was held or moving at open
        self.reset_on_open = False          # did opening the port reboot the controller (DTR)?
        self.dtr_held = False               # was HUPCL cleared, so that the next open does not reboot it?
        self._port = self._open_port(port, baudrate, command_timeout, exclusive, keep_dtr)
        try:
            self._await_ready(banner_timeout)
            if self._quiet_at_open():
                self._resync()
                self._load_info()
            else:                           # busy with an earlier client's queue: its answers are still due
                self._info_unknown()
            self.stable_port = stable_port_name(port)
            self.status()
        except BaseException:
            self._port.close()
            raise

    # ------------------------------------------------------------------------------------------ the port

    def _open_port(self, port: str, baudrate: int, write_timeout: float, exclusive: bool,
                   keep_dtr: bool) -> serial.Serial:
        guard = self._hold_dtr(port, exclusive) if keep_dtr else None
        try:
            return serial.Serial(port, baudrate, timeout=0, write_timeout=write_timeout, exclusive=exclusive)
        except (serial.SerialException, OSError) as exc:
            raise SliderDisconnected(f"cannot open the port ({exc}); check the cable, the path (prefer "
                                     "/dev/serial/by-id/...) and that no other program holds it", port=port) from None
        finally:
            if guard is not None:
                os.close(guard)

    def _hold_dtr(self, port: str, exclusive: bool) -> int | None:
        """Clear HUPCL so closing the port never drops DTR (no reboot at the next open); returns a descriptor
        to keep open until pyserial has the port. None where the platform or the port does not allow it."""
        if os.name != "posix":
            return None
        try:
            fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None                     # pyserial's own open will say what is wrong
        try:
            if exclusive:                   # another program holds it: touch nothing, let pyserial refuse
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            attrs = termios.tcgetattr(fd)
            attrs[2] &= ~termios.HUPCL
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            self.dtr_held = True
            return fd
        except (OSError, termios.error):
            os.close(fd)
            return None

    # ------------------------------------------------------------------------------------------ I/O core

    def _fail_pending(self, err: SliderError) -> None:
        """Every request still waiting for its answer fails with `err` (alarm, reset, lost port)."""
        while self._pending:
            req = self._pending.popleft()
            req.exc, req.done = err, True

    def _error(self, message: str) -> SliderError:
        return SliderError(message, port=self.port_name)

    def _lost(self, exc: BaseException) -> SliderDisconnected:
        self._disconnected = str(exc)
        err = SliderDisconnected(f"the port vanished ({exc}); check the USB cable and power, then reopen the "
                                 "slider and re-home", port=self.port_name)
        self._fail_pending(err)
        return err

    def _write(self, data: bytes) -> None:
        if self._disconnected is not None:
            raise SliderDisconnected(f"the port is gone ({self._disconnected}); reopen the slider",
                                     port=self.port_name)
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc) from None

    def _pump(self) -> None:
        """Read whatever has arrived and dispatch complete lines. Caller holds the lock."""
        if self._disconnected is not None:
            raise SliderDisconnected(f"the port is gone ({self._disconnected}); reopen the slider",
                                     port=self.port_name)
        try:
            while True:
                ready, _, _ = select.select([self._port.fileno()], [], [], 0)
                if not ready:
                    break
                chunk = self._port.read(4096)
                if not chunk:
                    break
                self._buf += chunk
        except (serial.SerialException, OSError, ValueError, TypeError) as exc:
            raise self._lost(exc) from None
        dispatched = False
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            line = self._buf[:nl].decode("ascii", "replace").strip()
            del self._buf[:nl + 1]
            if line:
                self._dispatch(line)
                dispatched = True
        if dispatched:
            self._cond.notify_all()

    def _dispatch(self, line: str) -> None:
        if self._syncing and not line.startswith("<"):
            if self._syncing == 1 and line.startswith("[GC:"):
                self._syncing = 2
            elif self._syncing == 2 and (line == "ok" or line.startswith("error:")):
                self._syncing = 0
            else:
                self.messages.append(f"ignored (an earlier client's answer): {line}")
            return
        if line == "ok" or line.startswith("error:"):
            if not self._pending:
                self.messages.append(f"unexpected {line}")
                return
            req = self._pending.popleft()
            if line != "ok":
                try:
                    req.error = int(line[6:])
                except ValueError:
                    req.error = -1
            req.done = True
        elif line.startswith("<"):
            self._on_status(line)
        elif line.startswith("ALARM:"):
            try:
                code = int(line[6:])
            except ValueError:
                code = -1
            self._alarm = code
            self._needs_reset = code in CRITICAL_ALARMS
            self._homing = False
            self._fail_pending(SliderAlarm(alarm_message(code), code=code, port=self.port_name))
        elif line.startswith("Grbl "):
            self._banners += 1
            self._firmware = line.split("[")[0].strip()
            self._needs_reset = False
            self._fail_pending(SliderAlarm("the controller reset; lines in flight were dropped", code=self._alarm,
                                           port=self.port_name))
        elif line.startswith("[MSG:") or line.startswith("[") or line.startswith("$"):
            if "Reset to continue" in line:
                self._needs_reset = True
            elif "to unlock" in line and self._alarm is None:
                self._alarm = 0                      # boot lock: homing required, not a fault
            self.messages.append(line)
            if self._pending and not line.startswith("[MSG:"):
                self._pending[0].lines.append(line)
        else:
            self.messages.append(line)

    def _on_status(self, line: str) -> None:
        m = STATUS_RE.match(line)
        if not m:
            return
        state = m.group(1)
        fields = dict(part.split(":", 1) for part in m.group(2).split("|")[1:] if ":" in part)
        if "WCO" in fields:
            self._wco = [float(v) for v in fields["WCO"].split(",")]
        if "MPos" in fields:
            x = float(fields["MPos"].split(",")[0])
        elif "WPos" in fields:
            x = float(fields["WPos"].split(",")[0]) + self._wco[0]
        else:
            x = self._status.position_mm
        feed = fields.get("FS", fields.get("F", "0")).split(",")[0]
        self._status = SliderStatus(state, x, float(feed))
        self._status_seq += 1
        if state == "Alarm" and self._alarm is None:
            self._alarm = 0
        elif state not in ("Alarm",) and not self._needs_reset:
            self._alarm = None

    def _wait(self, done, timeout: float, what: str, *, motion: bool = False) -> None:
        """Pump until `done()`. One waiting thread selects on the port (outside the lock) and pumps; the
        others sleep on a condition it notifies, so no answer is ever left unseen by its waiter. A motion
        wait stops with MotionHeld as soon as a feed hold is requested (`request_hold`)."""
        deadline = time.monotonic() + timeout
        fd = self._port.fileno()
        while True:
            with self._cond:
                self._pump()
                if done():
                    return
                if motion and self._hold_requested:
                    raise MotionHeld(f"feed hold requested while waiting for {what}", port=self.port_name)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SliderTimeout(f"no answer to {what} within {timeout:.1f} s; check the cable and "
                                        "that the controller is powered", port=self.port_name)
                if self._reading:
                    self._cond.wait(min(left, 0.05))
                    continue
                self._reading = True
            try:
                select.select([fd], [], [], min(left, 0.05))
            except (OSError, ValueError) as exc:
                with self._lock:
                    raise self._lost(exc) from None
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()

    def _exchange(self, line: str, timeout: float | None = None, *, motion: bool = False) -> _Request:
        req = _Request(line)
        with self._lock:
            self._pump()
            if motion and self._hold_requested:
                raise MotionHeld(f"feed hold requested before {line!r} was sent", port=self.port_name)
            self._pending.append(req)
            self._write(line.encode("ascii") + b"\n")
        self._wait(lambda: req.done, self.command_timeout if timeout is None else timeout, repr(line), motion=motion)
        if req.exc is not None:
            raise req.exc
        if req.error is not None:
            if req.error == 9 and self._alarm is not None:
                raise SliderAlarm(f"{line!r} refused: {error_message(9)}", code=self._alarm, port=self.port_name)
            raise SliderCommandError(f"{line!r} refused: {error_message(req.error)}", code=req.error,
                                     port=self.port_name)
        return req

    def command(self, line: str, *, timeout: float | None = None) -> list[str]:
        """Send one line (e.g. `$#`, `G10 L20 P1 X0`), wait for its ok; returns the lines it printed before.
        Raises SliderCommandError with the GRBL message on `error:N`."""
        line = line.strip()
        if not line or "\n" in line or len(line) > 80:
            raise SliderCommandError(f"{line!r}: give one G-code or $ line of at most 80 characters",
                                     port=self.port_name)
        return self._exchange(line, timeout).lines

    # ------------------------------------------------------------------------------------------ open

    def _await_ready(self, timeout: float) -> None:
        """A board that reset on open prints its banner (after its bootloader); one that did not answers `?`.
        Ask every 0.25 s until either comes; a silent board gets one soft reset."""
        seen_banners, seen_status = self._banners, self._status_seq
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                self._write(b"?")
            try:
                self._wait(lambda: self._banners > seen_banners or self._status_seq > seen_status,
                           min(0.25, max(0.01, deadline - time.monotonic())), "the Grbl banner or a status report")
            except SliderTimeout:
                continue
            self.reset_on_open = self._banners > seen_banners
            return
        seen = self._banners
        with self._lock:
            self._write(b"\x18")
        try:
            self._wait(lambda: self._banners > seen, timeout, "the Grbl banner")
        except SliderTimeout:
            raise SliderTimeout(f"no 'Grbl x.y' banner within {2 * timeout:.1f} s, even after a soft reset; "
                                "is this a GRBL controller at 115200 baud?", port=self.port_name) from None

    def _resync(self) -> None:
        """Forget answers meant for an earlier client. A client killed mid-command (Ctrl-C, kill -9) leaves
        its answers (`ok`s, `$$` lines) on their way; taken as ours, they would answer our `$$` (a travel of
        -600..0 read from stale lines). `$G` is sent outside the request queue and everything read up to its
        `[GC:...]` line and that line's `ok` is dropped: Grbl answers lines in order, so nothing stale can come
        after. A board busy with an earlier client's queue (Run, Hold, Jog) is not waited for: its settings
        stay unread (`info_pending`) until it is Idle, and `_ensure_info` resyncs then."""
        if self.reset_on_open:
            return
        with self._lock:
            self._pump()
            self._syncing = 1
            self._write(b"$G\n")
        try:
            self._wait(lambda: not self._syncing, self.command_timeout, "'$G' (resync after open)")
        finally:
            self._syncing = 0

    def _load_info(self) -> None:
        """`$$` and `$I`. Grbl answers them only when Idle or in Alarm: a board found held or moving (it was not
        reset on open) keeps its settings unread until it is Idle; until then nothing that needs them runs."""
        try:
            self.info = self._read_info(self._travel_override)
            self.info_pending = False
        except SliderCommandError as exc:
            if exc.code != 8:
                raise
            self._info_unknown()
            return
        self.feed_mm_min = self._feed_override or self.info.max_rate_mm_min or 1000.0
        self.warnings = settings_warnings(self.info.settings)

    def _quiet_at_open(self) -> bool:
        """Idle or locked: nothing of an earlier client is still queued (so its answers have all come)."""
        return self.reset_on_open or self._status.state in ("Idle", "Alarm", "Unknown", "Check", "Sleep")

    def _info_unknown(self) -> None:
        self.info = SliderInfo(firmware=self._firmware or "Grbl", port=self.port_name,
                               travel_mm=self._travel_override or (-math.inf, math.inf))
        self.info_pending = True
        self.feed_mm_min = self._feed_override or 1000.0
        self.warnings = []

    def _ensure_info(self) -> None:
        if self.info_pending and self.status().state in ("Idle", "Alarm"):
            self._resync()
            self._load_info()
        if self.info_pending:
            raise SliderCommandError("the controller is held or moving, so its settings ($$) and travel are not "
                                     "known yet; resume (or wait for Idle) first", code=8, port=self.port_name)

    def _read_info(self, travel_override: tuple[float, float] | None) -> SliderInfo:
        settings: dict[str, str] = {}
        for line in self._exchange("$$").lines:
            key, _, value = line.partition("=")
            settings[key] = value.split()[0] if value else ""
        ver, opt = "", ""
        for line in self._exchange("$I").lines:
            if line.startswith("[VER:"):
                ver = line[5:-1]
            elif line.startswith("[OPT:"):
                opt = line[5:-1]

        def num(key: str, default: float = 0.0) -> float:
            try:
                return float(settings.get(key, default))
            except ValueError:
                return default

        span, pulloff = num("$130", 600.0), num("$27", 1.0)
        force_origin = "Z" in opt.split(",")[0]
        homes_to_min = int(num("$23")) & 1
        if travel_override is not None:
            travel = (float(travel_override[0]), float(travel_override[1]))
        elif force_origin:
            travel = (0.0, span) if homes_to_min else (-span, 0.0)
        else:
            # stock Grbl: after homing MPos is -$27 from the switch; keep clear of the switch itself
            travel = (-span + pulloff, 0.0) if homes_to_min else (-span, -pulloff)
        self.force_origin = force_origin
        if not self._firmware and ver:       # no banner (the board did not reset): $I names the version
            self._firmware = f"Grbl {ver.split(':')[0].rsplit('.', 1)[0]}"
        return SliderInfo(firmware=self._firmware or "Grbl", build=f"{ver} {opt}".strip(), port=self.port_name,
                          travel_mm=travel, max_rate_mm_min=num("$110"), accel_mm_s2=num("$120"),
                          settings=settings)

    # ------------------------------------------------------------------------------------------ status

    def status(self) -> SliderStatus:
        """One `?` round trip. During homing or after a critical alarm Grbl ignores `?`: report that instead."""
        with self._lock:
            self._pump()
            if self._homing:
                return SliderStatus("Home", self._status.position_mm)
            if self._needs_reset:
                return SliderStatus("Alarm", self._status.position_mm)
            seq = self._status_seq
            self._write(b"?")
        self._wait(lambda: self._status_seq > seq or self._needs_reset, self.status_timeout, "'?' (status)")
        return self._status

    @property
    def position_mm(self) -> float:
        return self.status().position_mm

    def check_target(self, mm: float) -> None:
        self._ensure_info()
        lo, hi = self.info.travel_mm
        if not isinstance(mm, (int, float)) or mm != mm or not lo - EPS_MM <= mm <= hi + EPS_MM:
            raise TravelError(f"target {mm} mm is outside the travel {lo:g}..{hi:g} mm; nothing was sent. "
                              f"Use a position inside the travel (or check $130 / the travel_mm option)",
                              port=self.port_name)

    def _require_ready(self, what: str) -> None:
        with self._lock:
            self._pump()
            if self._needs_reset or self._alarm is not None:
                code = self._alarm
                detail = alarm_message(code) if code else "locked after power-up or reset"
                raise SliderAlarm(f"cannot {what}: controller in ALARM ({detail}); home() first", code=code,
                                  port=self.port_name)

    # ------------------------------------------------------------------------------------------ motion

    def home(self, *, timeout: float = 120.0) -> SliderStatus:
        """`$H` (after a soft reset if a critical alarm demands one); returns the status after homing."""
        if self._needs_reset:
            self.reset()
        self._homing = True
        try:
            self._exchange("$H", timeout=timeout, motion=True)
        except SliderCommandError as exc:
            if exc.code == 5:
                raise SliderCommandError("homing is disabled on this controller ($22=0); enable it or "
                                         "position the carriage by hand and unlock with $X", code=5,
                                         port=self.port_name) from None
            raise
        finally:
            self._homing = False
        self._alarm = None
        st = self.status()
        self._last_target, self._last_dir = st.position_mm, 0
        return st

    def unlock(self) -> None:
        """`$X`: leave Alarm without homing. Position is only as good as before; emergencies only."""
        self._exchange("$X")
        self._alarm = None

    def _queue_move(self, mm: float, feed: float) -> None:
        self._exchange(f"G90 G53 G1 X{mm:.3f} F{feed:.1f}", motion=True)   # machine coordinates whatever the work offset
        prev = self._last_target
        if prev is not None and abs(mm - prev) > EPS_MM:
            self._last_dir = 1 if mm > prev else -1
        self._last_target = mm

    def _approach_point(self, mm: float) -> float | None:
        """Where to go first so the final motion into `mm` has the configured direction."""
        if self.approach == "none":
            return None
        sign = 1 if self.approach == "below" else -1
        prev = self._last_target
        if prev is None:
            prev = self.status().position_mm
        coming = (mm - prev) * sign
        if coming > EPS_MM or (abs(mm - prev) <= EPS_MM and self._last_dir == sign):
            return None
        lo, hi = self.info.travel_mm
        pre = min(max(mm - sign * self.overshoot_mm, lo), hi)
        return None if abs(pre - mm) <= EPS_MM else pre

    def _expected_s(self, distance: float, feed_mm_min: float) -> float:
        rate = min(feed_mm_min, self.info.max_rate_mm_min or feed_mm_min) / 60.0
        return move_duration(distance, rate, self.info.accel_mm_s2 or 100.0)

    def start_move(self, mm: float, *, feed_mm_min: float | None = None) -> float:
        """Queue an absolute move (with the approach rule) and return at once: the expected seconds it takes.
        `wait_idle()` waits for it; `hold()` stops it without losing position (the rig shell uses this)."""
        self.check_target(mm)
        self._require_ready(f"move to {mm} mm")
        feed = feed_mm_min or self.feed_mm_min
        start = self._last_target if self._last_target is not None else self.status().position_mm
        pre = self._approach_point(mm)
        distance = abs(mm - start)
        if pre is not None:
            self._queue_move(pre, feed)
            distance = abs(pre - start) + abs(mm - pre)
        self._queue_move(mm, feed)
        return self._expected_s(distance, feed)

    def move_to(self, mm: float, *, feed_mm_min: float | None = None) -> MoveResult:
        started = time.time()
        expected = self.start_move(mm, feed_mm_min=feed_mm_min)
        self._sync(timeout=expected * 2 + 10.0)
        finished = time.time()
        if self.settle_s:
            time.sleep(self.settle_s)
        st = self.status()
        return MoveResult(target_mm=mm, position_mm=st.position_mm, started_at=started, finished_at=finished)

    def _sync(self, *, timeout: float) -> None:
        """`G4 P0`: its ok comes when the planner has drained, i.e. when the axis is Idle. A held controller
        never drains: that is said as such, not as a silent cable."""
        try:
            self._exchange("G4 P0", timeout=timeout, motion=True)
        except SliderTimeout:
            st = self.status()
            if st.state.startswith("Hold") or st.state.startswith("Door"):
                raise SliderTimeout(f"the controller is held ({st.state}) at {st.position_mm:.3f} mm, so the move "
                                    f"cannot finish: resume it (cinectrl rig slider --port {self.port_name} resume) "
                                    "or reset it (then re-home)", port=self.port_name) from None
            raise

    def run_trajectory(self, start_mm: float, end_mm: float, *, speed_mm_s: float,
                       wait: bool = True) -> TrajectoryRun:
        self.check_target(start_mm)
        self.check_target(end_mm)
        feed = speed_mm_s * 60.0
        if speed_mm_s <= 0 or (self.info.max_rate_mm_min and feed > self.info.max_rate_mm_min + 1e-9):
            raise TravelError(f"trajectory speed {speed_mm_s} mm/s is outside 0..{self.info.max_rate_mm_min / 60:g} "
                              "mm/s ($110); Grbl would clamp it silently and the clip timing would be wrong",
                              port=self.port_name)
        self._require_ready("run a trajectory")
        here = self._last_target
        if here is None or abs(here - start_mm) > EPS_MM:
            self.move_to(start_mm)
        t_send = time.time()
        self._queue_move(end_mm, feed)
        t_ok = time.time()
        run = TrajectoryRun(start_mm, end_mm, speed_mm_s, motion_started_at=(t_send + t_ok) / 2)
        if not wait:
            return run
        self._sync(timeout=self._expected_s(abs(end_mm - start_mm), feed) * 2 + 10.0)
        return TrajectoryRun(start_mm, end_mm, speed_mm_s, run.motion_started_at, finished_at=time.time())

    def jog(self, delta_mm: float, *, feed_mm_min: float | None = None, timeout: float = 60.0,
            wait: bool = True) -> SliderStatus:
        """`$J=G91 X..`: a relative jog, checked against travel first; returns once Idle again (or at once,
        with the status as it starts, when `wait=False`)."""
        here = self.status().position_mm
        self.check_target(here + delta_mm)
        self._require_ready(f"jog {delta_mm} mm")
        feed = feed_mm_min or self.feed_mm_min
        self._exchange(f"$J=G91 G21 X{delta_mm:.3f} F{feed:.1f}", motion=True)
        if abs(delta_mm) > EPS_MM:
            self._last_dir = 1 if delta_mm > 0 else -1
        self._last_target = here + delta_mm
        if not wait:
            return self.status()
        return self._poll_until(lambda s: s.state == "Idle", timeout, "Idle after the jog", motion=True)

    def _poll_until(self, predicate, timeout: float, what: str, *, motion: bool = False) -> SliderStatus:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if predicate(st):
                return st
            if motion and self._hold_requested:
                raise MotionHeld(f"feed hold requested while waiting for {what}", port=self.port_name)
            if st.state == "Alarm" or self._alarm:
                raise SliderAlarm(alarm_message(self._alarm) if self._alarm else "controller in ALARM",
                                  code=self._alarm, port=self.port_name)
            if time.monotonic() > deadline:
                raise SliderTimeout(f"no {what} within {timeout:.1f} s (state {st.state})", port=self.port_name)
            time.sleep(self.poll_s)

    def wait_idle(self, *, timeout: float = 60.0) -> SliderStatus:
        with self._lock:
            self._pump()
            state = self._status.state
        if state.startswith("Hold"):
            return self._poll_until(lambda s: s.state == "Idle", timeout, "Idle (the slider is held: resume())")
        if self.status().state == "Jog":     # Grbl refuses G-code (the G4 sync) while jogging: poll instead
            return self._poll_until(lambda s: s.state == "Idle", timeout, "Idle after the jog")
        if self._alarm is not None or self._needs_reset:
            self._require_ready("wait for Idle")
        self._sync(timeout=timeout)
        return self.status()

    def request_hold(self) -> None:
        """Feed hold NOW, from a signal handler (Ctrl-C, SIGTERM): `!` goes straight to the port (a real-time
        byte, valid even in the middle of a line) without waiting for any lock, and the motion wait in progress
        raises MotionHeld so its caller can confirm the hold with `hold()` and report the position."""
        self._hold_requested = True
        try:
            os.write(self._port.fileno(), b"!")
        except (OSError, ValueError, AttributeError, TypeError):
            pass             # the port is gone: `hold()` will say so

    def hold(self, *, timeout: float = 30.0) -> SliderStatus:
        """Feed hold (`!`): decelerate and stop without losing position; returns once `Hold:0` (or Idle with
        nothing left to do). Raises (timeout, alarm, port gone) when the controller does not confirm it."""
        self._hold_requested = False
        with self._lock:
            self._write(b"!")
        return self._poll_until(lambda s: s.state in ("Hold:0", "Idle") and s.feed_mm_min == 0, timeout,
                                "Hold:0 after feed hold")

    def resume(self, *, timeout: float = 30.0) -> None:
        """Cycle start (`~`), once the hold has fully stopped (Grbl ignores `~` during Hold:1)."""
        self._hold_requested = False
        st = self.status()
        if st.state == "Hold:1":
            st = self._poll_until(lambda s: s.state != "Hold:1", timeout, "Hold:0 before resume")
        if st.state.startswith("Hold") or st.state == "Door:0":
            with self._lock:
                self._write(b"~")

    def reset(self, *, timeout: float = 5.0) -> None:
        """Soft reset (0x18). Grbl raises ALARM:3 if it was moving: re-home before the next move."""
        with self._lock:
            self._pump()
            seen = self._banners
            self._write(b"\x18")
        self._wait(lambda: self._banners > seen, timeout, "the banner after soft reset")
        self._last_target = None
        self.status()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
        if self.emulator is not None:
            self.emulator.stop()

    def __enter__(self) -> "GrblSlider":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GrblSlider({self.port_name!r}, {self.info.firmware}, travel {self.info.travel_mm})"
