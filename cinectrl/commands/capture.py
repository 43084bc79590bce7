"""`cinectrl capture plan|run|import|status`: check a sweep plan against the rig, run it (resumably), import a
sweep shot elsewhere, see sessions."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ._common import CatalogOption, InitOption, catalog_to_write, err_console, fail, resolve_catalog
from ._plain import say, user_errors

app = typer.Typer(no_args_is_help=True)

PlanArgument = typer.Argument(None, help="Sweep plan (TOML); see examples/ and docs/capture.md.", show_default=False)
NewTakeOption = typer.Option(False, "--new-take", "--new",
                             help="Start another take (a new session) even if this plan already has one.")
SessionOption = typer.Option(None, "--session",
                             help="Resume session N with the plan stored in the catalog (edits to the file ignored).")


def _open_rig(plan):
    """Camera and slider of a plan, opened for a check; the caller closes them."""
    from capture.rig import Rig

    rig = Rig(plan)
    with user_errors(f" (rig.slider, line {plan.line('rig.slider')})"):
        slider = rig.open_slider()
    try:
        with user_errors(f" (rig.camera, line {plan.line('rig.camera')})"):
            camera = rig.open_camera()
    except BaseException:
        if slider is not None:
            slider.close()
        raise
    return rig, camera, slider


def _plan_path(plan_path: Path | None) -> str | None:
    from capture.takes import plan_path_of

    return plan_path_of(plan_path)


def _existing_catalog(catalog: Path | None) -> Path | None:
    path = resolve_catalog(catalog)
    return path if path.exists() else None


@app.command("plan")
def plan_command(
    plan_path: Path = PlanArgument,
    catalog: Optional[Path] = CatalogOption,
    offline: bool = typer.Option(False, "--offline", help="Check the plan alone, without opening camera or slider."),
    show: int = typer.Option(12, "--show", help="How many points of the order to list."),
    test_shot: bool = typer.Option(False, "--test-shot", help="Take one frame at the pair reference's settings "
                                   "to predict every point's exposure (else an earlier session of the scene)."),
    new_take: bool = NewTakeOption,
) -> None:
    """Validate a plan against the camera's choices and the slider's travel (nothing moves); print a summary."""
    from capture.ledger import Ledger
    from capture.plan import check_plan, expand, format_summary, load_plan, summarize
    from capture.preview import (anchor_problem, control_warnings, exposure_warnings, scene_anchor,
                                 test_shot_anchor)

    if plan_path is None:
        fail("give a plan file, e.g. cinectrl capture plan examples/aperture-sweep.toml")
    if offline and test_shot:
        fail("--test-shot needs the camera: drop --offline")
    with user_errors():
        plan = load_plan(plan_path)
        choices = travel = max_speed = accel = None
        camera_label, model, anchor = "camera", "", None
        if not offline:
            _rig, camera, slider = _open_rig(plan)
            try:
                with user_errors():
                    choices, camera_label, model = camera.choices(), camera.identity.label(), camera.identity.model
                    if slider is not None:
                        travel, accel = slider.info.travel_mm, slider.info.accel_mm_s2 or None
                        max_speed = slider.info.max_rate_mm_min / 60 or None
                    problems = check_plan(plan, choices=choices, travel=travel, camera_label=camera_label,
                                          max_speed_mm_s=max_speed, accel_mm_s2=accel)
                    if problems:
                        from capture.plan import PlanError

                        raise PlanError(problems, plan.source)
                    points = expand(plan, choices)
                    if test_shot:
                        reference = _test_shot_settings(plan, points)
                        anchor = test_shot_anchor(camera, reference)
            finally:
                camera.close()
                if slider is not None:
                    slider.close()
        else:
            from capture.plan import PlanError

            problems = check_plan(plan, choices=None, travel=None)
            if problems:
                raise PlanError(problems, plan.source)
            points = expand(plan, None)
        costs, take_note = plan.costs, ""
        existing = _existing_catalog(catalog)
        if existing is not None:
            ledger = Ledger(existing, readonly=True)
            try:
                if not plan.costs.measured:     # offline: sessions whose plan named the same camera
                    costs = ledger.measured_costs(model or None, plan.mode, plan.costs, plan_camera=plan.camera)
                take_note = _take_note(ledger, plan, _plan_path(plan_path), new_take)
                if anchor is None:
                    anchor = scene_anchor(ledger, plan.session.get("scene", ""))
            finally:
                ledger.close()
    say(format_summary(plan, summarize(plan, points, costs)))
    say(f"checked   against {camera_label if choices else 'nothing (offline)'}"
                  + (f" and slider travel {travel[0]:g}..{travel[1]:g} mm" if travel else ""))
    if take_note:
        say(take_note)
    warnings = control_warnings(plan, points)
    if anchor is not None:
        warnings += exposure_warnings(points, anchor)
        say(f"exposure  not predicted: {anchor.source} is too dark or too bright to scale (see the warning)"
            if anchor_problem(anchor) else f"exposure  predicted from {anchor.source}")
    for warning in warnings:
        say(f"warning   {warning}")
    for point in points[:show]:
        where = f" @ {point.slider_mm:g} mm" if point.slider_mm is not None else ""
        say(f"  {point.key}  {' '.join(point.settings.values())}{where}")
    if len(points) > show:
        say(f"  ... {len(points) - show} more")


def _test_shot_settings(plan, points) -> dict[str, str]:
    """The pair reference's settings (the frame every pair is measured against), else the first point's."""
    from capture.pairs import choose_reference
    from capture.preview import combos_of

    combos = combos_of(points)
    return combos[choose_reference(combos, plan.pair_reference)] if combos else {}


def _take_note(ledger, plan, plan_path: str | None, new_take: bool) -> str:
    """What `capture run` would do with this plan: resume, a new take, nothing, or ask (an edited plan)."""
    from capture.takes import PlanChanged, choose_take

    try:
        take = choose_take(ledger, plan, plan_path=plan_path, new_take=new_take)
    except PlanChanged as exc:
        return f"take      {exc}"
    if take.session is None:
        return f"take      a new session (take {take.take} of this plan)"
    counts = ledger.catalog.progress(int(take.session["id"]))
    if take.complete:
        return (f"take      session {take.session['id']} (take {take.take}) of this plan is {take.session['word']}; "
                "`capture run` does nothing unless --new-take")
    return (f"take      `capture run` resumes session {take.session['id']} (take {take.take}, {counts['done']}/"
            f"{counts['total']} points done)")


@app.command("run")
def run_command(
    plan_path: Path = PlanArgument,
    catalog: Optional[Path] = CatalogOption,
    quota_mb: float = typer.Option(None, "--quota-mb", help="Disk space this session may use (MB): the disk-low "
                                                             "suspender treats it as the free space."),
    disk_wait: float = typer.Option(300.0, "--disk-wait", help="Seconds to wait for disk space to come back before "
                                                               "stopping cleanly (suspended)."),
    disk_reserve_mb: float = typer.Option(50.0, "--disk-reserve-mb", help="Free space never used (MB)."),
    quiet: bool = typer.Option(False, "--quiet", help="No live display."),
    new_take: bool = NewTakeOption,
    session: Optional[int] = SessionOption,
    init: bool = InitOption,
    stop_after: int = typer.Option(None, "--stop-after", help="Stop cleanly after N frames (rerun resumes).",
                                   hidden=True),
) -> None:
    """Run (or resume) a capture session: every frame hashed and committed before the next; Ctrl-C pauses."""
    from rich.prompt import Prompt

    from capture import status as words
    from capture.display import LiveDisplay, QuietDisplay
    from capture.plan import load_plan
    from capture.rig import Rig
    from capture.session import RunnerOptions, SessionRunner
    from capture.suspenders import abort_decision
    from capture.takes import stored_session_plan

    catalog_path = catalog_to_write(catalog, init=init)
    with user_errors(" (the ledger keeps every point; rerun to resume)", catalog=catalog_path):
        if session is not None:
            if plan_path is not None:
                fail(f"--session {session} resumes with the plan stored in the catalog: drop {plan_path}")
            plan = None
            rig = Rig(stored_session_plan(catalog_path, session))
        elif plan_path is None:
            fail("give a plan file (cinectrl capture run PLAN.toml) or --session N to resume a session")
        else:
            plan = load_plan(plan_path)
            rig = Rig(plan)

        def decide(reason: str) -> str:
            if not sys.stdin.isatty():
                return abort_decision(reason)
            return "resume" if Prompt.ask(reason, choices=["resume", "abort"], default="resume",
                                          console=err_console) == "resume" else "abort"

        if disk_wait < 0 or disk_reserve_mb < 0 or (quota_mb is not None and quota_mb <= 0):
            fail("--disk-wait and --disk-reserve-mb take 0 or more, --quota-mb more than 0")
        options = RunnerOptions(disk_quota_bytes=int(quota_mb * 1e6) if quota_mb else None, stop_after=stop_after,
                                disk_wait_s=disk_wait, disk_reserve_bytes=int(disk_reserve_mb * 1e6),
                                new_take=new_take, session_id=session, plan_path=_plan_path(plan_path),
                                command=" ".join(["cinectrl", *sys.argv[1:]])[:200])
        runner = SessionRunner(plan, catalog_path, camera_factory=rig.open_camera, slider_factory=rig.open_slider,
                               display=QuietDisplay() if quiet else LiveDisplay(err_console), decide=decide,
                               options=options)
        result = runner.run()
    faults = ", ".join(f"{k} x{v}" for k, v in sorted(result.faults.items())) or "none"
    verb = "resumed" if result.resumed else "ran"
    if result.message.startswith(f"session {result.session_id} (take"):
        verb = "already ran"
    say(f"session {result.session_id} (take {result.take}) {verb}: {result.status}, {result.done}/"
                  f"{result.total} points done in {result.seconds:.1f} s; faults survived: {faults}")
    say(f"catalog   {catalog_path}")
    say(f"files     {result.session_dir}")
    if result.contact_sheet:
        say(f"contact sheet {result.contact_sheet}")
        say(f"report    {result.report}")
    if result.message and result.status == words.COMPLETE:
        say(result.message)
    if result.status != words.COMPLETE:
        message = result.message or words.MEANING.get(result.status, result.status)
        if result.status == words.FAILED:
            fail(message)
        say(f"{result.status}: {message}", err=True)
        raise typer.Exit(words.EXIT_CODES.get(result.status, 1))


@app.command("import")
def import_command(
    folder: Path = typer.Argument(..., help="Folder holding the sweep's files (stills or videos, one per setting).",
                                  show_default=False),
    axis: str = typer.Option(..., "--axis", help="The setting that changes along the sweep: a camera role with "
                             "numeric values (an unknown name lists them)."),
    values_text: Optional[str] = typer.Option(None, "--values", help="The axis value of each file in file-name "
                                              "order, comma-separated (or @FILE), when EXIF does not record it."),
    reference: Optional[str] = typer.Option(None, "--reference", help="The axis value the pairs are made against "
                                            "(default: as for a captured session)."),
    scene: Optional[str] = typer.Option(None, "--scene", help="Scene name (default: the folder's name)."),
    make: Optional[str] = typer.Option(None, "--make", help="Camera make, where EXIF has none."),
    model: Optional[str] = typer.Option(None, "--model", help="Camera model, where EXIF has none."),
    lens: Optional[str] = typer.Option(None, "--lens", help="Lens, where EXIF has none."),
    catalog: Optional[Path] = CatalogOption,
    init: bool = InitOption,
) -> None:
    """Import a sweep shot elsewhere as a session: files catalogued, one clip per setting, pairs, QC, report."""
    from capture.imports import import_sweep, split_values

    catalog_path = catalog_to_write(catalog, init=init)
    with user_errors(catalog=catalog_path):
        result = import_sweep(catalog_path, folder, axis, labels=split_values(values_text) if values_text else None,
                              reference=reference, scene=scene, make=make, model=model, lens=lens)
    sweep = result.sweep
    verb = "already imported" if result.already else f"imported {result.imported} file(s)"
    say(f"session {result.session_id}: {verb}; {len(sweep.files)} settings of {sweep.axis} "
        f"({', '.join(sweep.labels)}; values from {sweep.values_from}), {result.pairs} pairs")
    if sweep.held:
        say(f"held the exposure: {', '.join(sweep.held)} followed {sweep.axis}")
    if sweep.bracketed:
        say(f"exposure bracket: the body also moved {', '.join(sweep.bracketed)} (each file's own value is kept)")
    say(f"catalog   {catalog_path}")
    say(f"files     {result.session_dir}")
    say(f"report    {result.report}")


@app.command("status")
def status_command(
    catalog: Optional[Path] = CatalogOption,
    session: Optional[int] = typer.Option(None, "--session", help="Only this session, in detail."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per session)."),
) -> None:
    """Sessions in a catalog: state (and who runs it), points done, files, clips, pairs, faults survived."""
    from capture.ledger import Ledger

    catalog_path = resolve_catalog(catalog)
    if not catalog_path.exists():
        fail(f"no catalog at {catalog_path}; run `cinectrl capture run PLAN.toml --catalog {catalog_path}` first")
    with user_errors(catalog=catalog_path):
        ledger = Ledger(catalog_path, readonly=True)
        try:
            rows = ledger.summaries()
            if session is not None:
                rows = [r for r in rows if r["id"] == session]
                if not rows:
                    fail(f"there is no capture session {session} in {catalog_path}; `cinectrl capture status` "
                         "lists them")
            records = [_session_record(ledger, row, detail=session is not None or as_json) for row in rows]
        finally:
            ledger.close()
    if as_json:
        print(json.dumps(records[0] if session is not None else records, indent=1, default=str))
        return
    if not records:
        say(f"{catalog_path}: no capture sessions yet")
    for rec in records:
        _print_record(rec, detail=session is not None)


def _session_record(ledger, row: dict[str, Any], *, detail: bool) -> dict[str, Any]:
    from capture import status as words
    from capture import sweeps
    from capture.plan import format_bytes

    folder = ledger.data_root / row["dir"] if row.get("dir") else None
    sheet = folder / "outputs" / "contact-sheet.png" if folder else None
    owner = row.get("owner")
    record: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "scene": row["scene"], "operator": row["operator"],
        "mode": row["mode"], "take": row.get("take") or 1, "status": row["word"],
        "meaning": words.MEANING.get(row["word"], ""),
        "owner": ({"pid": owner.pid, "host": owner.host, "started_at": owner.started_at, "command": owner.command}
                  if owner else None),
        "points": {"total": row["points"], "done": row["done"], "failed": row["failed_points"]},
        "files": row["files"], "bytes": row["bytes"], "size": format_bytes(row["bytes"]),
        "clips": row["clips"], "pairs": row["pairs"], "faults": row["faults"],
        "folder": str(folder) if folder else None, "plan_path": row.get("plan_path"),
        "contact_sheet": str(sheet) if sheet and sheet.exists() else None,
        "report": str(folder / "report.html") if folder and (folder / "report.html").exists() else None,
        "sweeps": sweeps.load(folder / "outputs" if folder else None),
        "created_at": row.get("created_at"), "started_at": row.get("started_at"), "stopped_at": row.get("stopped_at"),
    }
    if detail:
        record["plan_key"] = row.get("plan_key")
        record["faults_by_kind"] = ledger.faults(row["id"])
        record["readback_mismatches"] = len(ledger.readback_mismatches(row["id"]))
        record["failed_points"] = ledger.catalog.rows(
            "SELECT ordinal, attempts, error FROM points WHERE session_id = ? AND status = 'failed' ORDER BY ordinal",
            (row["id"],))
        record["events"] = ledger.events(row["id"])[-10:]
    return record


def _print_record(rec: dict[str, Any], *, detail: bool) -> None:
    p = rec["points"]
    say(f"session {rec['id']} {rec['name']!r} (take {rec['take']}, {rec['mode']}): {rec['status']}, "
                  f"{p['done']}/{p['total']} points, {rec['files']} files ({rec['size']}), {rec['clips']} clips, "
                  f"{rec['pairs']} pairs, {rec['faults']} faults survived")
    if rec["owner"]:
        o = rec["owner"]
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(o["started_at"]))
        say(f"  run by PID {o['pid']} on {o['host']} since {since} ({o['command']})")
    if rec["status"] not in ("complete", "running"):
        say(f"  {rec['meaning']}")
    if rec["contact_sheet"]:
        say(f"  contact sheet {rec['contact_sheet']}")
        say(f"  report        {rec['report']}")
    if detail:
        say(f"  folder        {rec['folder']}")
        say(f"  plan file     {rec['plan_path'] or '(not recorded)'}")
        faults = ", ".join(f"{k} x{v}" for k, v in sorted(rec["faults_by_kind"].items())) or "none"
        say(f"  faults        {faults}")
        say(f"  read-back mismatches {rec['readback_mismatches']}")
        for point in rec["failed_points"]:
            say(f"  failed p{point['ordinal']:04d} after {point['attempts']} attempts: {point['error']}")
        for event in rec["events"]:
            at = time.strftime("%H:%M:%S", time.localtime(event["at"]))
            say(f"  {at} {event['kind']}: {event['message']}")
