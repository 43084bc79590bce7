"""Commands registered on `cinectrl train`: `synth` (simulated pairs) and `edit` (run a CineCtrl model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import fail, resolve_catalog
from ._controls import control_options


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("edit")(edit)


def synth(catalog: Optional[Path] = typer.Option(None, "--from", help="catalog whose clips to use"),
          out: Path = typer.Option(..., "--out", help="directory for the simulated targets + pairs.json"),
          depth: Optional[Path] = typer.Option(None, "--depth", help=".npz with depth_m (T,H,W) for clips without a "
                                               "<stem>.depth.npz sidecar"),
          per_clip: int = typer.Option(4, "--per-clip", min=1), seed: int = typer.Option(0, "--seed"),
          profile_file: Optional[Path] = typer.Option(None, "--profile", help="calibration profile JSON (`cinectrl rig "
                                                      "calibration export`) to simulate in; default: each clip's own "
                                                      "body + lens profile from the catalog, if measured"),
          ideal: bool = typer.Option(False, "--ideal", help="simulate with the ideal camera even where a profile "
                                                            "exists")) -> None:
    """Simulated pairs: each catalog clip + random controls -> a target clip (train/effects.py), in the linear
    space of the clip's calibrated body + lens (its response, white balance and noise) when it has a profile."""
    import numpy as np
    import torch
    from capture import profiles
    from capture.catalog import open_catalog
    from rigs.calibration.inputs import CalibrationInputError
    from rigs.calibration.profile import CalibrationProfile
    from train import effects
    from train.videoio import read_video, write_video
    path = resolve_catalog(catalog)
    if not path.is_file():
        fail(f"catalog {path}: no such file (give --from CATALOG)")
    if ideal and profile_file is not None:
        fail("--ideal and --profile contradict each other; give one")
    given = None
    if profile_file is not None:
        try:
            given = CalibrationProfile.from_json(profile_file.read_text(encoding="utf-8"), where=str(profile_file))
        except (OSError, CalibrationInputError) as exc:
            fail(str(exc))
    with open_catalog(path, readonly=True) as cat:
        rows = [a for a in cat.assets() if a["kind"] == "clip"]
        clips = [cat.abspath(a["path"]) for a in rows]
        found: dict[int | None, CalibrationProfile | None] = {}
        for a in rows:
            if a["session_id"] not in found:
                found[a["session_id"]] = (None if ideal or a["session_id"] is None
                                          else profiles.for_session(cat, a["session_id"]))
        camera = [given if given is not None else found[a["session_id"]] for a in rows]
    if not clips:
        fail(f"catalog {path}: no clips to simulate from (capture a video pass first)")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = []
    for clip, profile in zip(clips, camera):
        sidecar = clip.with_name(clip.stem + ".depth.npz")
        depth_file = sidecar if sidecar.is_file() else depth
        if depth_file is None or not Path(depth_file).is_file():
            fail(f"{clip}: no depth sidecar {sidecar.name}; give --depth FILE.npz (depth_m, one map per frame)")
        frames, fps = read_video(clip)
        depth_m = np.load(depth_file)["depth_m"].astype(np.float32)[: len(frames)]
        if depth_m.shape[1:] != frames.shape[1:3]:
            fail(f"{depth_file}: depth maps {depth_m.shape[1:]} do not match the clip's frames {frames.shape[1:3]}")
        video = torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2).unsqueeze(0)
        disparity = torch.from_numpy(1.0 / np.maximum(depth_m, 1e-3)).unsqueeze(0)
        for i in range(per_clip):
            controls = {"K": float(rng.uniform(0, 1)), "d_f": float(rng.uniform(0, 1)), "f": float(rng.uniform(0, .5)),
                        "S": float(rng.uniform(-.8, .8)), "T": float(rng.uniform(-.8, .8))}
            target = effects.simulate(video, disparity, controls, seed=seed + i, profile=profile)
            dest = out / f"{clip.stem}_{i}.mp4"
            write_video(dest, (target[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8), fps)
            pairs.append({"source": str(clip), "target": str(dest), "controls": controls,
                          "camera": profile.label if profile is not None else "ideal",
                          "camera_key": profile.key if profile is not None else None})
    (out / "pairs.json").write_text(json.dumps(pairs, indent=1))
    used = sorted({p["camera"] for p in pairs})
    typer.echo(f"{len(pairs)} simulated pairs from {len(clips)} clips -> {out / 'pairs.json'}; camera model: "
               + "; ".join("calibration profile " + u if u != "ideal" else "ideal (sRGB, no profile)" for u in used))


@control_options
def edit(src: Path = typer.Argument(..., help="source clip (.mp4)"),
         model: Optional[Path] = typer.Option(None, "--model", help="CineCtrl pipeline directory (save_pretrained)"),
         out: Path = typer.Option(..., "--out"), controls: dict = None,
         steps: int = typer.Option(30, "--steps", min=1), seed: int = typer.Option(0, "--seed"),
         prompt_embeds: Optional[Path] = typer.Option(None, "--prompt-embeds", help=".pt text embeddings when the "
                                                      "pipeline has no text encoder")) -> None:
    """Edit a clip's photographic settings with a trained CineCtrl pipeline."""
    if model is None:
        fail("--model DIR is required: a randomly initialised model only produces noise; give a pipeline directory "
             "written by CineCtrlPipeline.save_pretrained (e.g. a fine-tuning run's output)")
    if not (model / "model_index.json").is_file():
        fail(f"--model {model}: no model_index.json; give a directory written by CineCtrlPipeline.save_pretrained")
    if not src.is_file():
        fail(f"{src}: no such clip")
    import numpy as np
    import torch
    from train.pipeline import CineCtrlPipeline
    from train.videoio import read_video, write_video
    frames, fps = read_video(src)
    usable = (len(frames) - 1) // 4 * 4 + 1
    h, w = frames.shape[1] // 16 * 16, frames.shape[2] // 16 * 16
    if usable < 1 or h == 0 or w == 0:
        fail(f"{src}: {frames.shape[1]}x{frames.shape[2]}, {len(frames)} frames is too small (need >= 16x16)")
    pipe = CineCtrlPipeline.from_pretrained(model)
    embeds = torch.load(prompt_embeds) if prompt_embeds else None
    if embeds is None and pipe.text_encoder is None:
        fail(f"--model {model} has no text encoder: give --prompt-embeds FILE.pt")
    result = pipe(video=frames[:usable, :h, :w], controls=controls,
                  prompt_embeds=embeds, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed))
    write_video(out, (result[0] * 255).round().astype(np.uint8), fps)
    typer.echo(f"wrote {out} ({usable} frames, {h}x{w})")
