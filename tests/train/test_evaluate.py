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


def test_leakage_is_the_change_beyond_the_captured_sweeps_own_as_a_fraction_of_the_real_effect():
    from train import metrics as M
    captured = [10.0, 10.0, 10.0, 10.0]
    assert M.leakage([10.0] * 4, captured, 50.0) == 0.0                      # does not move: no leakage
    assert M.leakage([10.0, 15.0, 20.0, 25.0], captured, 50.0) == pytest.approx(0.3)
    coupled = [0.0, 1.0, 2.0, 3.0]                                           # physics moves it in the capture too
    assert M.leakage(coupled, coupled, 10.0) == 0.0
    assert M.leakage([0.0, 2.0, 4.0, 6.0], coupled, 10.0) == pytest.approx(0.3)
    assert M.leakage([0.0, 5.0], [0.0, 0.0], None) is None                    # nothing to compare with
    assert M.leakage_max({"K": {"sharpness": 0.9, "brightness": 0.3}, "S": {"brightness": 1.0}},
                         {"K": "sharpness", "S": "brightness"}) == (0.3, "K -> brightness")


def leaky_edit(frames, controls, **kw):
    """Follows every control, but a bokeh edit also brightens by 40 grey levels per unit K."""
    out = shift_edit(frames, controls, **kw).astype(np.int16) + int(40 * controls.get("K", 0.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def moving_edit(frames, controls, **kw):
    """Follows every control and moves the picture 2 px right, even for a neutral edit."""
    return np.roll(shift_edit(frames, controls, **kw), 2, axis=2)


def test_leakage_and_the_neutral_edit_translation_are_reported_per_method():
    result = E.evaluate(sweeps(), {"perfect": shift_edit, "leaky": leaky_edit, "moving": moving_edit,
                                   "identity": E.identity})
    for method in ("perfect", "identity"):
        data = result["methods"][method]
        assert data["leakage_max"]["met"], (method, data["leakage_max"], data["leakage"])
        assert data["neutral_translation_px"]["max"] < 0.5 and data["neutral_translation_px"]["met"]
    leaky = result["methods"]["leaky"]
    assert leaky["leakage"]["K"]["brightness"] > 0.2                 # 36 levels against the S sweeps' ~100
    assert not leaky["leakage_max"]["met"] and leaky["leakage_max"]["value"] >= leaky["leakage"]["K"]["brightness"]
    moving = result["methods"]["moving"]["neutral_translation_px"]
    assert moving["max"] == pytest.approx(2.0, abs=0.3) and not moving["met"]


def test_the_sharpness_mask_is_fixed_per_sweep_from_the_reference():
    """A focus sweep of unchanged clips (identity) must not move the bokeh statistic: the mask where sharpness is
    measured is cut once per sweep, at the reference's focus plane, not at each member's."""
    source = textured_clip(3, frames=2, size=64)
    depth = np.broadcast_to(np.linspace(0.5, 8.0, source.shape[2], dtype=np.float32), source.shape[:3]).copy()
    members = [E.Member(v, {**registry.NEUTRAL, "K": 0.6, "d_f": v}, source) for v in (0.1, 0.4, 0.7, 0.95)]
    sweep = E.Sweep("d_f", source, members, depth, focus=0.5)
    values = E._statistic("sharpness", [m.clip for m in members], sweep)
    assert max(values) - min(values) < 1e-9, values
