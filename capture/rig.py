"""Open the plan's camera and slider (real or simulated) as factories the runner can call again on recovery."""

from __future__ import annotations

import inspect
from typing import Any

from rigs.camera import open_camera
from rigs.camera.protocol import Camera
from rigs.slider.protocol import Slider

from .plan import Plan

NO_SLIDER = ("", "none", "no")


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Rig:
    """Holds the slider so a reopened simulated camera follows the same carriage."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.slider: Slider | None = None

    def open_slider(self) -> Slider | None:
        if self.plan.slider.lower() in NO_SLIDER:
            self.slider = None
            return None
        from rigs.slider import open_slider

        options: dict[str, Any] = dict(self.plan.slider_options)
        if self.plan.slider == "emulator":
            options.setdefault("speed", self.plan.speed)
        self.slider = open_slider(self.plan.slider, **options)
        return self.slider

    def open_camera(self) -> Camera:
        options: dict[str, Any] = dict(self.plan.camera_options)
        if self.plan.camera == "sim":
            from rigs.camera.sim import SimCamera

            if self.slider is not None and _accepts(SimCamera, "slider"):
                options.setdefault("slider", self.slider)
            if _accepts(SimCamera, "speed"):
                options.setdefault("speed", self.plan.speed)
        return open_camera(self.plan.camera, **options)
