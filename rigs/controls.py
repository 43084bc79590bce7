"""The one registry of CineCtrl's photographic controls: every consumer derives its list from here.

A control is a normalised number the model is conditioned on. Its entry says everything the rest of the
toolkit needs: range and neutral value (data, model, server validation), what it means physically and
its scale (the `rigs/optics.py` mapping reads `scale`), which camera settings move it (capture plans,
calibration, sweeps), the CLI flag of `cinectrl train edit`, the API field of `cinectrl serve` and the
statistic QC, sweep checks and evaluation measure it with (`rigs/statistics.py` implements each by name).

To add a control: append an entry here, give `rigs/optics.py` its forward and inverse formulas (an
import-time check refuses a registry entry without them), give `rigs/statistics.py` its statistic, and
retrain (a model records the control list it was trained with and refuses another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class ControlSpec:
    """One control. `name` is the model's key, the catalog's key and the API field."""

    name: str
    title: str                  # what a person calls it
    low: float
    high: float
    neutral: float              # the value that leaves the clip unchanged
    scale: float                # physical size of one unit of the control (see `scale_meaning`)
    scale_meaning: str
    physical: str               # the physical quantity behind it (docs/controls.md derives the formula)
    roles: tuple[str, ...]      # camera roles (rigs/camera/protocol.py) whose change moves it
    sweep_role: str             # the role a capture sweep of this control varies
    cli_flag: str               # `cinectrl train edit` option
    statistic: str              # rigs/statistics.py statistic its response is measured with
    help: str

    @property
    def api_field(self) -> str:
        return self.name

    @property
    def range_text(self) -> str:
        return f"[{_num(self.low)}, {_num(self.high)}]"

    def describe(self) -> str:
        return f"{self.name} ({self.title}, {self.range_text}, neutral {_num(self.neutral)})"


def _num(x: float) -> str:
    return f"{x:g}"


#: Model order: the photographic encoder reads controls in exactly this order.
CONTROLS: tuple[ControlSpec, ...] = (
    ControlSpec(
        name="K", title="bokeh", low=0.0, high=1.0, neutral=0.0,
        scale=1.0 / 20.0, scale_meaning="blur radius at K = 1, as a fraction of the image width per unit of "
                                        "normalised disparity",
        physical="thin-lens defocus per unit disparity: F² s / (N (s − F)) over the clip's depth range",
        roles=("aperture", "focal", "focus"), sweep_role="aperture", cli_flag="--bokeh",
        statistic="sharpness",
        help="bokeh strength K in [0, 1]: 0 = everything sharp, 1 = blur radius of 1/20 of the width per unit "
             "of disparity (f/N wide open at the scene's depth range)"),
    ControlSpec(
        name="d_f", title="focus", low=0.0, high=1.0, neutral=0.5,
        scale=1.0, scale_meaning="normalised disparity of the focus plane (0 = far end, 1 = near end)",
        physical="focus distance s as normalised disparity (1/s − 1/d_far) / (1/d_near − 1/d_far)",
        roles=("focus",), sweep_role="focus", cli_flag="--focus",
        statistic="focus_depth",
        help="focus plane d_f in [0, 1] as normalised disparity: 0 = the far end of the scene, 1 = the near end"),
    ControlSpec(
        name="f", title="zoom", low=0.0, high=1.0, neutral=0.0,
        scale=3.0, scale_meaning="zoom factor F / F_ref at f = 1",
        physical="focal length F relative to the reference F_ref: f = (F / F_ref − 1) / (scale − 1)",
        roles=("focal",), sweep_role="focal", cli_flag="--zoom",
        statistic="zoom_scale",
        help="zoom f in [0, 1]: 0 = the source's framing, 1 = 3x longer focal length (a third of the width)"),
    ControlSpec(
        name="S", title="exposure", low=-1.0, high=1.0, neutral=0.0,
        scale=3.0, scale_meaning="exposure change in EV (stops) at S = ±1",
        physical="ΔEV = log2((t·ISO/N²) / (t_ref·ISO_ref/N_ref²))",
        roles=("shutter", "aperture", "iso"), sweep_role="shutter", cli_flag="--exposure",
        statistic="brightness",
        help="exposure S in [-1, 1]: ±1 = ±3 stops brighter/darker"),
    ControlSpec(
        name="T", title="colour temperature", low=-1.0, high=1.0, neutral=0.0,
        scale=150.0, scale_meaning="white-balance shift in mired at T = ±1",
        physical="mired shift 10⁶/K_wb − 10⁶/K_wb,ref of the white balance against the reference's (the "
                 "mapping context's scene_kelvin)",
        roles=("kelvin", "white_balance"), sweep_role="kelvin", cli_flag="--colour-temperature",
        statistic="colour_balance",
        help="colour temperature shift T in [-1, 1]: +1 = 150 mired cooler (bluer), -1 = 150 mired warmer"),
    ControlSpec(
        name="ISO", title="sensor gain", low=-1.0, high=1.0, neutral=0.0,
        scale=6.0, scale_meaning="sensor gain change in stops at ISO = ±1",
        physical="log2(ISO / ISO_ref): gain and its noise (brightness is S's job)",
        roles=("iso",), sweep_role="iso", cli_flag="--iso-gain",
        statistic="noise",
        help="sensor gain ISO in [-1, 1]: ±1 = ±6 stops of ISO (noise; brightness is --exposure's job)"),
)

NAMES: tuple[str, ...] = tuple(c.name for c in CONTROLS)
NEUTRAL: dict[str, float] = {c.name: c.neutral for c in CONTROLS}
_BY_NAME: dict[str, ControlSpec] = {c.name: c for c in CONTROLS}


class ControlError(ValueError):
    """An unknown control or a value out of range; the message names the control, the value and the range."""


def spec(name: str) -> ControlSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ControlError(f"unknown control {name!r}; the controls are {listing()}") from None


def listing() -> str:
    """'K (bokeh, [0, 1]), d_f (focus, [0, 1]), ...' for messages."""
    return ", ".join(f"{c.name} ({c.title}, {c.range_text})" for c in CONTROLS)


def validate(values: Mapping[str, object], *, where: str = "") -> dict[str, float]:
    """Known names, finite numbers inside their ranges -> {name: float}; only the names given."""
    prefix = f"{where}: " if where else ""
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise ControlError(f"{prefix}unknown control(s) {', '.join(map(repr, unknown))}; the controls are "
                           f"{listing()}")
    out = {}
    for name in NAMES:
        if name not in values:
            continue
        raw = values[name]
        c = _BY_NAME[name]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(float(raw)):
            raise ControlError(f"{prefix}control {name} ({c.title}) = {raw!r} is not a number; give a value in "
                               f"{c.range_text}")
        value = float(raw)
        if not c.low <= value <= c.high:
            raise ControlError(f"{prefix}control {name} ({c.title}) = {value:g} is outside {c.range_text}; "
                               f"{c.help}")
        out[name] = value
    return out


def complete(values: Mapping[str, float] | None = None, *, check: bool = True) -> dict[str, float]:
    """Every control, in registry order: the given values (validated) and neutral for the rest."""
    given = validate(values or {}) if check else {k: float(v) for k, v in (values or {}).items() if k in _BY_NAME}
    return {name: given.get(name, NEUTRAL[name]) for name in NAMES}


def vector(values: Mapping[str, float] | None = None, *, check: bool = True) -> list[float]:
    """The model's input order: one float per control, neutral where not given."""
    return list(complete(values, check=check).values())


def out_of_range(values: Mapping[str, float]) -> dict[str, str]:
    """{name: why} for known controls outside their range (QC flags a pair; it does not raise)."""
    problems = {}
    for name, value in values.items():
        c = _BY_NAME.get(name)
        if c is None or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value) or not c.low <= value <= c.high:
            problems[name] = f"{name} ({c.title}) = {value:.3g} is outside the model's range {c.range_text}"
    return problems


def check_model_controls(model_names: Iterable[str] | None, *, what: str = "model") -> None:
    """A model records the control list it was trained with; refuse one trained with another list."""
    if model_names is None:
        raise ControlError(f"{what} records no control list (trained before the controls registry); retrain it "
                           f"with this cinectrl, whose controls are {', '.join(NAMES)}")
    names = tuple(model_names)
    if names != NAMES:
        raise ControlError(f"{what} was trained with controls ({', '.join(names)}) but this cinectrl has "
                           f"({', '.join(NAMES)}); use the cinectrl release it was trained with, or retrain it")
