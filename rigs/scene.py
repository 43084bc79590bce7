"""Procedural scenes with known geometry, so every simulated frame comes with its true depth.

A scene is a stack of fronto-parallel textured planes at known distances (a background wall and a few
cards in front of it). Each plane carries fine texture (blur is measurable), a few bright specular points
(bokeh discs appear) and one of them a colour chart (white balance is measurable). The camera sits on
the slider: a pose moves it along x (mm) and optionally pans it. Rendering is a pinhole projection of
every plane; optics (depth of field, exposure, white balance) is applied afterwards by the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .optics import focal_px

CHART = np.array([  # linear reflectances of a few ColorChecker-like patches
    [0.18, 0.18, 0.18], [0.90, 0.90, 0.90], [0.03, 0.03, 0.03], [0.45, 0.08, 0.06],
    [0.07, 0.30, 0.08], [0.06, 0.10, 0.45], [0.60, 0.50, 0.05], [0.35, 0.35, 0.35],
], dtype=np.float32)


@dataclass
class Layer:
    depth_m: float
    x_m: tuple[float, float]            # horizontal extent in world metres (camera at x = 0 when pose 0)
    y_m: tuple[float, float]            # vertical extent (up is negative y in the image)
    texture: np.ndarray                 # (h, w, 3) linear reflectance tile, repeated over the plane
    texel_m: float                      # size of one texel in metres
    velocity_m_s: float = 0.0           # a moving object slides along x


@dataclass
class Scene:
    layers: list[Layer]                 # far to near
    illuminant_kelvin: float = 5500.0
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def depth_range_m(self) -> tuple[float, float]:
        depths = [layer.depth_m for layer in self.layers]
        return min(depths), max(depths)


def _texture(rng: np.random.Generator, size: int, tint: np.ndarray, specular: int) -> np.ndarray:
    base = rng.uniform(0.08, 0.6, (size, size, 1)).astype(np.float32)
    fine = rng.uniform(0.7, 1.3, (size, size, 1)).astype(np.float32)
    tex = base * fine * tint[None, None, :]
    for _ in range(specular):           # bright points: radiance far above diffuse white
        y, x = rng.integers(1, size - 1, 2)
        tex[y, x, :] = 12.0
    return tex


def default_scene(seed: int = 0, *, moving_object: bool = False) -> Scene:
    """A tabletop: wall at 6 m, cards at 3 m and 1.5 m, a chart card at 0.8 m."""
    rng = np.random.default_rng(seed)
    wall = Layer(6.0, (-20.0, 20.0), (-10.0, 10.0),
                 _texture(rng, 256, np.array([0.9, 0.85, 0.8], np.float32), 40), texel_m=0.02)
    mid = Layer(3.0, (-0.9, 0.5), (-0.6, 0.8),
                _texture(rng, 128, np.array([0.6, 0.8, 1.0], np.float32), 12), texel_m=0.006)
    near = Layer(1.5, (0.05, 0.6), (-0.35, 0.45),
                 _texture(rng, 128, np.array([1.0, 0.7, 0.5], np.float32), 6), texel_m=0.003,
                 velocity_m_s=0.05 if moving_object else 0.0)
    chart_tex = np.repeat(np.repeat(CHART.reshape(2, 4, 3), 16, axis=0), 16, axis=1)
    chart = Layer(0.8, (-0.25, -0.05), (0.02, 0.12), chart_tex, texel_m=0.2 / 64)
    return Scene([wall, mid, near, chart], seed=seed)


ILLUMINANTS_K = (3000.0, 3800.0, 4500.0, 5500.0, 6500.0, 7500.0)


def _natural_texture(rng: np.random.Generator, size: int, tint: np.ndarray, specular: int) -> np.ndarray:
    """Structure at every scale, as surfaces have: smooth blotches, a few hard-edged shapes and stripes, and a
    light fine grain (not the pure per-texel noise of `_texture`, which no camera-sized image resolves)."""
    import cv2  # noqa: PLC0415

    field = np.zeros((size, size), np.float32)
    freq = np.fft.fftfreq(size)
    radius2 = freq[:, None] ** 2 + freq[None, :] ** 2
    for sigma, weight in ((size / 6, 0.5), (size / 20, 0.35), (1.0, 0.12)):
        noise = rng.standard_normal((size, size))
        # periodic Gaussian blur (the texture tiles the plane, so it must wrap without seams)
        blurred = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * sigma) ** 2 * radius2)))
        field += (weight * blurred / max(float(blurred.std()), 1e-6)).astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):                  # hard edges: rectangles, discs and stripes
        value = float(rng.uniform(-1.5, 1.5))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(size // 16, size // 4))
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(field, (x - r, y - r // 2), (x + r, y + r // 2), value, -1)
        elif kind == 1:
            cv2.circle(field, (x, y), r, value, -1)
        else:
            cv2.line(field, (x - r, y - r), (x + r, y + r), value, max(1, r // 6))
    reflect = np.clip(0.32 + 0.12 * field, 0.03, 0.9)[..., None]
    colour = np.clip(tint[None, None, :] * (1.0 + 0.15 * rng.standard_normal((1, 1, 3))), 0.05, None)
    tex = (reflect * colour).astype(np.float32)
    for _ in range(specular):
        y, x = rng.integers(1, size - 1, 2)
        tex[y, x, :] = 12.0
    return tex


def varied_scene(seed: int) -> Scene:
    """One of a family of scenes that differ in depth layout, textures, colours and illuminant: a wall at
    4-9 m and two to four cards between 0.6 m and 4 m, spread around the slider's working range so that each
    is seen from 24 mm to 70 mm; every card has its own tint, texture scale and highlights, one of them
    sometimes a colour chart. Deterministic for a seed (a lab day's "scene N" is `varied_scene(N)`)."""
    rng = np.random.default_rng(10_000 + seed)
    light = float(rng.uniform(2.0, 3.5))     # studio lights: the set is brighter than the default tabletop
    hue = lambda: (light * rng.uniform(0.35, 1.0, 3)).astype(np.float32)  # noqa: E731 - a random tint
    wall_depth = float(rng.uniform(4.0, 9.0))
    layers = [Layer(wall_depth, (-30.0, 30.0), (-15.0, 15.0),
                    _natural_texture(rng, 256, hue(), int(rng.integers(10, 60))), texel_m=float(rng.uniform(0.01, 0.03)))]
    count = int(rng.integers(2, 5))
    far_cards = rng.uniform(1.2, min(4.0, wall_depth - 0.5), count - 1)
    depths = np.sort(np.append(far_cards, rng.uniform(0.6, 1.2)))[::-1]    # far to near; one card within 1.2 m
    for i, depth in enumerate(depths):
        half_w = float(rng.uniform(0.08, 0.2)) * depth
        half_h = float(rng.uniform(0.06, 0.16)) * depth
        cx = 0.13 + float(rng.uniform(-0.15, 0.15)) * depth
        cy = float(rng.uniform(-0.08, 0.08)) * depth
        if i == count - 1 and rng.random() < 0.6:     # the nearest card is often a chart
            texture = light * np.repeat(np.repeat(CHART.reshape(2, 4, 3), 16, axis=0), 16, axis=1)
            texel = 2 * half_w / 64
        else:
            texture = _natural_texture(rng, 128, hue(), int(rng.integers(2, 16)))
            texel = float(rng.uniform(0.003, 0.008)) * depth
        layers.append(Layer(float(depth), (cx - half_w, cx + half_w), (cy - half_h, cy + half_h), texture, texel))
    illuminant = float(ILLUMINANTS_K[int(rng.integers(len(ILLUMINANTS_K)))])
    return Scene(layers, illuminant_kelvin=illuminant, seed=seed, meta={"layout": "varied"})


def render(scene: Scene, *, x_mm: float = 0.0, pan_deg: float = 0.0, focal_mm: float = 35.0,
           width: int = 640, height: int = 480, time_s: float = 0.0,
           sensor_width_mm: float = 36.0) -> tuple[list[tuple[np.ndarray, np.ndarray, float]], np.ndarray]:
    """Pinhole render: per layer (far to near) its radiance and coverage, plus the composite depth map.

    Returns ``([(rgb (H,W,3), alpha (H,W), depth_m), ...], depth (H,W))``; the all-in-focus image is the
    layers composited over each other.
    """
    fpx = focal_px(focal_mm, width, sensor_width_mm)
    u = (np.arange(width, dtype=np.float32) - (width - 1) / 2.0) / fpx
    v = (np.arange(height, dtype=np.float32) - (height - 1) / 2.0) / fpx
    tan_pan = math.tan(math.radians(pan_deg))
    cam_x = x_mm / 1000.0
    depth = np.full((height, width), np.inf, np.float32)
    out = []
    for layer in scene.layers:
        z = layer.depth_m
        world_x = cam_x + (u + tan_pan) * z - layer.velocity_m_s * time_s
        world_y = v * z
        inside_x = (world_x >= layer.x_m[0]) & (world_x < layer.x_m[1])
        inside_y = (world_y >= layer.y_m[0]) & (world_y < layer.y_m[1])
        alpha = np.zeros((height, width), np.float32)
        rgb = np.zeros((height, width, 3), np.float32)
        cols, rows = np.flatnonzero(inside_x), np.flatnonzero(inside_y)
        if cols.size and rows.size:     # a plane is a rectangle: texture only its bounding box
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            th, tw, _ = layer.texture.shape
            tx = np.floor((world_x[box[1]] - layer.x_m[0]) / layer.texel_m).astype(np.intp) % tw
            ty = np.floor((world_y[box[0]] - layer.y_m[0]) / layer.texel_m).astype(np.intp) % th
            alpha[box] = 1.0
            rgb[box] = layer.texture[ty[:, None], tx[None, :]]
            depth[box] = np.float32(z)
        out.append((rgb, alpha, z))
    depth = np.where(np.isinf(depth), np.float32(scene.layers[0].depth_m), depth)
    return out, depth


def composite(layers: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """All-in-focus radiance: near layers over far ones."""
    image = np.zeros_like(layers[0][0])
    for rgb, alpha, _ in layers:
        image = image * (1.0 - alpha[..., None]) + rgb
    return image
