"""The resumable session runner: a plan's points, shot one by one, each one durable before the next.

Order of work (the ledger is the truth, as in docs/capture.md):

1. open the catalog and decide which session this run is (capture/takes.py): the unfinished session of
   the same plan (resume), a new take, or a refusal when the plan of an unfinished session was edited;
2. resuming: take the session's owner lock (capture/owner.py) before anything else, so a second run of
   the same session is refused before it opens a device;
3. open camera and slider and validate the plan (or the stored points) against the camera's choices and
   the slider's travel; a new take then writes its session row and a ledger row for every point, makes
   its folder and takes its lock in ONE transaction: a failed start leaves nothing `running`;
4. on resume, delete files of the session that no committed asset row references (frames in flight when
   the previous run died: partial or complete but uncommitted) and put `running` points back to pending;
5. home, then for each pending point: check suspenders (disk), apply settings (skipping unchanged ones),
   move, capture, fsync + hash the files, and commit the asset rows and the point's `done` in ONE
   transaction. A crash at any instant loses at most the frame in flight;
6. faults climb a ladder: busy -> back off and retry; still busy or timeout -> reopen the camera, whose
   settings are then all re-applied before the next frame; disconnected -> wait for the camera to come
   back (suspender), reopen; slider alarm -> re-home and redo the point; disk low -> wait for space, or
   stop cleanly; Ctrl-C -> pause at the next safe point (slider feed hold) and ask resume/abort.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rigs.camera import values
from rigs.camera.files import fsync_dir, fsync_file
from rigs.camera.protocol import (
    Camera, CameraBusy, CameraClaimed, CameraDisconnected, CameraError, CameraTimeout, CapturedFile,
)
from rigs.slider.protocol import (MotionHeld, Slider, SliderAlarm, SliderDisconnected, SliderError,
                                  SliderTimeout)
from rigs.slider.stop import confirm_hold

from . import status as words
from .catalog import sha256_file
from .display import Display, QuietDisplay
from .ledger import DuplicateFrame, Ledger
from .owner import LOCK_NAME, Owner, SessionLock, plan_lock
from .plan import Plan, PlanError, Point, Problem, bytes_per_point, check_plan, expand, plan_key
from .suspenders import (
    DiskGuard, DiskLow, Decision, InterruptHandler, SessionStopped, abort_decision,
)
from .takes import Take, choose_take

CameraFactory = Callable[[], Camera]
SliderFactory = Callable[[], Slider | None]
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class RunnerOptions:
    """Knobs of the runner; the defaults suit a real rig, tests shrink the waits."""

    max_attempts: int = 6                 # per point, across the whole ladder
    busy_retries: int = 5
    busy_backoff_s: float = 0.2           # doubled per retry
    camera_wait_s: float = 300.0          # how long a disconnected camera may take to come back
    camera_poll_s: float = 2.0
    disk_wait_s: float = 300.0            # how long the disk suspender waits for space before stopping cleanly
    disk_poll_s: float = 5.0
    disk_quota_bytes: int | None = None
    disk_reserve_bytes: int = 50_000_000  # never fill the last 50 MB of a real disk
    settle_s: float = 0.0                 # extra settle after a move, on top of the driver's own
    fsync: bool = True
    build_outputs: bool = True            # clips, pairs, contact sheet, report at the end
    stop_after: int | None = None         # stop cleanly after this many frames (tests, benchmarks)
    new_take: bool = False                # start another take even if this plan already has a session
    session_id: int | None = None         # resume this session with the plan stored in the catalog
    plan_path: str | None = None          # the plan file, absolute: an edited plan finds its unfinished session
    command: str = "capture run"          # recorded with the owner lock, so a refused run can name it


@dataclass
class SessionResult:
    session_id: int
    status: str                           # a word of capture/status.py
    done: int
    total: int
    resumed: bool
    seconds: float
    faults: Counter[str] = field(default_factory=Counter)
    session_dir: Path | None = None
    contact_sheet: Path | None = None
    report: Path | None = None
    message: str = ""
    take: int = 1


class SessionRefused(Exception):
    """The session could not start (its folder cannot be written, ...); nothing is left half-started."""


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _cannot_write(where: Path, exc: OSError, *, new: bool = False) -> str:
    """Why a write failed and the fix; `new`: no session exists yet, so a rerun starts it (nothing to resume)."""
    reason = exc.strerror or str(exc)
    rerun = "rerun to start it (no session was created)" if new else "rerun to resume"
    if exc.errno in DISK_FULL:
        return f"{where}: the disk is full ({reason}); free space and {rerun}"
    return (f"cannot write {where} ({reason}); make the lab folder writable by this user (or check the disk is "
            f"mounted read-write) and {rerun}")


class SessionRunner:
    def __init__(self, plan: Plan | None, catalog: Path, *, camera_factory: CameraFactory,
                 slider_factory: SliderFactory, display: Display | None = None,
                 decide: Decision = abort_decision, options: RunnerOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.plan = plan
        self.catalog_path = Path(catalog)
        self.camera_factory = camera_factory
        self.slider_factory = slider_factory
        self.display = display or QuietDisplay()
        self.decide = decide
        self.options = options or RunnerOptions()
        self.sleep = sleep
        self.camera: Camera | None = None
        self.slider: Slider | None = None
        self.applied: dict[str, str] = {}     # role -> label the camera object holds now (skip unchanged sets)
        self.readback: dict[str, str] = {}    # role -> what this camera object reported for it
        self.faults: Counter[str] = Counter()
        self.reopens = 0                      # camera objects opened after the first
        self.ledger: Ledger | None = None
        self.session_id: int | None = None
        self.lock: SessionLock | None = None
        self.plan_lock: SessionLock | None = None
        self.interrupt: InterruptHandler | None = None
        self.previous_owner: Owner | None = None
        self.point_bytes: list[int] = []      # bytes per committed point of this session
        self.homed = False
        self.position: float | None = None   # slider position after the last move (for move costs)

    # ------------------------------------------------------------------------------------------ public

    def run(self) -> SessionResult:
        started = time.monotonic()
        self.ledger = Ledger(self.catalog_path)
        try:
            return self._run(started)
        finally:
            self._close_devices()
            if self.lock is not None:
                self.lock.release()
            self._unlock_plan()
            self.ledger.close()

    # ------------------------------------------------------------------------------------------ steps

    def _run(self, started: float) -> SessionResult:
        ledger = self.ledger
        assert ledger is not None
        if self.options.session_id is None and self.plan is not None:
            self._lock_plan(plan_key(self.plan))   # before deciding "take N": one decider per plan at a time
        take = choose_take(ledger, self.plan, plan_path=self.options.plan_path, new_take=self.options.new_take,
                           session_id=self.options.session_id)
        self.plan = plan = take.plan
        if take.complete and not self._outputs_to_build(take):
            return self._already_complete(take, started)
        if take.session is not None:        # lock first: a second run of this session never opens a device
            self.session_id = int(take.session["id"])
            self._claim(ledger.session_dir(self.session_id))
            self._unlock_plan()                 # the session's own lock owns it from here
            total, done = ledger.progress(self.session_id)
            if total and done == total and self.options.build_outputs:
                return self._finish_outputs(take, started)     # every point shot: no device needed
        try:
            self._open_devices()
        except (CameraError, SliderError) as exc:
            if take.session is not None:
                raise
            raise SessionRefused(f"{exc}; no session was started (take {take.take} of this plan has nothing to "
                                 "resume): fix the rig and rerun to start it") from None
        camera = self.camera
        assert camera is not None
        choices = camera.choices()
        info = self.slider.info if self.slider is not None else None
        problems = check_plan(plan, choices=choices, travel=info.travel_mm if info else None,
                              camera_label=camera.identity.label(),
                              slider_label=f"slider {info.port}" if info else "slider",
                              max_speed_mm_s=(info.max_rate_mm_min / 60 or None) if info else None,
                              accel_mm_s2=(info.accel_mm_s2 or None) if info else None)
        if problems:
            raise PlanError(problems, plan.source)
        kind = "still" if plan.mode == "stills" else "clip"
        if take.session is None:
            points = expand(plan, choices)
            try:
                self.session_id = ledger.create_session(plan, points, camera=camera.identity, slider=info,
                                                        plan_path=self.options.plan_path, claim=self._claim)
            except OSError as exc:
                raise SessionRefused(_cannot_write(ledger.data_root / "sessions", exc, new=True)) from None
            self._unlock_plan()                 # the new session exists and its lock is held
        else:
            points = ledger.stored_points(self.session_id, kind)
            self._check_stored_points(points, choices, camera.identity.label())
        session_id = self.session_id
        assert session_id is not None
        session_dir = ledger.session_dir(session_id)
        if self.previous_owner is not None:
            ledger.event(session_id, "takeover", f"the previous owner, {self.previous_owner.describe()}, is gone; "
                                                 f"taken over by PID {os.getpid()}")
        rows = ledger.points(session_id)
        if take.resumed:
            removed = self._clean_partial_files(session_dir)
            ledger.reset_running(session_id)
            rows = ledger.points(session_id)
            ledger.event(session_id, "resume", f"resumed with {sum(r.status != 'done' for r in rows)} points to "
                                               f"do; {removed} uncommitted file(s) removed")
        by_key = {p.key: p for p in points}
        todo = [by_key[r.key] for r in rows if r.status != "done"]
        done = len(rows) - len(todo)
        guard = DiskGuard(session_dir, quota_bytes=self.options.disk_quota_bytes,
                          reserve_bytes=self.options.disk_reserve_bytes)
        self.point_bytes = ledger.point_sizes(session_id)
        ledger.set_status(session_id, words.RUNNING)
        self.display.start(len(rows), done, plan.title)
        status, message = self._shoot_all(todo, session_dir, guard)
        if status == words.COMPLETE and self.options.build_outputs:
            self._close_devices()          # outputs need no rig: free the camera and slider for others
            return self._finish_outputs(take, started)
        try:
            ledger.set_status(session_id, status)
        except sqlite3.Error as exc:      # the catalog's disk is full: status will show the owner gone
            message += f" (the catalog could not record it: {exc})"
        return SessionResult(session_id, status, ledger.done_count(session_id), len(rows), take.resumed,
                             time.monotonic() - started, self.faults.copy(), session_dir, message=message,
                             take=take.take)

    def _outputs_to_build(self, take: Take) -> bool:
        """A session marked complete whose outputs are missing (marked by an older cinectrl before they were
        built, or files removed since): the run rebuilds them instead of saying 'nothing to do'."""
        if not self.options.build_outputs or take.session is None or take.session["word"] != words.COMPLETE:
            return False
        from .report import missing_outputs

        assert self.ledger is not None
        return bool(missing_outputs(self.ledger, int(take.session["id"])))

    def _finish_outputs(self, take: Take, started: float) -> SessionResult:
        """Every point is shot: the session is `building outputs` until its clips, pairs, contact sheet and
        report all exist and are catalogued, and only then `complete`. A kill in between leaves it building
        (interrupted); the next run builds only what is missing."""
        from .report import build_session_outputs, missing_outputs

        ledger, session_id, plan = self.ledger, self.session_id, self.plan
        assert ledger is not None and session_id is not None and plan is not None
        ledger.set_status(session_id, words.BUILDING)
        ledger.event(session_id, "outputs", "building clips, pairs, contact sheet and report")
        outputs = build_session_outputs(ledger, session_id, plan)
        missing = missing_outputs(ledger, session_id)
        total, done = ledger.progress(session_id)
        session_dir = ledger.session_dir(session_id)
        if missing:    # never claim complete: say what is not there
            return SessionResult(session_id, words.BUILDING, done, total, take.resumed, time.monotonic() - started,
                                 self.faults.copy(), session_dir, message="outputs still missing: "
                                 + ", ".join(missing) + "; rerun the same command to build them", take=take.take)
        ledger.set_status(session_id, words.COMPLETE)
        return SessionResult(session_id, words.COMPLETE, done, total, take.resumed, time.monotonic() - started,
                             self.faults.copy(), session_dir, outputs.contact_sheet, outputs.report, take=take.take)

    def _shoot_all(self, todo: list[Point], session_dir: Path, guard: DiskGuard) -> tuple[str, str]:
        """Shoot every point still to do; returns the session's word and what to tell the technician."""
        ledger, session_id = self.ledger, self.session_id
        assert ledger is not None and session_id is not None
        shot = 0
        try:
            with InterruptHandler(on_signal=self._hold_now) as interrupt:
                self.interrupt = interrupt
                for point in todo:
                    if self.options.stop_after is not None and shot >= self.options.stop_after:
                        raise SessionStopped(f"stopped after {shot} frames as asked", status=words.PAUSED)
                    if interrupt.requested.is_set():
                        self._pause(interrupt)
                    self._wait_for_disk(guard, remaining=len(todo) - shot)
                    self._shoot(point, session_dir)
                    shot += 1
            return words.COMPLETE, ""
        except SessionStopped as stop:
            status, message = stop.status, str(stop)
        except KeyboardInterrupt:
            status, message = words.PAUSED, "stopped by a second Ctrl-C; rerun the same command to resume"
        except (CameraError, SliderError) as exc:
            status, message = words.FAILED, f"{exc}; check the rig and rerun to resume"
        except OSError as exc:
            status, message = words.SUSPENDED, _cannot_write(Path(exc.filename or session_dir), exc)
        except sqlite3.OperationalError as exc:
            status, message = words.SUSPENDED, (f"the catalog {ledger.catalog.path} refused a write ({exc}); "
                                                "free space or fix its permissions and rerun to resume")
        except BaseException as exc:   # a bug: the session must not stay 'running' behind the traceback
            self._record_stop(f"{type(exc).__name__}: {exc}")
            try:
                ledger.set_status(session_id, words.FAILED)
            except sqlite3.Error:
                pass
            raise
        finally:
            self.display.stop()
        self._record_stop(f"{status}: {message}")
        return status, message

    def _record_stop(self, message: str) -> None:
        """A clean stop leaves no point `running` (the frame in flight was removed) and says why it stopped.
        On a full disk the catalog may refuse even that: a checkpoint of its WAL then frees room to try again."""
        assert self.ledger is not None and self.session_id is not None
        for attempt in range(2):
            try:
                with self.ledger.catalog.transaction():
                    self.ledger.catalog.reset_interrupted(self.session_id)
                    self.ledger.event(self.session_id, "stopped", message)
                return
            except sqlite3.Error:
                if attempt == 0:
                    self.ledger.checkpoint()


    def _already_complete(self, take: Take, started: float) -> SessionResult:
        ledger = self.ledger
        assert ledger is not None and take.session is not None
        session_id = int(take.session["id"])
        total, done = ledger.progress(session_id)
        session_dir = ledger.session_dir(session_id)
        sheet = session_dir / "outputs" / "contact-sheet.png"
        return SessionResult(session_id, words.COMPLETE, done, total, True, time.monotonic() - started, Counter(),
                             session_dir, sheet if sheet.exists() else None,
                             session_dir / "report.html" if sheet.exists() else None,
                             message=f"session {session_id} (take {take.take}) is already complete; nothing to do "
                                     "(use --new-take for another take)", take=take.take)

    def _lock_plan(self, key: str) -> None:
        """Take the plan's lock (SessionBusy naming the holder when another run of it is deciding or starting)."""
        assert self.ledger is not None
        lock = plan_lock(self.ledger.data_root, key)
        try:
            lock.acquire(command=self.options.command)
        except OSError as exc:
            raise SessionRefused(_cannot_write(lock.path.parent, exc)) from None
        self.plan_lock = lock

    def _unlock_plan(self) -> None:
        if self.plan_lock is not None:
            self.plan_lock.release()
            self.plan_lock = None

    def _claim(self, folder: Path) -> None:
        """Make the session's folder and take its owner lock (SessionBusy when a live process holds it)."""
        lock = SessionLock(folder, what=f"session {self.session_id or folder.name}")
        try:
            self.previous_owner = lock.acquire(command=self.options.command)
        except OSError as exc:
            raise SessionRefused(_cannot_write(folder, exc)) from None
        self.lock = lock

    def _check_stored_points(self, points: list[Point], choices: dict[str, list[str]], camera_label: str) -> None:
        """A resume shoots the ledger's points: every label must still be one this camera offers."""
        problems = []
        for point in points:
            for role, label in point.settings.items():
                if values.match_label(role, label, choices.get(role) or []) is None:
                    problems.append(Problem("session", f"point {point.key} asks {role} {label!r}, which "
                                                       f"{camera_label} does not offer; connect the body the "
                                                       "session was shot with, or start a new take"))
        if problems:
            assert self.plan is not None
            raise PlanError(problems[:20], f"session {self.session_id}")

    def _shoot(self, point: Point, session_dir: Path) -> None:
        ledger = self.ledger
        assert ledger is not None and self.session_id is not None
        self.display.point(self._describe(point))
        last_error: Exception | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            ledger.mark_running(self.session_id, point.key)
            files = []
            try:
                t0 = time.monotonic()
                timing: dict[str, float] = {"set_s": 0.0, "sets": 0}
                readback = self._apply(point.settings, timing)
                if point.kind == "still":
                    here = self.position
                    t1 = time.monotonic()
                    move = self._move(point.slider_mm) if point.slider_mm is not None else None
                    if move is not None and here is not None and move.position_mm != here:
                        timing["move_s"] = time.monotonic() - t1
                        timing["move_mm"] = abs(move.position_mm - here)
                    t2 = time.monotonic()
                    files = self._with_busy_retries(
                        lambda cam: cam.capture_still(session_dir, stem=self._stem(point)))
                    timing["capture_s"] = time.monotonic() - t2
                    slider = {"slider_mm": move.position_mm if move else None,
                              "slider_target_mm": point.slider_mm,
                              "move_started_at": move.started_at if move else None,
                              "move_finished_at": move.finished_at if move else None}
                    clip_info = None
                else:
                    files, slider, clip_info = self._pass(point, session_dir)
                self._report_left_on_camera(files)
                hashed = self._make_durable(files, session_dir)
                seconds = time.monotonic() - t0
                ledger.commit_frame(self.session_id, point, hashed, requested=point.settings_dict(),
                                    readback=readback, slider=slider, clip=clip_info, seconds=seconds,
                                    attempts=attempt, timing=timing)
                self.point_bytes.append(sum(size for _, _, size in hashed))
                self.display.frame(hashed[0][0].path if hashed else session_dir, seconds)
                return
            except CameraBusy as exc:        # retries exhausted inside: escalate to a reopen
                last_error = exc
                self._fault("busy", exc)
                self._recover_camera(wait=False)
            except CameraTimeout as exc:
                last_error = exc
                self._fault("timeout", exc)
                self._recover_camera(wait=False)
            except CameraDisconnected as exc:
                last_error = exc
                self._fault("disconnected", exc)
                self._recover_camera(wait=True)
            except MotionHeld:               # Ctrl-C / SIGTERM held the carriage mid-move: pause here
                for f in files:
                    Path(f.path).unlink(missing_ok=True)
                assert self.interrupt is not None
                self._pause(self.interrupt)
            except (SliderAlarm, SliderTimeout) as exc:
                last_error = exc
                self._fault("slider alarm" if isinstance(exc, SliderAlarm) else "slider timeout", exc)
                self._recover_slider(reopen=False)
            except SliderDisconnected as exc:
                last_error = exc
                self._fault("slider disconnected", exc)
                self._recover_slider(reopen=True)
            except DuplicateFrame as exc:
                last_error = exc
                self._fault("duplicate frame", exc)
                for f in files:
                    Path(f.path).unlink(missing_ok=True)
            except OSError as exc:
                if exc.errno in DISK_FULL:   # a full disk mid-write: the torn file goes, the point stays to do
                    self._clean_partial_files(session_dir)
                    raise SessionStopped(f"disk full while writing {point.key}: {exc.strerror}; free space "
                                         "and rerun to resume", status=words.SUSPENDED) from None
                raise
            except sqlite3.OperationalError as exc:   # the catalog's disk is full or read-only: nothing committed
                for f in files:
                    Path(f.path).unlink(missing_ok=True)
                raise SessionStopped(f"the catalog refused {point.key}'s commit ({exc}); its files were removed, "
                                     "the point stays to do: free space or fix permissions and rerun to resume",
                                     status=words.SUSPENDED) from None
        ledger.mark_failed(self.session_id, point.key, f"{type(last_error).__name__}: {last_error}")
        raise SessionStopped(f"point {point.key} failed {self.options.max_attempts} times (last: {last_error}); "
                             "check the rig and rerun to resume", status=words.FAILED)

    def _report_left_on_camera(self, files: list[CapturedFile]) -> None:
        """A file the camera could not delete after download is safe on disk, but fills the body's RAM."""
        for f in files:
            if f.left_on_camera:
                self._fault("camera delete failed", CameraError(f"{f.camera_name or f.path.name} was downloaded "
                                                                f"and verified but is still on the camera: "
                                                                f"{f.left_on_camera}"))

    def _pass(self, point: Point, session_dir: Path):
        """Home, run the trajectory while the camera records; the clip shares the camera path."""
        tr = self.plan.trajectory
        assert tr is not None
        # a pass of a camera-path sweep starts where its point says (the trajectory shifted by its offset)
        begin = point.slider_mm if point.slider_mm is not None else tr.start_mm
        finish = begin + (tr.end_mm - tr.start_mm)
        slider = self.slider
        run_info: dict[str, Any] = {}
        start = None
        if slider is not None:
            slider.home()
            self.homed = True
            slider.move_to(begin)

            def start() -> float | None:
                run = slider.run_trajectory(begin, finish, speed_mm_s=tr.speed_mm_s, wait=False)
                run_info["run"] = run
                return run.motion_started_at

        clip = self._with_busy_retries(lambda cam: cam.record_clip(session_dir, stem=self._stem(point),
                                                                      frames=tr.frames, fps=tr.fps, start=start))
        end_status = slider.wait_idle() if slider is not None else None
        info = {"slider_mm": end_status.position_mm if end_status else None, "slider_target_mm": finish,
                "move_started_at": clip.motion_start, "move_finished_at": time.time() if slider else None}
        clip_info = {"frames": clip.frames, "fps": clip.fps, "motion_start": clip.motion_start,
                     "poses": [p.x_mm for p in clip.poses], "trajectory": [begin, finish, tr.speed_mm_s]}
        return clip.files, info, clip_info

    # ------------------------------------------------------------------------------------------ devices

    def _open_devices(self) -> None:
        self.slider = self.slider_factory()
        try:
            self.camera = self._open_camera_once()
        except BaseException:
            if self.slider is not None:
                self.slider.close()
                self.slider = None
            raise

    def _open_camera_once(self) -> Camera:
        """A new camera object knows nothing of what the last one was set to: every setting is sent again."""
        camera = self.camera_factory()
        if self.camera is not None or self.applied:
            self.reopens += 1
        self.applied.clear()
        self.readback.clear()
        return camera

    def _close_devices(self) -> None:
        devices, self.camera, self.slider = (self.camera, self.slider), None, None
        for device in devices:
            if device is not None:
                try:
                    device.close()
                except Exception:  # noqa: BLE001 - closing must never hide the session's own outcome
                    pass

    def _recover_camera(self, *, wait: bool) -> None:
        """Drop the camera object and open a new one (waiting for it when it vanished); the next point then
        re-applies every setting, since the new object starts from nothing applied."""
        if self.camera is not None:
            try:
                self.camera.close()
            except Exception:  # noqa: BLE001
                pass
        deadline = time.monotonic() + (self.options.camera_wait_s if wait else self.options.camera_poll_s * 3)
        if wait:
            self.display.message("camera disconnected: waiting for it to come back")
        while True:
            try:
                self.camera = self._open_camera_once()
                self.display.message("camera reopened; every setting is re-applied before the next frame")
                return
            except CameraClaimed as exc:
                raise SessionStopped(str(exc), status=words.SUSPENDED) from None
            except CameraError as exc:
                if time.monotonic() > deadline:
                    raise SessionStopped(f"camera did not come back within {self.options.camera_wait_s:.0f} s "
                                         f"({exc}); reconnect it and rerun to resume",
                                         status=words.SUSPENDED) from None
                self.sleep(self.options.camera_poll_s)

    def _recover_slider(self, *, reopen: bool) -> None:
        if self.slider is None:
            return
        if reopen:
            try:
                self.slider.close()
            except Exception:  # noqa: BLE001
                pass
            self.slider = self.slider_factory()
        self.display.message("slider alarm: re-homing")
        try:
            self.position = self.slider.home().position_mm
            self.homed = True
        except SliderError as exc:
            raise SessionStopped(f"slider could not re-home after a fault ({exc}); check it and rerun",
                                 status=words.SUSPENDED) from None

    def _with_busy_retries(self, op: Callable[[Camera], Any]) -> Any:
        delay = self.options.busy_backoff_s
        for retry in range(self.options.busy_retries + 1):
            assert self.camera is not None
            try:
                return op(self.camera)
            except CameraBusy as exc:
                if retry == self.options.busy_retries:
                    raise
                self._fault("busy", exc)
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _apply(self, settings: dict[str, str] | Any, timing: dict[str, float] | None = None) -> dict[str, str]:
        for role, label in settings.items():
            if self.applied.get(role) == label:
                continue
            t0 = time.monotonic()
            result = self._with_busy_retries(lambda cam: cam.set(role, label))
            self.applied[role] = label
            self.readback[role] = result.readback
            if timing is not None:
                timing["set_s"] += time.monotonic() - t0
                timing["sets"] += 1
        return {role: self.readback.get(role, "") for role in settings}

    def _move(self, target: float):
        slider = self.slider
        if slider is None:
            return None
        if not self.homed:
            self.position = slider.home().position_mm
            self.homed = True
        result = slider.move_to(target)
        self.position = result.position_mm
        if self.options.settle_s:
            self.sleep(self.options.settle_s)
        return result

    # ------------------------------------------------------------------------------------------ files

    def _make_durable(self, files: list[CapturedFile], session_dir: Path) -> list[tuple[CapturedFile, str, int]]:
        hashed = []
        for f in files:
            path = Path(f.path)
            if self.options.fsync:
                fsync_file(path)
            hashed.append((f, sha256_file(path), path.stat().st_size))
        if self.options.fsync and files:
            fsync_dir(Path(files[0].path).parent)
        return hashed

    def _clean_partial_files(self, session_dir: Path) -> int:
        """Delete files no committed asset references: frames in flight when a run died."""
        assert self.ledger is not None and self.session_id is not None
        known = self.ledger.asset_paths(self.session_id)
        removed = 0
        for path in sorted(session_dir.rglob("*")):
            parts = path.relative_to(session_dir).parts
            if parts[0] in ("outputs", "report.html", "report.html.part", LOCK_NAME):
                continue  # outputs are rebuilt from committed frames at the end; the lock is the owner's
            if path.is_file() and path.resolve() not in known:
                path.unlink()
                removed += 1
        return removed

    def _stem(self, point: Point) -> str:
        return f"c{point.combo:03d}_f{point.frame_index:04d}_{point.key}"

    # ------------------------------------------------------------------------------------------ pauses

    def _hold_now(self) -> None:
        """From the signal handler: the slider's feed hold goes out at once, even in the middle of a move."""
        request = getattr(self.slider, "request_hold", None)
        if request is not None:
            request()

    def _pause(self, interrupt: InterruptHandler) -> None:
        why = "SIGTERM" if interrupt.terminate else "Ctrl-C"
        if self.slider is not None:
            held, said = confirm_hold(self.slider, f"paused ({why})")   # "held" only once the controller says so
            if not held and self.ledger is not None and self.session_id is not None:
                self.ledger.event(self.session_id, "hold failed", said)
        else:
            said = f"paused ({why})"
        self.display.message(said)
        self.display.stop()
        choice = "abort" if interrupt.terminate else self.decide(f"{why}: resume or abort?")
        interrupt.clear()
        if choice != "resume":
            raise SessionStopped(f"{said}; stopped by the operator ({why}): rerun the same command to resume",
                                 status=words.PAUSED)
        if self.slider is not None:
            try:
                self.slider.resume()
            except SliderError:
                pass
        self.applied.clear()   # the operator may have touched the camera: the next point re-applies everything
        assert self.ledger is not None and self.session_id is not None
        self.display.start(*self.ledger.progress(self.session_id), "resumed")

    def _point_size(self) -> tuple[float, str]:
        """Bytes one point takes, and where that figure comes from: this session's committed points, else
        earlier sessions of this camera model, else the plan's [costs], else the defaults."""
        if self.point_bytes:
            return sum(self.point_bytes) / len(self.point_bytes), f"measured over {len(self.point_bytes)} points"
        assert self.plan is not None and self.ledger is not None
        costs = self.plan.costs
        if not costs.measured and self.camera is not None:
            costs = self.ledger.measured_costs(self.camera.identity.model, self.plan.mode, costs)
        return bytes_per_point(self.plan, costs), costs.source

    def _wait_for_disk(self, guard: DiskGuard, *, remaining: int) -> None:
        """Suspender: free space must hold every remaining point; wait for it to clear, else stop cleanly.
        Until a frame size is known (measured, or given in [costs]) nothing is asked for: a default guess
        (8 MB a still) must not stop a session of 100 kB frames; the first frame measures it, and a disk
        that fills during that write is caught as ENOSPC."""
        per_point, source = self._point_size()
        need = 0.0 if source.startswith("defaults") else per_point * (remaining + 1)   # one point of margin
        try:
            guard.check(need)
            return
        except DiskLow as exc:
            self._fault("disk low", exc)
            self.display.message(f"suspended: {exc}")
        deadline = time.monotonic() + self.options.disk_wait_s
        while time.monotonic() < deadline:
            self.sleep(self.options.disk_poll_s)
            try:
                guard.check(need)
            except DiskLow:
                continue
            self.display.message("disk space back: resuming; every setting is sent again before the next frame")
            self.applied.clear()     # the operator may have touched the camera while freeing space
            return
        raise SessionStopped(f"{_mb(guard.free())} free, {remaining} point(s) still need about {_mb(need)} "
                             f"({_mb(per_point)} a point, {source}); free space (or raise the quota) and rerun to "
                             "resume", status=words.SUSPENDED)

    def _fault(self, kind: str, exc: Exception) -> None:
        self.faults[kind] += 1
        self.display.fault(kind, str(exc))
        if self.ledger is not None and self.session_id is not None:
            self.ledger.event(self.session_id, kind, str(exc))

    def _describe(self, point: Point) -> str:
        settings = " ".join(f"{v}" for v in point.settings.values())
        where = f" @ {point.slider_mm:g} mm" if point.slider_mm is not None else ""
        return f"{point.key} {settings}{where}"
