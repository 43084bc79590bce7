"""`cinectrl train run` (fine-tune from a TOML config) and `cinectrl train eval` (metrics report)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import typer

from ._common import CatalogOption, fail


SIMULATED_SWEEPS = {"exposure": [-0.6, -0.2, 0.2, 0.6], "colour_temperature": [-0.6, -0.2, 0.2, 0.6],
                    "bokeh": [0.0, 0.3, 0.6, 0.9], "zoom": [0.0, 0.2, 0.4, 0.6]}


def run(config: Path = typer.Argument(..., help="Training config (TOML), see examples/train-*.toml."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
        max_steps: int = typer.Option(None, "--max-steps", help="Override [train] max_steps.")) -> None:
    """Fine-tune on the catalog's pairs (+ synthetic pairs). Multi-process: `accelerate launch -m train.finetune
    CONFIG` or `torchrun --nproc_per_node N -m train.finetune CONFIG` (docs/training.md)."""
    from rigs.controls import ControlError
    from train.config import ConfigError, load_config
    from train.finetune import train
    from train.pipeline import ModelDirError
    try:
        cfg = load_config(config)
        if max_steps:
            cfg.train.max_steps = max_steps
        summary = train(cfg, resume=resume)
    except (ConfigError, ControlError, ModelDirError) as exc:
        fail(str(exc))
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


def evaluate(model: Path = typer.Option(..., "--model", help="Model directory from `cinectrl train run`."),
             out: Path = typer.Option(Path("eval-report"), "--out", help="Report directory."),
             catalog: Path = CatalogOption,
             sources: list[str] = typer.Option([], "--sources", help="Globs of source clips for simulated sweeps."),
             steps: int = typer.Option(8, "--steps", help="Sampling steps per edit."),
             max_frames: int = typer.Option(17, "--max-frames", help="Frames read per clip.")) -> None:
    """Control accuracy (CorrCoef + absolute error), disentanglement and source consistency of the model vs the
    identity and effect-simulator baselines: report.md/.html, plots and metrics.json in --out."""
    from rigs.controls import ControlError
    from train import evaluate as E
    from train.editor import load_editor
    from train.finetune import default_simulator
    from train.pipeline import ModelDirError
    from train.videoio import VideoError, read_video
    try:
        editor = load_editor(model, steps=steps)
    except (ModelDirError, ControlError) as exc:
        fail(str(exc))
    simulate = default_simulator()
    sweeps = []
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
            typer.echo(f"skipped {p}: {exc}")
    captured = {s.effect for s in sweeps}
    simulated = {e: v for e, v in SIMULATED_SWEEPS.items() if e not in captured}   # captured wins where it exists
    if clips and simulated:
        sweeps += E.simulated_sweeps(clips, simulate, simulated)
    if not sweeps:
        fail("nothing to evaluate: no captured sweep in the catalog (--catalog) and no --sources clips")
    methods = {"model": editor, "identity": lambda frames, controls: frames}
    if simulate is not None:
        methods["simulator"] = simulate
    result = E.evaluate(sweeps, methods)
    if simulate is None:
        result["notes"].append("effect-simulator baseline skipped: train/effects.py not available")
    paths_out = E.write_report(result, out)
    typer.echo(json.dumps({m: {e: v["corrcoef"] for e, v in d["effects"].items()}
                           for m, d in result["methods"].items()}))
    typer.echo(f"report: {paths_out['markdown']}  metrics: {paths_out['metrics']}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(evaluate)
