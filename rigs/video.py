"""The one video reader and writer (PyAV): every clip the toolkit writes or reads goes through here.

The simulated camera writes its clips, capture turns stills into clips and proxies, review writes difference
clips, training reads and writes clips: one module, so they cannot disagree. What a written clip is:

- **H.264 in MP4, yuv420p, constant frame rate**: what every browser, Label Studio and the loaders play.
- **The frame rate is an exact `Fraction`** (`frame_rate`): a `Fraction`, an int or a string such as
  `"30000/1001"` is taken as it is; a float (or decimal string) within 0.001 fps of an NTSC rate n·1000/1001
  is that rate (`23.976` -> 24000/1001, `29.97` -> 30000/1001), any other float its nearest fraction with a
  denominator up to 1001 (`8.0` -> 8, `12.5` -> 25/2). Reading gives the stream's rate back as a `Fraction`.
- **Odd sizes**: 4:2:0 needs even sides, so an odd width or height loses its last column or row (never
  resampled, never padded: every pixel that is written is the input's own, and the geometry does not change).
  The size a clip has is what `probe` and `read_video` report. `width=` (proxies) scales to that width first,
  keeping the aspect ratio, then the same rule.
- **Atomic**: written to `.<name>.part` beside the target and renamed, so a kill never leaves half a clip
  under the real name.

`resize_frames` is the one frame resize (never cropped) that the editor, evaluation and proxies share.
`fit_frames` is the one way a clip is fitted to a model's frame size, the same for training data, evaluation and
the editor (`train edit`, `serve`): scaled by one factor (aspect kept) to the largest box inside the model's
(H, W), centred, the rest padded by repeating the edge pixels. Pad, not cover-and-crop: an edit must change
every pixel of the clip, and a crop would leave the borders outside the model's view, with no change to carry
back to them; padding keeps the whole picture in view at the geometry the model was trained on (no stretch).
Edge padding rather than black so blur and zoom near the border see plausible content, not a hard black edge.
`Fit.content` cuts the clip's own box back out (what evaluation measures and the editor carries back).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np
from PIL import Image

CODEC = "libx264"
PIX_FMT = "yuv420p"
NTSC_TOLERANCE_FPS = 0.001
MAX_DENOMINATOR = 1001


class VideoError(ValueError):
    """A clip that cannot be decoded or written, or whose codec/duration is not acceptable."""


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: Fraction
    frames: int
    duration_s: float
    pix_fmt: str = ""


def frame_rate(value: Fraction | int | float | str) -> Fraction:
    """A frame rate as the exact fraction the container stores (rules in the module docstring)."""
    if isinstance(value, Fraction):
        rate = value
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        rate = Fraction(int(value))
    elif isinstance(value, str) and "/" in value:
        try:
            rate = Fraction(value.strip())
        except ValueError:
            raise VideoError(f"frame rate {value!r} is not a number; give e.g. 24, 23.976 or 30000/1001") from None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise VideoError(f"frame rate {value!r} is not a number; give e.g. 24, 23.976 or 30000/1001") from None
        if not np.isfinite(number) or number <= 0:
            raise VideoError(f"frame rate {value!r} must be a positive number of frames per second")
        ntsc = Fraction(round(number * 1001 / 1000) * 1000, 1001)
        if ntsc and abs(float(ntsc) - number) < NTSC_TOLERANCE_FPS and round(number) != number:
            rate = ntsc
        else:
            rate = Fraction(number).limit_denominator(MAX_DENOMINATOR)
    if rate <= 0:
        raise VideoError(f"frame rate {value!r} must be a positive number of frames per second")
    return rate


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size a clip of `width` x `height` is written at: odd sides lose one pixel (at least 2)."""
    return max(2, width - width % 2), max(2, height - height % 2)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Every frame to (height, width), never cropped (a crop would read as a zoom): area when shrinking."""
    if frames.shape[1:3] == (height, width):
        return frames
    shrink = height * width < frames.shape[1] * frames.shape[2]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


@dataclass(frozen=True)
class Fit:
    """Where a clip sits in a model frame of (height, width): its content box (top, left, box_h, box_w)."""
    height: int
    width: int
    top: int
    left: int
    box_h: int
    box_w: int

    @property
    def padded(self) -> bool:
        return (self.box_h, self.box_w) != (self.height, self.width)

    def content(self, frames: np.ndarray) -> np.ndarray:
        """The clip's own box of fitted frames (T, height, width, ...) -> (T, box_h, box_w, ...)."""
        return frames[:, self.top:self.top + self.box_h, self.left:self.left + self.box_w]


def fit_box(height: int, width: int, size: tuple[int, int]) -> Fit:
    """The box a (height, width) clip takes in a model frame of `size` = (H, W): aspect kept, centred."""
    mh, mw = int(size[0]), int(size[1])
    scale = min(mh / height, mw / width)
    bh, bw = min(mh, max(1, round(height * scale))), min(mw, max(1, round(width * scale)))
    return Fit(mh, mw, (mh - bh) // 2, (mw - bw) // 2, bh, bw)


def fit_frames(frames: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> tuple[np.ndarray, Fit]:
    """(T, h, w[, C]) -> (T, H, W[, C]) fitted to the model's `size` (see the module docstring) and its `Fit`.
    `nearest` for maps that must not be blended (depth)."""
    frames = np.asarray(frames)
    fit = fit_box(frames.shape[1], frames.shape[2], size)
    if nearest:
        box = np.stack([cv2.resize(f, (fit.box_w, fit.box_h), interpolation=cv2.INTER_NEAREST) for f in frames])
    else:
        box = resize_frames(frames, fit.box_h, fit.box_w)
    if not fit.padded:
        return box, fit
    pad = [(0, 0), (fit.top, fit.height - fit.box_h - fit.top), (fit.left, fit.width - fit.box_w - fit.left)]
    pad += [(0, 0)] * (box.ndim - 3)
    return np.pad(box, pad, mode="edge"), fit


def fit_content(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The clip as the model sees its content: `fit_frames` without the padding (what evaluation measures)."""
    fitted, fit = fit_frames(frames, size)
    return fit.content(fitted)


def read_still(path: str | Path) -> np.ndarray:
    """A still (JPEG, PNG, TIFF...) as RGB uint8 (H, W, 3): the frames `stills_to_clip` encodes."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _as_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise VideoError(f"a frame must be RGB (H, W, 3); got shape {frame.shape}")
    return frame


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: Fraction | int | float | str = 24, *,
                width: int | None = None, crf: int = 18) -> Path:
    """Encode RGB uint8 frames (an array (T, H, W, 3) or any iterable of (H, W, 3)) as H.264 yuv420p CFR MP4.
    Float frames are rounded and clipped to 0..255. `width`: scale down to that width first (proxies)."""
    path = Path(path)
    rate = frame_rate(fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    stream = None
    size: tuple[int, int] = (0, 0)
    scaled: tuple[int, int] | None = None
    try:
        with av.open(str(tmp), mode="w", format="mp4") as box:
            for array in frames:
                array = _as_uint8(array)
                if stream is None:
                    h, w = array.shape[:2]
                    if width is not None and w > width:
                        scaled = (width, max(2, round(h * width / w)))
                        w, h = scaled
                    size = even_size(w, h)
                    stream = box.add_stream(CODEC, rate=rate)
                    stream.width, stream.height = size
                    stream.pix_fmt = PIX_FMT
                    stream.options = {"crf": str(crf), "preset": "veryfast"}
                if scaled is not None:
                    array = cv2.resize(array, scaled, interpolation=cv2.INTER_AREA)
                elif array.shape[1] < size[0] or array.shape[0] < size[1]:
                    raise VideoError(f"{path}: frame of {array.shape[1]}x{array.shape[0]} in a clip of "
                                     f"{size[0]}x{size[1]}; every frame of a clip must have one size")
                array = np.ascontiguousarray(array[: size[1], : size[0]])
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    box.mux(packet)
            if stream is None:
                raise VideoError(f"{path}: no frames to encode")
            for packet in stream.encode():
                box.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def stills_to_clip(paths: Iterable[str | Path], out: str | Path, *, fps: Fraction | int | float | str,
                   width: int | None = None) -> Path:
    """Stills (in order) as one clip, read one at a time."""
    return write_video(out, (read_still(p) for p in paths), fps, width=width)


def _rate_of(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(0)


def probe(path: str | Path) -> VideoInfo:
    """Container-level facts without decoding every frame (counts frames when the header lacks them)."""
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = box.streams.video[0]
            fps = _rate_of(stream)
            frames = int(stream.frames or 0)
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            if not duration and box.duration:
                duration = box.duration / av.time_base
            if not frames:
                frames = sum(1 for _ in box.decode(video=0))
            if not duration and fps:
                duration = float(frames / fps)
            ctx = stream.codec_context
            return VideoInfo(ctx.name, ctx.width, ctx.height, fps, frames, duration, ctx.pix_fmt or "")
    except VideoError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def read_video(path: str | Path, *, max_frames: int | None = None) -> tuple[np.ndarray, Fraction]:
    """All (or the first `max_frames`) frames as RGB uint8 (T, H, W, 3), and the exact frame rate."""
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise VideoError(f"{path}: no video stream")
            fps = _rate_of(box.streams.video[0]) or Fraction(24)
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


def read_frames(path: str | Path, *, max_frames: int | None = None) -> np.ndarray:
    """`read_video` without the frame rate."""
    return read_video(path, max_frames=max_frames)[0]


def transcode_proxy(src: str | Path, out: str | Path, *, width: int) -> Path:
    """A browser-playable small copy of any clip PyAV can decode, at its own frame rate."""
    frames, fps = read_video(src)
    return write_video(out, frames, fps, width=width)
