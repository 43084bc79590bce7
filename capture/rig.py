"""Open the plan's camera and slider (real or simulated) as factories the runner can call again on recovery."""

from __future__ import annotations

from typing import Any

from rigs.camera import open_camera
from rigs.camera.protocol import Camera
from rigs.slider.protocol import Slider

from .plan import Plan

NO_SLIDER = ("", "none", "no")


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
            options.setdefault("slider", self.slider)
            options.setdefault("speed", self.plan.speed)
        return open_camera(self.plan.camera_spec(), **options)
