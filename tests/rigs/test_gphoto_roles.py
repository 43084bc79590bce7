"""Vendor role maps and value matching against recorded widget trees of Canon, Nikon, Sony and Fuji bodies.

No real body of these makes can be attached here, so the trees are JSON fixtures written from the widget
names documented in libgphoto2's ptp2 config tables (tests/rigs/fixtures/*.json says so in `source`).
The probe behaves like get_single_config on a body: a widget that is only *listed*
(`listed_but_missing`, as the virtual camera lists `iso`) does not answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigs.camera.gphoto.choices import match_choice
from rigs.camera.values import same_value
from rigs.camera.gphoto.roles import (CAPTURE_TARGET, IMAGE_FORMAT, MANUAL_FOCUS_DRIVE, MOVIE, WidgetInfo,
                                      resolve_roles, vendor_of)
from rigs.camera.protocol import APERTURE, FOCUS, ISO, KELVIN, SHUTTER, WHITE_BALANCE, UnsupportedValue

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str):
    tree = json.loads((FIXTURES / name).read_text())
    widgets = {n: WidgetInfo.from_dict(n, d) for n, d in tree["widgets"].items()}
    probed: list[str] = []

    def probe(widget: str) -> WidgetInfo | None:
        probed.append(widget)
        assert widget not in widgets or widget not in tree["listed_but_missing"]
        return widgets.get(widget)

    vendor = vendor_of(tree["widgets"]["manufacturer"]["value"], tree["body"])
    assert vendor == tree["vendor"]
    return resolve_roles(vendor, probe), widgets, probed


def test_canon_roles():
    roles, _, _ = load("canon_eos_5d_mark_iv.json")
    assert {r: roles.name(r) for r in (APERTURE, SHUTTER, ISO, WHITE_BALANCE, KELVIN)} == {
        APERTURE: "aperture", SHUTTER: "shutterspeed", ISO: "iso", WHITE_BALANCE: "whitebalance",
        KELVIN: "colortemperature"}
    assert roles.name(MANUAL_FOCUS_DRIVE) == "manualfocusdrive" and roles.name(MOVIE) == "movierecordtarget"
    assert roles.name(IMAGE_FORMAT) == "imageformat" and roles.name(CAPTURE_TARGET) == "capturetarget"
    assert "metres" in roles.why_missing(FOCUS)


def test_nikon_prefers_fraction_shutter_and_has_no_kelvin():
    roles, _, probed = load("nikon_d850.json")
    assert roles.name(APERTURE) == "f-number" and roles.name(SHUTTER) == "shutterspeed2"
    assert roles.name(IMAGE_FORMAT) == "imagequality" and roles.name(MOVIE) == "movie"
    assert roles.widgets[MANUAL_FOCUS_DRIVE].kind == "RANGE"
    assert KELVIN not in roles.widgets and "colortemperature" in roles.why_missing(KELVIN)
    assert "colortemperature" in probed                 # listed, probed, did not answer: not used


def test_sony_roles():
    roles, _, _ = load("sony_ilce_7m3.json")
    assert roles.name(APERTURE) == "f-number" and roles.name(SHUTTER) == "shutterspeed"
    assert roles.name(MANUAL_FOCUS_DRIVE) == "manualfocus" and roles.name(KELVIN) == "colortemperature"
    assert roles.widgets[CAPTURE_TARGET].choices == ("sdram", "card+sdram")


def test_fuji_uses_f_number_when_exposed_else_aperture():
    with_5007, _, _ = load("fuji_x_t3.json")
    assert with_5007.name(APERTURE) == "f-number" and with_5007.name(MOVIE) is None
    without, _, probed = load("fuji_gfx_no_fnumber.json")
    assert without.name(APERTURE) == "aperture" and probed.index("f-number") < probed.index("aperture")


def test_unknown_vendor_falls_back_to_every_known_name():
    assert vendor_of("GP", "Nikon DSC D750") == "Nikon"
    assert vendor_of("FUJIFILM", "X-H2") == "Fuji" and vendor_of("OM Digital Solutions", "OM-1") == "Olympus"
    assert vendor_of("Leica", "SL2") == "Generic"
    _, widgets, _ = load("canon_eos_5d_mark_iv.json")
    roles = resolve_roles("Generic", widgets.get)
    assert roles.name(APERTURE) == "aperture" and roles.name(SHUTTER) == "shutterspeed"


@pytest.mark.parametrize("fixture, role, asked, label", [
    ("canon_eos_5d_mark_iv.json", APERTURE, "f/5.6", "5.6"),
    ("canon_eos_5d_mark_iv.json", SHUTTER, "1/100", "1/100"),
    ("canon_eos_5d_mark_iv.json", SHUTTER, "0.01", "1/100"),
    ("canon_eos_5d_mark_iv.json", WHITE_BALANCE, "daylight", "Daylight"),
    ("canon_eos_5d_mark_iv.json", KELVIN, "5600K", "5600"),
    ("nikon_d850.json", SHUTTER, "1/1000", "1/1000"),
    ("sony_ilce_7m3.json", ISO, "ISO 800", "800"),
    ("fuji_gfx_no_fnumber.json", APERTURE, "F8", "8"),
])
def test_values_match_the_bodys_own_labels(fixture, role, asked, label):
    roles, _, _ = load(fixture)
    assert match_choice(role, asked, roles.widgets[role], camera="body") == label


def test_generic_nikon_shutter_labels_match_numerically_and_refuse_collisions():
    _, widgets, _ = load("nikon_d850.json")
    generic = widgets["shutterspeed"]
    assert match_choice(SHUTTER, "1/100", generic, camera="D850") == "0.0100s"
    assert match_choice(SHUTTER, "1/30", generic, camera="D850") == "0.0333s"
    with pytest.raises(UnsupportedValue, match="ambiguous"):      # 1/8000 and 1/10000 both print 0.0001s
        match_choice(SHUTTER, "1/8000", generic, camera="D850")


@pytest.mark.parametrize("fixture, role, asked", [
    ("canon_eos_5d_mark_iv.json", APERTURE, "1.2"),
    ("nikon_d850.json", APERTURE, "f/1.4"),
    ("sony_ilce_7m3.json", SHUTTER, "1/3200"),
    ("fuji_x_t3.json", ISO, "100"),
    ("fuji_x_t3.json", WHITE_BALANCE, "Tungsten"),
])
def test_out_of_list_values_are_refused_with_the_choices(fixture, role, asked):
    roles, _, _ = load(fixture)
    with pytest.raises(UnsupportedValue) as err:
        match_choice(role, asked, roles.widgets[role], camera="Body 42")
    text = str(err.value)
    assert text.startswith("Body 42:") and asked in text and roles.widgets[role].choices[0] in text


def test_ranges_toggles_and_read_only_widgets():
    nikon, _, _ = load("nikon_d850.json")
    drive = nikon.widgets[MANUAL_FOCUS_DRIVE]
    assert match_choice(MANUAL_FOCUS_DRIVE, "200", drive, camera="D850") == "200"
    with pytest.raises(UnsupportedValue, match="range"):
        match_choice(MANUAL_FOCUS_DRIVE, "40000", drive, camera="D850")
    assert match_choice(MOVIE, "on", nikon.widgets[MOVIE], camera="D850") == "1"
    canon, _, _ = load("canon_eos_5d_mark_iv.json")
    from rigs.camera.gphoto.roles import FOCUS_MODE
    with pytest.raises(UnsupportedValue, match="read-only"):
        match_choice(FOCUS_MODE, "Manual", canon.widgets[FOCUS_MODE], camera="5D")


def test_read_back_equivalence():
    assert same_value(SHUTTER, "0.0100s", "1/100") and same_value(APERTURE, "f/5.6", "5.6")
    assert not same_value(SHUTTER, "0.0001s", "1/4000") and not same_value(APERTURE, "f/5.6", "f/6.3")
    assert same_value(WHITE_BALANCE, "Daylight", "daylight") and not same_value(ISO, "400", "800")
