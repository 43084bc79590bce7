"""Commands registered on `cinectrl train`: `synth` (simulated pairs) and `edit` (run a CineCtrl model)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import fail, resolve_catalog
from ._controls import control_options


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("edit")(edit)


#: every video clip of the catalog (captured or ingested) with its session's scene
def synth(catalog: Optional[Path] = typer.Option(None, "--from", help="catalog whose clips to use"),
          out: Path = typer.Option(..., "--out", help="directory for the simulated targets + pairs.json"),
          depth: Optional[Path] = typer.Option(None, "--depth", help=".npz with depth_m (T,H,W) for clips without a "
                                               "<stem>.depth.npz sidecar"),
          per_clip: int = typer.Option(4, "--per-clip", min=1), seed: int = typer.Option(0, "--seed"),
          profile_file: Optional[Path] = typer.Option(None, "--profile", help="calibration profile JSON (`cinectrl rig "
                                                      "calibration export`) to simulate in; default: each clip's own "
                                                      "body + lens profile from the catalog, if measured"),
          ideal: bool = typer.Option(False, "--ideal", help="simulate with the ideal camera even where a profile "
                                                            "exists"),
          references: bool = typer.Option(False, "--references", help="only the sessions' reference clips (the "
                                          "sources of the catalog's pairs), not every sweep member"),
          eval_fraction: Optional[float] = typer.Option(None, "--eval-fraction", help="leave out the scenes `train "
                                                        "run` holds out at this eval_fraction (the same hash split)"))\
        -> None:
    """Simulated pairs: each catalog clip + random controls -> a target clip (train/effects.py), in the linear
    space of the clip's calibrated body + lens (its response, white balance and noise) when it has a profile. A
    clip that cannot be used is skipped and reported; train on the result with
    `[data] synthetic_pairs = ["OUT/pairs.json"]`."""
    from capture import profiles
    from capture.catalog import open_catalog
    from rigs.calibration.inputs import CalibrationInputError
    from rigs.calibration.profile import CalibrationProfile
    from train.data import catalog_clips
    from train.synth import make_pairs
    path = resolve_catalog(catalog)
    if not path.is_file():
        fail(f"catalog {path}: no such file (give --from CATALOG)")
    if depth is not None and not depth.is_file():
        fail(f"--depth {depth}: no such file")
    if ideal and profile_file is not None:
        fail("--ideal and --profile contradict each other; give one")
    given = None
    if profile_file is not None:
        try:
            given = CalibrationProfile.from_json(profile_file.read_text(encoding="utf-8"), where=str(profile_file))
        except (OSError, CalibrationInputError) as exc:
            fail(str(exc))
    from train.data import catalog_sources, eval_scenes
    with open_catalog(path, readonly=True) as cat:
        clips = catalog_clips(cat, with_session=True)
        if references:
            keep = {str(p) for _, p, _ in catalog_sources(cat)}
            clips = [c for c in clips if str(c[1]) in keep]
        found = {sid: (None if ideal or sid is None else profiles.for_session(cat, sid))
                 for sid in {sid for _, _, sid in clips}}
    if eval_fraction is not None:
        held_out = eval_scenes({scene for scene, _, _ in clips}, eval_fraction)
        clips = [c for c in clips if c[0] not in held_out]
    if not clips:
        fail(f"catalog {path}: no clips to simulate from (capture a session first"
             + (", or drop --references/--eval-fraction" if references or eval_fraction is not None else "") + ")")
    camera = {clip: given if given is not None else found[sid] for _, clip, sid in clips}
    report = make_pairs([(scene, clip) for scene, clip, _ in clips], out, per_clip=per_clip, seed=seed, depth=depth,
                        profile_for=camera.get)
    for clip, why in report.skipped.items():
        typer.echo(f"skipped {clip}: {why}")
    for clip, what in report.partial.items():
        typer.echo(f"partly used {clip}: {what}")
    used = report.clips - len(report.skipped)
    cameras = sorted({p["camera"] for p in report.pairs})
    typer.echo(f"{len(report.pairs)} simulated pairs from {used} of {report.clips} clips -> {out / 'pairs.json'}; "
               "camera model: " + ("; ".join("calibration profile " + u if u != "ideal" else "ideal (sRGB, no profile)"
                                             for u in cameras) or "none"))
    if not report.pairs:
        fail(f"no clip of {path} could be used (see the reasons above)")
    typer.echo(f'train on them: [data] synthetic_pairs = ["{(out / "pairs.json").resolve()}"]')


@control_options
def edit(src: Path = typer.Argument(..., help="source clip (any length and size)"),
         model: Optional[Path] = typer.Option(None, "--model", help="model directory from `cinectrl train run` "
                                              "(its model/ folder, or the run directory)"),
         out: Path = typer.Option(..., "--out"), controls: dict = None,
         camera_path: Optional[str] = typer.Option(None, "--camera-path", help='target camera path relative to the '
                                                   'source: a .json file or inline JSON, {"slider_mm": [0, 20]} or '
                                                   '{"poses": [[12 numbers], ...]}'),
         prompt: Optional[str] = typer.Option(None, "--prompt", help="text prompt (used when the model has a text "
                                              "encoder)"),
         steps: int = typer.Option(30, "--steps", min=1), seed: int = typer.Option(0, "--seed"),
         device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ...")) -> None:
    """Edit a clip's photographic settings with a trained CineCtrl model. The whole clip comes back, at its own
    length and size (edited in overlapping windows and resized for the model where needed)."""
    if model is None:
        fail("--model DIR is required: a randomly initialised model only produces noise; give the model/ folder "
             "`cinectrl train run` wrote")
    if not src.is_file():
        fail(f"{src}: no such clip")
    from rigs.controls import ControlError
    from train.camera_path import CameraPathError, load
    from train.editor import EditRefused, load_editor
    from train.pipeline import ModelDirError
    from rigs.video import VideoError, probe, read_video, write_video
    try:
        path = load(camera_path) if camera_path else None
    except CameraPathError as exc:
        fail(f"--camera-path: {exc}")
    try:
        info = probe(src)
        editor = load_editor(model, device, steps=steps, seed=seed)
        plan = editor.plan(info.frames, info.height, info.width)       # refused here, before any work
        frames, fps = read_video(src)
        if len(frames) != info.frames:
            plan = editor.plan(*frames.shape[:3])
        result = editor.edit(frames, controls, camera_path=path, prompt=prompt, plan=plan)
        write_video(out, result, fps)
    except (ModelDirError, ControlError, EditRefused, VideoError) as exc:
        fail(str(exc))
    typer.echo(f"{plan.describe()}; text: {editor.card.text_conditioning}")
    if path is not None:
        typer.echo(f"camera: {path.describe()}")
    typer.echo(f"wrote {out} ({result.shape[0]} frames, {result.shape[2]}x{result.shape[1]}, {float(fps):g} fps)")
