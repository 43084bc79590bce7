"""The physics of a camera, and the one mapping between physical settings and CineCtrl's controls.

Everything here is pure arithmetic on numbers, numpy arrays or torch tensors (only `+ - * /`, `abs`,
powers in `coc_*`, `motion_blur_px`; `srgb_encode`/`srgb_decode`/`apply_white_balance` dispatch on the
type), so the same functions serve the simulated camera (numpy) and the effect simulator (torch). The
sensor model (`Sensor.expose`) draws noise with numpy's generator and is numpy only. The scalar mapping
(`to_controls`/`to_physical`, `kelvin_to_rgb`, `white_balance_gains`, ...) takes plain floats. No I/O.

Units: lengths in millimetres unless a name says metres (`_m`); exposure time in seconds.

Formulas (derivations in docs/controls.md):

* Thin lens, circle of confusion on the sensor for an object at distance d when focused at s::

      c(d) = F² / (N (s − F)) · |d − s| / d            (mm; F focal length, N f-number)

  In pixels: c_px = c · W_px / W_sensor.  Written in disparity δ = 1/d it is linear::

      c(δ) = F² s / (N (s − F)) · |δ − δ_s|   →   r_px = K_px · |δ_n − δ_f|

  with δ_n the disparity normalised over the clip's depth range [d_near, d_far].
* Exposure: H ∝ t · ISO / N²;  ΔEV = log2(H / H_ref).
* White balance: the scene lit at K_scene, the camera balanced for K_wb, multiplies linear RGB by
  rgb(K_scene) / rgb(K_wb) (green-normalised black-body colours, Tanner-Helland fit).
* Zoom: horizontal field of view 2·atan(W_sensor / 2F); crop ratio F_base / F.
* Motion blur: a layer at depth d moving at v (mm/s, slider) smears over t · v · F / d mm on the sensor.

A calibration profile (`rigs/calibration/profile.py`, given as `MappingContext.profile`) replaces the ideal
lens in the mapping: K_px and f use the lens's real focal length at the focus distance (breathing included)
instead of the marked one, and K_px is multiplied by the lens's measured defocus scale.

The normalised controls (relative to a reference setting r):

  K  = K_px / K_max,  K_px = (F² s/(N (s−F))) · (1/d_near − 1/d_far) · W_px / W_sensor,  K_max = W_px / 20
  d_f = (1/s − 1/d_far) / (1/d_near − 1/d_far)                                   ∈ [0, 1]
  f  = (F / F_r − 1) / (z_max − 1)                                                ∈ [0, 1], z_max = 3
  S  = log2((t·ISO/N²) / (t_r·ISO_r/N_r²)) / EV_max                               ∈ [−1, 1], EV_max = 3
  T  = (10⁶/K_wb − 10⁶/K_scene) / M_max                                           ∈ [−1, 1], M_max = 150 mired
  I  = log2(ISO / ISO_r) / ISO_STOPS_MAX                                          ∈ [−1, 1], 6 stops

T is positive when the camera's white balance is set *below* the scene's temperature (the image turns
blue, i.e. cooler); negative T renders warmer, as in CineCtrl's figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields as dataclass_fields
from typing import Mapping, Protocol

import numpy as np

from . import controls
from .camera.protocol import ROLE_FIELDS

FULL_FRAME_WIDTH_MM = 36.0
FULL_FRAME_HEIGHT_MM = 24.0
# The scales of the normalised controls live in the controls registry; these names are its values.
K_MAX_FRACTION = controls.spec("K").scale    # full bokeh (K = 1) blurs by 1/20 of the width per unit disparity
ZOOM_MAX = controls.spec("f").scale
EV_MAX = controls.spec("S").scale
MIRED_MAX = controls.spec("T").scale
ISO_STOPS_MAX = controls.spec("ISO").scale


# ---------------------------------------------------------------- thin lens

def coc_mm(n: float, focal_mm: float, focus_m: float, depth_m):
    """Circle-of-confusion diameter on the sensor (mm); `depth_m` may be an array or tensor."""
    f = focal_mm
    s = focus_m * 1000.0
    d = depth_m * 1000.0
    return (f * f / (n * (s - f))) * abs(d - s) / d


def coc_px(n: float, focal_mm: float, focus_m: float, depth_m, *, width_px: int,
           sensor_width_mm: float = FULL_FRAME_WIDTH_MM):
    """Circle-of-confusion diameter in pixels of an image `width_px` wide."""
    return coc_mm(n, focal_mm, focus_m, depth_m) * (width_px / sensor_width_mm)


def depth_of_field_m(n: float, focal_mm: float, focus_m: float, *, coc_limit_mm: float = 0.03) -> tuple[float, float]:
    """Near and far limits of acceptable sharpness (far is inf beyond the hyperfocal distance)."""
    f = focal_mm
    s = focus_m * 1000.0
    hyperfocal = f * f / (n * coc_limit_mm) + f
    near = s * (hyperfocal - f) / (hyperfocal + s - 2 * f)
    far = math.inf if s >= hyperfocal else s * (hyperfocal - f) / (hyperfocal - s)
    return near / 1000.0, far / 1000.0


# ---------------------------------------------------------------- exposure and sensor

def relative_exposure(t_s: float, iso: float, n: float) -> float:
    """Photometric exposure times gain, up to a constant: t·ISO/N²."""
    return t_s * iso / (n * n)


def delta_ev(t_s: float, iso: float, n: float, ref: tuple[float, float, float]) -> float:
    t_r, iso_r, n_r = ref
    return math.log2(relative_exposure(t_s, iso, n) / relative_exposure(t_r, iso_r, n_r))


def third_stop(ev: float) -> float:
    """Round an EV difference to the camera's 1/3-stop grid."""
    return round(ev * 3.0) / 3.0


POISSON_EXACT_BELOW_E = 30.0     # below this many electrons shot noise is drawn from the exact Poisson law


@dataclass(frozen=True)
class Sensor:
    """A simple linear sensor: photons → electrons (shot noise) → gain (ISO) + read noise → clip."""

    full_well_e: float = 30000.0      # electrons at saturation at base ISO
    read_noise_e: float = 3.0
    base_iso: float = 100.0
    width_mm: float = FULL_FRAME_WIDTH_MM

    def expose(self, radiance, t_s: float, iso: float, n: float, rng: np.random.Generator | None,
               *, calibration: float = 1.0):
        """Linear image in [0, 1] (1 = clipped) for a linear scene radiance (numpy).

        Shot noise is Poisson (variance = mean electrons); above `POISSON_EXACT_BELOW_E` electrons it is
        drawn as its Gaussian limit together with the read noise in one draw (same mean and variance,
        several times faster), below it exactly from the Poisson law.
        """
        electrons = radiance * (t_s / (n * n)) * calibration * self.full_well_e
        gain = iso / self.base_iso
        if rng is not None:
            electrons = np.maximum(np.asarray(electrons, np.float32), 0.0)
            z = rng.standard_normal(electrons.shape, dtype=np.float32)
            noisy = electrons + np.sqrt(electrons + np.float32(self.read_noise_e ** 2)) * z
            low = electrons < POISSON_EXACT_BELOW_E
            if low.any():
                noisy[low] = rng.poisson(electrons[low]).astype(np.float32) + self.read_noise_e * z[low]
            electrons = noisy
        signal = electrons * gain
        return np.clip(signal / self.full_well_e, 0.0, 1.0)

    def noise_std(self, mean_linear: float, iso: float) -> float:
        """Expected noise standard deviation (linear units) at a mean level, for tests and docs."""
        gain = iso / self.base_iso
        electrons = mean_linear * self.full_well_e / gain
        return math.sqrt(electrons * gain * gain + (self.read_noise_e * gain) ** 2) / self.full_well_e


# Reference calibration: radiance 1.0 at t = 1/60 s, f/2.8 reaches 18 % of full well at base ISO.
CALIBRATION = 0.18 / ((1.0 / 60.0) / (2.8 * 2.8))


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def srgb_encode(linear):
    """Linear [0,1] → sRGB [0,1] (IEC 61966-2-1); numpy arrays, scalars or torch tensors."""
    if _is_torch(linear):
        import torch  # noqa: PLC0415  (only when a tensor is given: rigs does not need torch)

        linear = linear.clamp(0.0, 1.0)
        return torch.where(linear <= 0.0031308, 12.92 * linear,
                           1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def srgb_decode(encoded):
    """sRGB [0,1] → linear [0,1]; numpy arrays, scalars or torch tensors."""
    if _is_torch(encoded):
        import torch  # noqa: PLC0415

        encoded = encoded.clamp(0.0, 1.0)
        return torch.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    encoded = np.clip(encoded, 0.0, 1.0)
    return np.where(encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4))


def apply_white_balance(linear, scene_kelvin: float, camera_kelvin: float, *, channel_axis: int = -1):
    """Multiply linear RGB by the white-balance gains (numpy array or torch tensor, RGB on `channel_axis`)."""
    gains = white_balance_gains(scene_kelvin, camera_kelvin)
    shape = [1] * linear.ndim
    shape[channel_axis] = 3
    if _is_torch(linear):
        import torch  # noqa: PLC0415

        return linear * torch.tensor(gains, dtype=linear.dtype, device=linear.device).reshape(shape)
    return linear * np.asarray(gains, dtype=getattr(linear, "dtype", np.float32)).reshape(shape)


# ---------------------------------------------------------------- white balance

def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Black-body colour (Tanner-Helland fit), linearised and normalised to green = 1."""
    t = max(1000.0, min(40000.0, kelvin)) / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * math.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    rgb = [min(255.0, max(1.0, c)) / 255.0 for c in (r, g, b)]
    lin = [float(srgb_decode(np.float64(c))) for c in rgb]
    return lin[0] / lin[1], 1.0, lin[2] / lin[1]


def white_balance_gains(scene_kelvin: float, camera_kelvin: float) -> tuple[float, float, float]:
    """Per-channel linear gains when a scene lit at `scene_kelvin` is balanced for `camera_kelvin`."""
    scene = kelvin_to_rgb(scene_kelvin)
    camera = kelvin_to_rgb(camera_kelvin)
    return tuple(s / c for s, c in zip(scene, camera))  # type: ignore[return-value]


WHITE_BALANCE_PRESETS_K = {
    "Daylight": 5500, "Cloudy": 6500, "Shade": 7500, "Tungsten": 3200, "Fluorescent": 4000,
    "Flash": 5500,
}


# ---------------------------------------------------------------- zoom and motion

def field_of_view_deg(focal_mm: float, sensor_width_mm: float = FULL_FRAME_WIDTH_MM) -> float:
    return math.degrees(2.0 * math.atan(sensor_width_mm / (2.0 * focal_mm)))


def crop_ratio(focal_base_mm: float, focal_mm: float) -> float:
    """Fraction of the base frame's width that a longer focal length sees."""
    return focal_base_mm / focal_mm


def focal_px(focal_mm: float, width_px: int, sensor_width_mm: float = FULL_FRAME_WIDTH_MM) -> float:
    return focal_mm * width_px / sensor_width_mm


def motion_blur_px(t_s: float, velocity_mm_s: float, depth_m, focal_mm: float, *, width_px: int,
                   sensor_width_mm: float = FULL_FRAME_WIDTH_MM):
    """Blur length in pixels of a layer at `depth_m` while the camera translates at `velocity_mm_s`."""
    return t_s * abs(velocity_mm_s) * focal_mm / (depth_m * 1000.0) * (width_px / sensor_width_mm)


# ---------------------------------------------------------------- the control mapping

@dataclass(frozen=True)
class PhysicalSettings:
    f_number: float
    focus_m: float
    exposure_s: float
    iso: float
    wb_kelvin: float
    focal_mm: float


#: Normalised controls keyed by the registry's names (rigs/controls.py), e.g. {"K": 0.4, "d_f": 0.5, ...}.
Controls = dict


class LensCalibration(Protocol):
    """What the mapping needs from a measured lens (`rigs.calibration.CalibrationProfile` provides it)."""

    def focal_mm(self, nominal_mm: float, focus_m: float) -> float: ...

    def nominal_focal_mm(self, real_mm: float, focus_m: float) -> float: ...

    def defocus_scale(self) -> float: ...


@dataclass(frozen=True)
class MappingContext:
    """What the mapping is relative to: the reference setting, the scene and the image, and the lens's
    calibration (None = the ideal thin lens at its marked focal length)."""

    reference: PhysicalSettings
    d_near_m: float = 0.5
    d_far_m: float = 10.0
    scene_kelvin: float = 5500.0
    width_px: int = 640
    sensor_width_mm: float = FULL_FRAME_WIDTH_MM
    profile: LensCalibration | None = None

    @property
    def k_max_px(self) -> float:
        return self.width_px * K_MAX_FRACTION

    def real_focal_mm(self, marked_mm: float, focus_m: float) -> float:
        return self.profile.focal_mm(marked_mm, focus_m) if self.profile is not None else marked_mm

    def marked_focal_mm(self, real_mm: float, focus_m: float) -> float:
        return self.profile.nominal_focal_mm(real_mm, focus_m) if self.profile is not None else real_mm


def bokeh_k_px(n: float, focal_mm: float, focus_m: float, ctx: MappingContext) -> float:
    """Blur *radius* in pixels per unit of normalised disparity (δ_n ∈ [0, 1] over the clip's depth range), for
    the marked f-number and focal length: the profile's lens (real focal length, defocus scale) when given."""
    f = ctx.real_focal_mm(focal_mm, focus_m)
    s = focus_m * 1000.0
    span_per_mm = 1.0 / (ctx.d_near_m * 1000.0) - 1.0 / (ctx.d_far_m * 1000.0)
    diameter_mm = f * f * s / (n * (s - f)) * span_per_mm
    scale = ctx.profile.defocus_scale() if ctx.profile is not None else 1.0
    return scale * diameter_mm / 2.0 * ctx.width_px / ctx.sensor_width_mm


def _disparity_fraction(focus_m: float, ctx: MappingContext) -> float:
    return (1.0 / focus_m - 1.0 / ctx.d_far_m) / (1.0 / ctx.d_near_m - 1.0 / ctx.d_far_m)


#: Forward formula of each registry control: physical settings -> normalised value.
_FORWARD = {
    "K": lambda p, ctx: bokeh_k_px(p.f_number, p.focal_mm, p.focus_m, ctx) / ctx.k_max_px,
    "d_f": lambda p, ctx: _disparity_fraction(p.focus_m, ctx),
    "f": lambda p, ctx: (ctx.real_focal_mm(p.focal_mm, p.focus_m)
                         / ctx.real_focal_mm(ctx.reference.focal_mm, ctx.reference.focus_m) - 1.0) / (ZOOM_MAX - 1.0),
    "S": lambda p, ctx: delta_ev(p.exposure_s, p.iso, p.f_number,
                                 (ctx.reference.exposure_s, ctx.reference.iso, ctx.reference.f_number)) / EV_MAX,
    "T": lambda p, ctx: (1e6 / p.wb_kelvin - 1e6 / ctx.scene_kelvin) / MIRED_MAX,
    "ISO": lambda p, ctx: math.log2(p.iso / ctx.reference.iso) / ISO_STOPS_MAX,
}
_ROLE_PHYSICAL = {f.physical for f in ROLE_FIELDS.values()}
if _ROLE_PHYSICAL != {f.name for f in dataclass_fields(PhysicalSettings)}:   # the one role <-> field table
    raise ImportError(f"rigs/camera/protocol.py ROLE_FIELDS names physical fields {sorted(_ROLE_PHYSICAL)}; "
                      "PhysicalSettings has other ones: keep the two in step")


def _n_for_k(c: Mapping[str, float], known: dict, ctx: MappingContext) -> float:
    # K = k(N)/k_max with k ∝ 1/N  →  N = k(1)/(K k_max)
    return bokeh_k_px(1.0, known["focal_mm"], known["focus_m"], ctx) / (c["K"] * ctx.k_max_px)


#: Inverse formula of each registry control: (control, the PhysicalSettings field it sets, formula), in the order
#: their dependencies allow (a formula may read fields set before it).
_INVERSE: tuple[tuple[str, str, object], ...] = (
    ("d_f", "focus_m", lambda c, known, ctx: 1.0 / (c["d_f"] * (1.0 / ctx.d_near_m - 1.0 / ctx.d_far_m)
                                                    + 1.0 / ctx.d_far_m)),
    ("f", "focal_mm", lambda c, known, ctx: ctx.marked_focal_mm(
        ctx.real_focal_mm(ctx.reference.focal_mm, ctx.reference.focus_m) * (1.0 + c["f"] * (ZOOM_MAX - 1.0)),
        known["focus_m"])),
    ("ISO", "iso", lambda c, known, ctx: ctx.reference.iso * 2.0 ** (c["ISO"] * ISO_STOPS_MAX)),
    ("K", "f_number", _n_for_k),
    ("S", "exposure_s", lambda c, known, ctx: relative_exposure(ctx.reference.exposure_s, ctx.reference.iso,
                                                                ctx.reference.f_number)
     * 2.0 ** (c["S"] * EV_MAX) * known["f_number"] ** 2 / known["iso"]),
    ("T", "wb_kelvin", lambda c, known, ctx: 1e6 / (c["T"] * MIRED_MAX + 1e6 / ctx.scene_kelvin)),
)


def check_mappings(forward: Mapping[str, object] = _FORWARD, inverse=_INVERSE) -> None:
    """A registry entry without its forward AND inverse formula is a programming error, found at import."""
    for what, names in (("forward formula (_FORWARD)", set(forward)),
                        ("inverse formula (_INVERSE)", {name for name, _, _ in inverse})):
        if names != set(controls.NAMES):
            raise ImportError(f"rigs/optics.py has a {what} for controls {sorted(names)} but the registry lists "
                              f"{sorted(controls.NAMES)}: give every registry control its formulas here")


check_mappings()


def to_controls(p: PhysicalSettings, ctx: MappingContext) -> dict[str, float]:
    """Every registry control (in registry order) of setting `p` (as marked on the camera) relative to `ctx`."""
    return {name: float(_FORWARD[name](p, ctx)) for name in controls.NAMES}


def to_physical(c: Mapping[str, float], ctx: MappingContext) -> PhysicalSettings:
    """Invert `to_controls`: the settings a camera would need for these controls (neutral where not given)."""
    c = controls.complete(c, check=False)
    known: dict[str, float] = {}
    for _, field_name, formula in _INVERSE:
        known[field_name] = float(formula(c, known, ctx))
    return PhysicalSettings(**known)
