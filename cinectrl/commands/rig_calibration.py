"""`cinectrl rig calibrate PLAN | response|white-balance|geometry|defocus|noise FILES...` and
`cinectrl rig calibration show|export|import`: measuring a body + lens and handling its profiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import click
import typer
from typer.core import TyperGroup

from ._common import CatalogOption, console, err_console, fail, open_catalog_or_fail, resolve_catalog

FILES_HELP = "Image files of the body + lens (JPEG, PNG or TIFF), shot with any tool."
IDENTITY_HELP = "Name the body when the files' EXIF does not (or to override it)."


class _PlanOrMeasurement(TyperGroup):
    """`rig calibrate PLAN` runs a plan; `rig calibrate response FILES...` measures files: a first argument
    that is not a measurement is a plan."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["plan", *args]
        return super().parse_args(ctx, args)


calibrate_app = typer.Typer(cls=_PlanOrMeasurement, no_args_is_help=True,
                            help="Measure a body + lens: run a calibration plan (cinectrl rig calibrate PLAN.toml), "
                                 "or measure files shot elsewhere (cinectrl rig calibrate response FILES...). "
                                 "See docs/calibration.md.")
calibration_app = typer.Typer(no_args_is_help=True, help="Calibration profiles in the catalog: show, export, import.")


def register(app: typer.Typer) -> None:
    app.add_typer(calibrate_app, name="calibrate")
    app.add_typer(calibration_app, name="calibration")


# ------------------------------------------------------------------------------------------------ plans

@calibrate_app.command("plan")
def plan_command(
    plan_path: Path = typer.Argument(..., help="Calibration plan (TOML): a capture plan plus a [calibration] table; "
                                               "see examples/calibration/.", show_default=False),
    catalog: Path = CatalogOption,
    check: bool = typer.Option(False, "--check", help="Check the plan offline and print what it will shoot; nothing "
                                                      "moves."),
    quiet: bool = typer.Option(False, "--quiet", help="No live display."),
    new: bool = typer.Option(False, "--new-take", help="Shoot another take even if this plan already ran."),
    stop_after: int = typer.Option(None, "--stop-after", hidden=True, help="Stop cleanly after N frames."),
) -> None:
    """Shoot a calibration plan on the rig (resumable like any session), measure it, store the new profile version."""
    from capture.calibration import load_calibration_plan, run_calibration_plan
    from capture.display import LiveDisplay, QuietDisplay
    from capture.plan import PlanError, expand, format_summary, summarize
    from capture.rig import Rig
    from capture.owner import SessionBusy
    from capture.session import RunnerOptions, SessionRefused
    from capture.takes import TakeRefused
    from rigs.calibration.inputs import CalibrationInputError
    from rigs.calibration.measure import MEASUREMENTS
    from rigs.camera.protocol import CameraError
    from rigs.slider.protocol import SliderError

    try:
        cal = load_calibration_plan(plan_path)
    except PlanError as exc:
        fail(str(exc))
    measurement = MEASUREMENTS[cal.measurement]
    if check:
        try:
            points = expand(cal.plan)
        except PlanError as exc:
            fail(str(exc))
        console.print(format_summary(cal.plan, summarize(cal.plan, points, _measured_costs(cal.plan, catalog))),
                      highlight=False)
        console.print(f"measures  {measurement.title} ({cal.measurement}) from {measurement.target}", highlight=False)
        console.print(f"options   {json.dumps(cal.options)}", highlight=False)
        return
    catalog_path = resolve_catalog(catalog)
    rig = Rig(cal.plan)
    options = RunnerOptions(stop_after=stop_after, new_take=new)
    try:
        outcome = run_calibration_plan(cal, catalog_path, camera_factory=rig.open_camera,
                                       slider_factory=rig.open_slider,
                                       display=QuietDisplay() if quiet else LiveDisplay(err_console), options=options)
    except (PlanError, SessionRefused, SessionBusy, TakeRefused) as exc:
        fail(str(exc))
    except (CameraError, SliderError) as exc:
        fail(f"{exc} (the ledger keeps every point; rerun to resume)")
    except CalibrationInputError as exc:
        fail(f"{exc} (session frames are kept in the catalog)")
    except ImportError as exc:
        fail(f"rig {cal.plan.camera!r}/{cal.plan.slider!r} needs a driver this version lacks: {exc}")
    if outcome.status != "complete":
        err_console.print(f"session {outcome.session_id}: {outcome.status}; {outcome.message}", highlight=False)
        raise typer.Exit(3 if outcome.status in ("paused", "suspended") else 1)
    console.print(f"session {outcome.session_id} complete: {outcome.session.done} frames for {measurement.title}",
                  highlight=False)
    if not outcome.fresh:
        console.print(outcome.message, highlight=False)
    _print_measurement(cal.measurement, outcome.figures, outcome.profile)
    _print_stored(outcome.profile, catalog_path, fresh=outcome.fresh)


# ------------------------------------------------------------------------------------------------ files

def _values(items: list[str], parse, what: str) -> list[float]:
    out = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(float(parse(part)))
            except (ValueError, ZeroDivisionError):
                fail(f"{what} {part!r} is not a value such as {_EXAMPLES.get(what, '1')}")
    return out


_EXAMPLES = {"--exposure-times": "1/250 or 0.004", "--kelvin": "5600", "--f-numbers": "f/2.8 or 2.8",
             "--iso": "400", "--focal": "35", "--focus": "1.5"}


def _files(name: str, files: list[Path], given: dict[str, list[float]], options: dict[str, Any], catalog: Path | None,
           identity: dict[str, str | None], out: Path | None) -> None:
    from capture.calibration import calibrate_files
    from capture.catalog import CatalogError
    from rigs.calibration.inputs import CalibrationInputError

    catalog_path = resolve_catalog(catalog)
    try:
        profile, figures = calibrate_files(catalog_path, name, files, given={k: v for k, v in given.items() if v},
                                           options=options, identity=identity)
    except (CalibrationInputError, CatalogError) as exc:
        fail(str(exc))
    _print_measurement(name, figures, profile)
    _print_stored(profile, catalog_path, fresh=True)
    if out is not None:
        out.write_text(profile.to_json() + "\n")
        console.print(f"exported  {out}", highlight=False)


def _identity(make, model, serial, lens) -> dict[str, str | None]:
    return {"make": make, "model": model, "serial": serial, "lens": lens}


_MAKE = typer.Option(None, "--make", help=IDENTITY_HELP)
_MODEL = typer.Option(None, "--model", help=IDENTITY_HELP)
_SERIAL = typer.Option(None, "--serial", help=IDENTITY_HELP)
_LENS = typer.Option(None, "--lens", help=IDENTITY_HELP)
_OUT = typer.Option(None, "--out", help="Also write the new profile as JSON to this file.")


@calibrate_app.command("response")
def response_command(
    files: list[Path] = typer.Argument(..., help=FILES_HELP, show_default=False),
    exposure_times: list[str] = typer.Option([], "--exposure-times", help="Exposure time of each file, in the files' "
                                             "order (1/250,1/125,...); default: the files' EXIF ExposureTime."),
    method: str = typer.Option("debevec", "--method", help="debevec or robertson."),
    force: bool = typer.Option(False, "--force", help="Store the curve even when it predicts the bracket worse than "
                                                      "the ideal sRGB camera (refused otherwise, with its figures)."),
    catalog: Path = CatalogOption, make: Optional[str] = _MAKE, model: Optional[str] = _MODEL,
    serial: Optional[str] = _SERIAL, lens: Optional[str] = _LENS, out: Optional[Path] = _OUT,
) -> None:
    """Response curve from an exposure bracket of a static scene (only the exposure changing). The frames are
    aligned and padding, clipped pixels and the noise floor masked; ISO changes inside the bracket count as light."""
    from rigs.camera.values import parse_shutter

    _files("response", files, {"shutter": _values(exposure_times, parse_shutter, "--exposure-times")},
           {"method": method, "force": force}, catalog, _identity(make, model, serial, lens), out)


@calibrate_app.command("white-balance")
def white_balance_command(
    files: list[Path] = typer.Argument(..., help=FILES_HELP, show_default=False),
    kelvin: list[str] = typer.Option([], "--kelvin", help="White-balance setting (K) of each file, in order; "
                                     "default: EXIF."),
    illuminant_kelvin: float = typer.Option(5500.0, "--illuminant-kelvin", help="Colour temperature of the light."),
    roi: str = typer.Option("0.4,0.4,0.6,0.6", "--roi", help="Where the grey card is: x0,y0,x1,y1 as fractions."),
    catalog: Path = CatalogOption, make: Optional[str] = _MAKE, model: Optional[str] = _MODEL,
    serial: Optional[str] = _SERIAL, lens: Optional[str] = _LENS, out: Optional[Path] = _OUT,
) -> None:
    """Per-channel gains at each white-balance setting, from a grey card under one light."""
    from rigs.camera.values import parse_kelvin

    _files("white_balance", files, {"kelvin": _values(kelvin, parse_kelvin, "--kelvin")},
           {"illuminant_kelvin": illuminant_kelvin, "roi": _values([roi], float, "--roi")}, catalog,
           _identity(make, model, serial, lens), out)


@calibrate_app.command("geometry")
def geometry_command(
    files: list[Path] = typer.Argument(..., help=FILES_HELP, show_default=False),
    board: str = typer.Option("12x9", "--board", help="Inner corners of the checkerboard, COLUMNSxROWS."),
    square_mm: float = typer.Option(40.0, "--square-mm", help="Size of one square in mm."),
    sensor_width_mm: float = typer.Option(36.0, "--sensor-width-mm", help="Sensor width in mm."),
    focal: list[str] = typer.Option([], "--focal", help="Marked focal length (mm) of each file; default: EXIF."),
    focus: list[str] = typer.Option([], "--focus", help="Focus distance (m) of each file, or one for all."),
    catalog: Path = CatalogOption, make: Optional[str] = _MAKE, model: Optional[str] = _MODEL,
    serial: Optional[str] = _SERIAL, lens: Optional[str] = _LENS, out: Optional[Path] = _OUT,
) -> None:
    """Real focal length, distortion and breathing from views of a tilted checkerboard."""
    columns, _, rows = board.lower().partition("x")
    if not (columns.isdigit() and rows.isdigit()):
        fail(f"--board {board!r}: write the inner corners as COLUMNSxROWS, e.g. 12x9")
    from rigs.camera.values import parse_metres, parse_mm

    _files("geometry", files, {"focal": _values(focal, parse_mm, "--focal"),
                               "focus": _values(focus, parse_metres, "--focus")},
           {"board": [int(columns), int(rows)], "square_mm": square_mm, "sensor_width_mm": sensor_width_mm},
           catalog, _identity(make, model, serial, lens), out)


@calibrate_app.command("defocus")
def defocus_command(
    files: list[Path] = typer.Argument(..., help=FILES_HELP, show_default=False),
    edge_distance_m: float = typer.Option(..., "--edge-distance-m", help="Distance from the sensor to the edge (m)."),
    focus: list[str] = typer.Option(..., "--focus", help="Focus distance (m), in front of the edge."),
    f_numbers: list[str] = typer.Option([], "--f-numbers", help="f-number of each file, in order; default: EXIF."),
    focal: list[str] = typer.Option([], "--focal", help="Marked focal length (mm); default: EXIF."),
    sensor_width_mm: float = typer.Option(36.0, "--sensor-width-mm", help="Sensor width in mm."),
    catalog: Path = CatalogOption, make: Optional[str] = _MAKE, model: Optional[str] = _MODEL,
    serial: Optional[str] = _SERIAL, lens: Optional[str] = _LENS, out: Optional[Path] = _OUT,
) -> None:
    """The lens's real defocus scale from an aperture sweep on a high-contrast edge at a known distance."""
    from rigs.camera.values import parse_aperture, parse_metres, parse_mm

    _files("defocus", files, {"aperture": _values(f_numbers, parse_aperture, "--f-numbers"),
                              "focus": _values(focus, parse_metres, "--focus"),
                              "focal": _values(focal, parse_mm, "--focal")},
           {"edge_distance_m": edge_distance_m, "sensor_width_mm": sensor_width_mm}, catalog,
           _identity(make, model, serial, lens), out)


@calibrate_app.command("noise")
def noise_command(
    files: list[Path] = typer.Argument(..., help=FILES_HELP, show_default=False),
    iso: list[str] = typer.Option([], "--iso", help="ISO of each file, in order; default: EXIF."),
    exposure_times: list[str] = typer.Option([], "--exposure-times", help="Exposure time of each file; default: EXIF."),
    catalog: Path = CatalogOption, make: Optional[str] = _MAKE, model: Optional[str] = _MODEL,
    serial: Optional[str] = _SERIAL, lens: Optional[str] = _LENS, out: Optional[Path] = _OUT,
) -> None:
    """Noise per ISO (photon-transfer curve) from pairs of flat frames (two frames per setting)."""
    from rigs.camera.values import parse_iso, parse_shutter

    _files("noise", files, {"iso": _values(iso, parse_iso, "--iso"),
                            "shutter": _values(exposure_times, parse_shutter, "--exposure-times")},
           {}, catalog, _identity(make, model, serial, lens), out)


# ------------------------------------------------------------------------------------------------ profiles

ProfileArgument = typer.Argument(None, help="Which profile: its key, serial or part of its name, @N for a version "
                                            "(default: the only one stored).", show_default=False)


@calibration_app.command("show")
def show_command(ref: Optional[str] = ProfileArgument, catalog: Path = CatalogOption,
                 versions: bool = typer.Option(False, "--versions", help="List every stored version."),
                 as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON.")) -> None:
    """What a profile measured, where each part came from, and what stays the ideal camera."""
    from capture import profiles

    with open_catalog_or_fail(catalog) as cat:
        if versions:
            rows = profiles.listing(cat)
            if not rows:
                console.print("no calibration profiles stored", highlight=False)
            for row in rows:
                console.print(f"{row['body_key']} v{row['version']}: {', '.join(row['sections'])}; {row['note']}; "
                              f"sessions {row['sessions'] or '-'}", highlight=False)
            return
        try:
            profile = profiles.find(cat, ref)
        except profiles.ProfileNotFound as exc:
            fail(str(exc))
    if as_json:
        print(profile.to_json())
        return
    console.print(f"profile   {profile.label}   key {profile.key}", highlight=False)
    for quantity, how in profile.describe_use().items():
        console.print(f"  {quantity:<14} {how}", highlight=False)
    for name in profile.measured():
        source = profile.sources.get(name, {})
        origin = (f"sessions {', '.join(source['sessions'])}" if source.get("sessions") else
                  f"{len(source.get('files', []))} file(s)" if source.get("files") else "imported")
        console.print(f"{name} ({origin}):", highlight=False)
        _print_measurement(name, dict(source.get("figures", {})), profile, indent="  ")


@calibration_app.command("export")
def export_command(ref: Optional[str] = ProfileArgument, catalog: Path = CatalogOption,
                   out: Path = typer.Option(None, "--out", help="JSON file to write (default: standard output).")) -> None:
    """Write a profile as a small JSON file (for another station, or `train synth --profile`)."""
    from capture import profiles

    with open_catalog_or_fail(catalog) as cat:
        try:
            profile = profiles.find(cat, ref)
        except profiles.ProfileNotFound as exc:
            fail(str(exc))
    if out is None:
        sys.stdout.write(profile.to_json() + "\n")
        return
    out.write_text(profile.to_json() + "\n")
    console.print(f"wrote {out} ({profile.label})", highlight=False)


@calibration_app.command("import")
def import_command(file: Path = typer.Argument(..., help="Profile JSON (from `cinectrl rig calibration export`).",
                                               show_default=False),
                   catalog: Path = CatalogOption) -> None:
    """Store a profile from another station as this catalog's next version of that body + lens."""
    from capture import profiles
    from rigs.calibration.inputs import CalibrationInputError
    from rigs.calibration.profile import CalibrationProfile

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read it ({exc})")
    try:
        profile = CalibrationProfile.from_json(text, where=str(file))
    except CalibrationInputError as exc:
        fail(str(exc))
    with open_catalog_or_fail(catalog, create=True) as cat:
        stored, fresh = profiles.import_profile(cat, profile, source=file.name)
    verb = "imported as" if fresh else "already stored as"
    console.print(f"{verb} {stored.label} ({', '.join(stored.measured()) or 'no sections'})", highlight=False)


# ------------------------------------------------------------------------------------------------ printing

def _print_stored(profile, catalog_path: Path, *, fresh: bool) -> None:
    verb = "stored" if fresh else "current"
    console.print(f"{verb:<9} {profile.label} in {catalog_path}", highlight=False)
    console.print("uses      " + "; ".join(f"{k} {v}" for k, v in profile.describe_use().items()), highlight=False)


def _print_measurement(name: str, figures: dict[str, Any], profile, *, indent: str = "") -> None:
    def line(text: str) -> None:
        console.print(indent + text, highlight=False)

    if name == "response" and "ideal_mae" in figures:
        line(f"response  {figures['method']} from {figures['frames']} frames over {figures['span_stops']:.1f} stops: "
             f"exposure prediction error {figures['calibrated_mae']:.2f} levels vs {figures['ideal_mae']:.2f} with the "
             f"ideal sRGB camera (ratio {figures['ratio']:.2f})"
             + ("; the scene has few flat areas: the top of the curve is less sure (shoot a step chart)"
                if figures.get("flat_share", 1.0) < 0.05 else ""))
        if "opencv_mae" in figures:
            line(f"reference OpenCV's bare CalibrateDebevec on the same frames: {figures['opencv_mae']:.2f} levels "
                 f"(ratio {figures['opencv_ratio']:.2f}); {figures['pairs']} pairs, frames aligned by "
                 + ", ".join(f"{dx:+d},{dy:+d}" for dx, dy in figures.get("shifts", [])) + " px")
    elif name == "white_balance" and profile.white_balance is not None:
        for kelvin, gains in profile.white_balance.gains:
            bias = profile.white_balance.bias(kelvin)
            line(f"{kelvin:6.0f} K  gains R {gains[0]:.3f} B {gains[2]:.3f}   body vs ideal: R x{bias[0]:.3f} "
                 f"B x{bias[2]:.3f}")
    elif name == "geometry" and profile.geometry is not None:
        for e in profile.geometry.entries:
            line(f"{e.nominal_mm:5.0f} mm at {e.focus_m:g} m: real {e.focal_mm:.2f} mm "
                 f"({profile.geometry.field_of_view_deg(e.nominal_mm, e.focus_m):.1f} deg), k1 {e.distortion[0]:+.3f}, "
                 f"rms {e.rms_px:.2f} px, {e.views} views")
    elif name == "defocus" and profile.defocus is not None:
        d = profile.defocus
        line(f"defocus   blur radius {d.radius_px_times_n:.2f}/N px at {d.nominal_focal_mm:g} mm, focus {d.focus_m:g} m, "
             f"edge {d.edge_distance_m:g} m: x{profile.defocus_scale():.3f} of the thin lens"
             + (" (real focal length)" if profile.geometry else " (marked focal length; measure geometry too)"))
    elif name == "noise" and profile.noise is not None:
        for e in profile.noise.entries:
            line(f"ISO {e.iso:<6g} shot {e.slope:.3g} x level, read noise {e.read:.3g} (linear, as delivered)")
        if profile.noise.vignetting_corner is not None:
            line(f"vignetting: corners at {profile.noise.vignetting_corner:.0%} of the centre")


def _measured_costs(plan, catalog: Optional[Path]):
    """The plan's costs, measured in earlier sessions (calibration ones too) of its camera when the catalog has
    any: a check predicts from what this rig really took, not from the 8 MB-a-still defaults."""
    from capture.ledger import Ledger

    path = resolve_catalog(catalog)
    if plan.costs.measured or not path.exists():
        return plan.costs
    try:
        ledger = Ledger(path, readonly=True)
    except Exception:  # noqa: BLE001 - an unreadable catalog only means no measured costs for a check
        return plan.costs
    try:
        return ledger.measured_costs(None, plan.mode, plan.costs, plan_camera=plan.camera)
    finally:
        ledger.close()
