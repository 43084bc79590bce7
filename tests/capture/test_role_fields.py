"""One role <-> field table (rigs/camera/protocol.py `ROLE_FIELDS`): EXIF reading, the exports, calibration from
files and the pairs' physics derive theirs from it, and no module keeps a table of its own."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from capture import calibration, export, pairs
from capture.catalog import EXIF_COLUMNS
from capture.exif import exif_settings
from rigs import optics
from rigs.camera.protocol import FOCUS, KELVIN, ROLE_FIELDS, ROLES, SHUTTER, WHITE_BALANCE

REPO = Path(__file__).resolve().parents[2]
FIELD_NAMES = {f.column for f in ROLE_FIELDS.values()} | {f.physical for f in ROLE_FIELDS.values()}


def _role_key(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Name):
        return node.id in {r.upper() for r in ROLES}
    return isinstance(node, ast.Constant) and node.value in ROLES


def _field_value(node: ast.AST) -> bool:
    if isinstance(node, ast.Tuple) and node.elts:
        node = node.elts[0]
    return isinstance(node, ast.Constant) and node.value in FIELD_NAMES


def test_no_module_keeps_its_own_role_to_field_table():
    """The audit found four (exif.py, calibration.py, export.py, pairs.py) that could drift apart."""
    tables = []
    for package in ("rigs", "capture", "annotate", "train", "cinectrl"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                pairs_ = []
                if isinstance(node, ast.Dict):
                    pairs_ = list(zip(node.keys, node.values))
                elif isinstance(node, (ast.Tuple, ast.List)):      # (("aperture", "f_number"), ...) loops
                    pairs_ = [tuple(e.elts) for e in node.elts if isinstance(e, ast.Tuple) and len(e.elts) == 2]
                if sum(_role_key(k) and _field_value(v) for k, v in pairs_) >= 2:
                    tables.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not tables, f"role -> field tables beside rigs/camera/protocol.py ROLE_FIELDS: {tables}"


def test_the_table_agrees_with_the_catalog_and_the_physics():
    assert set(ROLE_FIELDS) == set(ROLES) - {WHITE_BALANCE}          # every numeric role
    assert {f.physical for f in ROLE_FIELDS.values()} == {f.name for f in fields(optics.PhysicalSettings)}
    assert {f.column for f in ROLE_FIELDS.values() if f.exif} <= set(EXIF_COLUMNS)
    assert ROLE_FIELDS[FOCUS].column not in EXIF_COLUMNS and not ROLE_FIELDS[FOCUS].exif


def test_every_user_of_the_table_follows_it(monkeypatch):
    assert export.ROLE_COLUMNS == {r: (f.column, f.unit) for r, f in ROLE_FIELDS.items()}
    assert calibration.EXIF_FIELDS == {r: f.column for r, f in ROLE_FIELDS.items() if f.exif}
    assert [f.name for f in export.ASSET_FIELDS if f.name.startswith("requested_")] == [
        f"requested_{f.column}" for f in ROLE_FIELDS.values()]
    parsed = {"f_number": 2.8, "exposure_s": 0.0025, "exposure_text": "1/400", "iso": 400, "kelvin": 5600,
              "focal_mm": 35.0, "white_balance": "Manual"}
    assert exif_settings(parsed) == {"aperture": ("2.8", 2.8), SHUTTER: ("1/400", 0.0025), "iso": ("400", 400.0),
                                     KELVIN: ("5600", 5600.0), "focal": ("35", 35.0),
                                     WHITE_BALANCE: ("Manual", None)}
    physical = pairs._physical({"aperture": 4.0, KELVIN: 3200.0, FOCUS: 1.5})
    assert physical == {"f_number": 4.0, "wb_kelvin": 3200.0, "focus_m": 1.5}
