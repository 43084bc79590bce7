"""GrblSlider against the GRBL emulator over a real pty with real pyserial (no mock of the serial layer)."""

from __future__ import annotations

import statistics
import termios
import threading
import time

import pytest

from rigs.slider import open_slider
from rigs.slider.emulator import GrblEmulator
from rigs.slider.grbl import GrblSlider
from rigs.slider.protocol import (Slider, SliderAlarm, SliderCommandError, SliderDisconnected, SliderStatus, TravelError)

pytestmark = pytest.mark.timeout(60)
SPEED = 50.0


@pytest.fixture
def slider():
    sl = open_slider("emulator", speed=SPEED, seed=1)
    try:
        yield sl
    finally:
        sl.close()


@pytest.fixture
def homed(slider):
    slider.home()
    return slider


def test_open_reads_settings_and_boots_locked(slider):
    assert isinstance(slider, Slider)
    info = slider.info
    assert info.firmware == "Grbl 1.1h"
    assert info.travel_mm == (0.0, 600.0)
    assert info.max_rate_mm_min == 3000.0 and info.accel_mm_s2 == 250.0
    assert info.settings["$22"] == "1" and "Z" in info.build          # HOMING_FORCE_SET_ORIGIN reported by $I
    assert slider.status().state == "Alarm"                           # a DTR reset leaves Grbl locked
    with pytest.raises(SliderAlarm, match="home"):
        slider.move_to(100)


def test_homing_sets_origin_and_unlocks(slider):
    st = slider.home()
    assert st.state == "Idle" and st.position_mm == pytest.approx(0.0)
    assert slider.emulator.homed


def test_sequence_of_moves_reads_back_machine_position(homed):
    for target in (100.0, 250.5, 30.0, 599.0, 0.0, 412.125):
        result = homed.move_to(target)
        assert result.target_mm == target
        assert result.position_mm == pytest.approx(target, abs=1e-3)
        assert result.finished_at >= result.started_at
        assert homed.status().state == "Idle"
    # the driver saw completion while the emulator had already gone Idle, never before
    assert homed.emulator.idle_at is not None


def test_move_takes_at_least_the_trapezoid_time(homed):
    from rigs.slider.motion import move_duration

    t0 = time.monotonic()
    homed.move_to(300.0)
    elapsed = time.monotonic() - t0
    assert elapsed >= move_duration(300.0, 50.0, 250.0) / SPEED * 0.95


def test_out_of_travel_is_refused_before_anything_is_sent(homed):
    before = homed.emulator.lines_received
    for bad in (-0.5, 600.01, float("nan"), 1e9):
        with pytest.raises(TravelError, match="outside the travel 0..600"):
            homed.move_to(bad)
    with pytest.raises(TravelError):
        homed.run_trajectory(100, 700, speed_mm_s=10)
    with pytest.raises(TravelError, match=r"\$110"):
        homed.run_trajectory(100, 200, speed_mm_s=500)
    assert homed.emulator.lines_received == before


def _approach_spread(approach: str) -> tuple[float, float]:
    sl = open_slider("emulator", speed=200, backlash_mm=0.4, seed=3, approach=approach, overshoot_mm=1.0)
    try:
        sl.home()
        target, carriage = 200.0, []
        for i in range(50):
            sl.move_to(target + (30.0 if i % 2 else -30.0))     # alternate the side we come from
            assert sl.move_to(target).position_mm == pytest.approx(target, abs=1e-3)   # MPos is always exact
            carriage.append(sl.emulator.carriage_mm)            # where the carriage really is
        return max(carriage) - min(carriage), statistics.pstdev(carriage)
    finally:
        sl.close()


def test_one_direction_approach_cancels_backlash_over_50_approaches():
    spread_one_side, _ = _approach_spread("below")
    spread_both_sides, _ = _approach_spread("none")
    assert spread_one_side < 1e-6
    assert spread_both_sides == pytest.approx(0.4, abs=1e-6)   # the full play shows up without it


def test_feed_hold_mid_move_then_resume(homed):
    run = homed.run_trajectory(100, 500, speed_mm_s=8, wait=False)        # ~1 s of real time at x50
    assert run.motion_started_at > 0 and run.finished_at is None
    time.sleep(0.05)
    held = homed.hold()
    assert held.state == "Hold:0"
    assert 100 < held.position_mm < 500
    time.sleep(0.05)
    assert homed.status().position_mm == pytest.approx(held.position_mm)   # stays put while held
    homed.resume()
    done = homed.wait_idle(timeout=20)
    assert done.state == "Idle" and done.position_mm == pytest.approx(500.0)


def test_status_polls_from_a_camera_thread_interleave_with_a_trajectory(homed):
    """The simulated camera polls status().position_mm from its own thread while the main thread waits."""
    homed.move_to(50)
    seen: list[SliderStatus] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def camera() -> None:
        try:
            while not stop.is_set():
                seen.append(homed.status())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=camera)
    thread.start()
    try:
        homed.run_trajectory(50, 350, speed_mm_s=50, wait=False)
        end = homed.wait_idle(timeout=20)
        during = len(seen)
        homed.move_to(120)
    finally:
        stop.set()
        thread.join(5)
    assert not errors
    assert end.position_mm == pytest.approx(350.0)
    moving = [s.position_mm for s in seen[:during] if s.state == "Run"]
    assert len(moving) > 10
    assert all(b >= a for a, b in zip(moving, moving[1:]))          # a consistent, advancing carriage
    assert all(50 <= x <= 350 for x in moving)
    assert any(s.state == "Run" for s in seen[during:])             # and the next move is seen as well


def test_alarm_mid_move_is_reported_with_its_message_and_rehome_recovers(homed):
    homed.move_to(100)
    homed.emulator.inject_alarm(after_moves=1, code=1)
    with pytest.raises(SliderAlarm, match="ALARM:1 .hard limit") as info:
        homed.move_to(400)
    assert info.value.code == 1
    assert homed.status().state == "Alarm"
    with pytest.raises(SliderAlarm):
        homed.move_to(200)                       # refused until re-homed
    assert homed.home().state == "Idle"
    assert homed.move_to(200).position_mm == pytest.approx(200.0)


def test_soft_reset_while_moving_raises_alarm_3_and_needs_rehome(homed):
    homed.run_trajectory(10, 500, speed_mm_s=8, wait=False)
    time.sleep(0.03)
    homed.reset()
    assert homed.status().state == "Alarm"
    with pytest.raises(SliderAlarm, match="ALARM:3"):
        homed.move_to(50)
    homed.home()
    assert homed.move_to(50).position_mm == pytest.approx(50.0)


def test_port_vanishing_mid_move_becomes_disconnected(homed):
    homed.move_to(100)
    homed.emulator.inject_disconnect(after_moves=1)
    with pytest.raises(SliderDisconnected, match="vanished"):
        homed.move_to(300)
    with pytest.raises(SliderDisconnected):
        homed.status()


def test_stalled_axis_is_invisible_to_mpos_but_homing_resyncs(homed):
    """Steppers are open loop: a stall never shows in MPos. The emulator's truth shows it; $H clears it."""
    homed.emulator.inject_stall(after_moves=1, fraction=0.5)
    assert homed.move_to(300).position_mm == pytest.approx(300.0)
    assert homed.emulator.carriage_mm == pytest.approx(150.0, abs=1.0)
    homed.home()
    homed.move_to(300)
    assert homed.emulator.carriage_mm == pytest.approx(300.0, abs=1e-3)


def test_jog_checks_travel_and_returns_idle(homed):
    homed.move_to(100)
    st = homed.jog(-12.5)
    assert st.state == "Idle" and st.position_mm == pytest.approx(87.5)
    with pytest.raises(TravelError):
        homed.jog(-100)


def test_negative_machine_space_of_stock_grbl():
    emu = GrblEmulator(speed=SPEED, positive_space=False)
    emu.start()
    sl = GrblSlider(emu.path, emulator=emu)
    try:
        assert "Z" not in sl.info.build.split()[-1]
        lo, hi = sl.info.travel_mm
        assert (lo, hi) == (-600.0, -1.0)          # stock: MPos -$27 after homing, keep off the switch
        assert sl.home().position_mm == pytest.approx(-1.0)
        assert sl.move_to(-300).position_mm == pytest.approx(-300.0)
        with pytest.raises(TravelError):
            sl.move_to(10)
    finally:
        sl.close()


def test_wpos_reports_are_converted_to_machine_position(homed):
    homed.move_to(100)
    homed.command("G10 L20 P1 X0")            # work zero here: WCO = 100
    homed.command("$10=0")                    # report WPos instead of MPos
    assert homed.status().position_mm == pytest.approx(100.0)
    assert homed.move_to(150).position_mm == pytest.approx(150.0)   # targets are machine coordinates (G53)


def test_close_stops_the_emulator():
    sl = open_slider("emulator", speed=SPEED)
    emu = sl.emulator
    sl.close()
    assert emu.master < 0
    assert open_slider("none") is None


def test_command_returns_lines_and_names_errors(homed):
    assert homed.command("$G")[0].startswith("[GC:G0 G54")
    with pytest.raises(SliderCommandError, match=r"'G7 X1' refused: error:20 \(unsupported"):
        homed.command("G7 X1")


def test_position_noise_moves_the_carriage_not_the_reported_position():
    sl = open_slider("emulator", speed=200, noise_mm=0.02, seed=7)
    try:
        sl.home()
        truth = []
        for i in range(10):
            sl.move_to(100 + 10 * (i % 2))
            assert sl.move_to(120).position_mm == pytest.approx(120.0)
            truth.append(sl.emulator.carriage_mm)
        assert 0.001 < statistics.pstdev(truth) < 0.1
    finally:
        sl.close()


def test_stable_port_name_and_settings_warnings(tmp_path):
    from rigs.slider.grbl import settings_warnings, stable_port_name

    device = tmp_path / "ttyUSB0"
    device.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-1a86_USB_Serial-if00-port0").symlink_to(device)
    assert stable_port_name(str(device), by_id) == str(by_id / "usb-1a86_USB_Serial-if00-port0")
    assert stable_port_name("/dev/pts/0", tmp_path / "missing") is None
    assert settings_warnings({"$1": "255", "$20": "1", "$22": "1"}) == []
    sl = open_slider("emulator", speed=SPEED, settings={1: 25})
    try:
        assert any("$1=25" in w and "$1=255" in w for w in sl.warnings)
    finally:
        sl.close()


def test_reopening_the_port_does_not_reset_the_controller():
    """The driver clears HUPCL: closing never drops DTR, so the next open finds the board as it was left.
    A plain client that leaves HUPCL set (or the first open of all) reboots it, as a classic Arduino does."""
    import serial

    emu = GrblEmulator(speed=SPEED)
    emu.start()
    try:
        first = GrblSlider(emu.path)
        assert first.reset_on_open and first.dtr_held and first.status().state == "Alarm"   # power-up lock
        first.home()
        first.move_to(120.0)
        first.close()
        again = GrblSlider(emu.path)
        assert not again.reset_on_open and again.info.firmware == "Grbl 1.1h"
        st = again.status()
        assert (st.state, st.position_mm) == ("Idle", pytest.approx(120.0))     # position and homing kept
        again.move_to(150.0)
        again.close()
        assert emu.resets_on_open == 1
        plain = serial.Serial(emu.path, 115200, timeout=0.1)                    # HUPCL as a port comes up
        attrs = termios.tcgetattr(plain.fd)
        attrs[2] |= termios.HUPCL
        termios.tcsetattr(plain.fd, termios.TCSANOW, attrs)
        plain.write(b"?")
        time.sleep(0.2)
        plain.close()                                                          # ... drops DTR on close
        rebooted = GrblSlider(emu.path)
        assert rebooted.reset_on_open and rebooted.status().state == "Alarm" and emu.resets_on_open == 2
        rebooted.close()
    finally:
        emu.stop()


def test_start_move_returns_at_once_and_hold_keeps_the_position(homed):
    expected = homed.start_move(500.0, feed_mm_min=1200)
    assert expected > 0 and homed.status().state == "Run"
    st = homed.hold()
    assert st.state == "Hold:0" and 0.0 < st.position_mm < 500.0
    homed.resume()
    assert homed.wait_idle().position_mm == pytest.approx(500.0)
    homed.jog(-20.0, wait=False)
    assert homed.wait_idle().position_mm == pytest.approx(480.0)
