"""A minimal Camera over python-gphoto2's virtual camera, used by benchmarks/session.py only when the real
gphoto2 backend (rigs.camera.gphoto) is not installed. It reopens every 25 captures (the virtual camera
refuses the 27th capture per open) and re-applies the f-number, as the real backend's ladder does."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rigs.camera.protocol import CameraIdentity, CapturedFile, SettingResult


class DirectVirtualCamera:
    def __init__(self) -> None:
        import gphoto2 as gp

        self.gp = gp
        self.cam = None
        self.count = 0
        self.fnumber = None
        self._open()

    def _open(self) -> None:
        if self.cam is not None:
            self.cam.exit()
        self.cam = self.gp.Camera()
        self.cam.init()
        self.count = 0
        if self.fnumber:
            self._set("f-number", self.fnumber)

    def _set(self, name: str, value: str) -> str:
        widget = self.cam.get_single_config(name)
        widget.set_value(value)
        self.cam.set_single_config(name, widget)
        return self.cam.get_single_config(name).get_value()

    @property
    def identity(self) -> CameraIdentity:
        return CameraIdentity("GP", "Virtual D750", "vcam")

    def choices(self):
        widget = self.cam.get_single_config("f-number")
        return {"aperture": [widget.get_choice(i) for i in range(widget.count_choices())]}

    def get(self, role):
        return self.cam.get_single_config("f-number").get_value()

    def set(self, role, value, *, timeout=10.0):
        self.fnumber = value
        return SettingResult(role, value, self._set("f-number", value))

    def capture_still(self, dest_dir: Path, *, stem: str):
        if self.count >= 25:
            self._open()
        started = time.time()
        path = self.cam.capture(self.gp.GP_CAPTURE_IMAGE)
        self.count += 1
        cf = self.cam.file_get(path.folder, path.name, self.gp.GP_FILE_TYPE_NORMAL)
        data = bytes(cf.get_data_and_size())
        out = Path(dest_dir) / f"{stem}.jpg"
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        return [CapturedFile(out, "still", len(data), path.name, started)]

    def record_clip(self, *a, **k):
        raise NotImplementedError("the virtual camera records no movies")

    def live_view(self):
        raise NotImplementedError

    def close(self) -> None:
        if self.cam is not None:
            self.cam.exit()
            self.cam = None
