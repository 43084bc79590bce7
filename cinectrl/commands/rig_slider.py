"""`cinectrl rig slider --port PORT status|home|move MM|jog MM|hold|resume|reset|shell` and `cinectrl rig
emulate-slider`. The port is opened without resetting the controller where the platform allows (see
rigs/slider/grbl.py), so `move 120` then `status` reads 120 mm; `shell` keeps one port open for hold,
resume and jog while a move runs."""

from __future__ import annotations

import signal
import threading

import typer

from rigs.slider import open_slider
from rigs.slider.protocol import SliderAlarm, SliderError

from ._common import fail
from ._plain import say

ACTIONS = ("status", "home", "move", "jog", "hold", "resume", "reset", "shell")


def slider(
    action: str = typer.Argument(..., help="status | home | move MM | jog MM | hold | resume | reset | shell"),
    mm: float | None = typer.Argument(None, help="Target (move, machine mm) or distance (jog, mm)."),
    port: str = typer.Option(..., "--port", help="Serial port (prefer /dev/serial/by-id/...), or 'emulator'."),
    feed: float | None = typer.Option(None, "--feed", help="Feed rate in mm/min (default: $110, the max rate)."),
    speed: float = typer.Option(1.0, "--speed", help="Emulator only: time compression (50 = 50x faster)."),
    no_home: bool = typer.Option(False, "--no-home", help="Refuse to move instead of homing a locked controller."),
) -> None:
    """Drive the slider from the command line; prints the state and machine position after each action."""
    if action not in ACTIONS:
        fail(f"unknown slider action {action!r}; use one of: {', '.join(ACTIONS)}")
    if action in ("move", "jog") and mm is None:
        fail(f"'{action}' needs a distance in mm, e.g. cinectrl rig slider --port {port} {action} 100")
    if action not in ("move", "jog") and mm is not None:
        fail(f"'{action}' takes no value (got {mm:g})")
    options = {"speed": speed} if port == "emulator" else {}
    try:
        sl = open_slider(port, **options)
    except SliderError as exc:
        fail(str(exc))
    if sl is None:
        fail("--port none: there is no slider to drive; give a serial port or 'emulator'")
    try:
        travel = ("travel unknown until the controller is Idle (it is held or moving)" if sl.info_pending else
                  f"travel {sl.info.travel_mm[0]:g}..{sl.info.travel_mm[1]:g} mm")
        say(f"{sl.info.firmware} on {sl.info.port}, {travel}")
        if sl.stable_port and sl.stable_port != port:
            say(f"stable name for this port: {sl.stable_port}")
        if sl.reset_on_open:
            say("the controller reset when the port opened (DTR): its position was lost"
                + ("; later commands will not reset it" if sl.dtr_held else ""))
        for warning in sl.warnings:
            say(f"warning: {warning}")
        if action == "shell":
            from rigs.slider.shell import SliderShell

            SliderShell(sl).run()
            return
        if action in ("move", "jog", "home"):
            _motion(sl, action, mm, feed, port, no_home)
        elif action == "hold":
            _show(sl.hold())
        elif action == "resume":
            sl.resume()
            _show(sl.status())
        elif action == "reset":
            sl.reset()
            say("soft reset sent; re-home before the next move if it was moving")
            _show(sl.status())
        else:
            _show(sl.status())
    except SliderAlarm as exc:
        fail(f"{exc}; run: cinectrl rig slider --port {port} home")
    except SliderError as exc:
        fail(str(exc))
    finally:
        sl.close()


def _motion(sl, action: str, mm: float | None, feed: float | None, port: str, no_home: bool) -> None:
    """home / move / jog under the safe stop: Ctrl-C or SIGTERM holds the carriage at once and says where."""
    from rigs.slider.protocol import MotionHeld
    from rigs.slider.stop import SafeStop

    with SafeStop(sl) as stop:
        try:
            if action in ("move", "jog"):
                sl.check_target(mm if action == "move" else sl.status().position_mm + mm)
                if sl.status().state == "Alarm":
                    if no_home:
                        fail("the controller is locked (Alarm) after its reset; home it first "
                             f"(cinectrl rig slider --port {port} home) or drop --no-home")
                    say("controller locked (Alarm): homing first ($H)")
                    _show(sl.home())
            if action == "home":
                _show(sl.home())
            elif action == "move":
                result = sl.move_to(mm, feed_mm_min=feed)
                say(f"moved to {result.target_mm:.3f} mm: reads back {result.position_mm:.3f} mm "
                    f"in {result.finished_at - result.started_at:.2f} s")
            else:
                _show(sl.jog(mm, feed_mm_min=feed))
        except MotionHeld:
            pass
        if stop.signal is None:
            return
        held, message = stop.confirm()
    say(message, err=True)
    raise typer.Exit(stop.exit_code if held else 1)


def _show(st) -> None:
    from rigs.slider.shell import show

    say(show(st))


def emulate_slider(
    speed: float = typer.Option(1.0, "--speed", help="Time compression (1 = real time)."),
    travel: float = typer.Option(600.0, "--travel", help="Travel $130 in mm."),
    backlash: float = typer.Option(0.0, "--backlash", help="Backlash (play) in mm."),
    noise: float = typer.Option(0.0, "--noise", help="Position noise (standard deviation, mm) per move."),
    negative_space: bool = typer.Option(False, "--negative-space", help="Stock Grbl machine space -$130..0."),
) -> None:
    """Run a GRBL 1.1 emulator on a pseudo-terminal until Ctrl-C; prints the device path to connect to."""
    from rigs.slider.emulator import GrblEmulator

    try:
        emu = GrblEmulator(speed=speed, travel_mm=travel, backlash_mm=backlash, noise_mm=noise,
                           positive_space=not negative_space)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    path = emu.start()
    print(path, flush=True)
    say(f"GRBL emulator on {path} (travel {travel:g} mm, speed x{speed:g}); Ctrl-C to stop")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    say("emulator stopped")


def register(app: typer.Typer) -> None:
    app.command("slider", context_settings={"ignore_unknown_options": True})(slider)
    app.command("emulate-slider")(emulate_slider)
