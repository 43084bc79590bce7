"""Pairs: one reference setting against every other setting, along the same camera path.

Each pair carries the physical deltas (stops of exposure, f-number ratio, ...) and the normalised CineCtrl
controls from `rigs.optics` when that module offers the mapping, plus the automatic quality check from
`capture.clips` and the controls the model cannot take (`rigs.controls.out_of_range`), so reviewers see
problems first and a pair that fails QC says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rigs import controls as registry
from rigs.camera import values
from rigs.camera.protocol import APERTURE, FOCAL, FOCUS, ISO, KELVIN, ROLE_FIELDS, SHUTTER, WHITE_BALANCE

from .clips import PairQuality


@dataclass
class PairSpec:
    reference: int                 # combo id of the reference clip
    target: int
    reference_settings: dict[str, str]
    target_settings: dict[str, str]
    deltas: dict[str, float]
    controls: dict[str, float] = field(default_factory=dict)
    controls_source: str = ""
    reference_controls: dict[str, float] = field(default_factory=dict)
    mapping: dict[str, object] = field(default_factory=dict)


def numeric(settings: Mapping[str, str]) -> dict[str, float]:
    out = {}
    for role, label in settings.items():
        if role in values.PARSERS and (number := values.number(role, label)) is not None:
            out[role] = number
    return out


def choose_reference(combos: Mapping[int, Mapping[str, str]], wanted: Mapping[str, str]) -> int:
    """The combo matching `wanted` (numerically); by default the deepest depth of field at base ISO."""
    ids = sorted(combos)
    if wanted:
        for cid in ids:
            if all(values.same_value(role, label, combos[cid].get(role, "")) for role, label in wanted.items()):
                return cid
    def depth_key(cid: int) -> tuple:
        n = numeric(combos[cid])
        return (n.get(ISO, 0.0), -n.get(APERTURE, 0.0), n.get(SHUTTER, 0.0), cid)
    return min(ids, key=depth_key)


# Every physical delta a pair can carry: name -> (unit, meaning). The exports' delta_<name> columns come from here.
DELTA_UNITS: dict[str, tuple[str, str]] = {
    "aperture_stops": ("stops", "aperture change, + = smaller opening"),
    "f_number_ratio": ("ratio", "f-number ratio"),
    "shutter_stops": ("stops", "exposure-time change, + = longer"),
    "iso_stops": ("stops", "ISO change, + = higher"),
    "exposure_ev": ("EV", "total exposure change (shutter + ISO - aperture), + = brighter"),
    "mired_shift": ("mired", "white-balance setting change"),
    "focus_m": ("m", "focus-distance change"),
    "focal_ratio": ("ratio", "focal-length ratio"),
    "path_offset_mm": ("mm", "camera path: the target's pass shifted along the slider (camera-path sweeps)"),
}


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
# cancel out of every relative control (S, I, f, T) and only fix the scale of the absolute ones (K, d_f).
_ASSUMED = {"f_number": 8.0, "focus_m": 2.0, "exposure_s": 1 / 60, "iso": 100.0, "wb_kelvin": 5500.0,
            "focal_mm": 50.0}
_ASSUMED_DEPTH_M = (0.5, 10.0)


@dataclass(frozen=True)
class SceneContext:
    """What the absolute controls (K, d_f) are measured against: the depth range the reference clip sees
    (its true-depth sidecar when the camera wrote one) and the image width."""

    d_near_m: float | None = None
    d_far_m: float | None = None
    width_px: int = 640
    source: str = "assumed"

    @classmethod
    def from_clip(cls, path: Path | None, width_px: int = 640) -> "SceneContext":
        """Depth range from `<stem>.depth.npz` (per-pixel true depth) or `<stem>.json` (depth_range_m)."""
        if path is None:
            return cls(width_px=width_px)
        depth_file = path.with_name(path.stem + ".depth.npz")
        try:
            if depth_file.is_file():
                import numpy as np  # noqa: PLC0415
                with np.load(depth_file) as data:
                    depth = data["depth_m"].astype("float32")
                return cls(float(depth.min()), float(depth.max()), width_px, depth_file.name)
            sidecar = path.with_suffix(".json")
            if sidecar.is_file():
                near, far = json.loads(sidecar.read_text())["depth_range_m"]
                return cls(float(near), float(far), width_px, sidecar.name)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return cls(width_px=width_px)


def normalised_controls(ref: Mapping[str, str], tgt: Mapping[str, str], *, scene: SceneContext | None = None,
                        profile: Any = None) -> tuple[dict[str, float], str]:
    """CineCtrl controls of the target relative to the reference, via rigs.optics (the one mapping), through the
    body + lens's calibration profile when there is one (its real focal lengths and defocus scale).

    Relative controls (f, S, T, ISO) compare the target with the reference setting, so T is the white-balance
    shift from the reference's; K and d_f are absolute over the depth range the reference clip sees."""
    from rigs import optics  # noqa: PLC0415
    scene = scene or SceneContext()
    unknown = unmappable(ref, tgt)
    if unknown:     # the mapping would take the reference's value: "no change" where the clips differ
        return {}, f"{CONTROLS_UNMAPPED}: " + "; ".join(unknown)
    a = {**_ASSUMED, **_side(ref)}
    b = {**a, **_side(tgt)}
    near, far = ((scene.d_near_m, scene.d_far_m) if scene.d_near_m and scene.d_far_m and scene.d_far_m > scene.d_near_m
                 else _ASSUMED_DEPTH_M)
    try:
        ctx = optics.MappingContext(reference=optics.PhysicalSettings(**a), d_near_m=near, d_far_m=far,
                                    scene_kelvin=a["wb_kelvin"], width_px=scene.width_px, profile=profile)
        controls = optics.to_controls(optics.PhysicalSettings(**b), ctx)
    except Exception as exc:  # noqa: BLE001 - a mapping problem must not lose the pair
        return {}, f"{CONTROLS_UNMAPPED}: rigs.optics.to_controls failed: {exc}"
    assumed = sorted(k for k in _ASSUMED if k not in _side(ref))
    if scene.source == "assumed":
        assumed.append("depth range")
    camera = f"calibration profile {profile.label}" if profile is not None else "ideal camera"
    return controls, (f"rigs.optics.to_controls, {camera}" + (f" (assumed {', '.join(assumed)})" if assumed else
                                                               f" (depth range from {scene.source})"))


def reference_controls(ref: Mapping[str, str], *, scene: SceneContext | None = None,
                       profile: Any = None) -> dict[str, float]:
    """The reference clip's own controls (relative ones are neutral; K and d_f are its own)."""
    return normalised_controls(ref, ref, scene=scene, profile=profile)[0]


#: the QC failure (and the start of `controls_source`) of a pair whose settings give no controls
CONTROLS_UNMAPPED = "controls unmapped"


def _preset_kelvin(settings: Mapping[str, str]) -> float | None:
    from rigs.optics import WHITE_BALANCE_PRESETS_K  # noqa: PLC0415
    label = settings.get(WHITE_BALANCE)
    return float(WHITE_BALANCE_PRESETS_K[label]) if label in WHITE_BALANCE_PRESETS_K else None


def _side(settings: Mapping[str, str]) -> dict[str, float]:
    """One side's physical settings: its numeric roles, and a white-balance preset's colour temperature
    (Tungsten = 3200 K; the camera ignores the kelvin setting under a preset, as the simulated one does)."""
    physical = _physical(numeric(settings))
    if (kelvin := _preset_kelvin(settings)) is not None:
        physical[ROLE_FIELDS[KELVIN].physical] = kelvin
    return physical


def _number(role: str, settings: Mapping[str, str]) -> float | None:
    """A role's number on one side; a white balance's is its preset's temperature or the kelvin setting."""
    if role != WHITE_BALANCE:
        return values.number(role, settings[role])
    kelvin = _preset_kelvin(settings)
    return kelvin if kelvin is not None or KELVIN not in settings else values.number(KELVIN, settings[KELVIN])


def unmappable(ref: Mapping[str, str], tgt: Mapping[str, str]) -> list[str]:
    """The settings that differ between the two sides but that a side does not give as a number (`Auto`, `Bulb`,
    `0`, a white balance with neither a preset nor a kelvin value, a setting only one side records): mapping
    them would assume the reference's value, and the pair would read as "no change" while its clips differ."""
    problems = []
    for role in (*ROLE_FIELDS, WHITE_BALANCE):
        if ref.get(role) == tgt.get(role):
            continue
        for side, settings, other in (("reference", ref, tgt), ("target", tgt, ref)):
            if role not in settings:
                problems.append(f"only the {'target' if side == 'reference' else 'reference'} records {role} "
                                f"({other[role]!r})")
                continue
            if _number(role, settings) is None:
                problems.append(f"{side} {role} {settings[role]!r} gives no number")
    return problems


def _physical(n: Mapping[str, float]) -> dict[str, float]:
    """Role-keyed numbers -> the field names of rigs.optics.PhysicalSettings (rigs/camera/protocol.py's table)."""
    return {f.physical: n[role] for role, f in ROLE_FIELDS.items() if role in n}


def form_pairs(combos: Mapping[int, Mapping[str, str]], wanted_reference: Mapping[str, str], *,
               scene: Callable[[int], SceneContext] | None = None, profile: Any = None) -> list[PairSpec]:
    """Reference against every other combination; `scene(reference combo)` gives the mapping's depth range,
    `profile` the body + lens's calibration (None = the ideal camera)."""
    if len(combos) < 2:
        return []
    ref = choose_reference(combos, wanted_reference)
    context = scene(ref) if scene is not None else SceneContext()
    own = reference_controls(combos[ref], scene=context, profile=profile)
    pairs = []
    for cid in sorted(combos):
        if cid == ref:
            continue
        controls, source = normalised_controls(combos[ref], combos[cid], scene=context, profile=profile)
        pairs.append(PairSpec(ref, cid, dict(combos[ref]), dict(combos[cid]),
                              physical_deltas(combos[ref], combos[cid]), controls, source, own,
                              {"d_near_m": context.d_near_m, "d_far_m": context.d_far_m,
                               "width_px": context.width_px, "depth_from": context.source}))
    return pairs


def describe(settings: Mapping[str, str], roles: Sequence[str] | None = None) -> str:
    roles = roles or list(settings)
    return " ".join(settings[r] for r in roles if r in settings)


def quality_record(quality: PairQuality, controls: Mapping[str, float], controls_source: str = "") -> dict[str, Any]:
    """The QC a pair stores: figures, each side's exposure, flags, and `passed` (False when a side is too dark
    or too bright, the frames are misaligned, a control lies outside the model's range, or the settings gave
    no controls at all: `controls_source` says why, and such a pair must never train as "no change")."""
    outside = registry.out_of_range(controls)
    unmapped = [] if any(k in registry.NAMES for k in controls) else [
        controls_source if controls_source.startswith(CONTROLS_UNMAPPED)
        else f"{CONTROLS_UNMAPPED}: {controls_source or 'no controls were computed'}"]
    flags = quality.flags + [f"control {why}" for why in outside.values()] + unmapped
    failures = quality.failures + [f"control {why}" for why in outside.values()] + unmapped
    return {"alignment_px": quality.alignment_px, "clipped_fraction": quality.clipped_fraction,
            "sharpness_ratio": quality.sharpness_ratio, "frames": quality.frames,
            "breathing_scale": quality.breathing_scale,
            "reference_exposure": quality.reference_exposure.as_dict() if quality.reference_exposure else None,
            "target_exposure": quality.target_exposure.as_dict() if quality.target_exposure else None,
            "controls_out_of_range": sorted(outside), "controls_unmapped": unmapped[0] if unmapped else None,
            "flags": flags, "failures": failures,
            "passed": not failures}
