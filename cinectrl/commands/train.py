"""`cinectrl train`: model commands (synth, edit) live in train_model; fine-tuning/eval in train_finetune."""

from __future__ import annotations

import typer

from . import train_autoencoder, train_finetune, train_model

app = typer.Typer(no_args_is_help=True)
train_model.register(app)
train_finetune.register(app)
train_autoencoder.register(app)
