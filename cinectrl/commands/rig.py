"""`cinectrl rig`: the technician's tools at the rig. Camera commands live in rig_camera, slider ones in rig_slider,
calibration (`rig calibrate`, `rig calibration`) in rig_calibration."""

from __future__ import annotations

import typer

from . import rig_calibration, rig_camera, rig_slider

app = typer.Typer(no_args_is_help=True)
rig_camera.register(app)
rig_slider.register(app)
rig_calibration.register(app)
