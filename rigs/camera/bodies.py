"""Simulated bodies and lenses for `SimCamera`: the ideal camera, and bodies that hide how they differ from it.

The ideal body is what every physical formula of the toolkit assumes: an sRGB response, textbook white
balance, the nominal focal length and f-number of a thin lens, no vignetting or distortion, and the default
`optics.Sensor`. A real body departs from each of those; `SECRET` departs on purpose, so calibration can be
tested end to end here: calibrating it with `examples/calibration/*.toml` must recover what it hides, and
only the tests and the benchmark read its fields to check the answer.

Everything is pure numpy on linear light, in the order a body applies it: lens (real focal length with
breathing, effective f-number, distortion, vignetting) → white balance (the ideal gains times the body's bias)
→ sensor (`optics.Sensor` with its own well and read noise) → response (the body's tone curve to 8 bits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import optics


@dataclass(frozen=True)
class SimBody:
    """A body + lens. Defaults are the ideal camera; every field is one way a real one differs."""

    name: str = "ideal"
    # response: code = ((1 + k) L / (L + k)) ** (1 / gamma) per channel (a power law with a shoulder);
    # gammas None = sRGB
    gammas: tuple[float, float, float] | None = None
    shoulder: float = 0.0
    # white balance: the ideal gains times bias · (1 + tint · (mired − 182)) per channel
    wb_bias: tuple[float, float, float] = (1.0, 1.0, 1.0)
    wb_tint_per_mired: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # lens: real focal length = nominal · (focal_scale + focal_slope_per_mm · nominal), shortened by
    # breathing: · (1 − breathing_m / focus_m)
    focal_scale: float = 1.0
    focal_slope_per_mm: float = 0.0
    breathing_m: float = 0.0
    aperture_scale: float = 1.0          # effective f-number = marked f-number · aperture_scale
    distortion_k1: float = 0.0           # radial, on coordinates normalised by the focal length in pixels
    vignetting: float = 0.0              # irradiance · (1 + vignetting · r²)⁻², r = 1 at the frame's corner
    full_well_e: float = optics.Sensor.full_well_e
    read_noise_e: float = optics.Sensor.read_noise_e

    # ------------------------------------------------------------------ lens
    def real_focal_mm(self, nominal_mm: float, focus_m: float) -> float:
        real = nominal_mm * (self.focal_scale + self.focal_slope_per_mm * nominal_mm)
        return real * (1.0 - self.breathing_m / focus_m)

    def effective_f_number(self, marked: float) -> float:
        return marked * self.aperture_scale

    def vignette(self, height: int, width: int) -> np.ndarray | None:
        """Relative irradiance (H, W) across the frame, or None for a flat lens."""
        if not self.vignetting:
            return None
        y = (np.arange(height, dtype=np.float32) - (height - 1) / 2.0)[:, None]
        x = (np.arange(width, dtype=np.float32) - (width - 1) / 2.0)[None, :]
        r2 = (x * x + y * y) / ((width / 2.0) ** 2 + (height / 2.0) ** 2)
        return (1.0 + self.vignetting * r2) ** -2

    def distort(self, image: np.ndarray, focal_px: float, *, nearest: bool = False) -> np.ndarray:
        """Resample a pinhole image through radial distortion (what the sensor sees through the real lens);
        `nearest` for maps that must not blend (depth)."""
        if not self.distortion_k1:
            return image
        import cv2  # noqa: PLC0415

        h, w = image.shape[:2]
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        xd, yd = (xs - cx) / focal_px, (ys - cy) / focal_px
        xu, yu = xd.copy(), yd.copy()
        for _ in range(8):   # invert x_d = x_u (1 + k1 r_u²) by fixed-point iteration
            factor = 1.0 + self.distortion_k1 * (xu * xu + yu * yu)
            xu, yu = xd / factor, yd / factor
        return cv2.remap(image, xu * focal_px + cx, yu * focal_px + cy,
                         cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    # ------------------------------------------------------------------ colour and sensor
    def white_balance_gains(self, scene_kelvin: float, camera_kelvin: float) -> np.ndarray:
        ideal = np.asarray(optics.white_balance_gains(scene_kelvin, camera_kelvin), np.float64)
        mired = 1e6 / camera_kelvin - 1e6 / 5500.0
        bias = np.asarray(self.wb_bias) * (1.0 + np.asarray(self.wb_tint_per_mired) * mired)
        return (ideal * bias).astype(np.float32)

    def sensor(self) -> optics.Sensor:
        return optics.Sensor(full_well_e=self.full_well_e, read_noise_e=self.read_noise_e)

    # ------------------------------------------------------------------ response
    def encode(self, linear: np.ndarray) -> np.ndarray:
        """Linear [0, 1] (1 = full well) → encoded [0, 1], per channel on the last axis."""
        if self.gammas is None:
            return optics.srgb_encode(linear)
        lin = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
        k = self.shoulder
        compressed = (1.0 + k) * lin / (lin + k) if k else lin
        return np.power(compressed, 1.0 / np.asarray(self.gammas)).astype(np.float32)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """The exact inverse of `encode` (the truth a response calibration is checked against)."""
        if self.gammas is None:
            return optics.srgb_decode(encoded)
        u = np.power(np.clip(np.asarray(encoded, np.float64), 0.0, 1.0), np.asarray(self.gammas))
        k = self.shoulder
        return k * u / ((1.0 + k) - u) if k else u


IDEAL = SimBody()

#: A body whose every difference from the ideal is known here and nowhere else: a shouldered power-law
#: response with unequal channels, a green-magenta and warm white-balance bias that drifts with the setting,
#: a zoom whose real focal lengths bend away from the marked ones, breathing, f-numbers a third of a stop
#: optimistic, barrel distortion, vignetting and a smaller, noisier sensor well.
SECRET = SimBody(
    name="secret",
    gammas=(1.55, 1.65, 1.8), shoulder=0.35,
    wb_bias=(1.08, 1.0, 0.90), wb_tint_per_mired=(0.0004, 0.0, -0.0003),
    focal_scale=1.07, focal_slope_per_mm=-0.0012, breathing_m=0.02,
    aperture_scale=1.12, distortion_k1=-0.06, vignetting=0.3,
    full_well_e=18000.0, read_noise_e=6.0,
)

BODIES: dict[str, SimBody] = {"ideal": IDEAL, "secret": SECRET}


def body_named(name: str | SimBody) -> SimBody:
    if isinstance(name, SimBody):
        return name
    try:
        return BODIES[str(name)]
    except KeyError:
        raise ValueError(f"SimCamera body {name!r} is unknown; bodies are {', '.join(BODIES)}") from None

