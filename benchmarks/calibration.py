"""Calibration of the simulated body with a secret, measured as ratios against the ideal camera, in one run.

1. Calibrates the body by running the five example plans (examples/calibration/*.toml) with the ordinary
   session runner into a scratch catalog.
2. Shoots a *different* scene with it (the textured tabletop: out of sample for the response, which was
   measured on a step chart), a 16-frame bracket in 1/3-stop steps, and predicts every frame from its
   neighbours 1 and 2 stops away with the toolkit's exposure effect (train/effects.py): once as the ideal
   camera (sRGB), once through the profile. Mean absolute error in 8-bit levels over pixels neither frame
   clips or crushes — the figure the issue quotes for a real bracket (ideal 9.5, fitted curve 2.9).
3. Compares white-balance gains, real focal lengths, the response curve and the defocus scale with what the
   body hides, for the ideal camera's assumptions and for the profile.

4. The real corpus (tests/data/real-sweeps/, or --corpus DIR): every exposure bracket calibrated in sample
   (fitted curve, ideal camera, OpenCV's bare Debevec) and held out (calibrate on every other exposure, predict
   the other half's +-1-stop neighbours, the nearest existing ones, through train/effects.exposure); the
   white-balance series held out the same way; breathing held out on every focus stack. Each bracket's ceiling
   (rigs/calibration/ceiling.py: the one curve fitted on the held-out pairs themselves) classifies it: one-curve
   (target <= 0.5 x ideal) or not describable by one curve, and why (then: within 0.1 of OpenCV's, <= 1); the
   same on the simulated body's 1-stop bracket, as is and with light changing across the frame or heavy noise.

Targets: calibrated exposure error <= 1/2 of the ideal's; focal length within 1 %, WB gains within 2 %,
response within 2 % of full scale. Writes docs/results/benchmarks/calibration.json.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/calibration.py [--corpus tests/data/real-sweeps]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import write_result  # noqa: E402
from capture.calibration import load_calibration_plan, run_calibration_plan  # noqa: E402
from capture.rig import Rig  # noqa: E402
from capture.session import RunnerOptions  # noqa: E402
from rigs import optics  # noqa: E402
from rigs.calibration.response import SRGB, curve_error  # noqa: E402
from rigs.camera import values  # noqa: E402
from rigs.camera.bodies import SECRET  # noqa: E402
from rigs.camera.sim import SHUTTERS, SimCamera  # noqa: E402
from train import effects  # noqa: E402

PLANS = ("response", "white-balance", "geometry", "defocus", "noise")


def calibrate(catalog: Path):
    profile, seconds = None, {}
    for name in PLANS:
        cal = load_calibration_plan(REPO / "examples" / "calibration" / f"{name}.toml")
        rig = Rig(cal.plan)
        started = time.perf_counter()
        outcome = run_calibration_plan(cal, catalog, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                                       options=RunnerOptions(fsync=False))
        seconds[name] = round(time.perf_counter() - started, 1)
        if outcome.status != "complete":
            raise SystemExit(f"{name}: {outcome.status} {outcome.message}")
        profile = outcome.profile
    return profile, seconds


def out_of_sample_bracket(folder: Path, frames: int = 16):
    """(exposure time, decoded JPEG) of a tabletop bracket shot by the body, as files, like any capture."""
    from PIL import Image

    cam = SimCamera(speed=1e6, body="secret", scene="tabletop", seed=7, jpeg_quality=95, jpeg_subsampling="4:2:2")
    cam.set("aperture", "f/2.8")
    cam.set("focus", "3")
    start = SHUTTERS.index("1/30")
    shots = []
    for i, label in enumerate(SHUTTERS[start:start + frames]):
        cam.set("shutter", label)
        path = cam.capture_still(folder, stem=f"bracket{i:02d}")[0].path
        shots.append((float(values.parse_shutter(label)), np.asarray(Image.open(path).convert("RGB"))))
    return shots


def prediction_error(shots, profile) -> dict:
    """The toolkit's exposure effect predicting each frame from its neighbours 1 and 2 stops away."""
    total, count, pairs = 0.0, 0, 0
    for i, (t_target, target) in enumerate(shots):
        for j, (t_source, source) in enumerate(shots):
            gap = math.log2(t_target / t_source)
            if i == j or not any(abs(abs(gap) - s) < 0.1 for s in (1.0, 2.0)):
                continue
            predicted = effects.exposure_image(source, t_target / t_source, profile)
            keep = (source > 3) & (source < 252) & (target > 3) & (target < 252)
            total += float(np.abs(predicted - target)[keep].sum())
            count += int(keep.sum())
            pairs += 1
    return {"mae": total / count, "pairs": pairs}


def real_corpus(corpus: Path) -> dict:
    """Calibration figures on every real sweep of the corpus (exposure brackets, white balance, focus stacks)."""
    import tomllib

    import cv2

    from capture.calibration import frames_from_files
    from rigs.calibration import heldout as H
    from rigs.calibration import response as R
    from rigs.calibration import white_balance as W
    from train.calibrated import held_out_breathing

    out: dict = {"corpus": os.path.relpath(corpus, REPO),          # repo-relative, wherever the checkout is
                 "exposure": {}, "white_balance": {}, "breathing": {}}
    for folder in sorted(p for p in corpus.iterdir() if (p / "sweep.toml").is_file()):
        meta = tomllib.loads((folder / "sweep.toml").read_text())
        names = meta.get("files") or sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        paths = [folder / n for n in names]
        started = time.perf_counter()
        if meta["axis"] == "shutter":
            frames, camera = frames_from_files(paths)
            _, fit = R.fit_response(frames, force=True)
            held = H.held_out_error(frames, predict=effects.exposure_image)
            out["exposure"][folder.name] = {
                "body": f"{camera['make']} {camera['model']}".strip(), "frames": len(frames),
                "in_sample": {k: fit[k] for k in ("ideal_mae", "calibrated_mae", "ratio", "opencv_mae",
                                                  "opencv_ratio", "pairs", "curve_from", "shifts")},
                "held_out": {k: held[k] for k in ("profile_mae", "ideal_mae", "ratio", "opencv_mae", "opencv_ratio",
                                                  "pairs", "meets")},
                "ceiling": held["ceiling"],
                "held_out_splits": held["splits"], "seconds": round(time.perf_counter() - started, 1)}
            h, top = held, held["ceiling"]
            print(f"{folder.name}: held out profile {h['profile_mae']:.2f} / ideal {h['ideal_mae']:.2f} levels -> "
                  f"ratio {h['ratio']:.2f} (OpenCV {h['opencv_ratio']:.2f}); one curve at best "
                  f"{top['oracle_ratio']:.2f} -> {top['class']} ({top['rule']}: {'met' if h['meets'] else 'MISSED'}); "
                  f"in sample ratio {fit['ratio']:.2f}")
        elif meta["axis"] == "kelvin":
            frames, _ = frames_from_files(paths, given={"kelvin": [float(v) for v in meta["values"]]})
            wb = W.held_out_white_balance(frames)
            out["white_balance"][folder.name] = wb
            print(f"{folder.name}: held out WB profile {wb['profile_mae']:.2f} / ideal {wb['ideal_mae']:.2f} levels "
                  f"-> ratio {wb['ratio']:.2f} (unchanged {wb['unchanged_mae']:.2f})")
        elif meta["axis"] == "focus":
            images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
            br = held_out_breathing(images, [float(v) for v in meta["values"]])
            out["breathing"][folder.name] = br
            print(f"{folder.name}: breathing {br['per_step']:+.2%} per step; held out {br['profile_error']:.2%} vs "
                  f"ideal {br['ideal_error']:.2%} -> ratio {br['ratio']:.2f}")
    return out


def simulated_ceiling(shots) -> dict:
    """The held-out test and its classification on the body with a secret (one curve by construction: its 1-stop
    subset of the out-of-sample bracket), on the same frames with light changing across the frame between
    exposures (every other frame 15 % brighter on one side, the others on the other), and with heavy noise."""
    from rigs.calibration import heldout as H
    from rigs.calibration.inputs import Frame

    frames = [Frame(image, f"bracket{i:02d}", {"shutter": t}) for i, (t, image) in enumerate(shots[::3])]
    ramp = np.linspace(-0.5, 0.5, frames[0].image.shape[1])[None, :, None]
    rng = np.random.default_rng(0)
    cases = {"one curve (the simulated body)": frames,
             "light changing across the frame": [
                 Frame(np.clip(f.image * (1 + 0.3 * ramp * (-1) ** i), 0, 255).astype(np.uint8), f.name, f.settings)
                 for i, f in enumerate(frames)],
             "heavy noise (sigma 12 codes)": [
                 Frame(np.clip(f.image + rng.normal(0, 12, f.image.shape), 0, 255).astype(np.uint8), f.name,
                       f.settings) for f in frames]}
    out = {}
    for name, case in cases.items():
        held = H.held_out_error(case, predict=effects.exposure_image)
        top = held["ceiling"]
        out[name] = {"ratio": held["ratio"], "opencv_ratio": held["opencv_ratio"], "meets": held["meets"],
                     **{k: top[k] for k in ("oracle_ratio", "floor_ratio", "floor_coherent_share", "class")}}
        print(f"simulated, {name}: held out ratio {held['ratio']:.2f} (OpenCV {held['opencv_ratio']:.2f}); one "
              f"curve at best {top['oracle_ratio']:.2f}; floor coherent share {top['floor_coherent_share']:.2f} -> "
              f"{top['class']}")
    return out


def main() -> None:
    corpus = REPO / "tests" / "data" / "real-sweeps"
    if "--corpus" in sys.argv:
        corpus = Path(sys.argv[sys.argv.index("--corpus") + 1]).resolve()
    real = real_corpus(corpus)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        profile, seconds = calibrate(Path(scratch) / "lab" / "catalog.db")
        calibration_s = time.perf_counter() - started
        shots = out_of_sample_bracket(Path(scratch) / "bracket")
    ceilings = simulated_ceiling(shots)
    ideal = prediction_error(shots, None)
    calibrated = prediction_error(shots, profile)

    wb_ideal, wb_cal = [], []
    for kelvin, gains in profile.white_balance.gains:
        truth = SECRET.white_balance_gains(5500, kelvin)
        truth = truth / truth[1]
        textbook = np.asarray(optics.white_balance_gains(5500, kelvin))
        wb_ideal.append(float(np.abs(textbook / textbook[1] / truth - 1).max()))
        wb_cal.append(float(np.abs(np.asarray(gains) / truth - 1).max()))
    focal_ideal, focal_cal = [], []
    for entry in profile.geometry.entries:
        truth = SECRET.real_focal_mm(entry.nominal_mm, entry.focus_m)
        focal_ideal.append(abs(entry.nominal_mm / truth - 1))
        focal_cal.append(abs(entry.focal_mm / truth - 1))
    response_ideal = curve_error(SRGB, SECRET.decode, low_code=1, high_code=254)["max_abs"]
    response_cal = curve_error(profile.response, SECRET.decode, low_code=1, high_code=254)["max_abs"]
    defocus_truth = 1 / SECRET.aperture_scale
    defocus_ideal = abs(1.0 / defocus_truth - 1)
    defocus_cal = abs(profile.defocus_scale() / defocus_truth - 1)

    figures = {
        "exposure_mae_ideal_levels": ideal["mae"], "exposure_mae_calibrated_levels": calibrated["mae"],
        "exposure_mae_ratio": calibrated["mae"] / ideal["mae"], "exposure_pairs": ideal["pairs"],
        "wb_gain_error_ideal": max(wb_ideal), "wb_gain_error_calibrated": max(wb_cal),
        "wb_error_ratio": max(wb_cal) / max(wb_ideal),
        "focal_error_ideal": max(focal_ideal), "focal_error_calibrated": max(focal_cal),
        "focal_error_ratio": max(focal_cal) / max(focal_ideal),
        "response_error_ideal_of_full_scale": response_ideal, "response_error_calibrated_of_full_scale": response_cal,
        "response_error_ratio": response_cal / response_ideal,
        "defocus_scale_error_ideal": defocus_ideal, "defocus_scale_error_calibrated": defocus_cal,
        "defocus_error_ratio": defocus_cal / defocus_ideal,
        "profile_version": profile.version, "calibration_seconds": calibration_s, "plan_seconds": seconds,
        "real": real, "simulated_ceiling": ceilings,
        "targets": {"exposure_mae_ratio": "<= 0.5",
                    "real held_out ratio": "<= 0.5 where ceiling.class is one-curve; "
                                           "else within 0.1 of OpenCV's and <= 1",
                    "focal_error_calibrated": "<= 0.01",
                    "wb_gain_error_calibrated": "<= 0.02", "response_error_calibrated_of_full_scale": "<= 0.02"},
    }
    print(f"exposure prediction (out-of-sample bracket, {ideal['pairs']} pairs): ideal {ideal['mae']:.2f} levels, "
          f"calibrated {calibrated['mae']:.2f} -> ratio {figures['exposure_mae_ratio']:.2f} (target <= 0.5)")
    print(f"white balance gains: ideal {max(wb_ideal):.1%} off, calibrated {max(wb_cal):.2%} (target <= 2 %), "
          f"ratio {figures['wb_error_ratio']:.3f}")
    print(f"focal length: ideal {max(focal_ideal):.1%} off, calibrated {max(focal_cal):.2%} (target <= 1 %), "
          f"ratio {figures['focal_error_ratio']:.3f}")
    print(f"response curve: sRGB {response_ideal:.1%} of full scale off, calibrated {response_cal:.2%} (target <= 2 %)")
    print(f"defocus scale: thin lens {defocus_ideal:.1%} off, calibrated {defocus_cal:.2%}")
    print(f"calibration took {calibration_s:.0f} s ({seconds})")
    write_result("calibration", figures, notes="SimCamera body 'secret' calibrated with examples/calibration/*.toml; "
                                               "exposure measured on an out-of-sample tabletop bracket; 'real': the "
                                               f"public sweeps of {real['corpus']}")


if __name__ == "__main__":
    main()
