"""The resumable session runner: a plan's points, shot one by one, each one durable before the next.

Order of work (the ledger is the truth, as in docs/capture.md):

1. open the catalog; find an unfinished session of the same plan (resume) or create one, writing a ledger
   row for every planned point *before* the first device command;
2. open camera and slider, validate the plan against the camera's choices and the slider's travel;
3. on resume, delete files of the session that no committed asset row references (frames in flight when
   the previous run died: partial or complete but uncommitted) and put `running` points back to pending;
4. home, then for each pending point: check suspenders (disk), apply settings (skipping unchanged ones),
   move, capture, fsync + hash the files, and commit the asset rows and the point's `done` in ONE
   transaction. A crash at any instant loses at most the frame in flight;
5. faults climb a ladder: busy -> back off and retry; timeout -> reopen the camera and re-apply every
   setting; disconnected -> wait for the camera to come back (suspender), reopen, re-apply; slider alarm ->
   re-home and redo the point; disk low -> wait for space, or stop cleanly; Ctrl-C -> pause at the next safe
   point (slider feed hold) and ask resume/abort.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rigs.camera.protocol import (
    Camera, CameraBusy, CameraDisconnected, CameraError, CameraTimeout, CameraClaimed, CapturedFile,
    UnsupportedValue,
)
from rigs.slider.protocol import Slider, SliderAlarm, SliderDisconnected, SliderError, SliderTimeout

from .catalog import sha256_file
from .display import Display, QuietDisplay
from .ledger import DuplicateFrame, Ledger, PointRow
from .plan import Costs, Plan, PlanError, Point, check_plan, expand
from .suspenders import (
    DiskGuard, DiskLow, Decision, InterruptHandler, SessionStopped, abort_decision,
)

CameraFactory = Callable[[], Camera]
SliderFactory = Callable[[], Slider | None]


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
    settle_s: float = 0.0                 # extra settle after a move, on top of the driver's own
    fsync: bool = True
    build_outputs: bool = True            # clips, pairs, contact sheet, report at the end
    stop_after: int | None = None         # stop cleanly after this many frames (tests, benchmarks)
    new_session: bool = False             # start another take even if this plan already has a session


@dataclass
class SessionResult:
    session_id: int
    status: str
    done: int
    total: int
    resumed: bool
    seconds: float
    faults: Counter[str] = field(default_factory=Counter)
    session_dir: Path | None = None
    contact_sheet: Path | None = None
    report: Path | None = None
    message: str = ""


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SessionRunner:
    def __init__(self, plan: Plan, catalog: Path, *, camera_factory: CameraFactory,
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
        self.applied: dict[str, str] = {}     # role -> label the camera holds now (skip unchanged sets)
        self.readback: dict[str, str] = {}    # role -> what the camera reported for it
        self.faults: Counter[str] = Counter()
        self.ledger: Ledger | None = None
        self.session_id: int | None = None
        self.frame_bytes: list[int] = []
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
            self.ledger.close()

    # ------------------------------------------------------------------------------------------ steps

    def _run(self, started: float) -> SessionResult:
        ledger = self.ledger
        assert ledger is not None
        self._open_devices()
        camera = self.camera
        assert camera is not None
        choices = camera.choices()
        travel = self.slider.info.travel_mm if self.slider is not None else None
        problems = check_plan(self.plan, choices=choices, travel=travel, camera_label=camera.identity.label(),
                              slider_label=f"slider {self.slider.info.port}" if self.slider else "slider",
                              max_speed_mm_s=(self.slider.info.max_rate_mm_min / 60 or None) if self.slider else None)
        if problems:
            raise PlanError(problems, self.plan.source)
        points = expand(self.plan, choices)
        session_id, resumed = ledger.open_session(self.plan, points, camera=camera.identity,
                                                  slider=self.slider.info if self.slider else None,
                                                  new=self.options.new_session)
        self.session_id = session_id
        session_dir = ledger.session_dir(session_id)
        if resumed and ledger.session(session_id)["status"] == "complete":
            total, done = ledger.progress(session_id)
            sheet = session_dir / "outputs" / "contact-sheet.png"
            return SessionResult(session_id, "complete", done, total, True, time.monotonic() - started,
                                 Counter(), session_dir, sheet if sheet.exists() else None,
                                 session_dir / "report.html" if sheet.exists() else None,
                                 message="already complete; nothing to do (use --new for another take)")
        session_dir.mkdir(parents=True, exist_ok=True)
        rows = ledger.points(session_id)
        if resumed:
            removed = self._clean_partial_files(session_dir)
            ledger.reset_running(session_id)
            rows = ledger.points(session_id)
            ledger.event(session_id, "resume", f"resumed with {sum(r.status != 'done' for r in rows)} points to "
                                               f"do; {removed} uncommitted file(s) removed")
        by_key = {p.key: p for p in points}
        todo = [by_key[r.key] for r in rows if r.status != "done"]
        done = len(rows) - len(todo)
        guard = DiskGuard(session_dir, quota_bytes=self.options.disk_quota_bytes)
        self.frame_bytes = ledger.frame_sizes(session_id)
        ledger.set_status(session_id, "running")
        self.display.start(len(rows), done, f"{self.plan.session.get('name') or self.plan.session['scene']}")
        shot = 0
        status = "running"
        message = ""
        try:
            with InterruptHandler() as interrupt:
                for point in todo:
                    if self.options.stop_after is not None and shot >= self.options.stop_after:
                        raise SessionStopped(f"stopped after {shot} frames as asked", status="paused")
                    if interrupt.requested.is_set():
                        self._pause(interrupt)
                    self._wait_for_disk(guard, remaining=len(todo) - shot)
                    self._shoot(point, session_dir)
                    shot += 1
            status = "complete"
        except SessionStopped as stop:
            status, message = stop.status, str(stop)
            ledger.event(session_id, "stopped", message)
        except KeyboardInterrupt:
            status, message = "paused", "stopped by a second Ctrl-C; rerun the same command to resume"
            ledger.event(session_id, "stopped", message)
        finally:
            self.display.stop()
        ledger.set_status(session_id, status)
        result = SessionResult(session_id, status, ledger.done_count(session_id), len(rows), resumed,
                               time.monotonic() - started, self.faults.copy(), session_dir, message=message)
        if status == "complete" and self.options.build_outputs:
            from .report import build_session_outputs

            outputs = build_session_outputs(ledger, session_id, self.plan)
            result.contact_sheet, result.report = outputs.contact_sheet, outputs.report
        return result

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
                hashed = self._make_durable(files, session_dir)
                seconds = time.monotonic() - t0
                ledger.commit_frame(self.session_id, point, hashed, requested=point.settings_dict(),
                                    readback=readback, slider=slider, clip=clip_info, seconds=seconds,
                                    attempts=attempt, timing=timing)
                self.frame_bytes.extend(size for _, _, size in hashed)
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
                if exc.errno in (28, 122):   # ENOSPC, EDQUOT: a full disk mid-write
                    self._clean_partial_files(session_dir)
                    raise SessionStopped(f"disk full while writing {point.key}: {exc.strerror}; free space "
                                         "and rerun to resume", status="suspended") from None
                raise
        ledger.mark_failed(self.session_id, point.key, f"{type(last_error).__name__}: {last_error}")
        raise SessionStopped(f"point {point.key} failed {self.options.max_attempts} times (last: {last_error}); "
                             "check the rig and rerun to resume", status="failed")

    def _pass(self, point: Point, session_dir: Path):
        """Home, run the trajectory while the camera records; the clip shares the camera path."""
        tr = self.plan.trajectory
        assert tr is not None
        slider = self.slider
        run_info: dict[str, Any] = {}
        start = None
        if slider is not None:
            slider.home()
            self.homed = True
            slider.move_to(tr.start_mm)

            def start() -> float | None:
                run = slider.run_trajectory(tr.start_mm, tr.end_mm, speed_mm_s=tr.speed_mm_s, wait=False)
                run_info["run"] = run
                return run.motion_started_at

        clip = self._with_busy_retries(lambda cam: cam.record_clip(session_dir, stem=self._stem(point),
                                                                      frames=tr.frames, fps=tr.fps, start=start))
        end_status = slider.wait_idle() if slider is not None else None
        info = {"slider_mm": end_status.position_mm if end_status else None, "slider_target_mm": tr.end_mm,
                "move_started_at": clip.motion_start, "move_finished_at": time.time() if slider else None}
        clip_info = {"frames": clip.frames, "fps": clip.fps, "motion_start": clip.motion_start,
                     "poses": [p.x_mm for p in clip.poses], "trajectory": [tr.start_mm, tr.end_mm, tr.speed_mm_s]}
        return clip.files, info, clip_info

    # ------------------------------------------------------------------------------------------ devices

    def _open_devices(self) -> None:
        self.slider = self.slider_factory()
        self.camera = self._open_camera_once()

    def _open_camera_once(self) -> Camera:
        camera = self.camera_factory()
        self.applied.clear()
        return camera

    def _close_devices(self) -> None:
        for device in (self.camera, self.slider):
            if device is not None:
                try:
                    device.close()
                except Exception:  # noqa: BLE001 - closing must never hide the session's own outcome
                    pass

    def _recover_camera(self, *, wait: bool) -> None:
        """Drop the camera object, open a new one (waiting for it when it vanished), re-apply on next point."""
        if self.camera is not None:
            try:
                self.camera.close()
            except Exception:  # noqa: BLE001
                pass
            self.camera = None
        deadline = time.monotonic() + (self.options.camera_wait_s if wait else self.options.camera_poll_s * 3)
        if wait:
            self.display.message("camera disconnected: waiting for it to come back")
        while True:
            try:
                self.camera = self._open_camera_once()
                self.display.message("camera back; settings re-applied")
                return
            except CameraClaimed as exc:
                raise SessionStopped(str(exc), status="suspended") from None
            except CameraError as exc:
                if time.monotonic() > deadline:
                    raise SessionStopped(f"camera did not come back within {self.options.camera_wait_s:.0f} s "
                                         f"({exc}); reconnect it and rerun to resume", status="suspended") from None
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
                                 status="suspended") from None

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
                _fsync_file(path)
            hashed.append((f, sha256_file(path), path.stat().st_size))
        if self.options.fsync and files:
            _fsync_dir(Path(files[0].path).parent)
        return hashed

    def _clean_partial_files(self, session_dir: Path) -> int:
        """Delete files no committed asset references: frames in flight when a run died."""
        assert self.ledger is not None and self.session_id is not None
        known = self.ledger.asset_paths(self.session_id)
        removed = 0
        for path in sorted(session_dir.rglob("*")):
            parts = path.relative_to(session_dir).parts
            if parts[0] in ("outputs", "report.html"):
                continue  # rebuilt from committed frames at the end of the session
            if path.is_file() and path.resolve() not in known:
                path.unlink()
                removed += 1
        return removed

    def _stem(self, point: Point) -> str:
        return f"c{point.combo:03d}_f{point.frame_index:04d}_{point.key}"

    # ------------------------------------------------------------------------------------------ pauses

    def _pause(self, interrupt: InterruptHandler) -> None:
        if self.slider is not None:
            try:
                self.slider.hold()
            except SliderError:
                pass
        self.display.message("paused (Ctrl-C): slider held")
        self.display.stop()
        choice = self.decide("Ctrl-C: resume or abort?")
        interrupt.clear()
        if choice != "resume":
            raise SessionStopped("paused by the operator; rerun the same command to resume", status="paused")
        if self.slider is not None:
            try:
                self.slider.resume()
            except SliderError:
                pass
        self.applied.clear()   # the operator may have touched the camera: re-apply everything
        assert self.ledger is not None and self.session_id is not None
        self.display.start(*self.ledger.progress(self.session_id), "resumed")

    def _wait_for_disk(self, guard: DiskGuard, *, remaining: int) -> None:
        """Suspender: free space must hold every remaining point; wait for it to clear, else stop cleanly."""
        per_frame = (sum(self.frame_bytes) / len(self.frame_bytes)) if self.frame_bytes else (
            self.plan.costs.bytes_per_still if self.plan.mode == "stills"
            else self.plan.costs.bytes_per_clip_frame * (self.plan.trajectory.frames if self.plan.trajectory else 1))
        need = per_frame * (remaining + 1)   # one frame of margin
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
            self.display.message("disk space back: resuming, settings re-applied")
            self.applied.clear()
            return
        raise SessionStopped(f"{_mb(guard.free())} free, {remaining} frames still need about {_mb(need)}; "
                             "free space (or raise the quota) and rerun to resume", status="suspended")

    def _fault(self, kind: str, exc: Exception) -> None:
        self.faults[kind] += 1
        self.display.fault(kind, str(exc))
        if self.ledger is not None and self.session_id is not None:
            self.ledger.event(self.session_id, kind, str(exc))

    def _describe(self, point: Point) -> str:
        settings = " ".join(f"{v}" for v in point.settings.values())
        where = f" @ {point.slider_mm:g} mm" if point.slider_mm is not None else ""
        return f"{point.key} {settings}{where}"
