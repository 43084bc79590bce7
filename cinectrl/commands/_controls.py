"""Command-line options for the model's controls, made from the controls registry (rigs/controls.py).

A command declares a `controls: dict[str, float]` parameter and is decorated with `control_options`; the
decorator replaces that parameter with one option per registry control (its flag, help, range and neutral
default), so a control added to the registry appears on every such command without editing it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import typer

from rigs import controls as registry


def _param_name(name: str) -> str:
    return f"control_{name.lower()}"


def control_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(fn)
    if "controls" not in signature.parameters:
        raise TypeError(f"{fn.__name__} must take a 'controls' parameter to receive the registry's controls")
    kept = [p for p in signature.parameters.values() if p.name != "controls"]
    added = [inspect.Parameter(_param_name(c.name), inspect.Parameter.KEYWORD_ONLY, annotation=float,
                               default=typer.Option(c.neutral, c.cli_flag, help=c.help, min=c.low, max=c.high,
                                                    rich_help_panel="Controls (docs/controls.md)"))
             for c in registry.CONTROLS]

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        values = {c.name: kwargs.pop(_param_name(c.name)) for c in registry.CONTROLS}
        return fn(controls=values, **kwargs)

    command.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    return command
