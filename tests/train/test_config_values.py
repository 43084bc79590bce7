"""No silent defaults: every config value is checked against what the code accepts (diffusers' own choices where
it has them), a glob that matches nothing, a missing file or folder, or a count that cannot be met is an error
naming the path, the "no training pairs" error names the sources it looked at, and docs/training.md lists every
key the config dataclasses have, with its default."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from train import finetune as FT
from train.config import SECTIONS, TOP_LEVEL, ConfigError, DataError, RunConfig, load_config, weighting_schemes

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(f'name = "x"\noutput_dir = "{tmp_path / "out"}"\n' + body)
    return path


def test_weighting_scheme_choices_come_from_diffusers_and_a_typo_is_refused(tmp_path):
    assert set(weighting_schemes()) == {"logit_normal", "mode", "none"}
    for name in weighting_schemes():
        assert load_config(write(tmp_path, f'[train]\nweighting_scheme = "{name}"\n')).train.weighting_scheme == name
    with pytest.raises(ConfigError, match=r"\[train\] weighting_scheme = 'logit-normal': .*logit_normal, mode, none"):
        load_config(write(tmp_path, '[train]\nweighting_scheme = "logit-normal"\n'))


@pytest.mark.parametrize("body, expected", [
    ('[train]\nema_decay = 1.5\n', "[train] ema_decay = 1.5 must be between 0 and 1"),
    ('[train]\nlora_rank = 0\n', "[train] lora_rank = 0 must be at least 1"),
    ('[train]\ntimestep_shift = 0\n', "[train] timestep_shift = 0.0 must be greater than 0"),
    ('[train]\nmax_grad_norm = -1\n', "[train] max_grad_norm = -1.0 must be 0 or more"),
    ('[model]\ntext_tokens = 0\n', "[model] text_tokens = 0 must be at least 1"),
    ('[model]\ntiny_transformer = {num_layer = 3}\n', "unknown argument 'num_layer' of WanTransformer3DModel "
                                                       "(did you mean num_layers?)"),
    ('[model]\ntiny_vae = {zdim = 4}\n', "unknown argument 'zdim' of AutoencoderKLWan (did you mean z_dim?)"),
    ('[data]\nsynthetic_count = 5\n', "[data] synthetic_count = 5: no clip to simulate them from"),
    ('[data]\nsynthetic_sources = ["*.mp4"]\n', "[data] synthetic_count = 0: synthetic_sources"),
    ('[data]\nsynthetic_from_catalog = true\nsynthetic_count = 3\n', "synthetic_from_catalog = true needs [data] "
                                                                      "catalog"),
])
def test_values_that_cannot_work_are_refused_by_name(tmp_path, body, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, body))
    assert expected in str(info.value)


@pytest.mark.parametrize("body, expected", [
    ('[data]\nsynthetic_sources = ["clips/*.mp4"]\nsynthetic_count = 4\n', "clips/*.mp4: no such directory"),
    ('[data]\nsynthetic_sources = ["here/*.mp4"]\nsynthetic_count = 4\n', "here/*.mp4: no file matches"),
    ('[data]\nsynthetic_pairs = ["synth/pairs.json"]\n', "synth/pairs.json: no such file"),
    ('[data]\ncatalog = "lab/catalog.db"\n', "[data] catalog = "),
    ('[data]\ncatalog = "lab/catalog.db"\nlatent_cache = "nowhere/cache"\n', "nowhere/cache: its folder"),
])
def test_empty_globs_and_missing_paths_are_data_errors_with_the_path(tmp_path, body, expected):
    (tmp_path / "here").mkdir()
    (tmp_path / "lab").mkdir()
    if "latent_cache" in body:
        (tmp_path / "lab" / "catalog.db").touch()
    with pytest.raises(DataError) as info:
        FT.train(load_config(write(tmp_path, body)))
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert not (tmp_path / "out").exists()                   # nothing written for a run that never started


def test_no_training_pairs_names_the_sources_it_looked_at(tmp_path):
    from capture.catalog import open_catalog
    with open_catalog(tmp_path / "empty.db"):
        pass
    with pytest.raises(DataError) as info:
        FT.train(load_config(write(tmp_path, f'[data]\ncatalog = "{tmp_path / "empty.db"}"\n')))
    message = str(info.value)
    assert f"[data] catalog = {tmp_path / 'empty.db'}: no train-ready (reviewed) pair" in message
    assert "no [data] synthetic_pairs or synthetic_sources" in message


def _documented_keys() -> dict[str, str]:
    text = (REPO / "docs" / "training.md").read_text()
    section = text[text.index("### Every config key"):]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    return dict(re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", section, flags=re.M))


def _code_keys() -> dict[str, str]:
    keys = {}
    for f in fields(RunConfig):
        if f.name in TOP_LEVEL:
            required = f.default is MISSING and f.default_factory is MISSING
            keys[f.name] = "required" if required else json.dumps(f.default)
    for name, cls in SECTIONS.items():
        for f in fields(cls):
            default = f.default_factory() if f.default is MISSING else f.default
            keys[f"[{name}] {f.name}"] = json.dumps(default)
    return keys


def test_docs_list_every_config_key_with_its_default():
    documented, code = _documented_keys(), _code_keys()
    assert set(documented) == set(code), (sorted(set(code) - set(documented)), sorted(set(documented) - set(code)))
    assert documented == code
