"""`cinectrl serve`: the HTTP job service over a trained model (train/serve.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import fail


def serve(model: Path = typer.Option(..., "--model", help="Model directory (the model/ folder `cinectrl train run` "
                                     "wrote, or its run directory)."),
          data_dir: Path = typer.Option(Path("serve-data"), "--data-dir", help="Job queue, uploads and results."),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8000, "--port"),
          device: list[str] = typer.Option(["cpu"], "--device", help="One worker per device (repeat: cuda:0 ...)."),
          catalog: Path = typer.Option(None, "--catalog", help="Allow jobs on catalog clips by id."),
          steps: int = typer.Option(8, "--steps", min=1, help="Sampling steps per window."),
          max_upload_mb: int = typer.Option(256, "--max-upload-mb", min=1),
          max_duration_s: float = typer.Option(20.0, "--max-duration-s"),
          max_frames: int = typer.Option(241, "--max-frames", min=1, help="Longest clip accepted, in frames.")) -> None:
    """Serve edits over HTTP; the bearer token comes from $CINECTRL_SERVE_TOKEN. API docs at /docs."""
    from rigs.controls import ControlError
    from train.editor import load_editor
    from train.pipeline import ModelDirError, check_model_dir
    from train.serve import TOKEN_ENV, ServeConfig, create_app, run_server, token_from_env
    token = token_from_env()
    if not token:
        fail(f"set {TOKEN_ENV} to the bearer token clients must send (e.g. export {TOKEN_ENV}=$(openssl rand -hex 16))")
    try:
        model = check_model_dir(model)                        # refused now, not later in a worker thread
    except (ModelDirError, ControlError) as exc:
        fail(f"--model: {exc}")
    if catalog is not None and not catalog.is_file():
        fail(f"--catalog {catalog}: no such file")
    config = ServeConfig(data_dir=data_dir, token=token, devices=list(device), catalog=catalog,
                         max_upload_bytes=max_upload_mb * 1024 * 1024, max_duration_s=max_duration_s,
                         max_frames=max_frames)
    app = create_app(config, lambda dev: load_editor(model, dev, steps=steps, max_frames=max_frames))
    run_server(app, host, port)
