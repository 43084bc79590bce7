"""The GRBL emulator as a GRBL 1.1 sender sees it: raw pyserial over the pty, no driver in between."""

from __future__ import annotations

import re
import time

import pytest
import serial

from rigs.slider.emulator import GrblEmulator, RX_BUFFER_SIZE

pytestmark = pytest.mark.timeout(60)
STATUS = re.compile(r"^<(Idle|Run|Hold:[01]|Jog|Alarm|Door:[0-3]|Check|Home|Sleep)"
                    r"\|[MW]Pos:-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3}(\|Bf:\d+,\d+)?\|FS:\d+,\d+"
                    r"(\|WCO:-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3})?(\|Ov:\d+,\d+,\d+)?>$")


class Raw:
    """A bare sender: write bytes, read CRLF lines with a deadline."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=0.05)

    def lines_until(self, predicate, timeout: float = 5.0) -> list[str]:
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = self.port.readline()
            if raw:
                assert raw.endswith(b"\r\n"), raw
                out.append(raw.decode().strip())
                if predicate(out[-1]):
                    return out
        raise AssertionError(f"timed out; got {out}")

    def send(self, line: str, timeout: float = 5.0) -> list[str]:
        self.port.write(line.encode() + b"\n")
        return self.lines_until(lambda l: l == "ok" or l.startswith(("error:", "ALARM:")), timeout)

    def status(self) -> str:
        self.port.write(b"?")
        return self.lines_until(lambda l: l.startswith("<"))[-1]

    def quiet(self, seconds: float = 0.1) -> list[str]:
        time.sleep(seconds)
        return [l.decode().strip() for l in self.port.readlines()]


@pytest.fixture
def emu():
    e = GrblEmulator(speed=50)
    e.start()
    yield e
    e.stop()


@pytest.fixture
def raw(emu):
    r = Raw(emu.path)
    r.lines_until(lambda l: l.startswith("[MSG:'$H'"))   # banner after the "DTR reset" of opening
    yield r
    r.port.close()


def test_banner_on_open_and_on_ctrl_x(emu):
    r = Raw(emu.path)
    assert r.lines_until(lambda l: "to unlock" in l)[-2:] == ["Grbl 1.1h ['$' for help]", "[MSG:'$H'|'$X' to unlock]"]
    r.port.write(b"\x18")
    assert "Grbl 1.1h ['$' for help]" in r.lines_until(lambda l: "to unlock" in l)
    r.port.close()
    r2 = Raw(emu.path)                                    # a second open reboots the board again
    assert "Grbl 1.1h ['$' for help]" in r2.lines_until(lambda l: "to unlock" in l)
    r2.port.close()


def test_alarm_state_answers_info_commands_and_locks_gcode(raw):
    assert raw.status().startswith("<Alarm|")
    settings = raw.send("$$")
    assert settings[-1] == "ok" and "$130=600.000" in settings and "$22=1" in settings and "$23=1" in settings
    assert raw.send("$I")[:2] == ["[VER:1.1h.20190825:cinectrl emulator]", "[OPT:VZL,15,128]"]
    assert raw.send("$G") == ["[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]", "ok"]
    params = raw.send("$#")
    assert params[0] == "[G54:0.000,0.000,0.000]" and "[TLO:0.000]" in params and params[-1] == "ok"
    assert raw.send("G0X10") == ["error:9"]
    assert raw.send("$X") == ["[MSG:Caution: Unlocked]", "ok"]
    assert raw.status().startswith("<Idle|")


def test_status_report_format_three_axes_and_fs(raw):
    raw.send("$H")
    for _ in range(12):
        assert STATUS.match(raw.status())
    raw.send("$10=3")
    st = raw.status()
    assert STATUS.match(st) and "|Bf:15,128|" in st


def test_errors_for_malformed_and_unsupported_lines(raw):
    raw.send("$H")
    assert raw.send("G1X10") == ["error:22"]            # no feed rate yet
    assert raw.send("X") == ["error:2"]
    assert raw.send("X1.2.3") == ["error:1"]
    assert raw.send("10X") == ["error:1"]
    assert raw.send("G7X1") == ["error:20"]
    assert raw.send("G0G1X1") == ["error:21"]
    assert raw.send("G0X1X2") == ["error:25"]
    assert raw.send("$Q") == ["error:3"]
    assert raw.send("G4") == ["error:28"]
    assert raw.send("$J=G91X-50F600") == ["error:15"]  # jog beyond travel: error, not alarm
    assert raw.send("G0X" + "1" * 90) == ["error:11"]
    assert raw.send("G0X" + "1" * 200) == ["error:11"]      # longer than the RX buffer itself
    assert raw.status().startswith("<Idle|")


def test_compact_lines_and_motion_read_back(raw, emu):
    raw.send("$H")
    assert raw.send("G01X3.333F600") == ["ok"]
    assert raw.send("G4P0") == ["ok"]
    assert "MPos:3.333,0.000,0.000" in raw.status()
    assert raw.send("g91 g0 x10 (relative rapid) ; comment") == ["ok"]
    raw.send("G4 P0")
    assert "MPos:13.333," in raw.status()


def test_wco_after_g10_l20_and_g92(raw):
    raw.send("$H")
    raw.send("G0X100")
    assert raw.send("G10 L20 P1 X0") == ["ok"]          # waits for the move (sync), then sets G54
    st = raw.status()
    assert "MPos:100.000," in st and "|WCO:100.000,0.000,0.000" in st
    raw.send("$10=0")
    assert "WPos:0.000,0.000,0.000" in raw.status()
    raw.send("G92 X5")
    st = raw.status()
    assert "WPos:5.000," in st and "WCO:95.000,0.000,0.000" in st
    assert raw.send("$#")[6] == "[G28:0.000,0.000,0.000]"
    assert "[G92:-5.000,0.000,0.000]" in raw.send("$#")


def test_character_counting_stream_against_the_128_byte_buffer(raw, emu):
    """grbl-streamer / bCNC style: keep sum(len(lines in flight)) < 128; every line gets its ok."""
    raw.send("$H")
    lines = [f"G1X{1 + (i % 40) * 0.5:.3f}F3000" for i in range(200)] + ["G4P0"]
    in_flight: list[int] = []
    oks, errors, sent = 0, [], 0
    deadline = time.monotonic() + 30
    while oks + len(errors) < len(lines) and time.monotonic() < deadline:
        while sent < len(lines) and sum(in_flight) + len(lines[sent]) + 1 <= RX_BUFFER_SIZE:
            raw.port.write(lines[sent].encode() + b"\n")
            in_flight.append(len(lines[sent]) + 1)
            sent += 1
        reply = raw.port.readline().decode().strip()
        if reply == "ok" or reply.startswith("error"):
            in_flight.pop(0)
            oks += reply == "ok"
            if reply != "ok":
                errors.append(reply)
    assert (oks, errors) == (len(lines), [])
    assert emu.rx_dropped == 0
    assert "MPos:" + f"{1 + (199 % 40) * 0.5:.3f}" in raw.status()


def test_an_overflowing_sender_loses_bytes_like_on_the_board(raw, emu):
    """Sending far more than 127 bytes while the planner is full overflows the RX buffer."""
    raw.send("$H")
    blob = "".join(f"G1X{100 + i}F60\n" for i in range(60)).encode()   # slow moves fill the planner
    raw.port.write(blob)
    time.sleep(0.2)
    assert emu.rx_dropped > 0
    raw.port.write(b"\x18")


def test_status_ignored_during_homing(raw):
    raw.port.write(b"$H\n")
    time.sleep(0.02)
    raw.port.write(b"?")
    replies = raw.lines_until(lambda l: l == "ok")
    assert replies == ["ok"]                             # no <Home|...> report: Grbl ignores '?' while homing


def test_feed_hold_goes_hold1_then_hold0_and_resume_finishes(raw):
    raw.send("$H")
    raw.send("G1X500F600")                               # ~1 s of real time at x50
    time.sleep(0.05)
    raw.port.write(b"!?")
    first = raw.lines_until(lambda l: l.startswith("<"))[-1]
    assert first.startswith(("<Hold:1|", "<Hold:0|"))
    time.sleep(0.1)
    held = raw.status()
    assert held.startswith("<Hold:0|") and "FS:0," in held
    raw.port.write(b"~")
    assert raw.send("G4P0") == ["ok"]
    assert raw.status().startswith("<Idle|MPos:500.000,")


def test_soft_limit_alarm_is_critical_until_reset(raw):
    raw.send("$H")
    assert raw.send("G0X700") == ["ALARM:2"]
    assert raw.lines_until(lambda l: l.startswith("[MSG"))[-1] == "[MSG:Reset to continue]"
    raw.port.write(b"?")
    assert raw.quiet() == []                             # '?' ignored after a critical alarm
    raw.port.write(b"\x18")
    assert "[MSG:'$H'|'$X' to unlock]" in raw.lines_until(lambda l: "to unlock" in l)
    assert raw.status().startswith("<Alarm|MPos:0.000,")   # position kept (ALARM:2 stops before moving)


def test_hard_limit_with_soft_limits_off(emu):
    emu.settings[20] = 0
    r = Raw(emu.path)
    r.lines_until(lambda l: "to unlock" in l)
    r.send("$H")
    assert r.send("G0X620") == ["ok"]
    assert r.lines_until(lambda l: l.startswith("ALARM"))[-1] == "ALARM:1"
    r.port.close()


def test_reset_while_moving_raises_alarm_3(raw):
    raw.send("$H")
    raw.send("G1X400F600")
    time.sleep(0.03)
    raw.port.write(b"\x18")
    got = raw.lines_until(lambda l: "to unlock" in l)
    assert got[0] == "ALARM:3" and "Grbl 1.1h ['$' for help]" in got


def test_check_mode_parses_without_moving(raw):
    raw.send("$H")
    assert raw.send("$C") == ["[MSG:Enabled]", "ok"]
    assert raw.send("G0X300") == ["ok"]
    assert raw.status().startswith("<Check|MPos:0.000,")
    assert raw.send("$C")[:2] == ["[MSG:Disabled]", "ok"]


def test_unknown_emulator_option_is_named():
    with pytest.raises(TypeError, match="backlash"):
        GrblEmulator(backlash=1)
