"""Honest evaluation: each model is scored only on the scenes it held out (not the union of every model's), a
scene it trained on is refused or — with --all-scenes — marked loudly, a model that held out nothing is refused
without --all-scenes, and every CorrCoef is printed with its sweep sizes (n)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cinectrl.main import app
from rigs import controls as registry
from train import evaluate as E

from .conftest import TINY_CONFIG, make_pair_catalog, simple_edit, textured_clip


def _sweeps():
    out = []
    for scene, seed, points in (("a", 1, [-0.6, 0.0, 0.6]), ("b", 2, [-0.6, -0.2, 0.2, 0.6])):
        source = textured_clip(seed, frames=3, size=48)
        members = [E.Member(v, {**registry.NEUTRAL, "S": v}, simple_edit(source, {"S": v})) for v in points]
        out.append(E.Sweep("S", source, members, scene=scene, session=scene))
    return out


def _edit(frames, controls, **_):
    return simple_edit(frames, controls)


def test_each_model_is_scored_on_its_own_held_out_scenes_only():
    result = E.evaluate(_sweeps(), {"m_a": _edit, "m_b": _edit, "identity": E.identity},
                        held_out={"m_a": {"a"}, "m_b": {"b"}})
    scenes = {m: [d["scene"] for d in result["methods"][m]["sweeps"]] for m in result["methods"]}
    assert scenes == {"m_a": ["a"], "m_b": ["b"], "identity": ["a", "b"]}
    assert result["methods"]["m_a"]["skipped"] == [{"axis": "S", "scene": "b", "why": "m_a trained on scene b"}]
    assert result["methods"]["m_a"]["axes"]["S"]["points"] == [3]
    assert result["methods"]["m_b"]["axes"]["S"]["points"] == [4]


def test_all_scenes_scores_training_scenes_but_marks_them():
    result = E.evaluate(_sweeps(), {"m_a": _edit}, held_out={"m_a": {"a"}}, trained_on_ok=True)
    summary = result["methods"]["m_a"]["axes"]["S"]
    assert summary["sweeps"] == 2 and summary["on_training_scenes"] == 1 and summary["points"] == [3, 4]
    assert [d["trained_on"] for d in result["methods"]["m_a"]["sweeps"]] == [False, True]
    cell = E.corrcoef_cell(summary)
    assert "(n=3-4)" in cell and "TRAINED-ON SCENES: 1 of 2" in cell
    assert any("TRAINED-ON SCENES" in row[3] for row in E.table_rows(result))


@pytest.mark.timeout(300)
def test_cli_refuses_a_model_without_held_out_scenes_and_prints_n(tmp_path):
    from train import finetune as FT
    catalog = make_pair_catalog(tmp_path / "lab")
    config = tmp_path / "one.toml"
    config.write_text(TINY_CONFIG.format(name="one", out=tmp_path / "one", catalog=catalog, extra="")
                      .replace("eval_fraction = 0.3", "eval_fraction = 0.0").replace("max_steps = 4", "max_steps = 1"))
    FT.train(FT.load_config(config))
    model = tmp_path / "one" / "model"
    assert json.loads((model / "cinectrl.json").read_text())["eval_scenes"] == []
    runner = CliRunner()
    args = ["train", "eval", "--model", str(model), "--catalog", str(catalog), "--steps", "1", "--max-frames", "9"]
    refused = runner.invoke(app, [*args, "--out", str(tmp_path / "r0")])
    assert refused.exit_code == 1 and "held out no scene" in refused.output and "--all-scenes" in refused.output
    marked = runner.invoke(app, [*args, "--all-scenes", "--out", str(tmp_path / "r1")])
    assert marked.exit_code == 0, marked.output
    assert "model: S CorrCoef" in marked.output and "(n=3)" in marked.output and "TRAINED-ON SCENES" in marked.output
    assert "TRAINED-ON SCENES" in (tmp_path / "r1" / "report.md").read_text()
