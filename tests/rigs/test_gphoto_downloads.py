"""Downloads from libgphoto2's virtual camera: paths resolved where the user is, the camera's folder empty
after downloads, verification at the final path before anything is deleted, and delete failures reported.

Faults the virtual camera cannot produce (a refused delete, a corrupted write) are injected into the worker
process at the python-gphoto2 boundary by tests/rigs/worker_faults/sitecustomize.py (said so here: the
rest of the path -- client, worker, libgphoto2's PTP stack -- is the real one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cinectrl.main import app
from rigs.camera.gphoto import open_gphoto_camera
from rigs.camera.protocol import CameraError, CameraTimeout

pytestmark = [pytest.mark.timeout(120), pytest.mark.gphoto]
FAULTS = Path(__file__).parent / "worker_faults"
runner = CliRunner()


@pytest.fixture
def worker_fault(monkeypatch):
    def inject(mode: str) -> None:
        monkeypatch.setenv("PYTHONPATH", str(FAULTS))
        monkeypatch.setenv("CINECTRL_TEST_WORKER_FAULT", mode)
    return inject


def _captures(listing: list[str]) -> list[str]:
    return [f for f in listing if "/DCIM/" in f]


def test_relative_out_lands_where_the_user_is(vcam_dir, tmp_path, monkeypatch):
    """The worker runs in its own private folder: `--out shots` and `--out .` must mean the user's folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out, expected in (("shots", work / "shots" / "capture.jpg"), (".", work / "capture.jpg")):
        result = runner.invoke(app, ["rig", "capture", "--camera", f"virtual:{vcam_dir}", "--out", out])
        assert result.exit_code == 0, result.output
        assert expected.read_bytes() == (vcam_dir / "DSC_0001.JPG").read_bytes()
        assert f"wrote {expected}" in " ".join(result.output.split())


def test_the_client_resolves_relative_paths_before_the_worker_sees_them(vcam, vcam_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (shot,) = vcam.capture_still(Path("relative/shots"), stem="r")
    assert shot.path == tmp_path / "relative" / "shots" / "r.jpg" and shot.path.is_file()


def test_rig_capture_never_overwrites(vcam_dir, tmp_path):
    out = tmp_path / "out"
    base = ["rig", "capture", "--camera", f"virtual:{vcam_dir}", "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    (out / "capture.jpg").write_bytes(b"keep me")
    again = runner.invoke(app, base)
    assert again.exit_code == 1 and "already exists: nothing was captured" in " ".join(again.output.split())
    assert (out / "capture.jpg").read_bytes() == b"keep me"
    for expected in ("shot_0001.jpg", "shot_0002.jpg"):
        assert runner.invoke(app, [*base, "--filename", "shot_%04n"]).exit_code == 0
        assert (out / expected).exists()
    assert runner.invoke(app, [*base, "--force"]).exit_code == 0
    assert (out / "capture.jpg").read_bytes() != b"keep me"


def test_the_worker_refuses_a_relative_path(vcam):
    with pytest.raises(CameraError, match="relative"):
        vcam._call("capture_still", dest_dir="shots", stem="x")


@pytest.mark.parametrize("delete", [True, False])
def test_the_camera_folder_is_empty_after_downloads(vcam_dir, out, delete):
    with open_gphoto_camera(None, virtual_dir=vcam_dir, delete_from_camera=delete) as cam:
        before = _captures(cam.files_on_camera())
        shots = [cam.capture_still(out, stem=f"d{i:02d}")[0] for i in range(10)]
        after = _captures(cam.files_on_camera())
    assert before == []
    assert all(not s.left_on_camera for s in shots)
    if delete:
        assert after == []                                  # downloaded, verified, deleted from camera RAM
    else:
        assert sorted(after) == sorted(s.camera_name for s in shots)   # left on the card, as asked


def test_a_delete_failure_is_reported_and_the_frame_kept(vcam_dir, out, worker_fault):
    worker_fault("delete")
    with open_gphoto_camera(None, virtual_dir=vcam_dir, delete_from_camera=True) as cam:
        shots = [cam.capture_still(out, stem=f"k{i}")[0] for i in range(3)]
        left = _captures(cam.files_on_camera())
    for shot in shots:
        assert "deleting it from the camera failed" in shot.left_on_camera and "-35" in shot.left_on_camera
        assert shot.path.read_bytes() == (vcam_dir / "DSC_0001.JPG").read_bytes()
    assert sorted(left) == sorted(s.camera_name for s in shots)


def test_a_download_that_does_not_verify_stays_on_the_camera(vcam_dir, out, worker_fault):
    worker_fault("corrupt")
    with open_gphoto_camera(None, virtual_dir=vcam_dir, delete_from_camera=True) as cam:
        with pytest.raises(CameraTimeout, match="did not verify.*left on the camera"):
            cam.capture_still(out, stem="bad")
        left = _captures(cam.files_on_camera())
    assert len(left) == 1                                   # nothing deleted: the camera still has the frame
    assert not list(out.glob("bad*"))                       # and no corrupt file is left to be catalogued


PLAN = """[session]
scene = "virtual camera"
operator = "pytest"

[rig]
camera = "virtual:{jpegs}"
slider = "none"
camera_options = {{ delete_from_camera = true }}

[axes]
aperture = ["f/8"]
"""


def test_the_runner_reports_a_delete_failure(vcam_dir, tmp_path, worker_fault):
    from capture.plan import parse_plan
    from capture.rig import Rig
    from capture.session import RunnerOptions, SessionRunner

    worker_fault("delete")
    plan = parse_plan(PLAN.format(jpegs=vcam_dir))
    rig = Rig(plan)
    result = SessionRunner(plan, tmp_path / "lab" / "catalog.db", camera_factory=rig.open_camera,
                           slider_factory=rig.open_slider, options=RunnerOptions(build_outputs=False)).run()
    assert (result.status, result.done) == ("complete", 1)
    assert result.faults["camera delete failed"] == 1
