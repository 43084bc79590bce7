"""`cinectrl train run` (fine-tune from a TOML config) and `cinectrl train eval` (metrics report)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import typer

from ._common import CatalogOption, fail, resolve_catalog


def run(config: Path = typer.Argument(..., help="Training config (TOML), see examples/train-*.toml."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
        max_steps: int = typer.Option(None, "--max-steps", help="Override [train] max_steps.")) -> None:
    """Fine-tune on the catalog's pairs (+ synthetic pairs). Multi-process: `accelerate launch -m train.finetune
    CONFIG` or `torchrun --nproc_per_node N -m train.finetune CONFIG` (docs/training.md)."""
    from rigs.controls import ControlError
    from train.config import ConfigError, exit_code, load_config
    from train.finetune import train
    from train.pipeline import ModelDirError
    try:
        cfg = load_config(config)
        if max_steps:
            cfg.train.max_steps = max_steps
        summary = train(cfg, resume=resume)
    except (ConfigError, ControlError, ModelDirError) as exc:
        fail(str(exc), exit_code(exc))      # the same code as `python -m train.finetune` (docs/training.md)
    if not summary.get("model_dir"):
        return
    say = typer.echo                      # plain text: config keys like [data] are printed as they are
    say(f"trained {summary['steps']} steps, final loss {summary['final_loss']:.4f}; "
        f"{summary['skipped_items']} item(s) skipped")
    data = summary["data"]
    gate = "reviewed pairs only" if data["reviewed_only"] else \
        f"reviewed_only = false: {len(data['unreviewed'])} unreviewed QC-passed pair(s) admitted"
    say(f"data: {data['real']} real, {data['synthetic']} synthetic ({gate}); {data['train']} train / "
        f"{data['eval']} eval pairs")
    say(f"text conditioning: {summary['text_conditioning']}")
    val = summary["validation"]
    if val["losses"]:
        say(f"validation loss {val['losses'][-1][1]:.4f} at step {val['losses'][-1][0]} "
            f"({val['pairs']} eval pair(s)); table: {Path(summary['model_dir']).parent / 'val_loss.csv'}")
    elif val["note"]:
        say(f"validation: {val['note']}")
    if summary["samples"]["dirs"]:
        say(f"sample edits: {summary['samples']['dirs'][-1]}")
    if summary["samples"]["note"]:
        say(f"samples: {summary['samples']['note']}")
    speed = summary["throughput"]
    if speed["median_step_s"]:
        say(f"throughput: {speed['median_step_s']:.3f} s/step, {speed['samples_per_s']:.2f} samples/s")
    if summary["logging_dir"]:
        say(f"tracking ({', '.join(summary['trackers'])}): {summary['logging_dir']}")
    say(f"model: {summary['model_dir']}\nloss plot: {summary['loss_plot']}")


def evaluate(model: list[str] = typer.Option(..., "--model", help="Model directory from `cinectrl train run`; "
                                               "repeat as NAME=DIR to compare several models in one report."),
             out: Path = typer.Option(Path("eval-report"), "--out", help="Report directory."),
             catalog: Path = CatalogOption,
             all_scenes: bool = typer.Option(False, "--all-scenes", help="Evaluate on every scene, not only the "
                                             "scenes the models held out from training."),
             sources: list[str] = typer.Option([], "--sources", help="Globs of source clips for simulated sweeps "
                                               "of axes no captured sweep covers."),
             steps: int = typer.Option(8, "--steps", help="Sampling steps per edit."),
             max_frames: int = typer.Option(17, "--max-frames", help="Frames read per clip."),
             profile_file: Path = typer.Option(None, "--profile", help="Calibration profile JSON of the body the clips "
                                               "came from; default: the catalog's profile of the captured sweeps' "
                                               "body + lens, if measured."),
             ideal: bool = typer.Option(False, "--ideal", help="Assume the ideal camera even where a profile exists.")
             ) -> None:
    """Control accuracy (CorrCoef, response slope ratio, absolute error), disentanglement and camera-path error
    of each model against the identity and effect-simulator baselines, on the catalog's captured sweeps of the
    scenes the models never trained on: report.md/.html, plots and metrics.json in --out. Statistics are computed
    in the calibrated body's linear space when a profile exists (the report says which camera)."""
    from rigs.controls import ControlError
    from train import calibrated
    from train import evaluate as E
    from train.editor import load_editor
    from train.pipeline import ModelDirError
    named = {}
    for item in model:
        name, _, path = item.rpartition("=")
        named[name or ("model" if len(model) == 1 else Path(path).parent.name)] = Path(path)
    editors, held_out, size = {}, {}, None
    for name, path in named.items():
        try:
            editors[name] = load_editor(path, steps=steps)
        except (ModelDirError, ControlError, OSError) as exc:
            fail(str(exc))
        card = editors[name].pipe.card
        held_out[name] = set(card.extra["eval_scenes"]) if card.extra.get("eval_scenes") else None
        size = size or (tuple(card.size) if card.size else None)
    blind = sorted(name for name, scenes in held_out.items() if scenes is None)
    if blind and not all_scenes:
        fail(f"model {', '.join(blind)} held out no scene (or does not say which): every sweep would be of a scene "
             "it may have trained on; give --all-scenes to score it anyway (the report marks those figures)")
    catalog_path = resolve_catalog(catalog) if catalog is not None or not sources else None
    if catalog_path is not None and not catalog_path.is_file():
        fail(f"catalog {catalog_path} not found (give --catalog)")
    union = set().union(*(s for s in held_out.values() if s))
    scenes = None if all_scenes else union
    sweeps, notes = E.build_sweeps(catalog_path, scenes=scenes,
                                   sources=sorted({p for pattern in sources for p in glob.glob(pattern)}),
                                   max_frames=max_frames, size=size)
    if not sweeps:
        fail("nothing to evaluate: no captured sweep in the catalog" + (" for the held-out scenes "
             f"{', '.join(sorted(union))} (use --all-scenes)" if scenes else "") + " and no --sources clips")
    if all_scenes:
        notes.append("--all-scenes: models are also scored on scenes they trained on; those figures are marked "
                     "TRAINED-ON SCENES")
    profile, note = _evaluation_profile(profile_file, catalog_path, ideal)
    simulate = calibrated.profiled_simulator(profile) if profile is not None else None
    methods = {**editors, "identity": E.identity, "simulator": E.simulator_editor(simulate)}
    result = E.evaluate(sweeps, methods, view=calibrated.view_for(profile), held_out=held_out,
                        trained_on_ok=all_scenes, size=size)
    result["notes"] = notes + [note] + result["notes"]
    paths_out = E.write_report(result, out)
    for method, data in result["methods"].items():         # each CorrCoef with its sweeps and their sizes
        typer.echo(f"{method}: " + ("; ".join(f"{axis} CorrCoef {E.corrcoef_cell(s)}, {s['sweeps']} sweep(s)"
                                             for axis, s in data["axes"].items()) or "no sweep scored"))
    typer.echo(f"report: {paths_out['markdown']}  metrics: {paths_out['metrics']}")


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
