"""What `capture plan` can tell before anything is shot: pairs whose controls the model cannot take, and
points whose frames will be too dark or too bright, predicted from a measured frame of the same scene
(a test shot, or a frame of an earlier session of that scene)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping

from rigs import controls as registry
from rigs.camera.protocol import Camera

from .exposure import Anchor, anchor_from_file, predict
from .ledger import Ledger
from .pairs import describe, form_pairs
from .plan import EXPOSURE_ROLES, Plan, Point, exposure_stops

ANCHOR_CANDIDATES = 12


def combos_of(points: list[Point]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for point in points:
        out.setdefault(point.combo, point.settings_dict())
    return out


def control_warnings(plan: Plan, points: list[Point]) -> list[str]:
    """Pairs the session will form whose normalised controls fall outside the model's range."""
    warnings = []
    for spec in form_pairs(combos_of(points), plan.pair_reference):
        outside = registry.out_of_range(spec.controls)
        if outside:
            warnings.append(f"pair {describe(spec.reference_settings)} -> {describe(spec.target_settings)}: "
                            f"{'; '.join(outside.values())}; QC will fail it (move the reference with [pairs] "
                            "reference, or narrow the sweep)")
    return warnings


def exposure_warnings(points: list[Point], anchor: Anchor) -> list[str]:
    """One warning per settings combination whose predicted frame fails QC's exposure test. A measured frame
    that is itself crushed or blown says nothing about other settings (a black frame scaled stays black, a
    white one stays white): then one warning says so and nothing is predicted."""
    unusable = anchor_problem(anchor)
    if unusable:
        return [unusable]
    warnings = []
    counts: dict[int, int] = {}
    for point in points:
        counts[point.combo] = counts.get(point.combo, 0) + 1
    for combo, settings in combos_of(points).items():
        exposure_settings = {r: v for r, v in settings.items() if r in EXPOSURE_ROLES}
        stops = exposure_stops(exposure_settings, {r: v for r, v in anchor.settings.items() if r in EXPOSURE_ROLES})
        predicted = predict(anchor, stops)
        if predicted.problem:
            warnings.append(f"{describe(settings)} ({counts[combo]} point(s)): {stops:+.1f} stops from "
                            f"{anchor.source} -> predicted {predicted.problem}; QC would fail its pairs")
    return warnings


def anchor_problem(anchor: Anchor) -> str | None:
    """Why a measured frame cannot be predicted from, or None."""
    measured = anchor.exposure
    problem = measured.problem
    if problem is None:
        return None
    too = "dark" if problem.startswith("under") else "bright"
    fix = "slower shutter, wider aperture or higher ISO" if too == "dark" else "faster shutter, smaller aperture or lower ISO"
    return (f"{anchor.source} is {problem}: too {too} to predict the other settings from (its clipped pixels "
            f"carry no level to scale), so no exposure is predicted; retake it nearer a normal exposure ({fix}, "
            "or light the scene) to get predictions")


def scene_anchor(ledger: Ledger, scene: str) -> Anchor | None:
    """The best-exposed of the latest frames of earlier sessions of this scene, or None."""
    if not scene:
        return None
    rows = ledger.catalog.rows(
        "SELECT s.id AS session_id, p.ordinal, a.path, p.settings_json FROM assets a "
        "JOIN points p ON p.id = a.point_id JOIN sessions s ON s.id = a.session_id "
        "WHERE s.scene = ? AND a.kind IN ('still', 'clip') ORDER BY a.id DESC LIMIT ?", (scene, ANCHOR_CANDIDATES))
    best: tuple[float, Anchor] | None = None
    for row in rows:
        path = ledger.catalog.abspath(row["path"])
        try:
            anchor = anchor_from_file(path, json.loads(row["settings_json"]),
                                      f"session {row['session_id']}'s p{row['ordinal']:04d} ({path.name})")
        except (OSError, ValueError):
            continue
        measured = anchor.exposure
        score = abs(measured.mean - 0.4) + measured.dark + measured.bright
        if best is None or score < best[0]:
            best = (score, anchor)
    return best[1] if best else None


def test_shot_anchor(camera: Camera, settings: Mapping[str, str]) -> Anchor:
    """Set `settings`, take one frame into a temporary folder, measure it, delete it."""
    applied: dict[str, Any] = {}
    for role, label in settings.items():
        applied[role] = camera.set(role, label).readback or label
    with tempfile.TemporaryDirectory(prefix="cinectrl-test-shot-") as tmp:
        files = camera.capture_still(Path(tmp), stem="test-shot")
        still = next((f for f in files if f.kind == "still"), files[0])
        return anchor_from_file(Path(still.path), settings, f"a test shot at {describe(dict(settings))}")
