"""Run one session of a plan in this process (the kill -9 test's victim): the simulated rig when the
simulated camera is installed, else the in-process fake camera (tests/capture/fakes.py) on the real GRBL
emulator. Exit code 0 = complete."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from capture.plan import load_plan  # noqa: E402
from capture.rig import Rig  # noqa: E402
from capture.session import RunnerOptions, SessionRunner  # noqa: E402

HAVE_SIM = importlib.util.find_spec("rigs.camera.sim") is not None


def camera_factory(rig: Rig):
    if HAVE_SIM:
        return rig.open_camera
    from fakes import FakeCamera

    return lambda: FakeCamera(position=lambda: rig.slider.status().position_mm if rig.slider else 0.0)


def main(plan_path: str, catalog: str) -> int:
    plan = load_plan(plan_path)
    rig = Rig(plan)
    result = SessionRunner(plan, Path(catalog), camera_factory=camera_factory(rig), slider_factory=rig.open_slider,
                           options=RunnerOptions(build_outputs=False)).run()
    return 0 if result.status == "complete" else 3


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
