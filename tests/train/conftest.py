"""Fixtures for the train area: small textured clips and simple, exact photographic edits."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def textured_clip(seed: int = 0, frames: int = 5, size: int = 64) -> np.ndarray:
    """A clip with structure SIFT can match: blurred noise + shapes, drifting one pixel a frame."""
    rng = np.random.default_rng(seed)
    base = (rng.random((size * 2, size * 2, 3)) * 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (3, 3), 0.8)
    for _ in range(12):
        x, y = rng.integers(0, size * 2, 2)
        cv2.circle(base, (int(x), int(y)), int(rng.integers(3, 12)), tuple(int(c) for c in rng.integers(0, 255, 3)),
                   -1)
    base = (base.astype(np.float32) * 0.6 + 50).astype(np.uint8)
    return np.stack([base[i:i + size, i:i + size] for i in range(frames)])


def config_error(tmp_path, body: str) -> str:
    """The ConfigError message `load_config` gives for a minimal run config plus `body`."""
    from train.config import ConfigError, load_config
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\noutput_dir = "out"\n' + body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


def foreign_clip(path, frames: np.ndarray, codec: str = "libx264", pix_fmt: str = "yuv444p", fps: int = 8):
    """A clip as another tool writes it (a codec or pixel format rigs/video.py never writes: ffv1, 4:4:4 at an odd
    size): PyAV directly, because the project's one writer refuses to make these."""
    import av

    with av.open(str(path), mode="w") as box:
        stream = box.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return path


def simple_edit(frames: np.ndarray, controls: dict, **_) -> np.ndarray:
    """A small exact effect model (exposure gain, warm/cool channel gains, Gaussian bokeh, centre-crop zoom) used
    as the *reference* in evaluation tests; the project's simulator lives in train/effects.py."""
    out = frames.astype(np.float32)
    out *= 2.0 ** (float(controls.get("S", 0.0)) * 1.5)
    t = float(controls.get("T", 0.0))
    out *= np.array([1 - 0.3 * t, 1.0, 1 + 0.3 * t], dtype=np.float32)
    k = float(controls.get("K", 0.0))
    if k > 0:
        out = np.stack([cv2.GaussianBlur(f, (0, 0), 0.3 + 3 * k) for f in out])
    f = float(controls.get("f", 0.0))
    if f > 0:
        h, w = out.shape[1:3]
        z = 1 + f
        ch, cw = int(round(h / z)), int(round(w / z))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        out = np.stack([cv2.resize(fr[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_LANCZOS4)
                        for fr in out])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture
def clip() -> np.ndarray:
    return textured_clip()


def make_pair_catalog(root, scenes: int = 3, frames: int = 12, size: int = 40):
    """A real catalog with train-ready exposure pairs (target = exact exposure edit of the source) per scene."""
    from capture.catalog import open_catalog
    from rigs.video import write_video
    root.mkdir(parents=True, exist_ok=True)
    with open_catalog(root / "catalog.db") as cat:
        for s in range(scenes):
            sid = cat.create_session(f"s{s}", scene=f"scene{s}")
            src = textured_clip(seed=s, frames=frames, size=size)
            path = write_video(root / f"src{s}.mp4", src, 8)
            ref = cat.add_clip(sid, "ref", asset_id=cat.add_asset(path, sha256=f"{s}a".ljust(64, "0"), bytes=1,
                                                                  kind="clip", session_id=sid))
            for j, value in enumerate([0.5, -0.5]):
                path = write_video(root / f"t{s}{j}.mp4", simple_edit(src, {"S": value}), 8)
                clip = cat.add_clip(sid, f"S{j}", asset_id=cat.add_asset(path, sha256=f"{s}{j}b".ljust(64, "0"),
                                                                         bytes=1, kind="clip", session_id=sid))
                pair = cat.add_pair(sid, ref, clip, controls={"S": value})
                cat.set_pair_state(pair, review_state="accepted", train_ready=True)
    return root / "catalog.db"


TINY_CONFIG = """name = "{name}"
output_dir = "{out}"
seed = 0
[data]
catalog = "{catalog}"
num_frames = 9
size = [32, 32]
eval_fraction = 0.3
[train]
max_steps = 4
checkpoint_every = 2
keep_checkpoints = 2
cpu = true
{extra}
"""
