"""The training loop and the server are written as named steps (diffusers' scripts cut into functions, the shape
of capture/plan/): no function in train/finetune.py or train/serve.py runs past 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT = 60


@pytest.mark.parametrize("module", ["train/finetune.py", "train/serve.py"])
def test_functions_are_named_steps_of_at_most_60_lines(module):
    tree = ast.parse((REPO / module).read_text())
    long = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LIMIT}
    assert not long, f"{module}: {long}"


def test_the_loop_has_no_hand_written_agreement_or_schedule():
    """accelerate's set_trigger/check_trigger decide the time limit on every process alike (no hand-written
    all-reduce), diffusers' get_scheduler gives the LR schedule."""
    text = (REPO / "train" / "finetune.py").read_text()
    assert "set_trigger()" in text and "check_trigger()" in text and "_all_agree" not in text
    assert "get_scheduler(" in text
