"""`cinectrl serve`: the HTTP job service over a trained model (train/serve.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import fail


def serve(model: Path = typer.Option(..., "--model", help="Model directory (from `cinectrl train run`)."),
          data_dir: Path = typer.Option(Path("serve-data"), "--data-dir", help="Job queue, uploads and results."),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8000, "--port"),
          device: list[str] = typer.Option(["cpu"], "--device", help="One worker per device (repeat: cuda:0 ...)."),
          catalog: Path = typer.Option(None, "--catalog", help="Allow jobs on catalog clips by id."),
          steps: int = typer.Option(8, "--steps", help="Sampling steps per job."),
          max_upload_mb: int = typer.Option(256, "--max-upload-mb"),
          max_duration_s: float = typer.Option(20.0, "--max-duration-s")) -> None:
    """Serve edits over HTTP; the bearer token comes from $CINECTRL_SERVE_TOKEN. API docs at /docs."""

    from train.editor import load_editor
    from train.serve import TOKEN_ENV, ServeConfig, create_app, run_server, token_from_env
    token = token_from_env()
    if not token:
        fail(f"set {TOKEN_ENV} to the bearer token clients must send (e.g. export {TOKEN_ENV}=$(openssl rand -hex 16))")
    if not (model / "transformer").is_dir():
        fail(f"--model {model}: not a model directory (needs transformer/ and vae/); train one with "
             "`cinectrl train run CONFIG.toml`")
    if catalog is not None and not catalog.is_file():
        fail(f"--catalog {catalog}: no such file")
    config = ServeConfig(data_dir=data_dir, token=token, devices=list(device), catalog=catalog,
                         max_upload_bytes=max_upload_mb * 1024 * 1024, max_duration_s=max_duration_s)
    app = create_app(config, lambda dev: load_editor(model, dev, steps=steps))
    run_server(app, host, port)
