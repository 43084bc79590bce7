"""The whole loop on this machine: the example calibration plans, run by the ordinary session runner on the
simulated body with a secret, recover what it hides; profiles are versioned in the catalog with the sessions
they came from; and pairs shot with that body map to the right controls only once it is calibrated."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from capture import profiles
from capture.calibration import (
    calibrate_files, load_calibration_plan, parse_calibration_plan, run_calibration_plan, session_frames,
)
from capture.catalog import Catalog
from capture.plan import PlanError, parse_plan
from capture.rig import Rig
from capture.session import RunnerOptions, SessionRunner
from rigs import optics
from rigs.calibration.inputs import CalibrationInputError
from rigs.calibration.response import curve_error
from rigs.camera.bodies import SECRET

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "calibration"
ORDER = ("response", "white-balance", "geometry", "defocus", "noise")


def _run(plan_path: Path, catalog: Path, **options):
    cal = load_calibration_plan(plan_path)
    rig = Rig(cal.plan)
    return run_calibration_plan(cal, catalog, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                                options=RunnerOptions(fsync=False, **options))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    catalog = tmp_path_factory.mktemp("calibration") / "lab" / "catalog.db"
    outcomes = {name: _run(EXAMPLES / f"{name}.toml", catalog) for name in ORDER}
    return catalog, outcomes


def test_example_plans_recover_the_hidden_body(calibrated):
    _, outcomes = calibrated
    assert all(o.status == "complete" and o.fresh for o in outcomes.values())
    profile = outcomes["noise"].profile
    assert profile.version == 5 and profile.measured() == ["response", "white_balance", "geometry", "defocus", "noise"]
    assert profile.serial == "SIM-SECRET"
    # response curve within 2 % of full scale over the unclipped codes
    assert curve_error(profile.response, SECRET.decode, low_code=1, high_code=254)["max_abs"] <= 0.02
    # calibrated exposure prediction at most half the ideal camera's error
    assert outcomes["response"].figures["ratio"] <= 0.5
    # white-balance gains within 2 %
    for kelvin, gains in profile.white_balance.gains:
        true = SECRET.white_balance_gains(5500, kelvin)
        assert np.allclose(gains, true / true[1], rtol=0.02), kelvin
    # real focal length (breathing included) within 1 %
    for entry in profile.geometry.entries:
        assert entry.focal_mm == pytest.approx(SECRET.real_focal_mm(entry.nominal_mm, entry.focus_m), rel=0.01)
    # the lens's defocus scale: its f-numbers are a third of a stop optimistic
    assert profile.defocus_scale() == pytest.approx(1 / SECRET.aperture_scale, rel=0.03)
    # noise grows with ISO; the flat frames show the vignetting
    slopes = [e.slope for e in profile.noise.entries]
    assert slopes == sorted(slopes) and slopes[-1] > 10 * slopes[0]
    assert profile.noise.vignetting_corner == pytest.approx(0.62, abs=0.05)


def test_each_version_records_the_sessions_it_came_from(calibrated):
    catalog, outcomes = calibrated
    with Catalog(catalog) as cat:
        rows = profiles.listing(cat)
        uids = {o.session_id: cat.session(o.session_id)["uid"] for o in outcomes.values()}
        latest = profiles.latest(cat, outcomes["noise"].profile.key)
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["sections"] for r in rows][-1] == ["response", "white_balance", "geometry", "defocus", "noise"]
    assert rows[0]["sessions"] == [outcomes["response"].session_id]
    assert rows[-1]["sessions"] == sorted(o.session_id for o in outcomes.values())   # carried-over links kept
    assert sorted(latest.sessions()) == sorted(uids.values())
    assert latest.sources["geometry"]["plan"].endswith("geometry.toml")


def test_the_plan_text_with_its_calibration_table_is_the_sessions_record(calibrated):
    catalog, outcomes = calibrated
    with Catalog(catalog) as cat:
        text = cat.session(outcomes["defocus"].session_id)["plan_toml"]
    assert "[calibration]" in text and 'measure = "defocus"' in text


def test_rerunning_a_plan_resumes_and_adds_no_version(calibrated):
    catalog, outcomes = calibrated
    again = _run(EXAMPLES / "white-balance.toml", catalog)
    assert again.status == "complete" and not again.fresh and "already gave" in again.message
    assert again.session_id == outcomes["white-balance"].session_id
    with Catalog(catalog) as cat:
        assert len(profiles.listing(cat)) == 5


def test_a_stopped_calibration_resumes_then_measures(tmp_path):
    catalog = tmp_path / "catalog.db"
    first = _run(EXAMPLES / "white-balance.toml", catalog, stop_after=2)
    assert first.status == "paused" and first.profile is None
    second = _run(EXAMPLES / "white-balance.toml", catalog)
    assert second.status == "complete" and second.fresh and second.session_id == first.session_id
    assert second.profile.version == 1 and second.profile.white_balance is not None


# ------------------------------------------------------------------------------------------------ pairs

ZOOM_PLAN = """
[session]
scene = "tabletop"
operator = "lab"

[rig]
camera = "sim"
speed = 200
camera_options = { body = "secret", jpeg_quality = 95 }

[axes]
focal = ["24", "48"]
focus = ["1.5"]
aperture = ["f/8"]
shutter = ["1/15"]
iso = ["100"]

[pairs]
reference = { focal = "24" }
"""


def _zoom_pair(catalog: Path) -> tuple[dict, float, str]:
    """Shoot the zoom pair on the secret body; return the pair row, the zoom measured in its two frames and the
    session report."""
    plan = parse_plan(ZOOM_PLAN)
    rig = Rig(plan)
    result = SessionRunner(plan, catalog, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                           options=RunnerOptions(fsync=False, new_take=True)).run()
    assert result.status == "complete"
    with Catalog(catalog) as cat:
        pair = cat.pairs(session_id=result.session_id)[0]
        wide, long = (f.image for f in session_frames(cat, result.session_id))
    return pair, _image_scale(wide, long), result.report.read_text()


def _image_scale(a: np.ndarray, b: np.ndarray) -> float:
    sift = cv2.SIFT_create()
    ka, da = sift.detectAndCompute(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), None)
    kb, db = sift.detectAndCompute(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
    matches = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True).match(da, db)
    src = np.float32([ka[m.queryIdx].pt for m in matches])
    dst = np.float32([kb[m.trainIdx].pt for m in matches])
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    return float(np.hypot(matrix[0, 0], matrix[0, 1]))


def test_pairs_map_to_controls_correctly_only_after_calibration(calibrated, tmp_path):
    catalog, _ = calibrated
    uncalibrated = tmp_path / "fresh" / "catalog.db"
    before, scale_before, report_before = _zoom_pair(uncalibrated)
    after, scale_after, report_after = _zoom_pair(catalog)
    measured_f = (scale_after - 1) / (optics.ZOOM_MAX - 1)             # what the frames themselves show
    assert scale_before == pytest.approx(scale_after, rel=0.005)        # same body, same pictures
    assert "ideal camera" in report_before and "calibration profile cinectrl SimCam #SIM-SECRET" in report_after
    assert abs(before["controls"]["f"] - measured_f) > 0.02              # the ideal camera's 2x is wrong
    assert after["controls"]["f"] == pytest.approx(measured_f, abs=0.01)
    true_f = (SECRET.real_focal_mm(48, 1.5) / SECRET.real_focal_mm(24, 1.5) - 1) / (optics.ZOOM_MAX - 1)
    assert after["controls"]["f"] == pytest.approx(true_f, abs=0.005)


# ------------------------------------------------------------------------------------------------ files

def test_files_shot_elsewhere_calibrate_like_the_plan(calibrated, tmp_path):
    catalog, outcomes = calibrated
    with Catalog(catalog) as cat:
        folder = cat.abspath(cat.session(outcomes["response"].session_id)["data_dir"])
    files = sorted(folder.glob("*.jpg"))
    other = tmp_path / "other.db"
    profile, figures = calibrate_files(other, "response", files)           # exposure times from EXIF
    assert profile.version == 1 and profile.serial == "SIM-SECRET" and profile.sources["response"]["files"]
    assert np.allclose(profile.response.linear, outcomes["response"].profile.response.linear, atol=2e-3)
    assert figures["ratio"] <= 0.5
    with pytest.raises(CalibrationInputError, match=r"3 shutter value\(s\) for 25 files"):
        calibrate_files(other, "response", files, given={"shutter": [0.01, 0.02, 0.04]})
    shutil.copy(next(iter(sorted((folder.parent).glob("*-calibrate-white-balance/*.jpg")))), tmp_path / "wb.jpg")
    with pytest.raises(CalibrationInputError, match="the frames differ in aperture"):
        calibrate_files(other, "response", [*files, tmp_path / "wb.jpg"])


def test_files_without_a_camera_name_need_one(tmp_path):
    from PIL import Image

    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 24), (i * 40, 0, 0)).save(path)
        paths.append(path)
    with pytest.raises(CalibrationInputError, match="name no camera .* give --model and --lens"):
        calibrate_files(tmp_path / "c.db", "response", paths, given={"shutter": [0.01]})


# ------------------------------------------------------------------------------------------------ plans

BASE = """[session]
scene = "chart"
operator = "lab"

[rig]
camera = "sim"

[axes]
aperture = ["f/4"]
shutter = ["1/60", "1/30"]
"""


@pytest.mark.parametrize("extra, where, message", [
    ("", "plan [calibration]", "needs a [calibration] table"),
    ('\n[calibration]\nmeasure = "vignette"\n', "line 13 [calibration.measure]", "unknown measurement 'vignette'"),
    ('\n[calibration]\nmeasure = "response"\nsmoothing = 3\n', "line 14 [calibration.smoothing]",
     "response takes method, force; not smoothing"),
    ('\n[calibration]\nmeasure = "response"\n', "line 10 [axes.shutter]", "5 or more shutter speeds"),
    ('\n[calibration]\nmeasure = "noise"\n', "[order.repeat]", "repeat = 2"),
    ('\n[calibration]\nmeasure = "defocus"\n', "line 13 [calibration.measure]", "defocus needs edge_distance_m"),
])
def test_calibration_plan_problems_name_the_line_and_the_fix(extra, where, message):
    with pytest.raises(PlanError) as caught:
        parse_calibration_plan(BASE + extra, source="cal.toml")
    text = str(caught.value)
    assert where in text and message in text, text


def test_a_defocus_plan_focused_on_its_edge_is_refused_before_shooting():
    text = (EXAMPLES / "defocus.toml").read_text().replace('focus = ["1"]', 'focus = ["3"]')
    with pytest.raises(PlanError, match=r"\[calibration.edge_distance_m\]: the lens is focused at 3 m, on the edge"):
        parse_calibration_plan(text)


def test_the_plan_keeps_its_line_numbers_after_the_calibration_table():
    text = '[calibration]\nmeasure = "white_balance"\n\n' + BASE.replace('shutter = ["1/60", "1/30"]', 'iso = ["fast"]')
    with pytest.raises(PlanError, match=r"line 13 \[axes.iso\]"):
        parse_calibration_plan(text)


# ------------------------------------------------------------------------------------------------ store

def test_profiles_are_found_by_serial_and_version_and_imports_are_idempotent(calibrated, tmp_path):
    catalog, _ = calibrated
    copy = tmp_path / "copy.db"
    shutil.copy(catalog, copy)
    with Catalog(copy) as cat:
        assert profiles.find(cat, "SIM-SECRET").version == 5
        assert profiles.find(cat, "SIM-SECRET@2").measured() == ["response", "white_balance"]
        assert profiles.find(cat, None).version == 5
        with pytest.raises(profiles.ProfileNotFound, match="no calibration profile matches 'Nikon'; stored: cinectrl"):
            profiles.find(cat, "Nikon")
        latest = profiles.find(cat, None)
        stored, fresh = profiles.import_profile(cat, latest, source="x.json")
        assert not fresh and stored.version == 5
        changed = latest.with_section("defocus", latest.defocus, {"files": [{"name": "e.jpg"}]})
        stored, fresh = profiles.import_profile(cat, changed, source="x.json")
        assert fresh and stored.version == 6
        assert profiles.for_camera(cat, make="Cinectrl Inc.", model="SimCam", serial="SIM-SECRET",
                                   lens="SimLens 24-70mm f/1.8").version == 6     # a make spelt differently


def test_an_older_catalog_is_migrated_to_hold_profiles(tmp_path):
    path = tmp_path / "old.db"
    Catalog(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE calibration_profile_sessions")
    conn.execute("DROP TABLE calibration_profiles")
    conn.execute("DELETE FROM schema_migrations WHERE version = 6")
    conn.execute("PRAGMA user_version = 5")          # the catalog as the release before profiles left it
    conn.commit()
    conn.close()
    with Catalog(path) as cat:
        assert cat.schema_version == 6
        assert profiles.listing(cat) == []
