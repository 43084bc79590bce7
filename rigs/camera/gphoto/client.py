"""The client side: a `Camera` whose body lives in a worker process, and the worker's lifecycle.

libgphoto2 can segfault (an out-of-list f-number does) and a Camera object re-init()ed after exit()
aborts the process, so every body runs in its own process. When the worker dies, the call in flight
raises CameraDisconnected; the next call starts a new worker, re-opens the body by serial and
re-applies every setting (with read-back) before doing anything else.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from ..protocol import (CameraDisconnected, CameraError, CameraIdentity, CameraTimeout, CapturedClip,
                        CapturedFile, SettingResult, UnsupportedFeature, role_of)
from .errors import ERROR_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[3]


def worker_environment(private_dir: Path, virtual_dir: str | Path | None) -> dict[str, str]:
    """LANG=C (untranslated labels), a private XDG_CONFIG_HOME (no settings leak), VCAMERADIR if asked."""
    env = dict(os.environ)
    env.update(LANG="C", LC_ALL="C", XDG_CONFIG_HOME=str(private_dir / "xdg"))
    env.pop("LANGUAGE", None)
    if virtual_dir is not None:
        env["VCAMERADIR"] = str(Path(virtual_dir).resolve())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


class WorkerProcess:
    """One worker: start it, ask it things with a timeout, notice when it died, stop it."""

    def __init__(self, virtual_dir: str | Path | None = None, *, label: str = "camera") -> None:
        self.label = label
        self.private_dir = Path(tempfile.mkdtemp(prefix="cinectrl-gphoto-"))
        (self.private_dir / "xdg").mkdir()
        self.log_path = self.private_dir / "worker.log"
        parent, child = socket.socketpair()
        self._log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rigs.camera.gphoto.worker", str(child.fileno())],
                pass_fds=(child.fileno(),), env=worker_environment(self.private_dir, virtual_dir),
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, cwd=str(self.private_dir))
        finally:
            child.close()
        self.conn = Connection(parent.detach())

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, op: str, wait_s: float, /, **kwargs: Any) -> Any:
        try:
            self.conn.send((op, kwargs))
            ready = self.conn.poll(wait_s)
            if not ready:
                self.kill()
                raise CameraTimeout(f"{op}: the camera worker did not answer within {wait_s:g} s; it was stopped "
                                    "and the next call starts a new one", camera=self.label)
            answer = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            raise CameraDisconnected(f"{op}: the camera worker died ({self.death()}); the next call starts a "
                                     "new worker, re-opens the body and re-applies its settings",
                                     camera=self.label) from None
        if answer[0] == "ok":
            return answer[1]
        _, cls_name, message, camera = answer
        exc = ERROR_CLASSES.get(cls_name, CameraError)(message)
        exc.camera = camera
        raise exc

    def death(self) -> str:
        try:
            code = self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        how = (f"killed by signal {signal.Signals(-code).name}" if code is not None and code < 0 else
               f"exit status {code}")
        tail = self.log_tail()
        return f"{how}{'; last log line: ' + tail if tail else ''}"

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:200] if lines else ""

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        try:
            self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Ask the worker to exit() the body and quit; kill it if it does not within 5 s."""
        if self.alive():
            try:
                self.conn.send(("close", {}))
                if self.conn.poll(5.0):
                    self.conn.recv()
                self.process.wait(timeout=5.0)
            except (EOFError, OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.conn.close()
        self._log.close()
        shutil.rmtree(self.private_dir, ignore_errors=True)


class GPhotoCamera:
    """A tethered body (or libgphoto2's virtual camera) behind the `Camera` protocol.

    selector: a serial number, a port ('usb:001,004') or None for the first body detected.
    virtual_dir: a folder of JPEGs; the worker then drives libgphoto2's virtual camera (a Nikon D750
    emulated over a real PTP stack) with VCAMERADIR set to it.
    """

    def __init__(self, selector: str | None = None, *, virtual_dir: str | Path | None = None,
                 capture_target: str | None = None, sync_clock: bool = True, wait_s: float = 0.0,
                 op_timeout_s: float = 60.0, max_restarts: int = 20,
                 delete_from_camera: bool | None = None, captures_per_open: int | None = None) -> None:
        self.selector = selector
        self.virtual_dir = virtual_dir
        self.capture_target = capture_target
        self.sync_clock = sync_clock
        self.wait_s = wait_s
        self.op_timeout_s = op_timeout_s
        self.max_restarts = max_restarts
        self.delete_from_camera = delete_from_camera
        self.captures_per_open = captures_per_open
        self.applied: dict[str, str] = {}
        self.restarts = 0
        self.worker: WorkerProcess | None = None
        self.info: dict[str, Any] = {}
        self._closed = False
        self._start(first=True)

    # ------------------------------------------------------------------ worker lifecycle

    def _start(self, *, first: bool) -> None:
        label = self.info.get("name", self.selector or "gphoto2 camera")
        worker = WorkerProcess(self.virtual_dir, label=label)
        selector = self.selector if first else (self.info["identity"]["serial"] or self.selector)
        try:
            self.info = worker.call(
                "open", self.op_timeout_s + self.wait_s, selector=selector, capture_target=self.capture_target,
                sync_clock=self.sync_clock and first, wait_s=self.wait_s,
                delete_from_camera=self.delete_from_camera, captures_per_open=self.captures_per_open, applied=dict(self.applied))
        except BaseException:
            worker.stop()
            raise
        worker.label = self.info["name"]
        self.worker = worker
        if first:
            self._identity = CameraIdentity(**self.info["identity"])

    def _ensure_worker(self) -> WorkerProcess:
        if self._closed:
            raise CameraError("the camera was closed", camera=self.name)
        if self.worker is not None and self.worker.alive():
            return self.worker
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.restarts >= self.max_restarts:
            raise CameraDisconnected(f"the camera worker died {self.restarts} times; giving up", camera=self.name)
        self.restarts += 1
        self._start(first=False)
        assert self.worker is not None
        return self.worker

    def _call(self, op: str, wait_s: float | None = None, /, **kwargs: Any) -> Any:
        worker = self._ensure_worker()
        try:
            return worker.call(op, wait_s or self.op_timeout_s, **kwargs)
        except (CameraDisconnected, CameraTimeout):
            if not worker.alive():
                worker.stop()
                self.worker = None
            raise

    def restart_worker(self) -> None:
        """Start a new worker now (re-open by serial, re-apply settings), e.g. after a reported crash."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self._ensure_worker()

    @property
    def worker_pid(self) -> int | None:
        return self.worker.pid if self.worker is not None else None

    # ------------------------------------------------------------------ Camera protocol

    @property
    def identity(self) -> CameraIdentity:
        return self._identity

    @property
    def name(self) -> str:
        return self.info.get("name", self.selector or "gphoto2 camera")

    @property
    def roles(self) -> dict[str, str]:
        """role -> the widget that plays it on this body (resolved against the real tree)."""
        return dict(self.info.get("roles", {}))

    def choices(self) -> dict[str, list[str]]:
        return self._call("choices")

    def get(self, role: str) -> str:
        return self._call("get", role=role_of(role))

    def set(self, role: str, value: str, *, timeout: float = 10.0) -> SettingResult:
        role = role_of(role)
        result = self._call("set", timeout + self.op_timeout_s, role=role, value=value, timeout=timeout)
        self.applied[role] = result["requested"]
        return SettingResult(role=role, requested=result["requested"], readback=result["readback"],
                             seconds=result["seconds"], changed=result["changed"])

    def set_widget(self, name: str, value: str) -> SettingResult:
        """Set a widget that plays no sweep role, by its gphoto2 name; validated against its choices first."""
        result = self._call("set_widget", name=name, value=value)
        return SettingResult(role=name, requested=result["requested"], readback=result["readback"])

    def settings(self) -> list[dict[str, Any]]:
        """Every widget of the body's tree: name, section, kind, value, choices/range, read-only, role."""
        return self._call("settings")

    def describe(self) -> dict[str, Any]:
        """The worker's view: identity, vendor, role -> widget, missing roles, reopens so far, applied values."""
        return self._call("describe")

    def capture_still(self, dest_dir: Path, *, stem: str) -> list[CapturedFile]:
        dest = _destination(dest_dir)
        try:
            rows = self._call("capture_still", dest_dir=str(dest), stem=stem)
        except CameraDisconnected:
            self._remove_partials(dest, stem)
            raise
        return [_captured(r) for r in rows]

    def files_on_camera(self) -> list[str]:
        """Every file on the body's storage ('folder/name'): what downloads left behind."""
        return self._call("files")

    @staticmethod
    def _remove_partials(dest: Path, stem: str) -> None:
        for path in glob.glob(str(dest / f".{glob.escape(stem)}*.part")):
            try:
                os.unlink(path)
            except OSError:
                pass

    def record_clip(self, dest_dir: Path, *, stem: str, frames: int, fps: float,
                    start: Callable[[], float | None] | None = None) -> CapturedClip:
        """Record with the vendor's movie widgets; `start` runs once recording has begun."""
        if frames <= 0 or fps <= 0:
            raise ValueError(f"record_clip needs frames > 0 and fps > 0 (got {frames}, {fps})")
        dest = _destination(dest_dir)
        self._call("movie_start")
        motion_start = None
        try:
            motion_start = start() if start is not None else None
            time.sleep(frames / fps)
        finally:
            rows = self._call("movie_stop", self.op_timeout_s + 60.0, dest_dir=str(dest), stem=stem)
        return CapturedClip(files=[_captured(r) for r in rows], frames=frames, fps=fps, motion_start=motion_start)

    def live_view(self) -> bytes:
        return self._call("live_view")

    def unsupported_reason(self, role: str) -> str | None:
        """Why a role cannot be set on this body, or None when it can."""
        return self.info.get("missing", {}).get(role_of(role))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self._closed = True

    def __enter__(self) -> "GPhotoCamera":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not leave a worker behind
        try:
            if self.worker is not None:
                self.worker.stop()
        except Exception:  # noqa: BLE001
            pass


def _destination(dest_dir: Path | str) -> Path:
    """The worker runs in its own private folder: every path is made absolute here, in the user's folder."""
    dest = Path(dest_dir).expanduser().resolve()
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _captured(row: dict[str, Any]) -> CapturedFile:
    return CapturedFile(path=Path(row["path"]), kind=row["kind"], bytes=row["bytes"], camera_name=row["camera_name"],
                        captured_at=row["captured_at"], left_on_camera=row.get("left_on_camera", ""))


def detect_cameras(*, virtual_dir: str | Path | None = None, timeout_s: float = 60.0) -> list[dict[str, str]]:
    """Every body libgphoto2 detects, with model, port and serial (read in a throwaway worker)."""
    worker = WorkerProcess(virtual_dir, label="camera detection")
    try:
        return worker.call("detect", timeout_s)
    finally:
        worker.stop()


def ensure_supported(camera: GPhotoCamera, role: str) -> None:
    reason = camera.unsupported_reason(role)
    if reason:
        raise UnsupportedFeature(f"{role} is not available: {reason}", camera=camera.name)
