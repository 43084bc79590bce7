"""Frames -> H.264 clips and review proxies, and the automatic quality checks a pair carries.

Clips are H.264 in MP4 (PyAV/libx264), yuv420p, constant frame rate, even width and height: what every
browser and every training loader plays. Proxies are the same at a small width, for side-by-side review.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import cv2
import numpy as np
from PIL import Image

from rigs import statistics as stats

from .exposure import Exposure, worst

PROXY_WIDTH = 480


def _even(n: int) -> int:
    return max(2, n - (n % 2))


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[1] != width or frame.shape[0] != height:
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def write_mp4(frames: Iterable[np.ndarray], out: Path, *, fps: float, width: int | None = None,
              crf: int = 20) -> Path:
    """Encode RGB frames as H.264 yuv420p CFR MP4; written to a temp name and renamed (atomic)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    rate = Fraction(fps).limit_denominator(1001)
    container = av.open(str(tmp), mode="w", format="mp4")
    stream = None
    try:
        for rgb in frames:
            if stream is None:
                h, w = rgb.shape[:2]
                if width is not None and w > width:
                    h, w = round(h * width / w), width
                w, h = _even(w), _even(h)
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            frame = av.VideoFrame.from_ndarray(_fit(rgb, stream.width, stream.height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to encode into {out}")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    os.replace(tmp, out)
    return out


def stills_to_clip(paths: Sequence[Path], out: Path, *, fps: float, width: int | None = None) -> Path:
    return write_mp4((load_rgb(p) for p in paths), out, fps=fps, width=width)


def read_video(path: Path, *, limit: int | None = None) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit is not None and len(frames) >= limit:
                break
    return frames


def transcode_proxy(src: Path, out: Path, *, width: int = PROXY_WIDTH) -> Path:
    """A browser-playable small H.264 copy of any clip PyAV can decode, at its own frame rate."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 24)
    return write_mp4(read_video(src), out, fps=fps, width=width)


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for _ in container.decode(video=0))
        return {"width": stream.codec_context.width, "height": stream.codec_context.height,
                "fps": float(stream.average_rate or 0), "frames": int(frames), "codec": stream.codec_context.name,
                "pix_fmt": stream.codec_context.pix_fmt}


# --------------------------------------------------------------------------------------------- QC

ALIGNMENT_LIMIT_PX = 2.0
ALIGNMENT_PRECISION_PX = 0.1    # shifts are judged at the precision the estimators have
BREATHING_LIMIT = 0.05          # a focus pair may change magnification by this much (real lenses: 0.4-2.3 %/step)
CLIPPED_FLAG = 0.05


@dataclass(frozen=True)
class PairQuality:
    alignment_px: float        # mean |shift| between matching frames (rigs.statistics.phase_shift); ~0 = registered
    clipped_fraction: float    # share of pixels at 0/255 in either clip (worst of the two)
    sharpness_ratio: float     # exposure-normalised Laplacian energy, target / reference
    frames: int
    reference_exposure: Exposure | None = None    # each side's worst frame (capture/exposure.py)
    target_exposure: Exposure | None = None
    path_offset_mm: float = 0.0     # the target's pass shifted along the slider by design (camera-path sweep)
    breathing_scale: float | None = None   # focus pair: the magnification change allowed for (1 = none)

    @property
    def flags(self) -> list[str]:
        flags = []
        if round(self.alignment_px / ALIGNMENT_PRECISION_PX) * ALIGNMENT_PRECISION_PX >= ALIGNMENT_LIMIT_PX \
                and not self.path_offset_mm:
            flags.append(f"misaligned by {self.alignment_px:.1f} px"
                         + (" (after the focus breathing)" if self.breathing_scale is not None else ""))
        if self.breathing_scale is not None and abs(self.breathing_scale - 1.0) > BREATHING_LIMIT:
            flags.append(f"misaligned: magnification changed by {100 * (self.breathing_scale - 1):+.1f} %, more "
                         f"than focus breathing ({100 * BREATHING_LIMIT:.0f} %)")
        if self.clipped_fraction > CLIPPED_FLAG:
            flags.append(f"{self.clipped_fraction:.0%} clipped")
        for side, exposure in (("reference", self.reference_exposure), ("target", self.target_exposure)):
            if exposure is not None and exposure.problem:
                flags.append(f"{side} {exposure.problem}")
        return flags

    @property
    def failures(self) -> list[str]:
        """The flags that make the pair unusable: misaligned frames, or a side too dark or too bright."""
        return [f for f in self.flags if f.startswith(("misaligned", "reference ", "target "))]


def alignment_error(a: np.ndarray, b: np.ndarray, *, zoom: float = 1.0) -> float:
    """Shift (px) between two frames of one path by the toolkit's one shift estimator
    (`rigs.statistics.phase_shift`); `zoom`: b was shot with a lens that many times longer, so a is cropped to
    b's view first (a zoom pair is registered when its centres agree)."""
    return float(np.hypot(*stats.phase_shift(a, b, zoom=zoom)))


def clipped_fraction(rgb: np.ndarray) -> float:
    return float(np.mean((rgb.max(axis=2) >= 255) | (rgb.max(axis=2) <= 0)))


def sharpness(rgb: np.ndarray) -> float:
    """The evaluation's sharpness (`rigs.statistics.sharpness`: exposure-normalised Laplacian energy), so an
    exposure pair does not read as a focus change."""
    return stats.sharpness(rgb)


def breathing_alignment(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(shift px, magnification) of a focus pair: focus breathing (a change of magnification about the
    centre) is allowed for and the shift left over is the misalignment (`rigs.statistics`)."""
    try:
        return stats.centre_shift_and_scale(a, b)
    except ValueError:
        return alignment_error(a, b), 1.0


def pair_quality(reference: Sequence[np.ndarray], target: Sequence[np.ndarray], *,
                 path_offset_mm: float = 0.0, zoom: float = 1.0, breathing: bool = False) -> PairQuality:
    """QC of one pair. A pair of a camera-path sweep (`path_offset_mm` != 0) is shifted by design: its
    alignment is reported but never flagged. A zoom pair (`zoom` = focal-length ratio) is aligned after
    cropping the reference to the target's view. A focus pair (`breathing`) may change magnification by up to
    BREATHING_LIMIT (the lens breathes); only the shift left after that counts as misalignment."""
    n = min(len(reference), len(target))
    if n == 0:
        raise ValueError("a pair needs frames on both sides")
    picks = sorted({0, n // 2, n - 1})
    scale = None
    if breathing:
        found = [breathing_alignment(reference[i], target[i]) for i in picks]
        align, scale = float(np.mean([f[0] for f in found])), float(np.mean([f[1] for f in found]))
    else:
        align = float(np.mean([alignment_error(reference[i], target[i], zoom=zoom) for i in picks]))
    clipped = max(float(np.mean([clipped_fraction(reference[i]) for i in picks])),
                  float(np.mean([clipped_fraction(target[i]) for i in picks])))
    sharp_ref = float(np.mean([sharpness(reference[i]) for i in picks]))
    sharp_tgt = float(np.mean([sharpness(target[i]) for i in picks]))
    return PairQuality(align, clipped, sharp_tgt / sharp_ref if sharp_ref > 0 else 0.0, n,
                       worst([reference[i] for i in picks]), worst([target[i] for i in picks]),
                       path_offset_mm=float(path_offset_mm), breathing_scale=scale)
