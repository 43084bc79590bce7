"""The controls registry: one list that the mapping, model, data, CLI and server derive from."""

from __future__ import annotations

import pytest

from rigs import controls, optics
from rigs.camera import protocol


def test_registry_lists_the_six_controls_in_model_order_with_their_ranges():
    assert controls.NAMES == ("K", "d_f", "f", "S", "T", "ISO")
    assert controls.NEUTRAL == {"K": 0.0, "d_f": 0.5, "f": 0.0, "S": 0.0, "T": 0.0, "ISO": 0.0}
    for c in controls.CONTROLS:
        assert c.low <= c.neutral <= c.high
        assert c.cli_flag.startswith("--") and c.help and c.physical and c.statistic
        assert c.sweep_role in c.roles
        assert set(c.roles) <= set(protocol.ROLES), c.name


def test_optics_mapping_reads_the_registry_scales():
    assert optics.EV_MAX == controls.spec("S").scale
    assert optics.MIRED_MAX == controls.spec("T").scale
    assert optics.ZOOM_MAX == controls.spec("f").scale
    assert optics.ISO_STOPS_MAX == controls.spec("ISO").scale
    assert optics.K_MAX_FRACTION == controls.spec("K").scale
    ref = optics.PhysicalSettings(8, 2.0, 1 / 60, 100, 5500, 35)
    ctx = optics.MappingContext(ref)
    assert tuple(optics.to_controls(ref, ctx)) == controls.NAMES


def test_validate_names_the_control_the_value_and_the_range():
    assert controls.validate({"S": 0.5, "K": 1}) == {"K": 1.0, "S": 0.5}
    with pytest.raises(controls.ControlError, match=r"control S \(exposure\) = 1.5 is outside \[-1, 1\]"):
        controls.validate({"S": 1.5})
    with pytest.raises(controls.ControlError, match=r"unknown control\(s\) 'kelvin'.*T \(colour temperature"):
        controls.validate({"kelvin": 0.2})
    with pytest.raises(controls.ControlError, match="is not a number"):
        controls.validate({"K": "high"})
    with pytest.raises(controls.ControlError, match="is not a number"):
        controls.validate({"K": float("nan")})


def test_complete_and_vector_fill_neutral_values_in_registry_order():
    assert controls.vector({"T": -0.5}) == [0.0, 0.5, 0.0, 0.0, -0.5, 0.0]


def test_out_of_range_flags_without_raising():
    assert set(controls.out_of_range({"S": 3.35, "K": 0.2, "d_f": -0.1})) == {"S", "d_f"}


def test_a_model_with_another_control_list_is_refused():
    controls.check_model_controls(controls.NAMES)
    with pytest.raises(controls.ControlError, match=r"trained with controls \(K, d_f, f, S, T\)"):
        controls.check_model_controls(["K", "d_f", "f", "S", "T"])
    with pytest.raises(controls.ControlError, match="records no control list"):
        controls.check_model_controls(None)
