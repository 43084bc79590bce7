"""An interactive slider shell (`cinectrl rig slider --port P shell`), like `gphoto2 --shell`: one open port,
so moves run in the background and `hold`, `resume`, `jog` and `status` act on them while they run.

Opening a port for every command cannot do that: the port is exclusive and each open may reset the board.
Ctrl-C at the prompt or during `wait` is a feed hold (decelerate, keep position), never a reset.
"""

from __future__ import annotations

import cmd
import shlex
from typing import IO, Callable

from .grbl import GrblSlider
from .protocol import SliderError, SliderStatus

HELP = """\
status            state and machine position (also: where, ?)
home              home the axis ($H)
move MM [FEED]    go to MM (machine mm) and come back to the prompt at once; FEED in mm/min
jog MM [FEED]     move by MM from here, in the background
wait              wait until the slider is Idle (Ctrl-C holds it)
hold              feed hold: decelerate and stop, position kept (also: !)
resume            continue after a hold (also: ~)
stop              hold, then drop the rest of the motion (soft reset once stopped: position kept)
unlock            leave Alarm without homing ($X): emergencies only
reset             soft reset (Ctrl-X); ALARM:3 if it was moving: home again
settings          the controller's $$ settings
send LINE         send one G-code or $ line and print what the controller answered
quit              leave (also: exit, Ctrl-D); the board keeps its position for the next command"""


def show(st: SliderStatus) -> str:
    return f"state {st.state}  position {st.position_mm:.3f} mm  feed {st.feed_mm_min:g} mm/min"


class SliderShell(cmd.Cmd):
    intro = "slider shell: type help for the commands, quit to leave"
    prompt = "slider> "

    def __init__(self, slider: GrblSlider, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.slider = slider

    # ---------------------------------------------------------------------------------------- plumbing

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def run(self) -> None:
        """The loop: Ctrl-C holds the slider and returns to the prompt."""
        intro = self.intro
        while True:
            try:
                self.cmdloop(intro)
                return
            except KeyboardInterrupt:
                intro = None
                self.say("")
                self._guarded(lambda: self.say("held (Ctrl-C): " + show(self.slider.hold())))

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except SliderError as exc:
            self.say(f"error: {exc}")
        except ValueError as exc:
            self.say(f"error: {exc}")

    def _numbers(self, arg: str, what: str) -> tuple[float, float | None]:
        words = shlex.split(arg)
        if not 1 <= len(words) <= 2:
            raise ValueError(f"{what} takes a distance in mm and an optional feed in mm/min, e.g. {what} 120 600")
        try:
            values = [float(w) for w in words]
        except ValueError:
            raise ValueError(f"{what} {arg!r}: give numbers, e.g. {what} 120 600") from None
        return values[0], values[1] if len(values) > 1 else None

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:
        aliases = {"?": "status", "where": "status", "!": "hold", "~": "resume", "exit": "quit", "q": "quit"}
        word, _, rest = line.partition(" ")
        if word in aliases:
            return bool(self.onecmd(f"{aliases[word]} {rest}".strip()))
        self.say(f"error: unknown command {word!r}; type help")
        return False

    def do_help(self, arg: str) -> None:
        self.say(HELP)

    # ---------------------------------------------------------------------------------------- commands

    def do_status(self, arg: str) -> None:
        self._guarded(lambda: self.say(show(self.slider.status())))

    def do_home(self, arg: str) -> None:
        self._guarded(lambda: self.say(show(self.slider.home())))

    def do_move(self, arg: str) -> None:
        def action() -> None:
            mm, feed = self._numbers(arg, "move")
            seconds = self.slider.start_move(mm, feed_mm_min=feed)
            self.say(f"moving to {mm:.3f} mm (about {seconds:.1f} s); wait, hold or status")
        self._guarded(action)

    def do_jog(self, arg: str) -> None:
        def action() -> None:
            mm, feed = self._numbers(arg, "jog")
            self.slider.jog(mm, feed_mm_min=feed, wait=False)
            self.say(f"jogging {mm:+.3f} mm; wait, hold or status")
        self._guarded(action)

    def do_wait(self, arg: str) -> None:
        def action() -> None:
            if self.slider.status().state.startswith("Hold"):
                self.say("held: resume first (or stop)")
                return
            self.say(show(self.slider.wait_idle(timeout=600.0)))
        try:
            self._guarded(action)
        except KeyboardInterrupt:
            self._guarded(lambda: self.say("held (Ctrl-C): " + show(self.slider.hold())))

    def do_hold(self, arg: str) -> None:
        self._guarded(lambda: self.say(show(self.slider.hold())))

    def do_resume(self, arg: str) -> None:
        def action() -> None:
            self.slider.resume()
            self.say(show(self.slider.status()))
        self._guarded(action)

    def do_stop(self, arg: str) -> None:
        def action() -> None:
            self.slider.hold()
            self.slider.reset()
            self.say("stopped; the rest of the motion was dropped: " + show(self.slider.status()))
        self._guarded(action)

    def do_unlock(self, arg: str) -> None:
        def action() -> None:
            self.slider.unlock()
            self.say("unlocked without homing ($X): positions are only as good as before. " +
                     show(self.slider.status()))
        self._guarded(action)

    def do_reset(self, arg: str) -> None:
        def action() -> None:
            self.slider.reset()
            self.say("soft reset sent; home before the next move if it was moving: " + show(self.slider.status()))
        self._guarded(action)

    def do_settings(self, arg: str) -> None:
        self._guarded(lambda: self.say("\n".join(f"{k}={v}" for k, v in self.slider.info.settings.items())))

    def do_send(self, arg: str) -> None:
        def action() -> None:
            if not arg.strip():
                raise ValueError("send needs a line, e.g. send $#")
            for line in self.slider.command(arg):
                self.say(line)
            self.say("ok")
        self._guarded(action)

    def do_quit(self, arg: str) -> bool:
        return True

    def do_EOF(self, arg: str) -> bool:   # noqa: N802 - cmd.Cmd's name for end of input
        self.say("")
        return True
