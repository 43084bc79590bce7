"""The GRBL controller's state and physics: settings, positions, the planner and trapezoidal motion, feed hold,
soft reset, homing, alarms, limit switches, and the carriage behind the open-loop motor (backlash, noise,
stalls). Everything the board *is*; `interpreter` says what a line asks of it, `pty` connects it to a port.

All methods run with the emulator's lock held (the serving thread, or a fault injection from a test).
Output goes into `out` (the board's TX), which the transport writes to the port.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..motion import Trapezoid

VERSION = "1.1h"
BUILD_DATE = "20190825"
RX_BUFFER_SIZE = 128          # the AVR serial ring (RX_BUFFER_SIZE+1 slots in 1.1: all 128 bytes usable)
PLANNER_BLOCKS = 15           # BLOCK_BUFFER_SIZE 16, one kept free
LINE_BUFFER_SIZE = 80
WCO_REFRESH_BUSY, WCO_REFRESH_IDLE = 30, 10
AXES = "XYZ"
BUSY_STATES = ("Run", "Jog", "Home", "Hold:1")
INT_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}


def default_settings(travel_mm: float, max_rate: float, accel: float, positive_space: bool) -> dict[int, float]:
    return {
        0: 10, 1: 255, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
        20: 1, 21: 1, 22: 1, 23: 1 if positive_space else 0, 24: 100.0, 25: 1500.0, 26: 250, 27: 1.0,
        30: 1000, 31: 0, 32: 0,
        100: 80.0, 101: 80.0, 102: 80.0, 110: max_rate, 111: max_rate, 112: max_rate,
        120: accel, 121: accel, 122: accel, 130: travel_mm, 131: 0.0, 132: 0.0,
    }


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
    event: str = ""                  # "alarm:N", "stall", "disconnect", "hardlimit", "hold", "cancel"
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
    action: Callable[[], None] | None = None


class Machine:
    """One GRBL 1.1 board with its slider. `on_disconnect` is how a pulled cable reaches the transport."""

    def __init__(self, opt: EmulatorOptions, *, on_disconnect: Callable[[], None] = lambda: None) -> None:
        self.opt = opt
        if opt.speed <= 0:
            raise ValueError(f"emulator speed must be > 0, got {opt.speed}")
        self.on_disconnect = on_disconnect
        self.settings = default_settings(opt.travel_mm, opt.max_rate_mm_min, opt.accel_mm_s2, opt.positive_space)
        self.settings[20] = 1 if opt.soft_limits else 0
        self.settings[21] = 1 if opt.hard_limits else 0
        self.settings[22] = 1 if opt.homing else 0
        self.settings.update(opt.settings)
        self.rng = random.Random(opt.seed)
        self.faults = Faults()
        self.out = bytearray()
        # physical: switches at 0 and length; carriage position in mm from the min switch
        self.length_mm = opt.travel_mm + 2 * self.settings[27]
        self.carriage_phys = min(max(opt.start_mm, 0.5), self.length_mm - 0.5)
        self.stalled = False
        self.disconnected = False
        self.idle_at: float | None = None       # host time the last motion ended (for the benchmark)
        self.power_up()

    # ---------------------------------------------------------------------------------------- state

    def send(self, text: str) -> None:
        self.out += text.encode() + b"\r\n"

    def power_up(self) -> None:
        """Power-up or DTR reset: position counts from 0 wherever the carriage is; Alarm until homed."""
        self.mpos = [0.0, 0.0, 0.0]
        self.phys_offset = self.carriage_phys       # motor x (mm from min switch) where MPos x = 0
        self.reset_runtime()
        self.state = "Alarm" if self.settings[22] else "Idle"
        self.critical = False
        self.homed = False
        self.coords = [[0.0, 0.0, 0.0] for _ in range(6)]
        self.g92 = [0.0, 0.0, 0.0]
        self.check_mode = False

    def reset_runtime(self) -> None:
        self.rx = bytearray()                       # the serial ring: part of the board, emptied by a reset
        self.line_overflow = False
        self.planner: deque[Block] = deque()
        self.motion: Motion | None = None
        self.pending: Pending | None = None
        self.hold = False
        self.modal = Modal()
        self.wco_counter = 0
        self.ovr_counter = 0
        self.current_feed = 0.0

    def boot(self) -> None:
        """What a DTR reset does: reboot (after `boot_s`, scaled), lose the position, print the banner."""
        self.out.clear()
        self.motion = None
        self.power_up()
        if self.opt.boot_s > 0:
            time.sleep(self.opt.boot_s / self.opt.speed)
        self.banner()

    def banner(self) -> None:
        self.send("")
        self.send(f"Grbl {VERSION} ['$' for help]")
        if self.state in ("Alarm", "Sleep"):
            self.state = "Alarm"
            self.send("[MSG:'$H'|'$X' to unlock]")

    def carriage_mm(self, now: float) -> float:
        """Where the carriage really is, in machine coordinates (what a ruler on the rail would say)."""
        self.update(now)
        return self.carriage_phys - self.phys_offset

    def wco(self) -> list[float]:
        return [self.coords[self.modal.coord][i] + self.g92[i] for i in range(3)]

    # ---------------------------------------------------------------------------------------- faults

    def inject_alarm(self, after_moves: int, code: int, fraction: float) -> None:
        self.faults.alarm_after = self.faults.moves_seen + after_moves
        self.faults.alarm_code, self.faults.fraction = code, fraction
        if after_moves <= 0 and self.motion is not None:
            self.trip(time.monotonic(), f"alarm:{code}")

    def inject_stall(self, after_moves: int, fraction: float) -> None:
        self.faults.stall_after = self.faults.moves_seen + after_moves
        self.faults.fraction = fraction

    def inject_disconnect(self, after_moves: int | None, fraction: float) -> None:
        if after_moves is None:
            self.disconnect()
        else:
            self.faults.disconnect_after = self.faults.moves_seen + after_moves
            self.faults.fraction = fraction

    def disconnect(self) -> None:
        self.disconnected = True
        self.motion = None
        self.on_disconnect()

    # ---------------------------------------------------------------------------------------- real-time

    def status_report(self, now: float) -> None:
        if self.state == "Home" or self.critical:
            return                                # ignored during homing and after a critical alarm
        self.update(now)
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
        self.send("<" + "|".join(parts) + ">")

    def feed_hold(self, now: float) -> None:
        if self.state in ("Alarm", "Home", "Sleep", "Check") or self.critical:
            return
        self.update(now)
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

    def cycle_start(self, now: float) -> None:
        if self.state == "Hold:0":
            self.hold = False
            self.state = "Idle"
            self.start_next(now)

    def jog_cancel(self, now: float) -> None:
        """0x85: brake and drop every queued jog; Grbl then returns to Idle."""
        if self.state != "Jog":
            return
        self.update(now)
        self.planner = deque(b for b in self.planner if not b.jog)
        if self.motion is not None:
            self._decelerate(now, "cancel", requeue=False)

    def soft_reset(self, now: float) -> None:
        self.update(now)
        moving = self.state in ("Run", "Jog", "Home", "Hold:1")
        was_alarm = self.state in ("Alarm", "Sleep") or self.critical
        alarm = None
        if moving:
            alarm = 6 if self.state == "Home" else 3
        self.motion = None
        self.reset_runtime()
        self.critical = False
        if alarm is not None:
            self.send(f"ALARM:{alarm}")
            self.homed = False
        self.state = "Alarm" if (alarm is not None or was_alarm) else "Idle"
        self.banner()

    # ---------------------------------------------------------------------------------------- motion

    def _axis_limits(self, unit: list[float]) -> tuple[float, float]:
        rate, accel = math.inf, math.inf
        for i in range(3):
            if abs(unit[i]) > 1e-12:
                rate = min(rate, self.settings[110 + i] / 60.0 / abs(unit[i]))
                accel = min(accel, self.settings[120 + i] / abs(unit[i]))
        return rate, accel

    def start_next(self, now: float) -> None:
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

    def motion_end_time(self, m: Motion) -> float:
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

    def set_motor(self, m: Motion, d: float) -> None:
        self.mpos = [m.start[i] + m.unit[i] * d for i in range(3)]
        if self.stalled:
            return
        motor = self.mpos[0] + self.phys_offset
        half = self.opt.backlash_mm / 2
        if motor > self.carriage_phys + half:
            self.carriage_phys = motor - half
        elif motor < self.carriage_phys - half:
            self.carriage_phys = motor + half

    def update(self, now: float) -> None:
        """Bring motion up to `now`: finish blocks, fire injected events, start the next block."""
        while self.motion is not None:
            m = self.motion
            end = self.motion_end_time(m)
            if now < end:
                d, v = m.profile.at((now - m.t0) * self.opt.speed)
                self.set_motor(m, d)
                self.current_feed = v
                return
            if m.event and m.event not in ("hold", "cancel"):
                self.set_motor(m, m.event_dist or 0.0)
                self._fire(m, end)
                if self.motion is m:            # stall: the move goes on
                    continue
                return
            self.set_motor(m, m.profile.distance)
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
            self.start_next(end)
            if self.motion is None:
                self.idle_at = end
        if self.pending is not None:
            self.advance_pending(now)

    def _fire(self, m: Motion, at: float) -> None:
        event = m.event
        m.event, m.event_dist = "", None
        if event == "stall":
            self.stalled = True
            return
        if event == "disconnect":
            self.disconnect()
            return
        code = 1 if event == "hardlimit" else int(event.split(":")[1])
        self.current_feed = 0.0
        self.alarm(code, at)

    def alarm(self, code: int, at: float) -> None:
        self.motion = None
        self.planner.clear()
        self.pending = None
        self.rx.clear()
        self.hold = False
        self.state = "Alarm"
        self.homed = False if code != 2 else self.homed
        self.send(f"ALARM:{code}")
        if code in (1, 2, 10):
            self.critical = True
            self.send("[MSG:Reset to continue]")
        self.idle_at = at

    def trip(self, now: float, event: str) -> None:
        if self.motion is not None:
            self.update(now)
            self.motion.event = event
            self._fire(self.motion, now)

    def next_timeout(self, now: float) -> float | None:
        """Seconds until the next thing happens on its own (a move ends, a dwell or homing completes)."""
        times = []
        if self.motion is not None:
            times.append(self.motion_end_time(self.motion))
        if self.pending is not None and (self.pending.kind == "home" or self.pending.synced):
            times.append(self.pending.until)
        if not times:
            return None if not self.out else 0.05
        return max(0.0, min(times) - now)

    # ---------------------------------------------------------------------------------------- lines that wait

    def advance_pending(self, now: float) -> None:
        p = self.pending
        assert p is not None
        if p.kind == "home":
            if now >= p.until:
                self.pending = None
                if p.action is not None:
                    p.action()
                self.send("ok")
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
            self.send("ok")

    def sync(self, dwell_s: float, action: Callable[[], None] | None) -> str:
        """G4 / G10 / G92: wait for an empty planner (then dwell); the ok comes when it has drained."""
        self.pending = Pending("sync", dwell_s=dwell_s, action=action)
        self.advance_pending(time.monotonic())
        return "pending"

    def home(self, now: float) -> str:
        """Seek the switch at $25, locate at $24, pull off $27; `?` is ignored until it is done."""
        self.update(now)
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

    def queue(self, block: Block, now: float) -> None:
        self.planner.append(block)
        self.start_next(now)

    # ---------------------------------------------------------------------------------------- travel

    def travel(self, axis: int) -> tuple[float, float]:
        """Soft-limit range: [0, $13x] with HOMING_FORCE_SET_ORIGIN and homing toward min, else [-$13x, 0]."""
        span = self.settings[130 + axis]
        if self.opt.positive_space and int(self.settings[23]) & (1 << axis):
            return 0.0, span
        return -span, 0.0

    def beyond_travel(self, target: list[float]) -> bool:
        for i in range(3):
            lo, hi = self.travel(i)
            if not lo - 1e-6 <= target[i] <= hi + 1e-6:
                return True
        return False

    def soft_limit(self, now: float) -> None:
        """Grbl holds the motion, then resets into ALARM:2 (position kept); the line gets no ok."""
        self.update(now)
        if self.motion is not None:
            m = self.motion
            d, v = m.profile.at((now - m.t0) * self.opt.speed)
            stop = min(m.profile.distance - d, v * v / (2 * m.profile.accel))
            self.set_motor(m, d + stop)
        self.alarm(2, now)

    def target(self, axes: dict[str, float], machine: bool, modal: Modal | None = None) -> list[float]:
        """Where a move to `axes` ends, in machine coordinates (absolute/incremental, G53 or work offsets)."""
        modal = modal or self.modal
        wco = self.wco()
        base = self.planner[-1].target if self.planner else (self.motion.block.target if self.motion else self.mpos)
        target = list(base)
        for i, a in enumerate(AXES):
            if a not in axes:
                continue
            if machine:
                target[i] = axes[a]
            elif modal.absolute:
                target[i] = axes[a] + wco[i]
            else:
                target[i] = base[i] + axes[a]
        return target

    def format_setting(self, key: int) -> str:
        value = self.settings[key]
        return str(int(value)) if key in INT_SETTINGS else f"{value:.3f}"
