"""What a parsed plan is: the dataclasses every other plan module and the runner share, and plan problems.

Like bluesky's plans vs plan patterns: this module says *what* a plan holds; `parse` builds it from TOML,
`check` holds it against a real camera and slider, `expand` generates its points, `summary` estimates it.
"""

from __future__ import annotations

from pathlib import Path

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from rigs.camera.protocol import APERTURE, ISO, ROLES, SHUTTER

MODES = ("stills", "passes")
SLIDER_AXIS = "slider"
REPEAT_AXIS = "repeat"     # [order] repeat = N: N frames of every combination at every position
REQUIRED_SESSION_KEYS = ("scene", "operator")
EXPOSURE_ROLES = (APERTURE, SHUTTER, ISO)
SECTIONS = ("session", "rig", "axes", "trajectory", "order", "exposure", "pairs", "costs")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan, located by TOML key path and line (None when the key is absent)."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line else "plan"
        return f"{at} [{self.where}]: {self.message}"


class PlanError(ValueError):
    """Every problem found in a plan at once."""

    def __init__(self, problems: list[Problem], source: str = "plan") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class LineMap:
    """Maps dotted TOML key paths to line numbers (tomllib keeps none)."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[str, int] = {}
        table = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = _clean_key(header.group(1))
                self.where.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                full = f"{table}.{_clean_key(key.group(1))}" if table else _clean_key(key.group(1))
                self.where.setdefault(full, number)

    def line(self, path: str) -> int | None:
        while path:
            if path in self.where:
                return self.where[path]
            path = path.rpartition(".")[0]
        return None


def _clean_key(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


@dataclass(frozen=True)
class Trajectory:
    start_mm: float
    end_mm: float
    speed_mm_s: float
    frames: int
    fps: float
    offsets_mm: tuple[float, ...] = (0.0,)    # the camera path swept: each pass shifted along the slider by these

    def start_at(self, offset_mm: float) -> float:
        return self.start_mm + offset_mm

    def end_at(self, offset_mm: float) -> float:
        return self.end_mm + offset_mm

    @property
    def seconds(self) -> float:
        """The move at constant speed (acceleration adds to it on a real slider)."""
        return abs(self.end_mm - self.start_mm) / self.speed_mm_s

    @property
    def recording_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Costs:
    """Per-operation costs behind the ETA and disk estimate; `source` says where they came from."""

    capture_s: float = 1.0
    set_s: float = 0.3
    move_mm_s: float = 50.0
    settle_s: float = 0.3
    home_s: float = 5.0
    bytes_per_still: float = 8e6
    bytes_per_clip_frame: float = 2e5
    source: str = "defaults (no measured session for this camera yet)"

    @property
    def measured(self) -> bool:
        return not self.source.startswith("defaults")


@dataclass(frozen=True)
class ExposureRule:
    compensate: tuple[str, ...]
    reference: Mapping[str, str]
    tolerance_stops: float = 1 / 3


@dataclass(frozen=True)
class Point:
    """One planned capture: a still at one slider position, or one pass (a clip) along the trajectory."""

    index: int
    key: str                          # stable id within the session, e.g. "p0007"
    settings: Mapping[str, str]       # role -> camera label, after exposure compensation
    slider_mm: float | None
    kind: str                         # "still" | "clip"
    combo: int                        # settings combination id (stable across orders) -> one clip per combo
    frame_index: int                  # position index along the path (stills); 0 for a pass

    def settings_dict(self) -> dict[str, str]:
        return dict(self.settings)


VIRTUAL = "virtual:"


@dataclass
class Plan:
    text: str
    source: str
    session: dict[str, str]
    camera: str
    slider: str
    speed: float
    camera_options: dict[str, Any]
    slider_options: dict[str, Any]
    mode: str
    axes: dict[str, list[str]]        # role -> labels, in the plan's order
    positions: list[float]            # stills: slider positions ([] = no slider)
    trajectory: Trajectory | None
    loop: list[str]                   # outermost first; includes "slider" for stills with positions
    snake: set[str]
    exposure: ExposureRule | None
    pair_reference: dict[str, str]
    costs: Costs
    lines: LineMap = field(repr=False)
    repeat: int = 1
    base_dir: str | None = None       # the plan file's folder: where a relative `virtual:DIR` camera is read from

    def camera_spec(self) -> str:
        """The camera to open: `virtual:DIR` with a relative DIR is read from the plan file's folder (the shell's
        folder means nothing to a plan; the camera worker runs in a folder of its own)."""
        if self.camera.startswith(VIRTUAL) and self.base_dir is not None:
            folder = Path(self.camera[len(VIRTUAL):]).expanduser()
            if not folder.is_absolute():
                return VIRTUAL + str((Path(self.base_dir) / folder).resolve())
        return self.camera

    @property
    def swept_roles(self) -> list[str]:
        return [r for r in ROLES if r in self.axes and len(self.axes[r]) > 1] + (
            [r for r in self.exposure.compensate] if self.exposure else [])

    @property
    def title(self) -> str:
        return self.session.get("name") or self.session.get("scene") or "session"

    def line(self, path: str) -> int | None:
        return self.lines.line(path)

    def axis_key(self, role: str) -> str:
        """The key the plan's text uses for a role's axis ('f-number' or 'aperture')."""
        from rigs.camera.protocol import UnknownSetting, role_of

        for path in self.lines.where:
            if path.startswith("axes."):
                try:
                    if role_of(path[5:]) == role:
                        return path[5:]
                except UnknownSetting:
                    continue
        return role


def example_label(role: str) -> str:
    from rigs.camera.protocol import FOCAL, FOCUS, KELVIN, WHITE_BALANCE

    return {APERTURE: "f/2.8", SHUTTER: "1/60", ISO: "400", KELVIN: "5600", FOCUS: "1.5", FOCAL: "35",
            WHITE_BALANCE: "Daylight"}.get(role, "value")


def shorten(labels: list[str], limit: int = 12) -> str:
    text = ", ".join(labels[:limit])
    return text + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")
