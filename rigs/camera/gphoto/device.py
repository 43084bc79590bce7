"""One tethered body, driven inside its worker process (imports gphoto2: never import this in a client).

Everything here runs in the worker after LANG=C, XDG_CONFIG_HOME and (for the virtual camera)
VCAMERADIR were set, so labels are untranslated and no settings leak in from other processes.
The recovery ladder of hardware notes section 4 lives here: busy -> back off and retry; I/O error or
timeout -> drop the Camera object, make a new one, re-open by serial, re-apply and read back every
setting; gone -> wait for the serial to reappear; claimed -> stop with operator instructions.
A Camera object is never init()ed again after exit() (that aborts the process).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import gphoto2 as gp

from ..protocol import (ROLES, CameraDisconnected, CameraError, CameraTimeout,
                        UnsupportedFeature)
from . import errors
from ..files import fsync_dir
from ..values import same_value
from .choices import match_choice
from .roles import (BATTERY, CAPTURE_TARGET, DATETIME, FIRMWARE, IMAGE_FORMAT, LENS, MANUFACTURER, MODEL,
                    MOVIE, SERIAL, VIEWFINDER, RoleMap, WidgetInfo, resolve_roles, vendor_of)

VIRTUAL_CAPTURES_PER_OPEN = 26   # the 27th capture() per open fails with -3 (notes section 5)
RAW_EXTENSIONS = {".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                  ".dng", ".pef", ".x3f"}
RAW_TOKENS = ("raw", "nef", "cr2", "cr3", "arw", "raf", "orf", "rw2", "dng")

_KINDS = {gp.GP_WIDGET_RADIO: "RADIO", gp.GP_WIDGET_MENU: "MENU", gp.GP_WIDGET_RANGE: "RANGE",
          gp.GP_WIDGET_TOGGLE: "TOGGLE", gp.GP_WIDGET_TEXT: "TEXT", gp.GP_WIDGET_DATE: "DATE",
          gp.GP_WIDGET_BUTTON: "BUTTON", gp.GP_WIDGET_WINDOW: "WINDOW", gp.GP_WIDGET_SECTION: "SECTION"}


def widget_info(widget) -> WidgetInfo:
    kind = _KINDS.get(widget.get_type(), "TEXT")
    choices: tuple[str, ...] = ()
    rng = None
    if kind in ("RADIO", "MENU"):
        choices = tuple(widget.get_choice(i) for i in range(widget.count_choices()))
    elif kind == "RANGE":
        rng = tuple(float(x) for x in widget.get_range())
    value = widget.get_value() if kind not in ("WINDOW", "SECTION", "BUTTON") else None
    return WidgetInfo(name=widget.get_name(), kind=kind, value=value, choices=choices, range=rng,
                      readonly=bool(widget.get_readonly()))


_LISTS: dict[str, Any] = {}


def _port_and_abilities() -> tuple[Any, Any]:
    """libgphoto2's port and driver lists, loaded once per worker (each load costs ~15 ms)."""
    if not _LISTS:
        ports = gp.PortInfoList()
        ports.load()
        abilities = gp.CameraAbilitiesList()
        abilities.load()
        _LISTS.update(ports=ports, abilities=abilities)
    return _LISTS["ports"], _LISTS["abilities"]


def detect() -> list[tuple[str, str]]:
    """(model, port) of every body libgphoto2 sees right now."""
    return [(name, port) for name, port in gp.Camera.autodetect()]


def _absolute(dest_dir: str, camera: str) -> Path:
    """The worker runs in its own private folder: a relative path would land there, not where the user
    meant. The client resolves every path; one that is still relative here is refused."""
    if not os.path.isabs(str(dest_dir)):
        raise CameraError(f"destination {dest_dir!r} is relative; the camera worker only takes absolute paths "
                          "(the client resolves them in the user's folder)", camera=camera)
    return Path(dest_dir)


class Body:
    """The worker's camera: identity, role map, set transactions, capture, recovery."""

    def __init__(self, selector: str | None = None, *, capture_target: str | None = None,
                 sync_clock: bool = True, wait_s: float = 0.0, busy_retries: int = 5,
                 busy_backoff_s: float = 0.1, captures_per_open: int | None = None,
                 delete_from_camera: bool | None = None) -> None:
        self.selector = selector
        self.virtual = bool(os.environ.get("VCAMERADIR"))
        self.capture_target_request = capture_target
        self.sync_clock = sync_clock
        self.wait_s = wait_s
        self.busy_retries = busy_retries
        self.busy_backoff_s = busy_backoff_s
        self.captures_per_open = captures_per_open or (VIRTUAL_CAPTURES_PER_OPEN if self.virtual else None)
        # None = delete downloaded files when capturing to RAM, except on the virtual camera, whose RAM never
        # fills (its cap is per open, whatever is deleted) and where each delete costs ~17 ms
        self.delete_from_camera = delete_from_camera
        self.cam: Any = None
        self.name = selector or "camera"
        self.serial = ""
        self.port = ""
        self.model_name = ""
        self.roles = RoleMap(vendor="Generic")
        self.applied: dict[str, str] = {}      # role -> label, re-applied after every reopen
        self.captures_since_open = 0
        self.reopens = 0
        self.expected_files = 1
        self.delete_after_download = False
        self.identity: dict[str, str] = {}
        self._movie_toggle: dict[str, Any] | None = None
        self._downloaded: deque[tuple[str, str]] = deque(maxlen=256)   # camera files already safe on disk

    # ------------------------------------------------------------------ opening

    def open(self, applied: dict[str, str] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                self._open_once()
                break
            except CameraDisconnected:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        if not self.identity:                  # first open; a reopen keeps the body's identity and role map
            self._read_identity()
            if self.sync_clock:
                self._sync_clock()
        self.identity["port"] = self.port
        if self.capture_target_request:
            self._apply_capture_target(self.capture_target_request)
        self._read_capture_state()
        for role, label in (applied or {}).items():
            self.set(role, label)
        return self.describe()

    def _open_once(self) -> None:
        if self.serial and self.port and self._reopen_same_port():   # only for a body already identified
            return
        found = detect()
        if not found:
            hint = (" (VCAMERADIR holds no usable virtual camera)" if self.virtual else
                    ": check the USB cable, that the camera is on and not asleep (disable auto power-off)")
            raise CameraDisconnected(f"no camera detected{hint}", camera=self.selector or "")
        if self.selector and ":" in self.selector:     # a port such as usb:001,004
            matches = [(m, p) for m, p in found if p == self.selector]
            if not matches:
                raise CameraDisconnected(f"no camera on port {self.selector}; detected: "
                                         f"{', '.join(f'{m} at {p}' for m, p in found)}", camera=self.selector)
            self._init(*matches[0])
            return
        if not self.selector:
            self._init(*found[0])
            return
        seen = []
        for model, port in found:              # a serial number: open each body and ask it
            try:
                self._init(model, port)
            except CameraError as exc:         # e.g. claimed by gvfs: say so, look at the others
                seen.append(f"{model} at {port} ({exc})")
                continue
            serial = self._value("serialnumber")
            if serial == self.selector:
                return
            seen.append(f"{model} at {port} (serial {serial or '?'})")
            self._exit()
        raise CameraDisconnected(f"no camera with serial {self.selector}; detected: {', '.join(seen)}",
                                 camera=self.selector)

    def _reopen_same_port(self) -> bool:
        """Fast path of a reopen: the body is still on its port and still has its serial."""
        try:
            self._init(self.model_name, self.port)
        except CameraError:
            return False
        if self._value("serialnumber") == self.serial:
            return True
        self._exit()
        return False

    def _init(self, model: str, port: str) -> None:
        cam = gp.Camera()                      # always a new object: never init() one after exit()
        ports, abilities = _port_and_abilities()
        cam.set_port_info(ports[ports.lookup_path(port)])
        cam.set_abilities(abilities[abilities.lookup_model(model)])
        try:
            cam.init()
        except gp.GPhoto2Error as exc:
            raise self._typed(exc, f"opening {model} at {port}") from None
        self.cam, self.port, self.model_name = cam, port, model
        self.captures_since_open = 0

    def _exit(self) -> None:
        cam, self.cam = self.cam, None
        if cam is not None:
            try:
                cam.exit()
            except gp.GPhoto2Error:
                pass

    def _read_identity(self) -> None:
        vendor_roles = resolve_roles("Generic", self._probe, (SERIAL, MANUFACTURER, MODEL, LENS, FIRMWARE,
                                                               BATTERY))
        value = {role: str(info.value) for role, info in vendor_roles.widgets.items()}
        make = value.get(MANUFACTURER, "")
        model = self.model_name or value.get(MODEL, "")
        if self.virtual:
            model = f"{model} (libgphoto2 virtual camera)"
        self.serial = value.get(SERIAL, "")
        lens = value.get(LENS, "")
        if vendor_of(make, self.model_name) == "Fuji":
            lens = lens.split(",")[0]          # Fuji reports "name,serial"
        self.identity = {"make": make, "model": model, "serial": self.serial, "lens": lens,
                         "firmware": value.get(FIRMWARE, ""), "port": self.port, "battery": value.get(BATTERY, "")}
        self.name = f"{make} {model} (serial {self.serial or 'unknown'})".strip()
        self.roles = resolve_roles(vendor_of(make, self.model_name), self._probe)

    def _sync_clock(self) -> None:
        info = self.roles.widgets.get(DATETIME)
        if info is None or info.readonly:
            return
        try:
            widget = self.cam.get_single_config(info.name)
            widget.set_value(int(time.time()))
            self.cam.set_single_config(info.name, widget)
        except gp.GPhoto2Error:
            pass                               # a clock we cannot set is not worth failing a session for

    def _apply_capture_target(self, wanted: str) -> None:
        info = self._fresh(CAPTURE_TARGET)
        key = wanted.strip().lower()
        label = next((c for c in info.choices if key in ("ram", "sdram") and "ram" in c.lower()
                      and "card" not in c.lower()), None) or next(
            (c for c in info.choices if key == "card" and "card" in c.lower()), None) or wanted
        self._set_widget(CAPTURE_TARGET, label, timeout=10.0)
        self.applied[CAPTURE_TARGET] = label

    def _read_capture_state(self) -> None:
        target = self.roles.widgets.get(CAPTURE_TARGET)
        label = str(self._value(target.name)) if target else ""
        # Internal RAM: every image must be downloaded and deleted or the body goes busy (cli#308)
        to_ram = "ram" in label.lower() and "card" not in label.lower()
        self.delete_after_download = (to_ram and not self.virtual if self.delete_from_camera is None
                                      else self.delete_from_camera)
        fmt = self.roles.widgets.get(IMAGE_FORMAT)
        text = str(self._value(fmt.name)).lower() if fmt else ""
        self.expected_files = 2 if "+" in text and any(t in text for t in RAW_TOKENS) else 1

    def describe(self) -> dict[str, Any]:
        return {"identity": self.identity, "vendor": self.roles.vendor, "name": self.name,
                "roles": {role: info.name for role, info in self.roles.widgets.items()},
                "missing": {role: self.roles.why_missing(role) for role in ROLES if role not in self.roles.widgets},
                "virtual": self.virtual, "captures_per_open": self.captures_per_open, "reopens": self.reopens,
                "applied": dict(self.applied), "delete_after_download": self.delete_after_download}

    def reopen(self, reason: str = "") -> dict[str, Any]:
        """Drop the Camera object, open a new one by serial, re-apply and read back every setting."""
        self._exit()
        if not self.virtual:
            self._reset_port()
        self.selector = self.serial or self.selector
        self.reopens += 1
        applied = {role: label for role, label in self.applied.items() if role != CAPTURE_TARGET}
        self.capture_target_request = self.applied.get(CAPTURE_TARGET, self.capture_target_request)
        self.open(applied)                     # self.applied is kept: a failed reopen can be tried again
        return {"reason": reason, "reopens": self.reopens}

    def _reset_port(self) -> None:
        try:
            ports = gp.PortInfoList()
            ports.load()
            port = gp.GPPort()
            port.set_info(ports[ports.lookup_path(self.port)])
            port.open()
            port.reset()
            port.close()
        except (gp.GPhoto2Error, Exception):   # noqa: BLE001 - a failed reset still leaves re-open to try
            pass

    # ------------------------------------------------------------------ widgets

    def _probe(self, name: str) -> WidgetInfo | None:
        try:
            return widget_info(self.cam.get_single_config(name))
        except gp.GPhoto2Error:
            return None

    def _value(self, name: str) -> Any:
        info = self._probe(name)
        return info.value if info else ""

    def _fresh(self, role: str) -> WidgetInfo:
        info = self.roles.widgets.get(role)
        if info is None:
            raise UnsupportedFeature(f"{role} is not available: {self.roles.why_missing(role)}", camera=self.name)
        fresh = self._probe(info.name)
        if fresh is None:
            raise UnsupportedFeature(f"{role} widget {info.name} stopped answering (mode change?)",
                                     camera=self.name)
        self.roles.widgets[role] = fresh
        return fresh

    def _typed(self, exc: gp.GPhoto2Error, doing: str) -> CameraError:
        cls = errors.error_class(exc.code)
        detail = f"{doing}: gphoto2 error {exc.code} ({exc.string})"
        if exc.code == errors.USB_CLAIM:
            detail += f"; {errors.CLAIMED_HINT}"
        elif exc.code == errors.NOT_SUPPORTED:
            detail = f"{doing} is not supported by this body (gphoto2 {exc.code}: {exc.string})"
        return cls(detail, camera=self.name)

    def _retry_busy(self, doing: str, fn: Callable[..., Any], *args: Any) -> Any:
        delay = self.busy_backoff_s
        for attempt in range(self.busy_retries + 1):
            try:
                return fn(*args)
            except gp.GPhoto2Error as exc:
                if exc.code != errors.BUSY or attempt == self.busy_retries:
                    raise
                self._drain()
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _guarded(self, doing: str, fn: Callable[[], Any], *, idempotent: bool) -> Any:
        """Run one operation through the ladder: busy retries, then reopen on I/O errors and timeouts."""
        try:
            return self._retry_busy(doing, fn)
        except gp.GPhoto2Error as exc:
            if exc.code not in errors.RECONNECT_CODES:
                raise self._typed(exc, doing) from None
            # keep only the numbers: the exception's traceback would keep the old Camera alive
            code, text = exc.code, exc.string
        try:
            self.reopen(reason=f"{doing}: gphoto2 {code}")
        except CameraError as exc:
            raise CameraDisconnected(f"{doing} failed ({text}) and the body could not be reopened: "
                                     f"{exc}", camera=self.name) from None
        if not idempotent:
            raise CameraTimeout(f"{doing} failed (gphoto2 {code}: {text}); the body was reopened "
                                "and every setting re-applied, nothing was captured: retry", camera=self.name)
        try:
            return self._retry_busy(doing, fn)
        except gp.GPhoto2Error as exc:
            raise self._typed(exc, doing) from None

    # ------------------------------------------------------------------ settings

    def choices(self) -> dict[str, list[str]]:
        result = {}
        for role in ROLES:
            if role in self.roles.widgets:
                info = self._guarded(f"reading {role}", lambda r=role: self._fresh(r), idempotent=True)
                if info.choices and not info.readonly:
                    result[role] = list(info.choices)
        return result

    def get(self, role: str) -> str:
        return str(self._guarded(f"reading {role}", lambda: self._fresh(role), idempotent=True).value)

    def set(self, role: str, value: str, timeout: float = 10.0) -> dict[str, Any]:
        started = time.monotonic()
        result = self._guarded(f"setting {role}={value}", lambda: self._set_widget(role, value, timeout),
                               idempotent=True)
        self.applied[role] = result["requested"]
        result["seconds"] = time.monotonic() - started
        return result

    def _set_widget(self, role: str, value: str, timeout: float) -> dict[str, Any]:
        info = self._fresh(role)
        label = match_choice(role, value, info, camera=self.name)
        if info.value is not None and same_value(role, str(info.value), label) and str(info.value) == label:
            return {"role": role, "requested": label, "readback": str(info.value), "changed": False}
        widget = self.cam.get_single_config(info.name)
        widget.set_value(self._typed_value(info, label))
        self.cam.set_single_config(info.name, widget)
        deadline = time.monotonic() + timeout
        delay = 0.0
        while True:                            # read back: Sony steps one notch per poll (lib#291)
            readback = str(self.cam.get_single_config(info.name).get_value())
            if same_value(role, readback, label):
                return {"role": role, "requested": label, "readback": readback, "changed": True}
            if time.monotonic() >= deadline:
                raise CameraTimeout(f"{role} ({info.name}) set to {label!r} but the body still reports {readback!r} "
                                    f"after {timeout:g} s", camera=self.name)
            delay = min(0.5, delay + 0.05)
            time.sleep(delay)

    def set_widget(self, name: str, value: str, timeout: float = 10.0) -> dict[str, Any]:
        """Set a widget that plays no sweep role (exposurecompensation, capturetarget, bulb...) by its name.

        Validated like a role; not re-applied after a reopen. Action toggles (bulb, movie) read back 2.
        """
        info = self._probe(name)
        if info is None:
            raise UnsupportedFeature(f"no widget named {name!r} answers on this body (see `cinectrl rig settings`)",
                                     camera=self.name)
        label = match_choice(name, value, info, camera=self.name)

        def send() -> str:
            widget = self.cam.get_single_config(name)
            widget.set_value(self._typed_value(info, label))
            self.cam.set_single_config(name, widget)
            return str(self.cam.get_single_config(name).get_value())

        readback = self._guarded(f"setting {name}={label}", send, idempotent=False)
        self._read_capture_state()             # capture target or image format may have changed
        return {"role": name, "requested": label, "readback": readback, "changed": True, "seconds": 0.0}

    @staticmethod
    def _typed_value(info: WidgetInfo, label: str) -> Any:
        if info.kind == "RANGE":
            return float(label)
        if info.kind in ("TOGGLE", "DATE"):
            return int(label)
        return label

    def settings(self) -> list[dict[str, Any]]:
        """Every widget of the tree with its value and choices (for `cinectrl rig settings`)."""
        rows: list[dict[str, Any]] = []

        def walk(widget, section: str) -> None:
            kind = _KINDS.get(widget.get_type(), "TEXT")
            if kind in ("WINDOW", "SECTION"):
                for i in range(widget.count_children()):
                    walk(widget.get_child(i), widget.get_name() if kind == "SECTION" else section)
                return
            info = widget_info(widget)
            row = info.as_dict()
            row.update(section=section, label=widget.get_label(),
                       role=next((r for r, w in self.roles.widgets.items() if w.name == info.name), ""))
            rows.append(row)

        walk(self._guarded("reading the settings tree", lambda: self.cam.get_config(), idempotent=True), "")
        return rows

    # ------------------------------------------------------------------ capture

    def _drain(self, timeout_ms: int = 0, limit: int = 100) -> list[tuple[str, str]]:
        """Empty the event queue; return the files the body announced (FILE_ADDED)."""
        added = []
        for _ in range(limit):
            kind, data = self.cam.wait_for_event(timeout_ms)
            if kind == gp.GP_EVENT_TIMEOUT:
                break
            if kind == gp.GP_EVENT_FILE_ADDED:
                added.append((data.folder, data.name))
        return added

    def capture_still(self, dest_dir: str, stem: str) -> list[dict[str, Any]]:
        dest = _absolute(dest_dir, self.name)
        if self.captures_per_open and self.captures_since_open >= self.captures_per_open:
            self.reopen(reason=f"{self.captures_per_open} captures per open")
        stray = [f for f in self._guarded("draining events", self._drain, idempotent=True)
                 if f not in self._downloaded]
        started = time.time()
        path = self._guarded("capturing", self._capture_once, idempotent=False)
        if path is None:
            # the virtual camera refuses capture 27 per open (a full buffer on a real body): reopen once.
            # Outside the except block: its traceback would keep the old Camera alive through the new init()
            self.reopen(reason="capture buffer full (gphoto2 -3)")
            path = self._guarded("capturing", lambda: self.cam.capture(gp.GP_CAPTURE_IMAGE), idempotent=False)
        self.captures_since_open += 1
        files = [(path.folder, path.name)]
        files += [f for f in self._drain() if f not in files]
        deadline = time.monotonic() + 10.0
        while len(files) < self.expected_files and time.monotonic() < deadline:   # RAW+JPEG: the 2nd file
            files += [f for f in self._drain(100, limit=5) if f not in files]
        rows = [self._download(folder, name, dest, stem, started, i, len(files))
                for i, (folder, name) in enumerate(files)]
        # Files announced outside a capture (a late RAW of the previous frame) are never deleted unseen:
        # they are downloaded beside this frame as kind "other".
        for i, (folder, name) in enumerate(f for f in stray if f not in files):
            rows.append(self._download(folder, name, dest, f"{stem}.stray-{i}", started, 0, 1, kind="other"))
        return rows

    def _capture_once(self) -> Any:
        """capture(), or None when the body's buffer is full (-3); other errors go up the ladder."""
        try:
            return self._retry_busy("capturing", self.cam.capture, gp.GP_CAPTURE_IMAGE)
        except gp.GPhoto2Error as exc:
            if exc.code == errors.NO_MEMORY:
                return None
            raise

    def _download(self, folder: str, name: str, dest_dir: Path, stem: str, started: float, index: int,
                  total: int, kind: str | None = None) -> dict[str, Any]:
        """Download to a temporary name, rename into place, read it back and compare, and only then delete it
        from the camera (when capturing to RAM; the file and its folder are fsynced first). A delete that
        fails is reported, not hidden."""
        ext = Path(name).suffix.lower() or ".bin"
        final = dest_dir / f"{stem}{ext}"
        if total > 1 and index > 0 and final.exists():
            final = dest_dir / f"{stem}_{index}{ext}"
        part = dest_dir / f".{final.name}.part"
        expected = self._guarded(f"reading info of {folder}/{name}",
                                 lambda: self.cam.file_get_info(folder, name).file.size, idempotent=True)
        camera_file = self._guarded(f"downloading {folder}/{name}",
                                    lambda: self.cam.file_get(folder, name, gp.GP_FILE_TYPE_NORMAL),
                                    idempotent=True)
        data = camera_file.get_data_and_size()   # keep camera_file alive while data is used
        if len(data) != expected:
            raise CameraTimeout(f"download of {folder}/{name} returned {len(data)} bytes, the camera reported "
                                f"{expected}; retry the frame", camera=self.name)
        digest = hashlib.sha256(data).hexdigest()
        with open(part, "wb") as handle:
            handle.write(data)
            if self.delete_after_download:     # the camera's copy is about to go: ours must survive a power cut
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(part, final)
        del data, camera_file
        if self.delete_after_download:
            fsync_dir(dest_dir)
        self._verify(final, expected, digest, f"{folder}/{name}")
        self._downloaded.append((folder, name))
        left = self._delete_on_camera(folder, name) if self.delete_after_download else ""
        return {"path": str(final), "kind": kind or ("raw" if ext in RAW_EXTENSIONS else "still"),
                "bytes": expected, "camera_name": f"{folder}/{name}", "captured_at": started, "left_on_camera": left}

    def _verify(self, final: Path, expected: int, digest: str, camera_name: str) -> None:
        """The file at its final path is what the camera sent, byte for byte, before anything is deleted."""
        try:
            size = final.stat().st_size
            with open(final, "rb") as handle:
                ok = size == expected and hashlib.sha256(handle.read()).hexdigest() == digest
        except OSError as exc:
            ok, size = False, f"unreadable ({exc.strerror})"
        if not ok:
            final.unlink(missing_ok=True)
            raise CameraTimeout(f"{camera_name} did not verify at {final} ({size} bytes on disk, {expected} sent); "
                                "it was left on the camera: retry the frame", camera=self.name)

    def _delete_on_camera(self, folder: str, name: str) -> str:
        """Delete a downloaded, verified file from the camera; '' when done, else why it is still there."""
        try:
            self._retry_busy(f"deleting {folder}/{name}", self.cam.file_delete, folder, name)
            return ""
        except gp.GPhoto2Error as exc:
            return f"deleting it from the camera failed (gphoto2 {exc.code}: {exc.string}); it fills the body's RAM"

    def files(self) -> list[str]:
        """Every file on the camera's storage, as 'folder/name' (what a test checks is left after downloads)."""
        found: list[str] = []

        def walk(folder: str) -> None:
            for name, _ in self.cam.folder_list_files(folder):
                found.append(f"{folder.rstrip('/')}/{name}")
            for sub, _ in self.cam.folder_list_folders(folder):
                walk(f"{folder.rstrip('/')}/{sub}")

        self._guarded("listing the camera's files", lambda: walk("/"), idempotent=True)
        return sorted(found)

    def live_view(self) -> bytes:
        camera_file = self._guarded("live view (capture_preview)", lambda: self.cam.capture_preview(),
                                   idempotent=True)
        return bytes(camera_file.get_data_and_size())

    # ------------------------------------------------------------------ movies

    def movie_start(self) -> float:
        """Start recording with the vendor's widgets (Nikon/Sony `movie`, Canon `movierecordtarget`)."""
        if MOVIE not in self.roles.widgets:
            raise UnsupportedFeature(f"movie recording is not available: {self.roles.why_missing(MOVIE)} "
                                     "(capture(GP_CAPTURE_MOVIE) is -6 on PTP bodies)", camera=self.name)
        info = self._fresh(MOVIE)
        if self.roles.vendor == "Canon":
            if VIEWFINDER in self.roles.widgets:
                self._set_raw(self.roles.widgets[VIEWFINDER].name, 1)
            on, off = self._canon_movie_labels(info)
            self._movie_toggle = {"name": info.name, "off": off}
            self._set_raw(info.name, on)
        else:
            self._movie_toggle = {"name": info.name, "off": 0}
            self._set_raw(info.name, 1)
        return time.time()

    @staticmethod
    def _canon_movie_labels(info: WidgetInfo) -> tuple[str, str]:
        on = next((c for c in info.choices if c.lower() == "card"), None)
        off = next((c for c in info.choices if c.lower() == "none"), None)
        if on is None or off is None:
            raise UnsupportedFeature(f"{info.name} offers {list(info.choices)}, not Card/None")
        return on, off

    def _set_raw(self, name: str, value: Any) -> None:
        def send() -> None:
            widget = self.cam.get_single_config(name)
            widget.set_value(value)
            self.cam.set_single_config(name, widget)
        self._guarded(f"setting {name}={value}", send, idempotent=False)

    def movie_stop(self, dest_dir: str, stem: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        dest = _absolute(dest_dir, self.name)
        if self._movie_toggle is None:
            raise CameraError("movie_stop without movie_start", camera=self.name)
        toggle, self._movie_toggle = self._movie_toggle, None
        stopped = time.time()
        self._set_raw(toggle["name"], toggle["off"])
        files: list[tuple[str, str]] = []
        deadline = time.monotonic() + timeout       # Nikon waits up to ~10 s for MovieRecordComplete
        while not files and time.monotonic() < deadline:
            files = self._drain(500, limit=20)
        if not files:
            raise CameraTimeout(f"no movie file announced within {timeout:g} s of stopping", camera=self.name)
        return [self._download(folder, name, dest, stem, stopped, i, len(files), kind="clip")
                for i, (folder, name) in enumerate(files)]

    def close(self) -> None:
        self._exit()

