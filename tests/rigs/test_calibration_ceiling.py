"""What one response curve can do on a bracket (`rigs/calibration/ceiling.py`), and the classification the
held-out test applies: measured, not listed. The simulated body renders every exposure through one curve, so
its bracket must come out `one-curve` and meet the 0.5 x ideal target; the same bracket with light that changes
across the frame between exposures (what a local tone mapping or a passing cloud does) cannot be one curve and
must say so (`spatially varying`); with heavy noise it is the noise floor. The real brackets' figures are held
by tests/rigs/test_calibration_real.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from simframes import bracket  # noqa: E402

from rigs.calibration import ceiling as C  # noqa: E402
from rigs.calibration import heldout as H  # noqa: E402
from rigs.calibration import response as R  # noqa: E402
from rigs.calibration.inputs import Frame  # noqa: E402
from train.effects import exposure_image  # noqa: E402




@pytest.fixture(scope="module")
def sim_bracket() -> list[Frame]:
    """The body with a secret on the textured tabletop, 1-stop steps 1/30 ... 1 s (6 frames), JPEG 95."""
    return bracket("secret", scene="tabletop", first="1/30", count=16)[::3]


def test_scores_from_histograms_equal_the_prediction_error(sim_bracket):
    """The ceiling scores curves from (source, target) code histograms: the same figure, pixel for pixel, as
    predicting the frames (the effect simulator's path, the same masks)."""
    exposures = R.bracket_exposures(sim_bracket)
    whole = R.prepare(sim_bracket, exposures, R.WHAT)
    pairs = R.neighbour_pairs(exposures, (1.0,))
    stats = C.pair_stats(whole, pairs, step=2)
    curve = R.opencv_curve(sim_bracket, exposures)
    for c in (R.SRGB, curve):
        direct = R.exposure_prediction_error(whole, c, pairs=pairs, step=2, predict=exposure_image)
        assert C.mae(c, stats, exposure_image) == pytest.approx(direct["mae"], rel=1e-9)
        assert stats.pixels == direct["pixels"]


@pytest.mark.timeout(600)
def test_a_body_with_one_curve_is_classified_so_and_meets_half_the_ideal(sim_bracket):
    result = H.held_out_error(sim_bracket, predict=exposure_image)
    top = result["ceiling"]
    print({k: v for k, v in result.items() if k != "splits"})
    assert top["class"] == "one-curve" and top["oracle_ratio"] <= C.ONE_CURVE_TARGET
    assert top["oracle_mae"] <= result["profile_mae"] + 1e-9         # the oracle bounds every calibration
    assert top["floor_mae"] <= top["oracle_mae"] + 1e-9              # and per-pair mappings bound the oracle
    assert result["ratio"] <= C.ONE_CURVE_TARGET and result["meets"]
    assert result["ratio"] <= top["oracle_ratio"] + 0.1              # calibrating on half comes close to the ceiling


@pytest.mark.timeout(600)
def test_light_that_changes_across_the_frame_is_not_one_curve(sim_bracket):
    """Every other frame 15 % brighter on the right and darker on the left (the other frames the reverse): no
    curve of the code describes that, and what is left after any per-code mapping lies in regions."""
    ramp = np.linspace(-0.5, 0.5, sim_bracket[0].image.shape[1])[None, :, None]
    frames = [Frame(np.clip(f.image * (1 + 0.3 * ramp * (-1) ** i), 0, 255).astype(np.uint8), f.name, f.settings)
              for i, f in enumerate(sim_bracket)]
    result = H.held_out_error(frames, predict=exposure_image)
    top = result["ceiling"]
    print({k: v for k, v in top.items() if "by_brightness" not in k})
    assert top["oracle_ratio"] > C.ONE_CURVE_TARGET
    assert top["class"] == "spatially varying" and top["floor_coherent_share"] >= C.COHERENT_SHARE
    assert result["ratio"] <= 1.0 and result["meets"]


@pytest.mark.timeout(600)
def test_heavy_noise_is_the_noise_floor(sim_bracket):
    rng = np.random.default_rng(0)
    frames = [Frame(np.clip(f.image + rng.normal(0, 12, f.image.shape), 0, 255).astype(np.uint8), f.name,
                    f.settings) for f in sim_bracket]
    result = H.held_out_error(frames, predict=exposure_image)
    top = result["ceiling"]
    print({k: v for k, v in top.items() if "by_brightness" not in k})
    assert top["oracle_ratio"] > C.ONE_CURVE_TARGET and top["class"] == "noise floor"


def test_the_rule_follows_the_class():
    one = C.classify(0.4, 0.9)
    assert one["class"] == "one-curve" and not C.meets(one, 0.55, 0.5) and C.meets(one, 0.45, 0.9)
    other = C.classify(0.8, 0.05)
    assert other["class"] == "noise floor"
    assert C.meets(other, 0.85, 0.8) and not C.meets(other, 0.95, 0.8) and not C.meets(other, 1.05, 1.2)
