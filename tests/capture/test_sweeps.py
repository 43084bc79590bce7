"""Sweep measurement and sweep QC on the real corpus (tests/data/real-sweeps) and on sweeps that went wrong:
the statistic of every real sweep orders its settings (|Pearson r| >= 0.95, the sign the physics gives); a
sweep whose statistic does not move, moves the wrong way or turns back is flagged; focus pairs that only
breathe are not misaligned, a pair shifted by 2 px is."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capture import clips, sweeps

pytestmark = pytest.mark.timeout(300)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real-sweeps"
#: the one real sweep whose statistic cannot move: City100's authors registered and resampled the zoomed-in
#: frame to the zoomed-out field of view (its README), so the pair has no magnification left to measure
NO_MAGNIFICATION = {"zoom-city100-d5500"}


def load(name: str) -> tuple[dict, list[float], list[np.ndarray], int]:
    folder = CORPUS / name
    meta = tomllib.loads((folder / "sweep.toml").read_text())
    files = meta.get("files") or sorted(p.name for p in folder.iterdir()
                                        if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    values = [float(v) for v in meta["values"]]
    frames = [np.asarray(Image.open(folder / f).convert("RGB")) for f in files]
    reference = values.index(float(meta["reference"])) if float(meta.get("reference", values[0])) in values else 0
    return meta, values, frames, reference


SWEEPS = sorted(p.name for p in CORPUS.iterdir() if (p / "sweep.toml").is_file())


@pytest.mark.parametrize("name", SWEEPS)
def test_every_real_sweep_orders_its_settings(name):
    meta, values, frames, reference = load(name)
    response = sweeps.measure_sweep(meta["axis"], values, frames, reference=reference)
    if name in NO_MAGNIFICATION:
        assert not response.passed and "does not move" in response.flags[0], response
        return
    assert response.passed, response.flags
    assert response.pearson * response.expected_sign >= sweeps.MIN_ABS_R, response
    if meta["axis"] == "focus":                       # the real stacks breathe: registration found it
        assert min(r["scale"] for r in response.registration) < 0.99


def test_a_sweep_whose_setting_never_took_is_flagged():
    meta, values, frames, reference = load("kelvin-a0033-render")
    stuck = sweeps.measure_sweep("kelvin", values, [frames[reference]] * len(values), reference=reference)
    assert not stuck.passed and "does not move" in stuck.flags[0] and "kelvin" in stuck.flags[0]
    meta, values, frames, reference = load("focus-cmcguinness")
    never_drove = sweeps.measure_sweep("focus", values, [frames[0]] * len(values), reference=0)
    assert not never_drove.passed and "does not move" in never_drove.flags[0]


def test_a_sweep_that_moves_the_wrong_way_or_turns_back_is_flagged():
    meta, values, frames, reference = load("exposure-stlouis-canon-s3is")
    backwards = sweeps.measure_sweep("shutter", values[::-1], frames, reference=len(values) - 1 - reference)
    assert not backwards.passed and any("does not follow the shutter" in f for f in backwards.flags)
    order = [0, 2, 1, 3]                                # two frames swapped: brightness turns back once
    swapped = sweeps.measure_sweep("shutter", values, [frames[i] for i in order], reference=reference)
    assert any("turns back 1 time" in f for f in swapped.flags), swapped.flags


def test_registration_and_masks_let_a_padded_shifted_bracket_through():
    """A bracket as published registered and padded: one frame shifted 6 px with a flat border where it moved."""
    meta, values, frames, reference = load("exposure-rx100m6-night-1")
    moved = [f.copy() for f in frames]
    moved[-1] = np.roll(moved[-1], 6, axis=1)
    moved[-1][:, :6] = (255, 0, 255)                    # pure-colour padding
    response = sweeps.measure_sweep(meta["axis"], values, moved, reference=reference)
    assert response.passed, response.flags
    assert response.registration[-1]["shift_px"] > 4


def _focus_stack() -> list[np.ndarray]:
    return load("focus-cmcguinness")[2]


def test_focus_pairs_that_only_breathe_are_not_misaligned():
    stack = _focus_stack()
    for target in stack[1:]:
        quality = clips.pair_quality([stack[0]], [target], breathing=True)
        assert not any(f.startswith("misaligned") for f in quality.failures), quality
        assert 0.95 < quality.breathing_scale < 0.995                    # 1-4.5 % of breathing, measured
    plain = clips.pair_quality([stack[0]], [stack[-1]])
    assert any(f.startswith("misaligned") for f in plain.failures)       # without the allowance it is called so


def test_a_real_pair_shifted_by_2_px_is_misaligned():
    stack = _focus_stack()
    shifted = np.roll(stack[0], 2, axis=1)
    quality = clips.pair_quality([stack[0]], [shifted], breathing=True)
    assert any(f.startswith("misaligned by 2.0 px") for f in quality.failures), quality
    breathing_and_shift = clips.pair_quality([stack[0]], [np.roll(stack[3], 2, axis=0)], breathing=True)
    assert any(f.startswith("misaligned") for f in breathing_and_shift.failures), breathing_and_shift


WB_PLAN = """
[session]
name = "wb sweep"
scene = "bench"
operator = "test"

[rig]
camera = "sim"
slider = "none"

[axes]
white_balance = ["Kelvin"]
kelvin = ["3200", "5500", "9000"]
aperture = ["f/8"]
shutter = ["1/60"]
iso = ["200"]

[pairs]
reference = { kelvin = "5500" }
"""


def _session(tmp_path, camera_factory):
    from capture.plan import parse_plan
    from capture.session import RunnerOptions, SessionRunner
    path = tmp_path / "plan.toml"
    path.write_text(WB_PLAN)
    SessionRunner(parse_plan(WB_PLAN, source=str(path)), tmp_path / "catalog.db", camera_factory=camera_factory,
                  slider_factory=lambda: None, options=RunnerOptions(plan_path=str(path))).run()
    from typer.testing import CliRunner

    from cinectrl.main import app
    shown = CliRunner().invoke(app, ["capture", "status", "--catalog", str(tmp_path / "catalog.db"), "--session",
                                     "1", "--json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def test_capture_status_shows_each_sweeps_measured_response(tmp_path):
    from .conftest import tiny_sim
    record = _session(tmp_path, tiny_sim)
    (sweep,) = record["sweeps"]
    assert sweep["role"] == "kelvin" and sweep["statistic"] == "colour_balance" and sweep["passed"], sweep
    assert sweep["values"] == [3200.0, 5500.0, 9000.0] and sweep["measured"][0] > sweep["measured"][-1] + 0.1   # warmer
    assert "Sweeps (1)" in Path(record["report"]).read_text()


def test_a_white_balance_the_body_ignored_is_flagged(tmp_path):
    """A body that accepts the Kelvin setting and keeps rendering at 5500 K (a simulated body with that fault:
    no real body can be made to misbehave here)."""
    from rigs.camera.sim import SimCamera

    from .conftest import TINY

    class IgnoresWhiteBalance(SimCamera):
        def white_balance_kelvin(self) -> float:
            return 5500.0

    record = _session(tmp_path, lambda: IgnoresWhiteBalance(**TINY))
    (sweep,) = record["sweeps"]
    assert not sweep["passed"] and "colour_balance does not move along the kelvin sweep" in sweep["flags"][0]
