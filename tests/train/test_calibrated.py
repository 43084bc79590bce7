"""The effect simulator, `train synth` and evaluation in a calibrated body's linear space (and the ideal camera
without a profile, said so in their outputs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rigs"))
from simframes import encode, true_curve  # noqa: E402

from rigs import optics  # noqa: E402
from rigs.calibration.noise import NoiseCurve, NoiseEntry  # noqa: E402
from rigs.calibration.profile import CalibrationProfile  # noqa: E402
from rigs.calibration.response import SRGB  # noqa: E402
from rigs.calibration.white_balance import WhiteBalanceTable  # noqa: E402
from rigs.camera.bodies import SECRET  # noqa: E402
from rigs.camera.protocol import Pose  # noqa: E402
from rigs.camera.sim import SimCamera  # noqa: E402
from train import calibrated, effects  # noqa: E402
from train import evaluate as E  # noqa: E402

IDENTITY = dict(make="cinectrl", model="SimCam", serial="SIM-SECRET", lens="SimLens 24-70mm f/1.8")


def secret(**sections) -> CalibrationProfile:
    return CalibrationProfile(**IDENTITY, version=1, response=true_curve(SECRET), **sections)


def _frame(cam: SimCamera, **settings) -> np.ndarray:
    """A lossless 8-bit frame (JPEG's own error would hide what the camera model gets right or wrong)."""
    for role, label in settings.items():
        cam.set(role, label)
    image, _ = cam.render(Pose(0.0), size=(160, 120))
    return encode(image, quality=None)


def _clip(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(frame)).float().div(255).permute(2, 0, 1)[None, None]


def _uint8(clip: torch.Tensor) -> np.ndarray:
    return (clip[0, 0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def _unclipped_mae(predicted: np.ndarray, target: np.ndarray, source: np.ndarray) -> float:
    keep = (target > 3) & (target < 252) & (source > 3) & (source < 252)
    return float(np.abs(predicted.astype(float) - target.astype(float))[keep].mean())


def test_the_exposure_effect_predicts_the_body_only_through_its_profile():
    cam = SimCamera(speed=1e6, body="secret", scene="tabletop", noise=False)
    cam.set("aperture", "f/2.8")
    dark, bright = _frame(cam, shutter="1/30"), _frame(cam, shutter="1/15")
    stop = 1.0 / optics.EV_MAX
    ideal = _uint8(effects.exposure(_clip(dark), stop))
    profiled = _uint8(effects.exposure(_clip(dark), stop, profile=secret()))
    assert _unclipped_mae(profiled, bright, dark) <= 0.5 * _unclipped_mae(ideal, bright, dark)


def test_a_profile_whose_curve_is_srgb_changes_nothing():
    cam = SimCamera(speed=1e6, scene="tabletop", noise=False)
    clip = _clip(_frame(cam, aperture="f/2.8", shutter="1/30"))
    srgb = CalibrationProfile(**IDENTITY, response=SRGB)
    for effect in (lambda c, p: effects.exposure(c, 0.3, profile=p),
                   lambda c, p: effects.shutter_blur(torch.cat([c, c.roll(1, -1)], 1), 0.5, profile=p)):
        assert (effect(clip, srgb) - effect(clip, None)).abs().max() < 2.5 / 255


def test_colour_temperature_moves_by_the_body_own_gains():
    cam = SimCamera(speed=1e6, body="secret", scene="grey_card", noise=False)
    cam.set("white_balance", "Kelvin")
    source = _frame(cam, aperture="f/4", shutter="1/15", focus="1", kelvin="5500")
    target = _frame(cam, kelvin="3200")
    gains = tuple((k, tuple(SECRET.white_balance_gains(5500, k) / SECRET.white_balance_gains(5500, k)[1]))
                  for k in (3200.0, 5500.0))
    profile = secret(white_balance=WhiteBalanceTable(5500.0, gains))
    T = (1e6 / 3200 - 1e6 / 5500) / optics.MIRED_MAX
    card = (slice(50, 70), slice(65, 95))
    ideal = _uint8(effects.colour_temperature(_clip(source), T))[card].reshape(-1, 3).mean(0)
    measured = _uint8(effects.colour_temperature(_clip(source), T, profile=profile))[card].reshape(-1, 3).mean(0)
    truth = target[card].reshape(-1, 3).mean(0)
    assert np.abs(measured - truth).max() <= 1.0
    assert np.abs(ideal - truth).max() > 2 * max(np.abs(measured - truth).max(), 0.5)


def test_iso_noise_adds_what_the_photon_transfer_curve_says():
    noise = NoiseCurve((NoiseEntry(100.0, 1e-5, 1e-3), NoiseEntry(6400.0, 6.4e-4, 0.02)))
    profile = CalibrationProfile(**IDENTITY, noise=noise)
    flat = torch.full((1, 1, 3, 64, 64), float(optics.srgb_encode(np.float64(0.2))))
    iso = 1.0                                                   # +6 stops over the base ISO 100
    out = effects.iso_noise(flat, iso, torch.Generator().manual_seed(0), profile=profile)
    linear = optics.srgb_decode(out)
    expected = noise.at(6400).variance(0.2) - noise.at(100).variance(0.2)
    assert float(linear.var()) == pytest.approx(expected, rel=0.15)
    assert float(linear.mean()) == pytest.approx(0.2, rel=0.02)


def test_simulate_accepts_a_profile_end_to_end():
    clip = torch.rand(1, 3, 3, 32, 48)
    disparity = torch.rand(1, 3, 32, 48)
    controls = {"K": 0.4, "d_f": 0.5, "f": 0.2, "S": 0.3, "T": -0.2, "ISO": 0.1}
    out = effects.simulate(clip, disparity, controls, profile=secret())
    assert out.shape == clip.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.allclose(out, effects.simulate(clip, disparity, controls))


# ------------------------------------------------------------------------------------------------ evaluation

def test_calibrated_view_re_renders_the_body_as_the_ideal_camera():
    light = np.linspace(0.0, 1.0, 64)[None, :, None].repeat(8, 0).repeat(3, 2)
    body_frames = (SECRET.encode(light) * 255 + 0.5).astype(np.uint8)[None]
    viewed = calibrated.calibrated_view(body_frames, secret())
    ideal = (optics.srgb_encode(light) * 255 + 0.5).astype(np.uint8)[None]
    assert np.abs(viewed.astype(int) - ideal).max() <= 2
    assert calibrated.calibrated_view(body_frames, None) is not None
    assert calibrated.view_for(None) is None


def test_evaluate_measures_through_the_view_and_reports_which_camera():
    rng = np.random.default_rng(0)
    light = rng.uniform(0.02, 0.5, (3, 32, 32, 1)).repeat(3, axis=3)
    source = (SECRET.encode(light) * 255 + 0.5).astype(np.uint8)
    references = [(SECRET.encode(np.clip(light * 2.0 ** s, 0, 1)) * 255 + 0.5).astype(np.uint8) for s in (0, 1, 2)]
    members = [E.Member(v, {"S": v}, ref) for v, ref in zip((0.0, 1 / 3, 2 / 3), references)]
    sweep = E.Sweep("S", source, members, reference_kind="captured")
    profile = secret()
    methods = {"identity": E.identity}
    plain = E.evaluate([sweep], methods)["methods"]["identity"]["sweeps"][0]["reference_statistic"]
    viewed = E.evaluate([sweep], methods, view=calibrated.view_for(profile))["methods"]["identity"]["sweeps"][0]
    brightness = viewed["reference_statistic"]
    expected = [float(np.mean([np.mean(np.asarray(optics.srgb_encode(np.clip(light[i] * 2.0 ** s, 0, 1))).mean(-1)
                                       * 255) for i in range(3)])) for s in (0, 1, 2)]
    assert np.allclose(brightness, expected, atol=1.5)          # brightness of calibrated light, not of the body's codes
    assert not np.allclose(plain, brightness, atol=1.5)
    assert "calibration profile cinectrl SimCam #SIM-SECRET" in calibrated.camera_note(profile)
    assert calibrated.camera_note(None).startswith("camera model: ideal")


# ------------------------------------------------------------------------------------------------ train synth

@pytest.fixture
def clip_catalog(tmp_path):
    from capture import profiles
    from capture.catalog import Catalog, sha256_file

    cam = SimCamera(speed=1e6, body="secret", clip_width=64, clip_height=48)
    clip = cam.record_clip(tmp_path / "lab" / "clips", stem="pass", frames=3, fps=6).files[0].path
    catalog = tmp_path / "lab" / "catalog.db"
    with Catalog(catalog) as cat:
        sid = cat.create_session("pass", scene="tabletop", operator="lab")
        device = cat.add_device("camera", **IDENTITY)
        cat.link_device(sid, device, "camera")
        cat.add_asset(clip, sha256=sha256_file(clip), bytes=clip.stat().st_size, kind="clip", session_id=sid)
        profiles.save(cat, secret(), note="test")
    return catalog


def _synth(args: list[str]) -> list[dict]:
    from cinectrl.main import app

    result = CliRunner().invoke(app, ["train", "synth", *args])
    assert result.exit_code == 0, result.output
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "pairs.json").read_text()), result.output


def test_train_synth_uses_the_clip_body_profile_and_says_so(clip_catalog, tmp_path):
    from rigs.video import read_video

    pairs, out = _synth(["--from", str(clip_catalog), "--out", str(tmp_path / "p"), "--per-clip", "1"])
    assert pairs[0]["camera"].startswith("cinectrl SimCam #SIM-SECRET") and "calibration profile" in out
    ideal, out = _synth(["--from", str(clip_catalog), "--out", str(tmp_path / "i"), "--per-clip", "1", "--ideal"])
    assert ideal[0]["camera"] == "ideal" and "ideal (sRGB, no profile)" in out
    a, _ = read_video(tmp_path / "p" / pairs[0]["target"])        # paths in pairs.json: relative to its folder
    b, _ = read_video(tmp_path / "i" / ideal[0]["target"])
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0    # same controls, another camera model
    exported = tmp_path / "profile.json"
    exported.write_text(secret().to_json())
    given, _ = _synth(["--from", str(clip_catalog), "--out", str(tmp_path / "g"), "--per-clip", "1",
                       "--profile", str(exported)])
    assert given[0]["camera_key"] == secret().key


def test_train_eval_picks_the_captured_body_profile_or_says_ideal(clip_catalog, tmp_path):
    """`cinectrl train eval`'s choice of camera model (the command itself needs a trained model: see
    test_finetune_cli.py); the report carries the note it returns."""
    from capture.catalog import Catalog
    from cinectrl.commands.train_finetune import _evaluation_profile

    with Catalog(clip_catalog) as cat:
        sid = cat.sessions()[0]["id"]
        asset = cat.assets(session_id=sid)[0]["id"]
        a = cat.add_clip(sid, "c000", asset_id=asset)
        b = cat.add_clip(sid, "c001", asset_id=asset)
        cat.add_pair(sid, a, b, controls={"S": 0.3})
    profile, note = _evaluation_profile(None, clip_catalog, False)
    assert profile is not None and profile.serial == "SIM-SECRET" and "calibration profile" in note
    profile, note = _evaluation_profile(None, clip_catalog, True)
    assert profile is None and note.startswith("camera model: ideal") and "--ideal" in note
    exported = tmp_path / "p.json"
    exported.write_text(secret().to_json())
    profile, _ = _evaluation_profile(exported, None, False)
    assert profile.key == secret().key
    assert _evaluation_profile(None, None, False) == (None, calibrated.IDEAL_NOTE)
