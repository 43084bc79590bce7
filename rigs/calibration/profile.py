"""`CalibrationProfile`: what was measured about one body + lens, and the ideal camera wherever nothing was.

A profile is small and plain: the body's identity (make, model, serial) and the lens, a version (the catalog
numbers them per body + lens; 0 = not stored yet), one optional section per measurement, and for each
section where it came from (catalog sessions, or files with their hashes) and the figures of its fit. It
round-trips through JSON (`to_json` / `from_json`) so a lab can carry it to another station.

Everything that used to assume the ideal camera asks the profile instead; each method falls back to the
ideal camera when its section is missing, and `describe_use()` says, per quantity, which one answered:

=====================  ======================================  ==========================================
method                 measured from                           ideal camera
=====================  ======================================  ==========================================
`to_linear/to_encoded` response curve                          sRGB
`white_balance_shift`  white balance per kelvin                `optics.white_balance_gains` ratios
`focal_mm`             geometry (real focal length, breathing)  the marked focal length
`defocus_scale`        defocus (blur per 1/N) vs the thin lens  1
`noise_variance`       photon-transfer curve per ISO           None (the simulator's own default)
=====================  ======================================  ==========================================
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from .. import optics
from .defocus import DefocusMeasurement
from .geometry import LensGeometry
from .inputs import CalibrationInputError
from .noise import NoiseCurve
from .response import ResponseCurve
from .white_balance import WhiteBalanceTable

FORMAT = "cinectrl.calibration/1"
#: section name -> its class (each has to_dict / from_dict); the order measurements are best made in
SECTIONS: dict[str, type] = {"response": ResponseCurve, "white_balance": WhiteBalanceTable,
                             "geometry": LensGeometry, "defocus": DefocusMeasurement, "noise": NoiseCurve}


@dataclass(frozen=True)
class CalibrationProfile:
    make: str
    model: str
    serial: str
    lens: str
    version: int = 0
    created_at: float = field(default_factory=time.time)
    response: ResponseCurve | None = None
    white_balance: WhiteBalanceTable | None = None
    geometry: LensGeometry | None = None
    defocus: DefocusMeasurement | None = None
    noise: NoiseCurve | None = None
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)   # section -> provenance + figures

    # ------------------------------------------------------------------ identity
    @property
    def key(self) -> str:
        """One body + one lens: what a profile belongs to (a catalog keeps versions per key)."""
        return body_key(self.make, self.model, self.serial, self.lens)

    @property
    def label(self) -> str:
        body = " ".join(p for p in (self.make, self.model) if p) or "unknown body"
        serial = f" #{self.serial}" if self.serial else ""
        return f"{body}{serial} + {self.lens or 'unknown lens'}" + (f" (v{self.version})" if self.version else "")

    def measured(self) -> list[str]:
        return [name for name in SECTIONS if getattr(self, name) is not None]

    def with_section(self, name: str, value: Any, source: Mapping[str, Any]) -> "CalibrationProfile":
        """A new, unstored profile: this one with `name` measured again (the other sections carried over)."""
        if name not in SECTIONS:
            raise ValueError(f"unknown calibration section {name!r}; sections are {', '.join(SECTIONS)}")
        sources = dict(self.sources)
        sources[name] = dict(source)
        return replace(self, version=0, created_at=time.time(), sources=sources, **{name: value})

    def sessions(self) -> list[str]:
        """Every catalog session (uid) any section came from."""
        return sorted({uid for source in self.sources.values() for uid in source.get("sessions", [])})

    # ------------------------------------------------------------------ what consumers call
    def to_linear(self, encoded, *, channel_axis: int = -1):
        """Encoded [0, 1] → the body's relative linear light (numpy or torch); sRGB when not measured."""
        if self.response is None:
            return optics.srgb_decode(encoded)
        return self.response.to_linear(encoded, channel_axis=channel_axis)

    def to_encoded(self, linear, *, channel_axis: int = -1):
        if self.response is None:
            return optics.srgb_encode(linear)
        return self.response.to_encoded(linear, channel_axis=channel_axis)

    def white_balance_shift(self, scene_kelvin: float, from_kelvin: float, to_kelvin: float) -> np.ndarray:
        """Gains that turn a frame white-balanced at `from_kelvin` into one at `to_kelvin`."""
        if self.white_balance is not None:
            return self.white_balance.shift(from_kelvin, to_kelvin)
        return (np.asarray(optics.white_balance_gains(scene_kelvin, to_kelvin))
                / np.asarray(optics.white_balance_gains(scene_kelvin, from_kelvin)))

    def focal_mm(self, nominal_mm: float, focus_m: float) -> float:
        return self.geometry.focal_mm(nominal_mm, focus_m) if self.geometry is not None else nominal_mm

    def nominal_focal_mm(self, real_mm: float, focus_m: float) -> float:
        return self.geometry.nominal_mm(real_mm, focus_m) if self.geometry is not None else real_mm

    def defocus_scale(self) -> float:
        """The lens's blur over the thin lens's at the same real focal length (1 when not measured)."""
        if self.defocus is None:
            return 1.0
        d = self.defocus
        return d.scale(self.focal_mm(d.nominal_focal_mm, d.focus_m))

    def noise_variance(self, linear, iso: float):
        """Noise variance of the body's delivered frames at a linear level and ISO, or None (not measured)."""
        if self.noise is None:
            return None
        return self.noise.at(iso).variance(linear)

    def describe_use(self) -> dict[str, str]:
        """Per quantity: measured (with how) or the ideal camera: what reports print."""
        out = {
            "response": f"measured ({self.response.method})" if self.response else "ideal (sRGB)",
            "white_balance": "measured" if self.white_balance else "ideal (black-body gains)",
            "focal_length": "measured" if self.geometry else "ideal (marked focal length)",
            "defocus": f"measured (x{self.defocus_scale():.3f} of the thin lens)" if self.defocus else "ideal (thin lens)",
            "noise": "measured" if self.noise else "ideal (simulator default)",
        }
        return out

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"format": FORMAT, "make": self.make, "model": self.model, "serial": self.serial, "lens": self.lens,
                "version": self.version, "created_at": self.created_at,
                "sections": {name: getattr(self, name).to_dict() for name in self.measured()},
                "sources": {k: dict(v) for k, v in self.sources.items()}}

    def to_json(self) -> str:
        """Indented for reading, with each list of numbers on one line (a response table is 3 lines)."""
        text = json.dumps(self.to_dict(), indent=1, default=_plain)
        return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "profile") -> "CalibrationProfile":
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise CalibrationInputError(f"{where}: not a cinectrl calibration profile (format {found!r}, expected "
                                        f"{FORMAT!r}); give a file written by `cinectrl rig calibration export`")
        sections = data.get("sections") or {}
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            raise CalibrationInputError(f"{where}: unknown section(s) {', '.join(unknown)}; a profile has "
                                        f"{', '.join(SECTIONS)}")
        values: dict[str, Any] = {}
        for name, kind in SECTIONS.items():
            if name in sections:
                try:
                    values[name] = kind.from_dict(sections[name])
                except (KeyError, TypeError, ValueError) as exc:
                    raise CalibrationInputError(f"{where}: section {name!r} is damaged ({type(exc).__name__}: {exc}); "
                                                "export the profile again") from None
        try:
            return cls(make=str(data.get("make", "")), model=str(data.get("model", "")),
                       serial=str(data.get("serial", "")), lens=str(data.get("lens", "")),
                       version=int(data.get("version", 0)), created_at=float(data.get("created_at", time.time())),
                       sources={str(k): dict(v) for k, v in (data.get("sources") or {}).items()}, **values)
        except (TypeError, ValueError) as exc:
            raise CalibrationInputError(f"{where}: damaged profile header ({exc}); export the profile again") from None

    @classmethod
    def from_json(cls, text: str, *, where: str = "profile") -> "CalibrationProfile":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationInputError(f"{where}: not JSON ({exc}); give a file written by `cinectrl rig calibration "
                                        "export`") from None
        return cls.from_dict(data, where=where)


def body_key(make: str | None, model: str | None, serial: str | None, lens: str | None) -> str:
    return "|".join((part or "").strip() for part in (make, model, serial, lens))


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
