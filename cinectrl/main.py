"""`cinectrl`: one typer app whose groups come from cinectrl.commands; no logic lives here."""

from __future__ import annotations

import typer

from cinectrl.commands import capture, catalog, review, rig, serve, train

app = typer.Typer(
    help="Capture real paired footage (camera + slider), review it in Label Studio, train CineCtrl on it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(rig.app, name="rig", help="Cameras and sliders at the rig: detect, set, capture, move.")
app.add_typer(capture.app, name="capture", help="Plan and run capture sessions.")
app.add_typer(catalog.app, name="catalog", help="Ingest, inspect, export and merge the SQLite catalog.")
app.add_typer(review.app, name="review", help="Review clip pairs in Label Studio; the training gate.")
app.add_typer(train.app, name="train", help="Synthesise pairs, fine-tune, evaluate and run CineCtrl.")
app.command("serve", help="Serve a CineCtrl model over HTTP (FastAPI).")(serve.serve)


if __name__ == "__main__":
    app()
