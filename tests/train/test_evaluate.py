"""Evaluation on sweeps with known answers: a perfect editor scores r = 1 and slope ratio 1, a half-strength
one r = 1 but slope ratio 0.5, identity tracks nothing, and every figure lands in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rigs import controls as registry
from train import evaluate as E
from train.camera_path import parse

from .conftest import simple_edit, textured_clip

VALUES = {"S": [-0.6, -0.2, 0.2, 0.6], "T": [-0.6, -0.2, 0.2, 0.6], "K": [0.0, 0.3, 0.6, 0.9],
          "f": [0.0, 0.2, 0.4, 0.6]}


def reference_edit(frames, controls, **_):
    return simple_edit(frames, controls)


def shift_edit(frames, controls, *, camera_path=None, **_):
    """Moves the picture as a camera offset would (1 px per 10 mm, right for a camera moving left)."""
    shift = 0 if camera_path is None else int(round(-camera_path.keyframes[0, 0, 3] * 1000 / 10))
    return np.roll(simple_edit(frames, controls), shift, axis=2)


def half(frames, controls, **kw):
    return shift_edit(frames, {k: v * 0.5 if k in ("S", "K") else v for k, v in controls.items()}, **kw)


def sweeps():
    out = []
    for scene, seed in (("a", 1), ("b", 2)):
        source = textured_clip(seed, frames=3, size=64)
        for axis, values in VALUES.items():
            members = [E.Member(v, {**registry.NEUTRAL, axis: v}, simple_edit(source, {axis: v})) for v in values]
            out.append(E.Sweep(axis, source, members, scene=scene, session=scene))
        path = [E.Member(mm, dict(registry.NEUTRAL),
                         shift_edit(source, {}, camera_path=parse({"slider_mm": [mm]}) if mm else None), mm)
                for mm in (-40.0, -20.0, 0.0, 20.0, 40.0)]
        out.append(E.Sweep(E.CAMERA_PATH, source, path, scene=scene, session=scene))
    return out


def test_find_series_keeps_members_where_only_one_axis_varies():
    members = [{**registry.NEUTRAL, "S": s, "K": k, E.CAMERA_PATH: 0.0} for k in (0.1, 0.5) for s in (-0.5, 0, 0.5)]
    members.append({**registry.NEUTRAL, "S": 0.9, "K": 0.1, E.CAMERA_PATH: 30.0})   # another path: not in
    s_series = E.find_series(members, "S")
    assert sorted(len(x) for x in s_series) == [3, 3]
    assert all(len({members[i]["K"] for i in x}) == 1 for x in s_series)
    assert E.find_series(members, "K") == []          # only two values of K: not a sweep


def test_perfect_half_and_identity_editors_are_told_apart(tmp_path):
    result = E.evaluate(sweeps(), {"perfect": shift_edit, "half": half, "identity": E.identity})
    perfect, halfway, ident = (result["methods"][m]["axes"] for m in ("perfect", "half", "identity"))
    for axis in VALUES:
        assert perfect[axis]["corrcoef"] == pytest.approx(1.0, abs=0.02), axis
        assert perfect[axis]["slope_ratio"] == pytest.approx(1.0, abs=0.05), axis
        assert perfect[axis]["abs_error"] == pytest.approx(0.0, abs=1e-6), axis
        assert ident[axis]["corrcoef"] == 0.0 and ident[axis]["corrcoef_undefined"] == 2, axis
        assert ident[axis]["slope_ratio"] == pytest.approx(0.0, abs=1e-9), axis
    assert perfect[E.CAMERA_PATH]["abs_error"] == pytest.approx(0.0, abs=0.3)        # path error in px
    assert ident[E.CAMERA_PATH]["abs_error"] > 1.5
    # right direction, wrong amount: CorrCoef cannot see it, the slope ratio does
    assert halfway["S"]["corrcoef"] > 0.95 and halfway["S"]["slope_ratio"] == pytest.approx(0.5, abs=0.1)
    matrix = result["methods"]["perfect"]["disentanglement"]
    assert matrix["S"]["brightness"] > 0.95 and matrix["f"]["zoom_scale"] > 0.95
    assert matrix[E.CAMERA_PATH]["translation"] > 0.95
    assert E.off_diagonal_max(matrix) is not None
    paths = E.write_report(result, tmp_path / "report")
    data = json.loads(paths["metrics"].read_text())
    assert set(data["methods"]) == {"perfect", "half", "identity"}
    md = paths["markdown"].read_text()
    assert "| perfect | S | brightness | 1.000 (n=4) | 1.000" in md and "sweep_f.png" in md
    assert all(p.stat().st_size > 1000 for p in paths["plots"])


def test_the_simulator_is_never_scored_on_sweeps_it_made_and_cannot_move_the_camera():
    simulated = sweeps()
    for s in simulated:
        s.reference_kind = "simulated"
    simulator = E.simulator_editor()
    result = E.evaluate(simulated[:1] + sweeps()[-1:], {"simulator": simulator})
    skipped = result["methods"]["simulator"]["skipped"]
    assert [s["why"] for s in skipped] == ["simulated sweep",
                                          "the effect simulator cannot move the camera along another path"]
    with pytest.raises(E.CannotEdit, match="depth"):
        simulator(textured_clip(0, frames=3), {"K": 0.5})
