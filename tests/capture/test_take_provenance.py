"""Provenance per take: a retake whose rendered clips are byte-identical to an earlier take's (every retake on
the deterministic simulated camera) still owns its files. Its pairs point at files under its own folder, none
of its files is an orphan, deleting the first take's folder leaves it whole, and the catalog says the two takes
are identical."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from capture.catalog import Catalog
from capture.ledger import Ledger
from capture.owner import LOCK_NAME
from capture.plan import parse_plan
from capture.report import CONTACT_SHEET, REPORT, missing_outputs
from capture.sweeps import FILE_NAME as SWEEPS_FILE
from capture.session import RunnerOptions, SessionRunner

from .conftest import tiny_sim

pytestmark = pytest.mark.timeout(120)

PLAN = """
[session]
name = "retake"
scene = "provenance"
operator = "test"

[rig]
camera = "sim"
slider = "none"

[axes]
aperture = ["f/2.8", "f/8"]
shutter = ["1/60"]
iso = ["100"]
"""


def _take(catalog: Path, *, new_take: bool):
    return SessionRunner(parse_plan(PLAN), catalog, camera_factory=tiny_sim, slider_factory=lambda: None,
                         options=RunnerOptions(new_take=new_take)).run()


def _files_on_disk(folder: Path) -> set[Path]:
    """Media the session holds (the sweep responses, contact sheet and report are found by their fixed names, not
    catalogued)."""
    return {p.resolve() for p in folder.rglob("*")
            if p.is_file() and p.name not in (LOCK_NAME, SWEEPS_FILE, CONTACT_SHEET, REPORT)}


def test_a_byte_identical_retake_owns_its_files(tmp_path):
    catalog = tmp_path / "lab" / "catalog.db"
    first = _take(catalog, new_take=False)
    second = _take(catalog, new_take=True)
    assert (first.status, second.status, second.take) == ("complete", "complete", 2)

    cat = Catalog(catalog)
    try:
        shared = cat.identical_takes(second.session_id)
        assert {r["other_session_id"] for r in shared} == {first.session_id}     # the takes are identical
        assert {r["combination_key"] for r in shared} == {c["combination_key"] for c in cat.clips(second.session_id)}
        pairs = cat.pairs(session_id=second.session_id)
        assert pairs
        for pair in pairs:
            for key in ("reference_path", "other_path", "reference_proxy_path", "other_proxy_path"):
                path = (catalog.parent / pair[key]).resolve()
                assert path.is_relative_to(second.session_dir.resolve()), (key, pair[key])
    finally:
        cat.close()

    ledger = Ledger(catalog)
    try:
        for take in (first, second):                   # no file of either session is an orphan
            assert _files_on_disk(take.session_dir) == {p.resolve() for p in ledger.own_files(take.session_id)}
    finally:
        ledger.close()

    shutil.rmtree(first.session_dir)                    # archive the first take
    ledger = Ledger(catalog)
    try:
        assert missing_outputs(ledger, second.session_id) == []
        for pair in ledger.pairs(second.session_id):
            assert (catalog.parent / pair["reference_path"]).is_file() and (catalog.parent / pair["other_path"]).is_file()
        assert all(p.is_file() for p in ledger.own_files(second.session_id))
    finally:
        ledger.close()
    again = _take(catalog, new_take=False)             # and nothing about the second take needs rebuilding
    assert (again.session_id, again.status) == (second.session_id, "complete")
