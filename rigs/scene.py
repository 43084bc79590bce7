"""Procedural scenes with known geometry, so every simulated frame comes with its true depth.

A scene is a stack of textured planes at known distances (a background wall and a few cards in front of
it). Each plane carries fine texture (blur is measurable), a few bright specular points (bokeh discs appear)
and one of them a colour chart (white balance is measurable). The camera sits on the slider: a pose moves
it along x (mm) and optionally pans it. Rendering is a pinhole projection of every plane; optics (depth of
field, exposure, white balance) is applied afterwards by the camera.

Besides the tabletop, `SCENES` holds the targets calibration needs (docs/calibration.md): a tilted
checkerboard (focal length, distortion, breathing), a step chart of flat grey patches (response), a grey card (white balance), a slanted high-contrast
edge at a known distance (defocus scale) and a flat field (noise). Planes are fronto-parallel unless a
layer is tilted (`tilt_deg`: yaw, pitch, roll about its anchor on the optical axis).
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
    tilt_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)   # yaw, pitch, roll about its anchor;
    # a tilted layer's x_m/y_m are coordinates along its own (rotated) axes
    antialias: int = 1                  # tilted layers: samples per pixel along each axis (printed targets)
    anchor_x_m: float = 0.0             # tilted layers: the anchor is (anchor_x_m, 0, depth_m)

    @property
    def tilted(self) -> bool:
        return any(self.tilt_deg)

    def axes(self) -> np.ndarray:
        """Columns: the plane's x axis, y axis and normal in camera coordinates (x right, y down, z ahead)."""
        yaw, pitch, roll = (math.radians(a) for a in self.tilt_deg)
        ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
        rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
        return ry @ rx @ rz


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


def _wall(rng: np.random.Generator, depth_m: float = 6.0, grey: float = 0.35) -> Layer:
    """A plain, slightly textured background wall wide enough for the widest lens."""
    tex = grey * rng.uniform(0.85, 1.15, (64, 64, 1)).astype(np.float32) * np.ones(3, np.float32)
    return Layer(depth_m, (-30.0, 30.0), (-20.0, 20.0), tex, texel_m=0.05)


def step_chart_scene(seed: int = 0, *, columns: int = 8, rows: int = 6, brightest: float = 0.9,
                     step_stops: float = 1 / 6, tint: float = 0.15, distance_m: float = 1.5,
                     patch_m: float = 0.2) -> Scene:
    """A chart of large flat patches in shuffled order, each level `step_stops` below the next (48 patches span
    8 stops), every channel tinted at random by about `tint` (as a many-patch colour chart): the response
    target. Flat patches keep JPEG's chroma subsampling and ringing near clipped areas from blurring which code
    a level maps to; with a 1/3-stop bracket some patch lands on every code; and the tints vary each channel
    on its own, so JPEG's colour quantisation does not bias one channel against another (measured: neutral
    patches leave the channels' scales 2.5 % apart, tinted ones under 1 %)."""
    rng = np.random.default_rng(seed)
    levels = brightest * 2.0 ** (-step_stops * np.arange(columns * rows))
    grey = rng.permutation(levels).reshape(rows, columns, 1)
    tex = np.minimum(grey * np.exp(rng.normal(0.0, tint, (rows, columns, 3))), 0.95).astype(np.float32)
    w, h = columns * patch_m, rows * patch_m
    chart = Layer(distance_m, (-w / 2, w / 2), (-h / 2, h / 2), np.ascontiguousarray(tex), texel_m=patch_m)
    return Scene([_wall(rng), chart], seed=seed, meta={"kind": "step_chart", "levels": levels.tolist(),
                                                        "distance_m": distance_m})


def checkerboard_scene(seed: int = 0, *, columns: int = 12, rows: int = 9, square_m: float = 0.04,
                       distance_m: float = 1.4, yaw_deg: float = 40.0, pitch_deg: float = 25.0,
                       centre_x_m: float = 0.0) -> Scene:
    """A printed checkerboard (`columns` x `rows` inner corners, white margin of one square) tilted towards the
    camera in front of a grey wall: the target of `cv2.calibrateCamera` (a tilted board fixes the focal length
    from a single view; slider positions spread its corners over the frame for the distortion). `centre_x_m`
    puts it in front of that slider position (0.3 = the middle of a 600 mm slider)."""
    rng = np.random.default_rng(seed)
    squares = np.indices((rows + 1, columns + 1)).sum(axis=0) % 2
    board = np.pad(np.where(squares == 0, 0.04, 0.85), 1, constant_values=0.85).astype(np.float32)
    tex = board[..., None] * np.ones(3, np.float32)
    width, height = (columns + 3) * square_m, (rows + 3) * square_m
    target = Layer(distance_m, (-width / 2, width / 2), (-height / 2, height / 2), tex, texel_m=square_m,
                   tilt_deg=(yaw_deg, pitch_deg, 0.0), antialias=3, anchor_x_m=centre_x_m)
    return Scene([_wall(rng), target], seed=seed, meta={
        "kind": "checkerboard", "columns": columns, "rows": rows, "square_m": square_m, "distance_m": distance_m})


def grey_card_scene(seed: int = 0, *, distance_m: float = 1.0, reflectance: float = 0.18,
                    size_m: tuple[float, float] = (0.4, 0.3)) -> Scene:
    """A neutral grey card filling the middle of the frame in front of the colour chart's tabletop: the
    white-balance target (the card's linear R/G and B/G under each white-balance setting are its gains)."""
    base = default_scene(seed)
    w, h = size_m
    card = Layer(distance_m, (-w / 2, w / 2), (-h / 2, h / 2), np.full((1, 1, 3), reflectance, np.float32),
                 texel_m=max(w, h))
    return Scene([*base.layers, card], seed=seed, meta={"kind": "grey_card", "reflectance": reflectance,
                                                         "distance_m": distance_m})


def edge_scene(seed: int = 0, *, distance_m: float = 3.0, dark: float = 0.04, light: float = 0.8,
               slant_deg: float = 5.0) -> Scene:
    """A slanted high-contrast edge (dark left, light right, ISO 12233 style) filling the frame at a known
    distance: its blur across f-numbers gives the lens's real defocus scale."""
    backing = Layer(distance_m, (-30.0, 30.0), (-20.0, 20.0), np.full((1, 1, 3), dark, np.float32), texel_m=60.0)
    lit = Layer(distance_m, (0.0, 30.0), (-30.0, 30.0), np.full((1, 1, 3), light, np.float32), texel_m=60.0,
                tilt_deg=(0.0, 0.0, slant_deg))
    return Scene([backing, lit], seed=seed, meta={"kind": "edge", "distance_m": distance_m, "dark": dark,
                                                   "light": light, "slant_deg": slant_deg})


def flat_field_scene(seed: int = 0, *, distance_m: float = 1.0, reflectance: float = 0.5) -> Scene:
    """An evenly lit, untextured field filling the frame: what a photon-transfer curve is measured on (and
    where vignetting shows)."""
    field_layer = Layer(distance_m, (-30.0, 30.0), (-20.0, 20.0), np.full((1, 1, 3), reflectance, np.float32),
                        texel_m=60.0)
    return Scene([field_layer], seed=seed, meta={"kind": "flat_field", "reflectance": reflectance,
                                                 "distance_m": distance_m})


#: Scene name (SimCamera's `scene` option, a plan's rig.camera_options) -> builder(seed, **options).
SCENES = {"tabletop": default_scene, "varied": varied_scene, "step_chart": step_chart_scene,
          "checkerboard": checkerboard_scene, "grey_card": grey_card_scene, "edge": edge_scene,
          "flat_field": flat_field_scene}


def make_scene(name: str, seed: int = 0, **options) -> Scene:
    """A scene by name with its options, refusing unknown names and options with what is accepted."""
    import inspect  # noqa: PLC0415

    builder = SCENES.get(name)
    if builder is None:
        raise ValueError(f"scene {name!r} is unknown; scenes are {', '.join(SCENES)}")
    accepted = [p for p in inspect.signature(builder).parameters if p != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"scene {name!r} has no option(s) {', '.join(unknown)}; it takes {', '.join(accepted)}")
    if "size_m" in options:
        options["size_m"] = tuple(options["size_m"])
    return builder(seed, **options)


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
        if layer.tilted:
            rgb, alpha, hit_depth = _render_tilted(layer, cam_x, u + tan_pan, v, time_s, fpx)
            depth = np.where(alpha > 0, hit_depth, depth)
            out.append((rgb, alpha, z))
            continue
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


def _render_tilted(layer: Layer, cam_x: float, rays_x: np.ndarray, rays_y: np.ndarray, time_s: float,
                   fpx: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-plane intersection for every pixel (averaged over `layer.antialias`² samples inside it, as a lens and
    a pixel's area blur a printed edge): radiance, coverage and the depth (z) of each hit."""
    rgb, alpha, depth = _hit_tilted(layer, cam_x, rays_x, rays_y, time_s)
    n = max(1, int(layer.antialias))
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if n == 1 or not rows.size:
        return rgb, alpha, depth
    y0, y1 = max(rows[0] - 2, 0), min(rows[-1] + 3, alpha.shape[0])   # supersample only around the layer
    x0, x1 = max(cols[0] - 2, 0), min(cols[-1] + 3, alpha.shape[1])
    offsets = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    samples = [_hit_tilted(layer, cam_x, rays_x[x0:x1] + dx / fpx, rays_y[y0:y1] + dy / fpx, time_s)
               for dy in offsets for dx in offsets]
    rgb[y0:y1, x0:x1] = np.mean([s[0] for s in samples], axis=0)
    alpha[y0:y1, x0:x1] = np.mean([s[1] for s in samples], axis=0)
    return rgb, alpha, depth


def _hit_tilted(layer: Layer, cam_x: float, rays_x: np.ndarray, rays_y: np.ndarray,
                time_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = layer.axes().astype(np.float32)
    e1, e2, normal = axes[:, 0], axes[:, 1], axes[:, 2]
    rx, ry = rays_x[None, :], rays_y[:, None]
    denom = normal[0] * rx + normal[1] * ry + normal[2]
    t = (normal[0] * (layer.anchor_x_m - cam_x) + normal[2] * layer.depth_m) / np.where(np.abs(denom) < 1e-6, 1e-6,
                                                                                          denom)
    px, py, pz = cam_x + t * rx - layer.anchor_x_m, t * ry, t - layer.depth_m      # hit relative to the anchor
    a = e1[0] * px + e1[1] * py + e1[2] * pz - layer.velocity_m_s * time_s
    b = e2[0] * px + e2[1] * py + e2[2] * pz
    inside = (t > 0) & (a >= layer.x_m[0]) & (a < layer.x_m[1]) & (b >= layer.y_m[0]) & (b < layer.y_m[1])
    th, tw, _ = layer.texture.shape
    tx = np.floor((a - layer.x_m[0]) / layer.texel_m).astype(np.intp) % tw
    ty = np.floor((b - layer.y_m[0]) / layer.texel_m).astype(np.intp) % th
    rgb = np.where(inside[..., None], layer.texture[ty, tx], np.float32(0.0)).astype(np.float32)
    return rgb, inside.astype(np.float32), t.astype(np.float32)


def composite(layers: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """All-in-focus radiance: near layers over far ones."""
    image = np.zeros_like(layers[0][0])
    for rgb, alpha, _ in layers:
        image = image * (1.0 - alpha[..., None]) + rgb
    return image
