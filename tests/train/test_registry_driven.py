"""The simulator and the inverse physical mapping are driven by the controls registry: a registry control without
its effect or its inverse formula is refused at import (the check runs there), and both follow the table."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rigs import controls as registry
from rigs import optics
from train import effects


def test_every_registry_control_has_an_effect_and_a_missing_one_is_refused(monkeypatch):
    effects.check_effects()
    with pytest.raises(ImportError, match=r"registry lists .*'ISO'"):
        effects.check_effects({k: v for k, v in effects.EFFECTS.items() if k != "ISO"})
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "X"))          # a new control, no effect yet
    with pytest.raises(ImportError, match="give every registry control its effect"):
        effects.check_effects()


def test_simulate_runs_the_table(monkeypatch):
    frames = torch.full((1, 3, 3, 16, 16), 0.5)
    base = effects.simulate(frames, None, {"S": 0.5})
    brighter = dataclasses.replace(effects.EFFECTS["S"], apply=lambda x, c, **_: x * 0 + 0.25)
    monkeypatch.setitem(effects.EFFECTS, "S", brighter)
    assert not torch.equal(effects.simulate(frames, None, {"S": 0.5}), base)


def test_every_registry_control_has_an_inverse_formula_and_a_missing_one_is_refused(monkeypatch):
    optics.check_mappings()
    with pytest.raises(ImportError, match=r"inverse formula .*registry lists .*'T'"):
        optics.check_mappings(inverse=tuple(e for e in optics._INVERSE if e[0] != "T"))
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "X"))
    with pytest.raises(ImportError, match="forward formula"):
        optics.check_mappings()
