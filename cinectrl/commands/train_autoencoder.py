"""`cinectrl train autoencoder`: a Wan video autoencoder trained on the catalog's captured clips."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import CatalogOption, console, fail, resolve_catalog


def autoencoder(out: Path = typer.Option(..., "--out", help="Directory for the trained VAE (diffusers format)."),
                catalog: Path = CatalogOption,
                minutes: float = typer.Option(5.0, "--minutes", min=0.1, help="Training time budget."),
                max_steps: int = typer.Option(100_000, "--max-steps", min=1, help="Step budget (whichever of "
                                              "--minutes and --max-steps comes first stops it)."),
                target_psnr: float = typer.Option(30.0, "--target-psnr", help="Stop once held-out scenes' "
                                                  "reconstruction reaches this PSNR (dB)."),
                size: tuple[int, int] = typer.Option((64, 96), "--size", help="Height and width the clips are "
                                                     "resized to (the training resolution)."),
                eval_fraction: float = typer.Option(0.2, "--eval-fraction", help="Share of scenes held out (the "
                                                    "same hash split as `train run`)."),
                config: str = typer.Option("small", "--config", help="VAE size: small or tiny."),
                seed: int = typer.Option(0, "--seed")) -> None:
    """Train the autoencoder the model's latents come from on captured clips of the training scenes, and report
    held-out scenes' reconstruction PSNR against --target-psnr (the report says why when it is missed)."""
    from capture.catalog import open_catalog
    from train import autoencoder as A
    from train import data as D
    if config not in A.CONFIGS:
        fail(f"--config {config!r}: use one of {', '.join(A.CONFIGS)}")
    if any(s % 16 for s in size):
        fail(f"--size {size[0]} {size[1]}: give height and width as multiples of 16")
    path = resolve_catalog(catalog)
    if not path.is_file():
        fail(f"catalog {path}: no such file (give --catalog)")
    with open_catalog(path, readonly=True) as cat:
        sources = D.catalog_clips(cat)
    if not sources:
        fail(f"catalog {path}: no captured clips to train on (run a capture session with video passes first)")
    held_out = D.eval_scenes({scene for scene, _ in sources}, eval_fraction)
    train_clips = [p for scene, p in sources if scene not in held_out]
    heldout_clips = [p for scene, p in sources if scene in held_out]
    cfg = A.AutoencoderConfig(size=tuple(size), minutes=minutes, max_steps=max_steps, target_psnr=target_psnr, seed=seed,
                              vae=dict(A.CONFIGS[config]))
    console.print(f"autoencoder: {len(train_clips)} training clips, {len(heldout_clips)} held-out clips "
                  f"(scenes {', '.join(sorted(held_out)) or 'none'}), up to {minutes:g} min")
    try:
        report = A.train_autoencoder(train_clips, heldout_clips, out, cfg, progress=lambda e: console.print(
            f"  step {e['step']}: held-out PSNR {e['heldout_psnr']:.2f} dB ({e['seconds']:.0f} s)"))
    except ValueError as exc:
        fail(str(exc))
    verdict = "reached" if report.reached else "NOT reached"
    console.print(f"held-out PSNR {report.heldout_psnr:.2f} dB (train {report.train_psnr:.2f} dB), target "
                  f"{report.target_psnr:g} dB {verdict}; {report.steps} steps; saved to {out}")
    if not report.reached:
        console.print(report.why_not, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("autoencoder")(autoencoder)
