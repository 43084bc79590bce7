"""Pairs from a real capture session on the simulated rig (SimCamera + GRBL emulator on a pty): their real
relative camera path from the recorded slider poses, the source's depth, the reference's own controls, and
the captured sweep evaluation cuts out of them."""

from __future__ import annotations

import pytest
import torch

from typer.testing import CliRunner

from capture.catalog import open_catalog
from cinectrl.main import app
from train import data as D
from train.camera_path import TRANSLATION_SCALE_M
from train import evaluate as E

PLAN = """
[session]
name = "aperture passes"
scene = "kitchen"
operator = "pytest"
[rig]
camera = "sim"
slider = "emulator"
speed = 50
camera_options = { clip_width = 128, clip_height = 96 }
[axes]
aperture = ["f/2", "f/2.8", "f/5.6", "f/11"]
shutter = ["1/15"]
iso = ["800"]
focal = ["70"]
focus = ["1"]
[trajectory]
start_mm = 100
end_mm = 150
speed_mm_s = 40
frames = 9
fps = 6
[order]
mode = "passes"
[exposure]
constant = true
compensate = ["shutter"]
reference = { aperture = "f/11", shutter = "1/15", iso = "800" }
[pairs]
reference = { aperture = "f/11" }
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    (root / "plan.toml").write_text(PLAN)
    result = CliRunner().invoke(app, ["capture", "run", str(root / "plan.toml"), "--catalog",
                                      str(root / "catalog.db"), "--quiet", "--init"])
    assert result.exit_code == 0, result.output
    with open_catalog(root / "catalog.db", create=False) as cat:   # as the review gate leaves them (QC may flag
        for pair in cat.pairs():                                     # a pass whose motion started late under load)
            cat.set_pair_state(pair["pair_id"], review_state="accepted", train_ready=True)
    return root / "catalog.db"


@pytest.mark.timeout(240)
def test_captured_pairs_carry_poses_depth_and_the_reference_controls(catalog):
    with open_catalog(catalog, create=False) as cat:
        records = D.records_from_catalog(cat, train_ready_only=True)
        pairs = cat.pairs()
    assert len(records) == 3
    for record in records:
        assert len(record.source_poses_mm) == len(record.target_poses_mm) == 9
        assert record.source_poses_mm[-1] - record.source_poses_mm[0] > 20       # the carriage moved
        assert record.depth is not None and record.depth.name.endswith(".depth.npz")
    for pair in pairs:
        assert pair["controls"]["_mapping"]["depth_from"].endswith(".depth.npz")
        assert pair["controls"]["_reference"]["S"] == pytest.approx(0.0)
        assert pair["controls"]["K"] > pair["controls"]["_reference"]["K"]      # wider than f/11: more bokeh
        assert abs(pair["controls"]["S"]) < 0.12                                   # exposure held constant
    ds = D.PairDataset(records, num_frames=9, size=(32, 48), simulate=None)
    item = ds[0]
    trajectory = item["trajectory"]
    assert trajectory.shape == (3, 12)
    rotation = trajectory[:, [0, 1, 2, 4, 5, 6, 8, 9, 10]]
    assert torch.equal(rotation, torch.tensor([1., 0, 0, 0, 1, 0, 0, 0, 1]).repeat(3, 1))
    # the same planned path in both passes: the offsets are what pass timing left, frame by frame (in the
    # model's translation unit, train.camera_path.TRANSLATION_SCALE_M)
    record = records[0]
    expected = [t - s for s, t in zip(record.source_poses_mm, record.target_poses_mm)]
    assert trajectory[:, 3].tolist() == pytest.approx([expected[i] / 1000 / TRANSLATION_SCALE_M for i in (0, 4, 8)], abs=1e-5)
    assert any(e != 0 for r in records for e in (t - s for s, t in zip(r.source_poses_mm, r.target_poses_mm)))


def test_relative_trajectory_offsets_and_fallback():
    traj = D.relative_trajectory([0, 1, 2, 3, 4, 5, 6, 7, 8], [20, 21, 22, 23, 24, 25, 26, 27, 28.5],
                                 list(range(9)), 3)
    assert traj[:, 3].tolist() == pytest.approx([0.020 / TRANSLATION_SCALE_M, 0.020 / TRANSLATION_SCALE_M,
                                                 0.0205 / TRANSLATION_SCALE_M])
    assert torch.equal(D.relative_trajectory(None, [1.0], list(range(9)), 3), D.identity_trajectory(3))
    assert D.latent_frame_indices(9) == [0, 4, 8] and D.latent_frame_indices(17) == [0, 4, 8, 12, 16]


@pytest.mark.timeout(240)
def test_evaluation_finds_the_captured_aperture_sweep_with_its_depth(catalog):
    with open_catalog(catalog, create=False) as cat:
        sweeps = E.captured_sweeps(cat, max_frames=9)
    (sweep,) = [s for s in sweeps if s.axis == "K"]
    assert len(sweep.members) == 4 and sweep.values == sorted(sweep.values)
    assert sweep.depth is not None and sweep.depth.shape[0] == 9 and sweep.scene == "kitchen"
    result = E.evaluate([sweep], {"identity": E.identity, "simulator": E.simulator_editor()})
    captured = result["captured_disentanglement"]["K"]
    assert captured["sharpness"] > 0.9                     # the captured sweep itself loses sharpness with K
    sim = result["methods"]["simulator"]["axes"]["K"]
    assert sim["corrcoef"] > 0.5 and 0.5 < sim["slope_ratio"] < 2.0   # the simulator's bokeh tracks the lens's
    assert all(stat in result["methods"]["identity"]["disentanglement"]["K"]
               for stat in ("sharpness", "focus_depth", "zoom_scale", "brightness", "colour_balance", "noise"))
