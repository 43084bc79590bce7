"""The training config: typed keys, one-line errors naming the key, the value and the expected type; errors
printed as plain text (no markup eats `[train]`); the resolved config loads back to the same run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cinectrl.main import app
from train.config import ConfigError, load_config, to_toml

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\noutput_dir = "out"\n' + body)
    return path


@pytest.mark.parametrize("body, expected", [
    ('[train]\nmax_steps = "ten"\n', '[train] max_steps = \'ten\' (a string): expected an integer'),
    ("[train]\nlr = true\n", "[train] lr = true (true/false): expected a number"),
    ("[train]\ncpu = 1\n", "[train] cpu = 1 (an integer): expected true or false"),
    ("[data]\nsize = [32, \"wide\"]\n", "[data] size = [32, 'wide'] (a list): expected a list of integers"),
    ("[data]\nreviewed_only = \"no\"\n", "[data] reviewed_only = 'no' (a string): expected true or false"),
    ("[model]\ntext_encoder = 3\n", "[model] text_encoder = 3 (an integer): expected a string"),
    ("[train]\ntrackers = \"tensorboard\"\n[validation]\nevery = 2.5\n",
     "[validation] every = 2.5 (a number): expected an integer"),
    ("seed = \"0\"\n", "seed = '0' (a string): expected an integer"),
    ("[train]\nmax_step = 3\n", "[train] unknown key max_step = 3 (an integer) (did you mean max_steps?)"),
    ("[validaton]\nevery = 3\n", "unknown key validaton"),
    ("data = 3\n", "data = 3 (an integer): expected a table"),
])
def test_wrong_types_and_unknown_keys_are_one_line_naming_key_value_and_type(tmp_path, body, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body))
    message = str(info.value)
    assert expected in message and "\n" not in message, message


def test_values_that_cannot_work_name_the_key(tmp_path):
    cases = {"[data]\nnum_frames = 8\n": "4k+1", "[train]\nlr_scheduler = \"cosine_annealing\"\n": "lr_scheduler",
             "[train]\ntrackers = [\"tensorbored\"]\n": "unknown tracker 'tensorbored'",
             "[train]\nlr_warmup_steps = 500\nmax_steps = 10\n": "lr_warmup_steps = 500",
             "[data]\nsize = [32, 40]\n": "a multiple of 16", "[model]\nprompt = \"{place}\"\n": "{scene}",
             "[data]\nnum_workers = -1\n": "num_workers"}
    for body, expected in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, body))
        assert expected in str(info.value), (body, str(info.value))


def test_cli_prints_config_errors_as_plain_text(tmp_path):
    bad = write(tmp_path, "[train]\nmax_steps = \"ten\"\n")
    result = CliRunner().invoke(app, ["train", "run", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "[train] max_steps = 'ten' (a string): expected an integer" in result.output, result.output
    bad = write(tmp_path, "[data]\nsize = [30, 30]\n")
    result = CliRunner().invoke(app, ["train", "run", str(bad)])
    assert "[data] size = [30, 30]: give [height, width], each a multiple of 16" in result.output, result.output


def test_python_entry_point_prints_one_line_not_a_traceback(tmp_path, capsys):
    from train.finetune import main
    assert main([str(write(tmp_path, "[train]\nbatch_size = \"two\"\n"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "[train] batch_size = 'two'" in err and err.count("\n") == 1


def test_resolved_config_is_complete_and_loads_back(tmp_path):
    cfg = load_config(write(tmp_path, "[data]\ncatalog = \"lab/c.db\"\n[train]\nmax_steps = 7\n"))
    assert cfg.data.catalog == str((tmp_path / "lab" / "c.db").resolve())      # relative to the config file
    text = to_toml(cfg)
    assert "[validation]" in text and "max_steps = 7" in text and "reviewed_only = true" in text
    again = tmp_path / "resolved.toml"
    again.write_text(text)
    reloaded = load_config(again)
    assert {**reloaded.to_dict(), "source": ""} == {**cfg.to_dict(), "source": ""}


def test_a_single_path_is_taken_where_a_list_is_expected(tmp_path):
    cfg = load_config(write(tmp_path, '[data]\nsynthetic_pairs = "synth/pairs.json"\n'))
    assert cfg.data.synthetic_pairs == [str((tmp_path / "synth" / "pairs.json").resolve())]


def test_example_configs_load_and_name_every_section():
    for path in sorted((REPO / "examples").glob("train-*.toml")):
        cfg = load_config(path)
        assert cfg.train.trackers == ["tensorboard"] and cfg.validation.every > 0, path
