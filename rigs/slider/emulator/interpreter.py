"""GRBL's command interpreter: bytes from the port into the 128-byte RX ring, real-time bytes at once, lines
into `$` system commands and G-code blocks, each answered `ok` or `error:N` as Grbl 1.1 answers them.

It only decides what a byte or a line asks for; the machine (`machine.py`) does it.
"""

from __future__ import annotations

import re
from collections import deque

from .machine import (AXES, INT_SETTINGS, LINE_BUFFER_SIZE, PLANNER_BLOCKS, RX_BUFFER_SIZE, VERSION, BUILD_DATE,
                      Block, Machine, Modal, default_settings)

GWORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")


class GcodeError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Interpreter:
    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.lines_received = 0
        self.rx_dropped = 0
        self.log: deque[str] = deque(maxlen=200)

    # ---------------------------------------------------------------------------------------- bytes

    def feed(self, data: bytes, now: float) -> None:
        for byte in data:
            self.byte(byte, now)

    def byte(self, byte: int, now: float) -> None:
        m = self.m
        if byte == ord("?"):
            m.status_report(now)
        elif byte == ord("!"):
            m.feed_hold(now)
        elif byte == ord("~"):
            m.cycle_start(now)
        elif byte == 0x18:
            m.soft_reset(now)
        elif byte == 0x85:
            m.jog_cancel(now)
        elif byte >= 0x80:
            pass                                  # overrides and other real-time commands: accepted, no effect
        elif m.critical:
            pass                                  # after a critical alarm Grbl listens for reset only
        elif m.line_overflow:
            if byte in (10, 13):                  # end of a line longer than the buffer: report it
                m.line_overflow = False
                m.send("error:11")
        elif len(m.rx) < RX_BUFFER_SIZE:
            m.rx.append(byte)
            if byte in (10, 13):
                self.run_lines(now)               # Grbl's main loop drains the ring as lines complete
        elif b"\n" not in m.rx and b"\r" not in m.rx:
            m.rx.clear()                          # one partial line fills the ring: Grbl would be reading it
            m.line_overflow = True                # into its 80-byte line buffer; drop it up to its newline
        else:
            self.rx_dropped += 1                  # planner full and ring full: the byte is lost, as on the AVR

    # ---------------------------------------------------------------------------------------- lines

    def run_lines(self, now: float) -> None:
        m = self.m
        while not m.disconnected and not m.critical:
            if m.pending is not None:
                m.advance_pending(now)
                if m.pending is not None:
                    return
            if len(m.planner) >= PLANNER_BLOCKS:
                return                               # planner full: the line waits in the RX buffer
            ends = [i for i in (m.rx.find(b"\n"), m.rx.find(b"\r")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            raw = bytes(m.rx[:end])
            del m.rx[:end + 1]
            line = raw.decode("ascii", "replace")
            if not line.strip():
                continue                              # empty lines (the \n of \r\n) get no answer
            self.lines_received += 1
            self.log.append(line)
            try:
                result = self.execute(line, now)
            except GcodeError as exc:
                m.send(f"error:{exc.code}")
                continue
            if result == "pending" or m.critical:
                continue
            m.send("ok")

    def execute(self, line: str, now: float) -> str | None:
        if len(line) > LINE_BUFFER_SIZE:
            raise GcodeError(11)
        if line.startswith("$"):
            return self.system(line.strip(), now)
        if self.m.state in ("Alarm", "Jog"):
            # Grbl still parses (to report syntax errors) but locks motion out
            self.parse(line)
            raise GcodeError(9)
        return self.gcode(line, now)

    # ---------------------------------------------------------------------------------------- $ commands

    def system(self, line: str, now: float) -> str | None:
        m = self.m
        cmd = line[1:].upper().replace(" ", "")
        if cmd == "":
            m.send("[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]")
            return None
        if cmd.startswith("J="):
            return self.jog(cmd[2:], now)
        if cmd == "$":
            if m.state in ("Run", "Hold:0", "Hold:1"):
                raise GcodeError(8)
            for key in sorted(m.settings):
                m.send(f"${key}={m.format_setting(key)}")
            return None
        if cmd == "G":
            md = m.modal
            m.send(f"[GC:G{md.motion} G{54 + md.coord} {md.plane} G{20 if md.inches else 21} "
                   f"G{90 if md.absolute else 91} G94 {md.spindle} {md.coolant} T{md.tool} "
                   f"F{md.feed_mm_min:g} S{md.speed:g}]")
            return None
        if cmd == "C":
            return self._check_mode(now)
        if cmd == "X":
            if m.state == "Alarm":
                m.send("[MSG:Caution: Unlocked]")
                m.state = "Idle"
            return None
        if m.state not in ("Idle", "Alarm"):
            raise GcodeError(8)
        if cmd == "#":
            for i, name in enumerate(("G54", "G55", "G56", "G57", "G58", "G59")):
                m.send(f"[{name}:" + ",".join(f"{v:.3f}" for v in m.coords[i]) + "]")
            m.send("[G28:0.000,0.000,0.000]")
            m.send("[G30:0.000,0.000,0.000]")
            m.send("[G92:" + ",".join(f"{v:.3f}" for v in m.g92) + "]")
            m.send("[TLO:0.000]")
            m.send("[PRB:0.000,0.000,0.000:0]")
            return None
        if cmd == "I":
            opts = "V" + ("Z" if m.opt.positive_space else "") + "L"
            m.send(f"[VER:{VERSION}.{BUILD_DATE}:cinectrl emulator]")
            m.send(f"[OPT:{opts},{PLANNER_BLOCKS},{RX_BUFFER_SIZE}]")
            return None
        if cmd == "N":
            m.send("$N0=")
            m.send("$N1=")
            return None
        if cmd == "H":
            if not m.settings[22]:
                raise GcodeError(5)
            return m.home(now)
        if cmd == "SLP":
            m.state = "Sleep"
            m.send("[MSG:Sleeping]")
            return None
        if cmd.startswith("RST="):
            return self._restore(cmd[4:])
        if cmd.startswith("N") and "=" in cmd:
            return None
        return self._setting(cmd)

    def _check_mode(self, now: float) -> str | None:
        m = self.m
        if m.state not in ("Idle", "Alarm") and not m.check_mode:
            raise GcodeError(8)
        if m.check_mode:
            m.check_mode = False
            m.state = "Idle"
            m.send("[MSG:Disabled]")
            m.send("ok")
            m.soft_reset(now)                     # leaving check mode resets Grbl (banner follows)
            return "pending"
        if m.state == "Alarm":
            raise GcodeError(9)
        m.check_mode = True
        m.state = "Check"
        m.send("[MSG:Enabled]")
        return None

    def _restore(self, what: str) -> None:
        m = self.m
        if what not in ("$", "#", "*"):
            raise GcodeError(3)
        if what in ("$", "*"):
            m.settings = default_settings(m.opt.travel_mm, m.opt.max_rate_mm_min, m.opt.accel_mm_s2,
                                          m.opt.positive_space)
        if what in ("#", "*"):
            m.coords = [[0.0, 0.0, 0.0] for _ in range(6)]
        m.send("[MSG:Restoring defaults]")
        return None

    def _setting(self, cmd: str) -> None:
        m = self.m
        match = re.fullmatch(r"(\d+)=([-+]?(?:\d+\.?\d*|\.\d+))", cmd)
        if not match:
            raise GcodeError(3)
        key, value = int(match.group(1)), float(match.group(2))
        if key not in m.settings:
            raise GcodeError(3)
        if value < 0:
            raise GcodeError(4)
        if key == 20 and value and not m.settings[22]:
            raise GcodeError(10)
        m.settings[key] = int(value) if key in INT_SETTINGS else value
        return None

    # ---------------------------------------------------------------------------------------- G-code

    @staticmethod
    def parse(line: str) -> list[tuple[str, float]]:
        text = re.sub(r"\([^)]*\)", "", line)
        text = text.split(";", 1)[0].upper().replace(" ", "").replace("\t", "")
        if text.startswith("/"):
            return []
        words, pos = [], 0
        while pos < len(text):
            if not text[pos].isalpha():
                raise GcodeError(1)
            match = GWORD.match(text, pos)
            if not match:
                raise GcodeError(2)
            words.append((match.group(1), float(match.group(2))))
            pos = match.end()
        return words

    def gcode(self, line: str, now: float) -> str | None:
        m = self.m
        words = self.parse(line)
        modal = m.modal
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
                    m.modal = modal = Modal(feed_mm_min=0.0)
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
        motion, machine, non_modal = self._gwords(gcodes, modal)
        scale = 25.4 if modal.inches else 1.0
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
            return m.sync(values["P"], None)
        if non_modal == 100:
            return self._g10(values, axes, modal)
        if non_modal in (920, 921):
            return self._g92(non_modal, axes, modal)
        if motion is not None and motion >= 0:
            modal.motion = motion
        if not axes:
            return None
        if motion == -1 or (motion is None and modal.motion not in (0, 1)):
            raise GcodeError(31)
        mode = motion if motion is not None else modal.motion
        if mode == 1 and modal.feed_mm_min <= 0:
            raise GcodeError(22)
        target = m.target(axes, machine)
        if m.check_mode:
            return None
        if m.settings[20] and m.beyond_travel(target):
            m.soft_limit(now)
            return "pending"
        m.queue(Block(target, modal.feed_mm_min / 60.0, rapid=mode == 0), now)
        return None

    @staticmethod
    def _gwords(gcodes: list[float], modal: Modal) -> tuple[int | None, bool, int | None]:
        """G words of one block: (motion mode, G53 seen, non-modal code); modal groups updated."""
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
            elif gi == 800:
                group("motion")
                motion = -1
            elif gi in (900, 910):
                group("distance")
                modal.absolute = gi == 900
            elif gi in (200, 210):
                group("units")
                modal.inches = gi == 200
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
        return motion, machine, non_modal

    def _g10(self, values: dict[str, float], axes: dict[str, float], modal: Modal) -> str:
        m = self.m
        lval, pval = values.get("L"), int(values.get("P", 1))
        if lval not in (2, 20) or not 0 <= pval <= 6:
            raise GcodeError(28)
        if not axes:
            raise GcodeError(26)
        index = modal.coord if pval == 0 else pval - 1

        def set_coord() -> None:
            for i, a in enumerate(AXES):
                if a in axes:
                    m.coords[index][i] = (m.mpos[i] - m.g92[i] - axes[a] if lval == 20 else axes[a])
            m.wco_counter = 0
        return m.sync(0.0, set_coord)

    def _g92(self, code: int, axes: dict[str, float], modal: Modal) -> str:
        m = self.m
        if code == 920 and not axes:
            raise GcodeError(26)

        def set_g92() -> None:
            for i, a in enumerate(AXES):
                if code == 921:
                    m.g92[i] = 0.0
                elif a in axes:
                    m.g92[i] = m.mpos[i] - m.coords[modal.coord][i] - axes[a]
            m.wco_counter = 0
        return m.sync(0.0, set_g92)

    def jog(self, text: str, now: float) -> str | None:
        m = self.m
        if m.state not in ("Idle", "Jog"):
            raise GcodeError(8 if m.state != "Alarm" else 9)
        words = self.parse(text)
        saved = m.modal
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
        target = m.target(axes, machine, jog_modal)
        if m.settings[20] and m.beyond_travel(target):
            raise GcodeError(15)
        m.queue(Block(target, values["F"] * scale / 60.0, jog=True), now)
        return None
