"""No silent neutral controls: a pair whose settings cannot be mapped to the model's controls (a label with no
number, a white balance with no temperature, a failing mapping) stores no controls, QC fails it with the reason,
and a white-balance preset sweep maps to its temperatures instead of "no change"."""

from __future__ import annotations

import numpy as np
from PIL import Image

from capture.clips import pair_quality
from capture.pairs import CONTROLS_UNMAPPED, form_pairs, normalised_controls, quality_record
from rigs import controls as registry

BASE = {"aperture": "f/8", "shutter": "1/60", "iso": "100"}


def _frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    img = np.asarray(Image.fromarray(rng.integers(60, 190, (16, 24, 3), dtype=np.uint8)).resize((96, 64)))
    return [img.copy() for _ in range(n)]


def test_a_label_without_a_number_gives_no_controls_and_fails_qc():
    combos = {1: BASE, 2: {**BASE, "iso": "Auto"}, 3: {**BASE, "iso": "400"}, 4: {**BASE, "shutter": "Bulb"}}
    specs = {s.target: s for s in form_pairs(combos, BASE)}
    frames = _frames()
    for target, why in ((2, "target iso 'Auto'"), (4, "target shutter 'Bulb'")):
        spec = specs[target]
        assert spec.controls == {} and spec.controls_source.startswith(CONTROLS_UNMAPPED)
        assert why in spec.controls_source
        qc = quality_record(pair_quality(frames, frames), spec.controls, spec.controls_source)
        assert qc["passed"] is False and qc["controls_unmapped"] == spec.controls_source
        assert spec.controls_source in qc["failures"] and spec.controls_source in qc["flags"]
    mapped = specs[3]                                   # the same frames with a mappable setting pass
    assert set(mapped.controls) == set(registry.NAMES) and mapped.controls["ISO"] > 0
    qc = quality_record(pair_quality(frames, frames), mapped.controls, mapped.controls_source)
    assert qc["passed"] is True and qc["controls_unmapped"] is None


def test_a_failing_mapping_and_missing_controls_fail_qc_with_the_reason():
    controls, source = normalised_controls({**BASE, "white_balance": "Kelvin", "kelvin": "5000"},
                                           {**BASE, "white_balance": "Kelvin", "kelvin": "0"})
    assert controls == {} and source.startswith(CONTROLS_UNMAPPED)
    qc = quality_record(pair_quality(_frames(), _frames()), {}, "")        # stored without any reason
    assert qc["passed"] is False and qc["failures"] == [f"{CONTROLS_UNMAPPED}: no controls were computed"]


def test_white_balance_presets_map_to_their_temperatures():
    """Daylight -> Tungsten is a 3200 K target under a 5500 K reference: T is not the neutral 0."""
    warm, _ = normalised_controls({**BASE, "white_balance": "Daylight"}, {**BASE, "white_balance": "Tungsten"})
    same, _ = normalised_controls({**BASE, "white_balance": "Daylight"}, {**BASE, "white_balance": "Daylight"})
    assert warm["T"] > 0.5 and same["T"] == 0.0
    controls, source = normalised_controls({**BASE, "white_balance": "Daylight"}, {**BASE, "white_balance": "Auto"})
    assert controls == {} and "target white_balance 'Auto'" in source
    # the same unreadable label on both sides is no change, and maps
    controls, _ = normalised_controls({**BASE, "iso": "Auto", "aperture": "f/8"}, {**BASE, "iso": "Auto",
                                                                                   "aperture": "f/4"})
    assert controls and controls["ISO"] == 0.0
