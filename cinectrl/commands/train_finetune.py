"""`cinectrl train run` (fine-tune from a TOML config) and `cinectrl train eval` (metrics report)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import typer

from ._common import CatalogOption, console, fail


SIMULATED_SWEEPS = {"exposure": [-0.6, -0.2, 0.2, 0.6], "colour_temperature": [-0.6, -0.2, 0.2, 0.6],
                    "bokeh": [0.0, 0.3, 0.6, 0.9], "zoom": [0.0, 0.2, 0.4, 0.6]}


def run(config: Path = typer.Argument(..., help="Training config (TOML), see examples/train-*.toml."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
        max_steps: int = typer.Option(None, "--max-steps", help="Override [train] max_steps.")) -> None:
    """Fine-tune on the catalog's train-ready pairs (+ synthetic pairs). Multi-process: `accelerate launch -m
    train.finetune CONFIG` or `torchrun --nproc_per_node N -m train.finetune CONFIG`."""
    from train.finetune import ConfigError, load_config, train
    try:
        cfg = load_config(config)
        if max_steps:
            cfg.train.max_steps = max_steps
        summary = train(cfg, resume=resume)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    if summary.get("model_dir"):
        console.print(f"trained {summary['steps']} steps, final loss {summary['final_loss']:.4f}; "
                      f"{summary['skipped_items']} item(s) skipped")
        console.print(f"model: {summary['model_dir']}\nloss plot: {summary['loss_plot']}")


def evaluate(model: Path = typer.Option(..., "--model", help="Model directory from `cinectrl train run`."),
             out: Path = typer.Option(Path("eval-report"), "--out", help="Report directory."),
             catalog: Path = CatalogOption,
             sources: list[str] = typer.Option([], "--sources", help="Globs of source clips for simulated sweeps."),
             steps: int = typer.Option(8, "--steps", help="Sampling steps per edit."),
             max_frames: int = typer.Option(17, "--max-frames", help="Frames read per clip."),
             profile_file: Path = typer.Option(None, "--profile", help="Calibration profile JSON of the body the clips "
                                               "came from; default: the catalog's profile of the captured sweeps' "
                                               "body + lens, if measured."),
             ideal: bool = typer.Option(False, "--ideal", help="Assume the ideal camera even where a profile exists.")
             ) -> None:
    """Control accuracy (CorrCoef + absolute error), disentanglement and source consistency of the model vs the
    identity and effect-simulator baselines: report.md/.html, plots and metrics.json in --out. Statistics are
    computed in the calibrated body's linear space when a profile exists (the report says which camera)."""
    from train import calibrated
    from train import evaluate as E
    from train.editor import load_editor
    from train.finetune import default_simulator
    from train.videoio import VideoError, read_video
    try:
        editor = load_editor(model, steps=steps)
    except (FileNotFoundError, OSError) as exc:
        fail(str(exc))
    simulate = default_simulator()
    sweeps = []
    profile, note = _evaluation_profile(profile_file, catalog, ideal)
    if catalog is not None:
        if not catalog.is_file():
            fail(f"catalog {catalog} not found")
        from capture.catalog import open_catalog
        with open_catalog(catalog, create=False, durable=False) as cat:
            sweeps += E.captured_sweeps(cat, max_frames=max_frames)
    paths = sorted({p for pattern in sources for p in glob.glob(pattern)})
    if paths and simulate is None:
        fail("--sources needs the effect simulator (train/effects.py), which this installation lacks")
    clips = []
    for p in paths:
        try:
            clips.append((Path(p).stem, read_video(p, max_frames=max_frames)[0]))
        except VideoError as exc:
            console.print(f"skipped {p}: {exc}")
    captured = {s.effect for s in sweeps}
    simulated = {e: v for e, v in SIMULATED_SWEEPS.items() if e not in captured}   # captured wins where it exists
    if clips and simulated:
        sweeps += E.simulated_sweeps(clips, simulate, simulated)
    if not sweeps:
        fail("nothing to evaluate: no captured sweep in the catalog (--catalog) and no --sources clips")
    methods = {"model": editor, "identity": lambda frames, controls: frames}
    if simulate is not None:
        methods["simulator"] = calibrated.profiled_simulator(profile) if profile is not None else simulate
    result = E.evaluate(sweeps, methods, view=calibrated.view_for(profile))
    result["notes"].append(note)
    if simulate is None:
        result["notes"].append("effect-simulator baseline skipped: train/effects.py not available")
    paths_out = E.write_report(result, out)
    console.print(json.dumps({m: {e: v["corrcoef"] for e, v in d["effects"].items()}
                              for m, d in result["methods"].items()}))
    console.print(f"report: {paths_out['markdown']}  metrics: {paths_out['metrics']}")


def _evaluation_profile(profile_file: Path | None, catalog: Path | None, ideal: bool):
    """(profile or None, the report's camera note): --profile, else the one body + lens of the catalog's captured
    sessions that has a profile, else the ideal camera."""
    from train.calibrated import IDEAL_NOTE, camera_note
    if ideal:
        if profile_file is not None:
            fail("--ideal and --profile contradict each other; give one")
        return None, IDEAL_NOTE + " (--ideal)"
    if profile_file is not None:
        from rigs.calibration.inputs import CalibrationInputError
        from rigs.calibration.profile import CalibrationProfile
        try:
            profile = CalibrationProfile.from_json(profile_file.read_text(encoding="utf-8"), where=str(profile_file))
        except (OSError, CalibrationInputError) as exc:
            fail(str(exc))
        return profile, camera_note(profile)
    if catalog is None or not catalog.is_file():
        return None, IDEAL_NOTE
    from capture import profiles
    from capture.catalog import open_catalog
    with open_catalog(catalog, create=False, durable=False) as cat:
        sessions = sorted({p["session_id"] for p in cat.pairs()})
        found = {s: profiles.for_session(cat, s) for s in sessions}
    keys = {p.key: p for p in found.values() if p is not None}
    if len(keys) == 1 and all(found.values()):
        profile = next(iter(keys.values()))
        return profile, camera_note(profile)
    if keys:
        return None, (IDEAL_NOTE + "; the captured sessions come from several bodies, not all with the same "
                      "profile: give --profile to evaluate in one of them")
    return None, IDEAL_NOTE


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(evaluate)
