"""Batched torch effect simulator for CineCtrl's controls, sharing its physics with rigs/optics.py.

Frames: (B, T, 3, H, W) sRGB in [0, 1]; disparity: (B, T, H, W) (1 = near), normalised per clip so the focus
plane d_f is stable over time. Work happens in linear light (optics.srgb_decode/encode); the control mapping
(K_max, zoom range, EV range, mired range, ISO stops) is optics'. Deterministic for a given seed; CPU or GPU.

With a calibration profile (`rigs.calibration.CalibrationProfile`, `profile=`) the frames are taken to come
from that body: they are linearised with its measured response instead of sRGB, white balance moves by its
measured gains per kelvin, and ISO adds its measured noise (photon-transfer curve). Sections the profile
lacks fall back to the ideal camera, as without a profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from rigs import controls as registry
from rigs import optics

#: layers of the gather bokeh renderer (blur radii between 0 and the clip's largest radius)
BOKEH_LAYERS = 12
HIGHLIGHT_THRESHOLD = 220.0 / 255.0   # BokehMe's demo: bright out-of-focus pixels become brighter "bokeh balls"
HIGHLIGHT_GAIN = 1.4
HIGHLIGHT_FULL_RADIUS_PX = 1.0        # the boost grows with the blur radius and is full from this radius on
SCENE_KELVIN = 5500.0                  # the scene light colour_temperature shifts the white balance from


def _linear(frames: torch.Tensor, profile=None) -> torch.Tensor:
    """Encoded frames (channels on axis -3) → linear light: the profile's response, or sRGB."""
    return optics.srgb_decode(frames) if profile is None else profile.to_linear(frames, channel_axis=-3)


def _encoded(linear: torch.Tensor, profile=None) -> torch.Tensor:
    return optics.srgb_encode(linear) if profile is None else profile.to_encoded(linear, channel_axis=-3)


#: the normalised disparity of a clip without depth (or a flat one): mid-range, so its blur follows |0.5 − d_f|;
#: the one rule the bokeh renderer, the physical maps and the bridge's simulator anchor share
FLAT_DISPARITY = 0.5


def normalise_disparity(disparity: torch.Tensor) -> torch.Tensor:
    """Min-max over each clip (all its frames), not per frame: d_f then means the same depth in every frame.
    A clip with no depth variation (or NaN: no depth) sits at FLAT_DISPARITY."""
    flat = disparity.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (disparity.ndim - 1)
    span = (hi - lo).view(shape)
    return torch.where(span > 1e-8, (disparity - lo.view(shape)) / span.clamp_min(1e-8),
                       torch.full_like(disparity, FLAT_DISPARITY))


def clip_disparity(disparity: torch.Tensor | None, frames: int, height: int, width: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """One clip's normalised disparity (T, H, W) on a (frames, height, width) grid: its own depth's where it has
    one, else flat at FLAT_DISPARITY (an item without depth, NaN in a collated batch, normalises to flat too)."""
    if disparity is None:
        return torch.full((frames, height, width), FLAT_DISPARITY, device=device)
    disp = normalise_disparity(disparity[None].float().to(device))[0]
    if disp.shape != (frames, height, width):
        disp = F.interpolate(disp[None, None], size=(frames, height, width), mode="trilinear")[0, 0]
    return disp


def defocus_radius_px(disp_n: torch.Tensor, K: float, d_f: float, width_px: int) -> torch.Tensor:
    """Blur radius r = K · K_max · |δ_n − d_f| with K_max from the shared control mapping (rigs.optics)."""
    return K * width_px * optics.K_MAX_FRACTION * (disp_n - d_f).abs()


def _disk(radius: float, device, dtype) -> torch.Tensor:
    n = int(math.ceil(radius))
    yy, xx = torch.meshgrid(torch.arange(-n, n + 1, device=device, dtype=dtype),
                            torch.arange(-n, n + 1, device=device, dtype=dtype), indexing="ij")
    k = (0.5 + 0.5 * torch.tanh(4 * (radius - torch.sqrt(yy ** 2 + xx ** 2)))).clamp_min(0)
    return k / k.sum()


def _fft_blur(img: torch.Tensor, radius: float) -> torch.Tensor:
    """Disk blur of (N, C, H, W) by FFT with reflect padding (cost independent of the radius)."""
    if radius < 0.5:
        return img
    k = _disk(radius, img.device, img.dtype)
    p = k.shape[-1] // 2
    x = F.pad(img, (p, p, p, p), mode="reflect") if p < min(img.shape[-2:]) else F.pad(img, (p, p, p, p), "replicate")
    h, w = x.shape[-2:]
    kf = torch.fft.rfft2(k, s=(h, w))
    out = torch.fft.irfft2(torch.fft.rfft2(x) * kf, s=(h, w))
    out = torch.roll(out, shifts=(-p, -p), dims=(-2, -1))
    return out[..., p:p + img.shape[-2], p:p + img.shape[-1]]


def _highlights(linear: torch.Tensor, radius: torch.Tensor, profile=None) -> torch.Tensor:
    """Bright pixels gain up to HIGHLIGHT_GAIN as their blur radius grows to HIGHLIGHT_FULL_RADIUS_PX: a clipped
    highlight's lost energy shows as it spreads, so the boost rises with K continuously (a boost switched on at
    a radius makes the picture's sharpness jump along a bokeh sweep where the camera's changes smoothly)."""
    bright = _encoded(linear, profile).amax(dim=-3, keepdim=True) > HIGHLIGHT_THRESHOLD
    spread = (radius / HIGHLIGHT_FULL_RADIUS_PX).clamp(0.0, 1.0).unsqueeze(-3)
    return torch.where(bright, linear * (1.0 + (HIGHLIGHT_GAIN - 1.0) * spread), linear)


def bokeh(frames: torch.Tensor, disparity: torch.Tensor, K: float, d_f: float, gamma: float = 2.2,
          profile=None) -> torch.Tensor:
    """Layered gather renderer: disk-blur the frame at BOKEH_LAYERS radii (FFT), blend per pixel between the two
    layers around its own radius. Rendered in linear light (a 2.2 power law, or the profile's response) with
    highlight boost; returns encoded frames."""
    if K <= 0:
        return frames
    b, t, c, h, w = frames.shape
    radius = defocus_radius_px(normalise_disparity(disparity), K, d_f, w)      # (B, T, H, W)
    linear = frames.clamp(0, 1) ** gamma if profile is None else _linear(frames.clamp(0, 1), profile)
    lin = _highlights(linear, radius, profile)
    r_max = float(radius.max())
    radii = torch.linspace(0, r_max, BOKEH_LAYERS, device=frames.device)
    flat = lin.reshape(b * t, c, h, w)
    stack = torch.stack([_fft_blur(flat, float(r)) for r in radii])            # (L, BT, C, H, W)
    pos = (radius.reshape(b * t, 1, h, w) / max(r_max, 1e-8)) * (BOKEH_LAYERS - 1)
    lo = pos.floor().clamp(0, BOKEH_LAYERS - 2).long()
    frac = (pos - lo).clamp(0, 1)
    lo_img = torch.gather(stack, 0, lo.unsqueeze(0).expand(1, -1, c, -1, -1)).squeeze(0)
    hi_img = torch.gather(stack, 0, (lo + 1).unsqueeze(0).expand(1, -1, c, -1, -1)).squeeze(0)
    out = (lo_img * (1 - frac) + hi_img * frac).clamp(0, 1)
    out = out.pow(1 / gamma) if profile is None else _encoded(out, profile)
    return out.reshape(b, t, c, h, w)


def reference_scatter_bokeh(frames: torch.Tensor, disparity: torch.Tensor, K: float, d_f: float,
                            gamma: float = 2.2) -> torch.Tensor:
    """Straightforward scatter (BokehMe classical weights): every pixel splats onto its square neighbourhood with
    w = (0.5 + 0.5 tanh(4 (|r| − dist))) / (r² + 0.2). One shifted accumulation per offset. Benchmark reference."""
    if K <= 0:
        return frames
    b, t, c, h, w = frames.shape
    radius = defocus_radius_px(normalise_disparity(disparity), K, d_f, w).reshape(b * t, 1, h, w)
    lin = _highlights(frames.clamp(0, 1) ** gamma, radius.reshape(b, t, h, w)).reshape(b * t, c, h, w)
    n = int(math.floor(float(radius.max()))) + 1
    acc = torch.zeros_like(lin)
    norm = torch.zeros_like(radius)
    for dy in range(-n, n + 1):
        for dx in range(-n, n + 1):
            wgt = (0.5 + 0.5 * torch.tanh(4 * (radius - math.hypot(dy, dx)))) / (radius ** 2 + 0.2)
            acc += torch.roll(wgt * lin, shifts=(dy, dx), dims=(-2, -1))
            norm += torch.roll(wgt, shifts=(dy, dx), dims=(-2, -1))
    out = acc / norm.clamp_min(1e-12)
    return out.clamp(0, 1).pow(1 / gamma).reshape(b, t, c, h, w)


def exposure(frames: torch.Tensor, S: float, profile=None) -> torch.Tensor:
    """ΔEV = S · EV_MAX (optics' mapping): linearise, scale by 2^ΔEV, clip at the sensor's full well, re-encode."""
    return _encoded(_linear(frames, profile) * 2.0 ** (S * optics.EV_MAX), profile)


def exposure_image(image: np.ndarray, gain: float, curve) -> np.ndarray:
    """`exposure` of one (H, W, 3) uint8 image by a gain (not a control value), with `curve` as the profile, as
    float codes: the prediction the calibration's held-out test scores a curve with (its `predict`), so the
    curve is judged on the path the simulator edits with."""
    clip = torch.from_numpy(np.ascontiguousarray(image)).float().div(255).permute(2, 0, 1)[None, None]
    out = exposure(clip, math.log2(gain) / optics.EV_MAX, profile=curve)
    return (out[0, 0].permute(1, 2, 0).clamp(0, 1) * 255).numpy()


def colour_temperature(frames: torch.Tensor, T: float, scene_kelvin: float = SCENE_KELVIN, profile=None) -> torch.Tensor:
    """T · MIRED_MAX mired shift of the camera's white balance from the scene's: the ideal gains
    (optics.white_balance_gains), or the profile's measured ones."""
    camera_kelvin = 1e6 / (1e6 / scene_kelvin + T * optics.MIRED_MAX)
    if profile is None:
        return optics.srgb_encode(optics.apply_white_balance(optics.srgb_decode(frames), scene_kelvin, camera_kelvin,
                                                             channel_axis=-3))
    gains = torch.as_tensor(profile.white_balance_shift(scene_kelvin, scene_kelvin, camera_kelvin),
                            dtype=frames.dtype, device=frames.device).reshape(3, 1, 1)
    return _encoded(_linear(frames, profile) * gains, profile)


def zoom(frames: torch.Tensor, f: float) -> torch.Tensor:
    """Centre crop by optics.crop_ratio (F_base / F, F = F_base (1 + f (ZOOM_MAX − 1))) and bicubic resize back."""
    if f <= 0:
        return frames
    b, t, c, h, w = frames.shape
    ratio = optics.crop_ratio(1.0, 1.0 + f * (optics.ZOOM_MAX - 1.0))
    ys = (torch.arange(h, device=frames.device, dtype=frames.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=frames.device, dtype=frames.dtype) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys * ratio, xs * ratio, indexing="ij")
    grid = torch.stack([gx, gy], -1).expand(b * t, h, w, 2)
    out = F.grid_sample(frames.reshape(b * t, c, h, w), grid, mode="bicubic", align_corners=False,
                        padding_mode="border")
    return out.clamp(0, 1).reshape(b, t, c, h, w)


def shutter_blur(frames: torch.Tensor, fraction: float, subframes: int = 8, profile=None) -> torch.Tensor:
    """Motion blur from the clip's own motion: average `subframes` linear blends between frame i and i+1 over
    the open `fraction` of the frame interval (0 = no blur, 1 = 360° shutter)."""
    if fraction <= 0 or frames.shape[1] < 2:
        return frames
    lin = _linear(frames, profile)
    nxt = torch.cat([lin[:, 1:], lin[:, -1:]], dim=1)
    weights = torch.linspace(0, fraction, subframes, device=frames.device, dtype=frames.dtype)
    acc = sum(lin * (1 - a) + nxt * a for a in weights) / subframes
    return _encoded(acc, profile)


def iso_noise(frames: torch.Tensor, iso: float, generator: torch.Generator, profile=None,
              pixel_area: float = 1.0) -> torch.Tensor:
    """Noise for a gain of 2^(iso · ISO_STOPS_MAX) stops over the reference (brightness unchanged): the variance
    the sensor adds between the reference's gain and the target's (the frame already carries the reference's
    own noise). The sensor is the profile's photon-transfer curve when it measured one, else the ideal body's
    (`rigs.optics.Sensor`: shot noise + read noise, the reference at base ISO), as the simulated camera draws
    it. `pixel_area`: sensor pixels one pixel of `frames` integrates (a clip shrunk 2x per side: 4), since
    averaging k independent pixels divides the variance by k."""
    if iso <= 0:
        return frames
    gain = 2.0 ** (iso * optics.ISO_STOPS_MAX)
    lin = _linear(frames, profile)
    if profile is not None and profile.noise is not None:
        base = profile.noise.base_iso
        added = profile.noise_variance(lin, base * gain) - profile.noise_variance(lin, base)
    else:
        sensor = optics.Sensor()
        variance = lambda g: lin.clamp_min(0.0) * g / sensor.full_well_e + (sensor.read_noise_e * g / sensor.full_well_e) ** 2  # noqa: E731
        added = variance(gain) - variance(1.0)
    noise = torch.randn(lin.shape, generator=generator, device=lin.device, dtype=lin.dtype)
    return _encoded(lin + noise * (added.clamp_min(0.0) / max(float(pixel_area), 1.0)).sqrt(), profile)


@dataclass(frozen=True)
class Effect:
    """One step of the simulated camera: the registry controls it reads and how it renders them."""

    stage: int                    # camera order: 0 optics, 1 motion, 2 exposure, 3 white balance, 4 sensor
    uses: tuple[str, ...]         # registry controls (rigs/controls.py) it reads; () = not a control (motion)
    apply: Callable[..., torch.Tensor]     # (frames, controls, disparity=, profile=, shutter=, generator=)


def _bokeh_step(x, c, *, disparity, profile, **_):
    if c["K"] <= 0:
        return x
    if disparity is None:
        raise ValueError("bokeh (K > 0) needs the clip's disparity or depth: give a depth file")
    return bokeh(x, disparity, c["K"], c["d_f"], profile=profile)


#: Every registry control's effect, keyed by the control it renders (d_f is read by bokeh). An import-time check
#: below refuses a registry control no effect reads, so a new control cannot be silently left unsimulated.
EFFECTS: dict[str, Effect] = {
    "K": Effect(0, ("K", "d_f"), _bokeh_step),
    "f": Effect(0, ("f",), lambda x, c, **_: zoom(x, c["f"])),
    "motion": Effect(1, (), lambda x, c, *, shutter, profile, **_: shutter_blur(x, shutter, profile=profile)),
    "S": Effect(2, ("S",), lambda x, c, *, profile, **_: exposure(x, c["S"], profile=profile)),
    "T": Effect(3, ("T",), lambda x, c, *, profile, **_: colour_temperature(x, c["T"], profile=profile)),
    "ISO": Effect(4, ("ISO",), lambda x, c, *, profile, generator, pixel_area=1.0, **_: iso_noise(
        x, c["ISO"], generator, profile=profile, pixel_area=pixel_area)),
}


def check_effects(effects: Mapping[str, Effect] = EFFECTS) -> None:
    """Every registry control is read by an effect, and every effect reads only registry controls."""
    read = {name for effect in effects.values() for name in effect.uses}
    if read != set(registry.NAMES):
        raise ImportError(f"train/effects.py simulates controls {sorted(read)} but the registry lists "
                          f"{sorted(registry.NAMES)}: give every registry control its effect in EFFECTS")


check_effects()


def simulate(frames: torch.Tensor, disparity: torch.Tensor | None, controls: Mapping[str, float], *,
             seed: int = 0, shutter: float = 0.0, profile=None, pixel_area: float = 1.0) -> torch.Tensor:
    """All effects in a camera's order (EFFECTS by stage: optics, motion, exposure, white balance, sensor noise);
    in the linear space of `profile`'s body when given (else the ideal camera's). `pixel_area`: sensor pixels per
    pixel of `frames` (the noise of a downscaled clip is averaged down with it)."""
    controls = registry.complete(controls)      # unknown names and out-of-range values are refused here
    generator = torch.Generator(device=frames.device).manual_seed(seed)
    out = frames
    for effect in sorted(EFFECTS.values(), key=lambda e: e.stage):       # stable: K before f within optics
        out = effect.apply(out, controls, disparity=disparity, profile=profile, shutter=shutter, generator=generator,
                           pixel_area=pixel_area)
    return out


def simulate_batch(video: torch.Tensor, controls: torch.Tensor, disparity: torch.Tensor | None, *,
                   seed: int = 0) -> torch.Tensor:
    """The simulator's render of each item's controls in the working spaces' form: (B, 3, T, H, W) in [-1, 1] +
    (B, len(registry)) controls (+ (B, T, H, W) disparity, NaN for an item without depth, or None) -> the same
    form. Bokeh uses the item's disparity, else the flat rule (`clip_disparity`); ISO noise is seeded by `seed`
    (deterministic); items with neutral controls come back unchanged. One simulate per item (controls differ)."""
    neutral = torch.tensor(registry.vector({}), dtype=controls.dtype, device=controls.device)
    b, _, t, h, w = video.shape
    out = video.clone()
    for i in range(b):
        if torch.equal(controls[i], neutral):
            continue
        c = {name: float(controls[i, j]) for j, name in enumerate(registry.NAMES)}
        disp = clip_disparity(None if disparity is None else disparity[i], t, h, w, video.device)
        frames = ((video[i:i + 1].float() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4)       # (1, T, 3, H, W)
        rendered = simulate(frames, disp[None], c, seed=seed).clamp(0, 1)
        out[i] = (rendered[0].permute(1, 0, 2, 3) * 2 - 1).to(out.dtype)
    return out


def simulate_uint8(frames, controls: Mapping[str, float], *, disparity=None, seed: int = 0, profile=None,
                   pixel_area: float = 1.0):
    """`simulate` in the form the data pipeline and evaluation use: (T, H, W, 3) uint8 frames in and out.

    `disparity` (T, H, W) is needed only for bokeh (K > 0); without it `simulate` refuses with a message
    that says to give a depth file, so callers can skip that effect for clips without depth."""
    import numpy as np

    clip = torch.tensor(np.asarray(frames)).float().div(255.0).permute(0, 3, 1, 2)[None]
    disp = None if disparity is None else torch.as_tensor(np.asarray(disparity), dtype=torch.float32)[None]
    out = simulate(clip, disp, controls, seed=seed, profile=profile, pixel_area=pixel_area)
    return (out[0].permute(0, 2, 3, 1).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------------------ physical maps

#: The per-pixel maps the model can be given besides the scalar controls (Generative Photography feeds such
#: physical embeddings): each is the simulator's own quantity for the asked controls, zero at neutral controls.
MAP_NAMES = ("blur_radius", "zoom_dx", "zoom_dy", "exposure_ev", "wb_log2_r", "wb_log2_g", "wb_log2_b", "iso_stops")


def control_maps(controls: torch.Tensor, disparity: torch.Tensor | None, frames: int, height: int,
                 width: int) -> torch.Tensor:
    """(B, len(registry)) controls (+ (B, T, H, W) disparity, NaN for an item without depth, or None) ->
    (B, len(MAP_NAMES), T, H, W) maps:
    - blur_radius: the bokeh renderer's radius (defocus_radius_px) as a fraction of the width; without depth the
      clip is taken as flat at FLAT_DISPARITY (the radius then only says how strongly and where focus is);
    - zoom_dx, zoom_dy: where each output pixel samples the source (zoom's centre crop), in half-widths;
    - exposure_ev: ΔEV of S; wb_log2_*: log2 of the white-balance gains of T; iso_stops: the gain of ISO."""
    b = controls.shape[0]
    device = controls.device
    index = {name: i for i, name in enumerate(registry.NAMES)}
    out = torch.zeros(b, len(MAP_NAMES), frames, height, width, device=device)
    ys = (torch.arange(height, device=device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    for i in range(b):
        c = {name: float(controls[i, j]) for name, j in index.items()}
        disp = clip_disparity(None if disparity is None else disparity[i], frames, height, width, device)
        out[i, 0] = defocus_radius_px(disp, c["K"], c["d_f"], width) / width
        ratio = optics.crop_ratio(1.0, 1.0 + c["f"] * (optics.ZOOM_MAX - 1.0))
        out[i, 1] = gx * (ratio - 1.0)
        out[i, 2] = gy * (ratio - 1.0)
        out[i, 3] = c["S"] * optics.EV_MAX
        camera_kelvin = 1e6 / (1e6 / SCENE_KELVIN + c["T"] * optics.MIRED_MAX)
        for k, gain in enumerate(optics.white_balance_gains(SCENE_KELVIN, camera_kelvin)):
            out[i, 4 + k] = math.log2(gain)
        out[i, 7] = c["ISO"] * optics.ISO_STOPS_MAX
    return out
