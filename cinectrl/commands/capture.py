"""`cinectrl capture plan|run PLAN.toml`: check a sweep plan against the rig, then run it (resumably)."""

from __future__ import annotations

from pathlib import Path

import typer

from rich.markup import escape

from ._common import CatalogOption, InitOption, catalog_to_write, console, err_console, fail, resolve_catalog


app = typer.Typer(no_args_is_help=True)

PlanArgument = typer.Argument(..., help="Sweep plan (TOML); see examples/ and docs/capture.md.", show_default=False)


def _load(plan_path: Path):
    from capture.plan import PlanError, load_plan

    try:
        return load_plan(plan_path)
    except PlanError as exc:
        fail(str(exc))


def _problems_or_fail(plan, problems) -> None:
    from capture.plan import PlanError

    if problems:
        fail(str(PlanError(problems, plan.source)))


def _open_rig(plan):
    from capture.rig import Rig
    from rigs.camera.protocol import CameraError
    from rigs.slider.protocol import SliderError

    rig = Rig(plan)
    try:
        slider = rig.open_slider()
    except ImportError as exc:
        fail(f"slider {plan.slider!r}: the slider driver is not installed in this version ({exc})")
    except (SliderError, OSError) as exc:
        fail(f"slider {plan.slider!r} (rig.slider, line {plan.line('rig.slider')}): {exc}")
    try:
        camera = rig.open_camera()
    except (CameraError, OSError, ImportError) as exc:
        if slider is not None:
            slider.close()
        fail(f"camera {plan.camera!r} (rig.camera, line {plan.line('rig.camera')}): {exc}")
    return rig, camera, slider


@app.command("plan")
def plan_command(
    plan_path: Path = PlanArgument,
    catalog: Path = CatalogOption,
    offline: bool = typer.Option(False, "--offline", help="Check the plan alone, without opening camera or slider."),
    show: int = typer.Option(12, "--show", help="How many points of the order to list."),
) -> None:
    """Validate a plan against the camera's choices and the slider's travel (nothing moves); print a summary."""
    from capture.ledger import Ledger
    from capture.plan import PlanError, check_plan, expand, format_summary, summarize

    plan = _load(plan_path)
    choices = travel = max_speed = None
    camera_label = "camera"
    model = ""
    if not offline:
        _rig, camera, slider = _open_rig(plan)
        try:
            choices, camera_label, model = camera.choices(), camera.identity.label(), camera.identity.model
            travel = slider.info.travel_mm if slider is not None else None
            max_speed = (slider.info.max_rate_mm_min / 60 or None) if slider is not None else None
        finally:
            camera.close()
            if slider is not None:
                slider.close()
    _problems_or_fail(plan, check_plan(plan, choices=choices, travel=travel, camera_label=camera_label,
                                       max_speed_mm_s=max_speed))
    try:
        points = expand(plan, choices)
    except PlanError as exc:
        fail(str(exc))
    costs = plan.costs
    catalog_path = resolve_catalog(catalog)
    if catalog_path.exists() and plan.costs.source.startswith("defaults") and model:
        ledger = Ledger(catalog_path)
        try:
            costs = ledger.measured_costs(model, plan.mode, plan.costs)
        finally:
            ledger.close()
    console.print(format_summary(plan, summarize(plan, points, costs)), highlight=False)
    console.print(f"checked   against {camera_label if choices else 'nothing (offline)'}"
                  + (f" and slider travel {travel[0]:g}..{travel[1]:g} mm" if travel else ""), highlight=False)
    for point in points[:show]:
        where = f" @ {point.slider_mm:g} mm" if point.slider_mm is not None else ""
        console.print(f"  {point.key}  {' '.join(point.settings.values())}{where}", highlight=False)
    if len(points) > show:
        console.print(f"  ... {len(points) - show} more", highlight=False)


@app.command("run")
def run_command(
    plan_path: Path = PlanArgument,
    catalog: Path = CatalogOption,
    quota_mb: float = typer.Option(None, "--quota-mb", help="Disk space this session may use (MB): the disk-low "
                                                             "suspender treats it as the free space."),
    quiet: bool = typer.Option(False, "--quiet", help="No live display."),
    new: bool = typer.Option(False, "--new", help="Start another take even if this plan already ran."),
    init: bool = InitOption,
    stop_after: int = typer.Option(None, "--stop-after", help="Stop cleanly after N frames (rerun resumes).",
                                   hidden=True),
) -> None:
    """Run (or resume) a capture session: every frame hashed and committed before the next; Ctrl-C pauses."""
    import sys

    from rich.prompt import Prompt

    from capture.display import LiveDisplay, QuietDisplay
    from capture.plan import PlanError
    from capture.session import RunnerOptions, SessionRunner
    from capture.suspenders import abort_decision
    from rigs.camera.protocol import CameraError
    from rigs.slider.protocol import SliderError

    plan = _load(plan_path)
    catalog_path = catalog_to_write(catalog, init=init)
    rig = _rig_for(plan)

    def decide(reason: str) -> str:
        if not sys.stdin.isatty():
            return abort_decision(reason)
        return "resume" if Prompt.ask(reason, choices=["resume", "abort"], default="resume",
                                      console=err_console) == "resume" else "abort"

    options = RunnerOptions(disk_quota_bytes=int(quota_mb * 1e6) if quota_mb else None, stop_after=stop_after,
                            new_session=new)
    runner = SessionRunner(plan, catalog_path, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                           display=QuietDisplay() if quiet else LiveDisplay(err_console), decide=decide,
                           options=options)
    try:
        result = runner.run()
    except PlanError as exc:
        fail(str(exc))
    except (CameraError, SliderError) as exc:
        fail(f"{exc} (the ledger keeps every point; rerun to resume)")
    except ImportError as exc:
        fail(f"rig {plan.camera!r}/{plan.slider!r} needs a driver this version lacks: {exc}")
    faults = ", ".join(f"{k} x{v}" for k, v in sorted(result.faults.items())) or "none"
    verb = "resumed" if result.resumed else "ran"
    if result.message.startswith("already complete"):
        verb = "already ran"
    console.print(f"session {result.session_id} {verb}: {result.status}, {result.done}/{result.total} points done "
                  f"in {result.seconds:.1f} s; faults survived: {faults}", highlight=False)
    console.print(f"catalog   {catalog_path}", highlight=False)
    console.print(f"files     {result.session_dir}", highlight=False)
    if result.contact_sheet:
        console.print(f"contact sheet {result.contact_sheet}", highlight=False)
        console.print(f"report    {result.report}", highlight=False)
    if result.message and result.status == "complete":
        console.print(result.message, highlight=False)
    if result.status != "complete":
        err_console.print(f"[yellow]{result.message}[/]", highlight=False)
        raise typer.Exit(3 if result.status in ("paused", "suspended") else 1)


@app.command("status")
def status_command(catalog: Path = CatalogOption) -> None:
    """Sessions in a catalog: points done, files, clips, pairs, faults survived, contact sheet."""
    from capture.ledger import Ledger
    from capture.plan import format_bytes

    catalog_path = resolve_catalog(catalog)
    if not catalog_path.exists():
        fail(f"no catalog at {catalog_path}; run `cinectrl capture run PLAN.toml --catalog {catalog_path}` first")
    ledger = Ledger(catalog_path)
    try:
        rows = ledger.summaries()
    finally:
        ledger.close()
    if not rows:
        console.print(f"{catalog_path}: no capture sessions yet", highlight=False)
    for row in rows:
        sheet = catalog_path.parent / row["dir"] / "outputs" / "contact-sheet.png"
        console.print(f"session {row['id']} {row['name']!r} ({row['mode']}): {row['status']}, "
                      f"{row['done']}/{row['points']} points, {row['files']} files ({format_bytes(row['bytes'])}), "
                      f"{row['clips']} clips, {row['pairs']} pairs, {row['faults']} faults survived", highlight=False)
        if sheet.exists():
            console.print(f"  contact sheet {sheet}", highlight=False)
            console.print(f"  report        {sheet.parent.parent / 'report.html'}", highlight=False)


def _rig_for(plan):
    from capture.rig import Rig

    return Rig(plan)
