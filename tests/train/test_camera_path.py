"""Camera paths for edits: slider offsets (mm) or 3x4 poses, keyframes spread over the clip, one pose per latent
frame; malformed paths are one line naming the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from train.camera_path import TRANSLATION_SCALE_M, CameraPathError, latent_trajectory, load, parse


def test_slider_offsets_become_x_translations_in_metres():
    path = parse({"slider_mm": [0, 40]})
    poses = path.per_frame(5)
    np.testing.assert_allclose(poses[:, 0, 3], [0, 0.01, 0.02, 0.03, 0.04])
    np.testing.assert_allclose(poses[:, :, :3], np.repeat(np.eye(3)[None], 5, axis=0))
    assert "0..40 mm" in path.describe()


def test_poses_flat_or_nested_interpolate_with_rotations_kept_orthonormal():
    c, s = np.cos(0.4), np.sin(0.4)
    turned = [[c, 0, s, 0.1], [0, 1, 0, 0], [-s, 0, c, 0]]
    path = parse(json.dumps({"poses": [[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], turned]}))
    poses = path.per_frame(9)
    for pose in poses:
        np.testing.assert_allclose(pose[:, :3] @ pose[:, :3].T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(poses[-1], np.asarray(turned), atol=1e-9)
    np.testing.assert_allclose(poses[4, 0, 3], 0.05)


def test_rotations_between_keyframes_turn_at_constant_angular_speed():
    """Slerp: a quarter of the way from 0 to 90 degrees about z is 22.5 degrees (a linear blend, re-orthonormalised,
    gives 18.4)."""
    from scipy.spatial.transform import Rotation
    quarter = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    path = parse({"poses": [np.hstack([np.eye(3), np.zeros((3, 1))]).tolist(),
                            np.hstack([quarter, np.zeros((3, 1))]).tolist()]})
    angles = Rotation.from_matrix(path.per_frame(5)[:, :, :3]).as_euler("xyz", degrees=True)[:, 2]
    np.testing.assert_allclose(angles, [0, 22.5, 45, 67.5, 90], atol=1e-9)


def test_one_pose_per_latent_frame_of_a_window():
    poses = parse({"slider_mm": [0, 100]}).per_frame(11)
    traj = latent_trajectory(poses, start=2, frames=9, available=11)
    assert traj.shape == (3, 12)
    # frames 2, 6, 10: 20, 60, 100 mm in the model's translation unit (TRANSLATION_SCALE_M)
    np.testing.assert_allclose(traj[:, 3].numpy(), np.array([0.02, 0.06, 0.1]) / TRANSLATION_SCALE_M, atol=1e-6)
    identity = latent_trajectory(None, 0, 9, 9)
    np.testing.assert_allclose(identity[0].numpy(), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("spec, expected", [
    ('{"slider": [1]}', "exactly one of slider_mm"),
    ('{"slider_mm": []}', "non-empty list"),
    ('{"slider_mm": [0, true]}', "slider_mm[1] = True"),
    ('{"slider_mm": [0, 50000]}', "beyond"),
    ('{"poses": [[1, 0, 0]]}', "poses[0] has 3 numbers"),
    ('{"poses": [[2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]}', "not a rotation"),
    ('{"poses": [[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]], "slider_mm": [0]}', "exactly one"),
    ("[1, 2]", "expected an object"),
    ("not json", "is not JSON"),
])
def test_malformed_paths_name_the_entry(spec, expected):
    with pytest.raises(CameraPathError) as info:
        parse(spec)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_files_and_inline_json_from_the_command_line(tmp_path):
    file = tmp_path / "path.json"
    file.write_text('{"slider_mm": [0, 10, 20]}')
    assert len(load(str(file)).keyframes) == 3
    assert load('{"slider_mm": [5]}').per_frame(3)[2, 0, 3] == pytest.approx(0.005)
    with pytest.raises(CameraPathError, match="no such file"):
        load(str(tmp_path / "missing.json"))
    assert parse(None) is None and parse("{}") is None


def test_slider_offsets_in_the_captured_range_carry_weight_in_data_and_edits_alike():
    """40 mm (the demo's path) enters the model at order 1 beside the rotation entries (not 0.04 as metres),
    and training data and edits give the model the same numbers for the same offset."""
    from train.data import relative_trajectory
    edit = latent_trajectory(parse({"slider_mm": [40]}).per_frame(9), 0, 9, 9)
    data = relative_trajectory([0.0] * 9, [40.0] * 9, list(range(9)), 3)
    assert torch.equal(edit, data)
    assert 0.5 <= float(edit[0, 3]) <= 2.0 and float(edit[0, 0]) == 1.0
