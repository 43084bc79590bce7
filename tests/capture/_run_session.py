"""Run one session of a plan in this process (the kill -9 test's victim): the simulated camera on the real
GRBL emulator, as the plan says. Exit code 0 = complete. `--outputs` builds the clips, pairs, contact sheet and
report too (the output-build kill test's victim)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from capture.plan import load_plan  # noqa: E402
from capture.rig import Rig  # noqa: E402
from capture.session import RunnerOptions, SessionRunner  # noqa: E402


def main(plan_path: str, catalog: str, outputs: bool = False) -> int:
    plan = load_plan(plan_path)
    rig = Rig(plan)
    result = SessionRunner(plan, Path(catalog), camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                           options=RunnerOptions(build_outputs=outputs, plan_path=str(Path(plan_path).resolve()),
                                                 command="tests/capture/_run_session.py")).run()
    return 0 if result.status == "complete" else 3


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3], outputs="--outputs" in sys.argv[3:]))
