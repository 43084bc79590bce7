"""Clip decoding/encoding with PyAV: frames as uint8 RGB arrays (T, H, W, 3), the one format train/ uses."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Every frame to (height, width), never cropped (a crop would read as a zoom): area when shrinking."""
    if frames.shape[1:3] == (height, width):
        return frames
    import cv2
    shrink = height * width < frames.shape[1] * frames.shape[2]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


class VideoError(ValueError):
    """A clip that cannot be decoded, or whose codec/duration is not acceptable."""


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float


def probe(path: str | Path) -> VideoInfo:
    """Container-level facts without decoding every frame (falls back to counting when the header lacks them)."""
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = box.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
            frames = int(stream.frames or 0)
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            if not duration and box.duration:
                duration = box.duration / av.time_base
            if not frames:
                frames = sum(1 for _ in box.decode(video=0))
            if not duration and fps:
                duration = frames / fps
            ctx = stream.codec_context
            return VideoInfo(ctx.name, ctx.width, ctx.height, fps, frames, duration)
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def read_video(path: str | Path, *, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All (or the first `max_frames`) frames as RGB uint8, plus the frame rate."""
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = box.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 24)
            for frame in box.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path}: cannot decode ({exc})") from exc
    if not frames:
        raise VideoError(f"{path}: no decodable frames")
    return np.stack(frames), fps


def write_video(path: str | Path, frames: np.ndarray, fps: float = 24.0, *, codec: str = "libx264",
                crf: int = 18) -> Path:
    """Write RGB uint8 frames at their exact size. H.264/HEVC 4:2:0 needs even sides, so an odd-sized clip is
    written 4:4:4 (no chroma subsampling: any size; players built on FFmpeg play it, browsers may not)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    odd = bool(frames.shape[1] % 2 or frames.shape[2] % 2) and codec in ("libx264", "h264", "libx265", "hevc")
    path = Path(path)
    with av.open(str(path), mode="w") as box:
        stream = box.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p" if codec == "ffv1" or odd else "yuv420p"
        if codec in ("libx264", "h264"):
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return path
