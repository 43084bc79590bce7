"""Pairs: one reference setting against every other setting, along the same camera path.

Each pair carries the physical deltas (stops of exposure, f-number ratio, ...) and the normalised CineCtrl
controls from `rigs.optics` when that module offers the mapping, plus the automatic quality check from
`capture.clips` so reviewers see problems first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from rigs.camera import values
from rigs.camera.protocol import APERTURE, FOCAL, FOCUS, ISO, KELVIN, SHUTTER

from .plan import match_choice

_NUMERIC = {
    APERTURE: values.parse_aperture, SHUTTER: lambda s: float(values.parse_shutter(s)), ISO: values.parse_iso,
    KELVIN: values.parse_kelvin, FOCUS: values.parse_metres, FOCAL: values.parse_mm,
}


@dataclass
class PairSpec:
    reference: int                 # combo id of the reference clip
    target: int
    reference_settings: dict[str, str]
    target_settings: dict[str, str]
    deltas: dict[str, float]
    controls: dict[str, float] = field(default_factory=dict)
    controls_source: str = ""


def numeric(settings: Mapping[str, str]) -> dict[str, float]:
    out = {}
    for role, label in settings.items():
        parse = _NUMERIC.get(role)
        if parse is None:
            continue
        try:
            out[role] = float(parse(label))
        except ValueError:
            continue
    return out


def choose_reference(combos: Mapping[int, Mapping[str, str]], wanted: Mapping[str, str]) -> int:
    """The combo matching `wanted` (numerically); by default the deepest depth of field at base ISO."""
    ids = sorted(combos)
    if wanted:
        for cid in ids:
            if all(match_choice(role, label, [combos[cid].get(role, "")]) for role, label in wanted.items()):
                return cid
    def depth_key(cid: int) -> tuple:
        n = numeric(combos[cid])
        return (n.get(ISO, 0.0), -n.get(APERTURE, 0.0), n.get(SHUTTER, 0.0), cid)
    return min(ids, key=depth_key)


def physical_deltas(ref: Mapping[str, str], tgt: Mapping[str, str]) -> dict[str, float]:
    a, b = numeric(ref), numeric(tgt)
    deltas: dict[str, float] = {}
    if APERTURE in a and APERTURE in b:
        deltas["aperture_stops"] = 2 * math.log2(b[APERTURE] / a[APERTURE])   # + = smaller opening
        deltas["f_number_ratio"] = b[APERTURE] / a[APERTURE]
    if SHUTTER in a and SHUTTER in b:
        deltas["shutter_stops"] = math.log2(b[SHUTTER] / a[SHUTTER])
    if ISO in a and ISO in b:
        deltas["iso_stops"] = math.log2(b[ISO] / a[ISO])
    if all(r in a and r in b for r in (APERTURE, SHUTTER, ISO)):
        deltas["exposure_ev"] = deltas["shutter_stops"] + deltas["iso_stops"] - deltas["aperture_stops"]
    if KELVIN in a and KELVIN in b:
        deltas["mired_shift"] = 1e6 / b[KELVIN] - 1e6 / a[KELVIN]
    if FOCUS in a and FOCUS in b:
        deltas["focus_m"] = b[FOCUS] - a[FOCUS]
    if FOCAL in a and FOCAL in b:
        deltas["focal_ratio"] = b[FOCAL] / a[FOCAL]
    return deltas


# Values the plan did not sweep or set: neutral assumptions, the same on both sides of a pair, so they
# cancel out of every relative control (S, I, f) and only fix the scale of the absolute ones (K, d_f, T).
_ASSUMED = {"f_number": 8.0, "focus_m": 2.0, "exposure_s": 1 / 60, "iso": 100.0, "wb_kelvin": 5500.0,
            "focal_mm": 50.0}


def normalised_controls(ref: Mapping[str, str], tgt: Mapping[str, str], *, width_px: int = 640,
                        profile: Any = None) -> tuple[dict[str, float], str]:
    """CineCtrl controls of the target relative to the reference, via rigs.optics (the one mapping), through the
    body + lens's calibration profile when there is one (its real focal lengths and defocus scale)."""
    try:
        from rigs import optics  # noqa: PLC0415
    except ImportError:
        return {}, "rigs.optics not available"
    a = {**_ASSUMED, **_physical(numeric(ref))}
    b = {**a, **_physical(numeric(tgt))}
    try:
        ctx = optics.MappingContext(reference=optics.PhysicalSettings(**a), width_px=width_px, profile=profile)
        controls = optics.to_controls(optics.PhysicalSettings(**b), ctx)
    except Exception as exc:  # noqa: BLE001 - a mapping problem must not lose the pair
        return {}, f"rigs.optics.to_controls failed: {exc}"
    assumed = sorted(k for k in _ASSUMED if k not in _physical(numeric(ref)))
    camera = f"calibration profile {profile.label}" if profile is not None else "ideal camera"
    return controls, (f"rigs.optics.to_controls, {camera}" + (f" (assumed {', '.join(assumed)})" if assumed else ""))


_PHYSICAL_NAMES = {APERTURE: "f_number", SHUTTER: "exposure_s", ISO: "iso", KELVIN: "wb_kelvin",
                   FOCUS: "focus_m", FOCAL: "focal_mm"}


def _physical(n: Mapping[str, float]) -> dict[str, float]:
    """Role-keyed numbers -> the field names of rigs.optics.PhysicalSettings."""
    return {name: n[role] for role, name in _PHYSICAL_NAMES.items() if role in n}


def form_pairs(combos: Mapping[int, Mapping[str, str]], wanted_reference: Mapping[str, str], *,
               profile: Any = None) -> list[PairSpec]:
    """Reference vs every other combination; `profile`: the body + lens's calibration (None = ideal camera)."""
    if len(combos) < 2:
        return []
    ref = choose_reference(combos, wanted_reference)
    pairs = []
    for cid in sorted(combos):
        if cid == ref:
            continue
        controls, source = normalised_controls(combos[ref], combos[cid], profile=profile)
        pairs.append(PairSpec(ref, cid, dict(combos[ref]), dict(combos[cid]),
                              physical_deltas(combos[ref], combos[cid]), controls, source))
    return pairs


def describe(settings: Mapping[str, str], roles: Sequence[str] | None = None) -> str:
    roles = roles or list(settings)
    return " ".join(settings[r] for r in roles if r in settings)
