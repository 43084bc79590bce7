"""The training run's configuration: a TOML file -> typed, checked, resolved `RunConfig`.

Every key has a type; a wrong type or an unknown key is one line naming the key, the value and what was
expected, so a typo never trains with a default. Relative paths resolve against the config file's folder, and
the resolved config (every default filled in) is what a run prints and saves beside its outputs.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import tiny


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""

    exit_code = 2


class WeightsError(ConfigError):
    """The model's weights (`[model] pretrained`, `vae`, `text_encoder`) are missing or unusable."""

    exit_code = 3


class DataError(ConfigError):
    """The configured data gives nothing to train on (a missing catalog or folder, an empty glob, no pairs)."""

    exit_code = 4


class LaunchError(ConfigError):
    """The launcher would not run what it was asked to (N processes that start as one, FSDP on CPU)."""

    exit_code = 5


#: What `cinectrl train run` and `python -m train.finetune` exit with, per kind of error (docs/training.md).
EXIT_CODES = {"ok": 0, "config": ConfigError.exit_code, "weights": WeightsError.exit_code, "data": DataError.exit_code,
              "launch": LaunchError.exit_code}


def exit_code(exc: BaseException) -> int:
    """The one exit code of an error a run refuses with (a model directory or control list that does not fit
    counts as a weights error)."""
    if isinstance(exc, ConfigError):
        return exc.exit_code
    from rigs.controls import ControlError
    if isinstance(exc, (ControlError, FileNotFoundError)):
        return WeightsError.exit_code
    raise exc


#: LR schedules diffusers' `get_scheduler` knows (diffusers.optimization.SchedulerType).
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


def weighting_schemes() -> tuple[str, ...]:
    """The noise-level densities diffusers' `compute_density_for_timestep_sampling` tells apart, read from the
    function itself (the names it compares `weighting_scheme` with), plus "none" for its uniform `else` — which
    also swallows any typo, so a value outside these is refused here."""
    import ast
    import inspect
    import textwrap

    from diffusers.training_utils import compute_density_for_timestep_sampling
    tree = ast.parse(textwrap.dedent(inspect.getsource(compute_density_for_timestep_sampling)))
    names = [node.comparators[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
             and node.left.id == "weighting_scheme" and isinstance(node.comparators[0], ast.Constant)]
    return (*names, "none")
TRAINABLE = ("new", "new+self_attn", "all", "lora")
PRECISIONS = ("auto", "no", "bf16", "fp16")


@dataclass
class DataConfig:
    catalog: str = ""                       # pairs from this catalog ('' = none)
    reviewed_only: bool = True              # false: also pairs that passed QC but were not reviewed yet
    synthetic_pairs: list[str] = field(default_factory=list)    # pairs.json files written by `train synth`
    synthetic_sources: list[str] = field(default_factory=list)  # globs of clips simulated on the fly
    synthetic_from_catalog: bool = False    # also simulate pairs from the catalog's reference clips (training scenes)
    synthetic_count: int = 0
    ratio: list[int] = field(default_factory=lambda: [1, 1])    # real:synthetic
    num_frames: int = 9
    size: list[int] = field(default_factory=lambda: [32, 32])
    stride: int = 1
    eval_fraction: float = 0.2
    latent_cache: str = ""                  # directory for cached VAE latents and prompt embeddings ('' = off)
    num_workers: int = 0                    # DataLoader worker processes (decode + simulate off the main process)
    shards: str = ""                        # a dataset export (folder or fsspec URL; instead of catalog) ('' = none)
    shard_cache: str = ""                   # local folder for clips fetched from shards ('' = OUTPUT/shard-cache)


@dataclass
class ModelConfig:
    pretrained: str = ""                    # diffusers dir with transformer/ and vae/ ('' = tiny from config)
    transformer: str = "tiny"               # preset of train/tiny.py when nothing is pretrained: tiny | small
    tiny_transformer: dict[str, Any] = field(default_factory=dict)   # overrides of the preset's config
    tiny_vae: dict[str, Any] = field(default_factory=tiny.vae_config)
    vae: str = ""                           # a trained autoencoder (`cinectrl train autoencoder`) instead of tiny_vae
    formulation: str = "flow"               # flow (noise -> target, the paper's) | bridge (source -> target)
    anchor: str = "source"                  # bridge start: source (the clip) | simulator (train/effects.py's render)
    space: str = "vae"                      # vae (tiny_vae or [model] vae) | pixel (exact; space-to-depth)
    pixel_factor: int = 8                   # pixel space: space-to-depth factor f in space (H/f x W/f)
    pixel_temporal: int = 4                 # pixel space: frames per latent frame (1, 2 or 4; 4 = as Wan's VAE)
    maps: bool = False                      # feed the simulator's physical maps as extra input channels
    text_tokens: int = 16
    text_encoder: str = ""                  # local text encoder dir (UMT5 for Wan); '' = zero prompt embeddings
    prompt: str = "{scene}"                 # prompt of a pair without its own; {scene} = the pair's scene


@dataclass
class TrainConfig:
    max_steps: int = 100
    batch_size: int = 1
    lr: float = 1e-4
    lr_scheduler: str = "constant_with_warmup"
    lr_warmup_steps: int = 0
    weight_decay: float = 1e-2
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    trainable: str = "new"                  # new | new+self_attn | all | lora
    lora_rank: int = 8
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"           # auto | no | bf16 | fp16
    ema: bool = False
    ema_decay: float = 0.999
    max_minutes: float = 0.0                # also stop after this long (0 = no limit); the step reached is kept
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    timestep_shift: float = 3.0
    weighting_scheme: str = "logit_normal"
    identity_fraction: float = 0.0          # share of each batch turned into neutral pairs (target = source)
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])   # accelerate trackers by name
    cpu: bool = False


@dataclass
class ValidationConfig:
    every: int = 50                         # validation loss on the eval split every N steps (0 = never)
    max_pairs: int = 16                     # eval pairs the validation loss averages over
    sample_every: int = 100                 # sample edits of fixed validation clips every N steps (0 = never)
    samples: int = 2                        # how many fixed clips
    sample_steps: int = 8                   # sampling steps per sample edit


@dataclass
class RunConfig:
    name: str
    output_dir: str
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                             "validation": ValidationConfig}
TOP_LEVEL = {"name": str, "output_dir": str, "seed": int}


# ------------------------------------------------------------------------------------------------ types

def _describe_type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is list:
        inner = typing.get_args(hint)[0]
        return f"a list of {_describe_type(inner).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _describe_value(value: Any) -> str:
    kind = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, bool) else str(value).lower()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """(ok, value): whether `value` has the type `hint`, with int -> float widening."""
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            return False, value
        inner = typing.get_args(hint)[0]
        out = []
        for item in value:
            ok, item = _coerce(item, inner)
            if not ok:
                return False, value
            out.append(item)
        return True, out
    if origin is dict:
        return isinstance(value, dict), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    return True, value


def _typed(where: str, key: str, value: Any, hint: Any) -> Any:
    ok, coerced = _coerce(value, hint)
    if not ok and typing.get_origin(hint) is list and isinstance(value, str):
        ok, coerced = _coerce([value], hint)          # a single path where a list of paths is expected
    if not ok:
        raise ConfigError(f"{where}{key} = {_describe_value(value)}: expected {_describe_type(hint)}")
    return coerced


def _unknown(where: str, key: str, value: Any, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{where}unknown key {key} = {_describe_value(value)}{hint}; expected one of: "
                       f"{', '.join(known)}")


def _section(path: Path, name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {name} = {_describe_value(raw)}: expected a table ([{name}] with keys)")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise _unknown(f"{path}: [{name}] ", key, value, known)
        values[key] = _typed(f"{path}: [{name}] ", key, value, hints[key])
    return cls(**values)


# ------------------------------------------------------------------------------------------------ loading

def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path} is a directory; give the TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML ({exc})") from None
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS:
            kwargs[key] = _section(path, key, SECTIONS[key], value)
        elif key in TOP_LEVEL:
            kwargs[key] = _typed(f"{path}: ", key, value, TOP_LEVEL[key])
        else:
            raise _unknown(f"{path}: top-level ", key, value, [*TOP_LEVEL, *(f"[{s}]" for s in SECTIONS)])
    for required in ("name", "output_dir"):
        if required not in kwargs:
            raise ConfigError(f"{path}: missing {required} (e.g. {required} = \"...\")")
    cfg = RunConfig(**kwargs, source=str(path.resolve()))
    resolve_paths(cfg, path.parent)
    validate(cfg)
    return cfg


def _absolute(value: str, base: Path) -> str:
    return value if not value or Path(value).is_absolute() else str((base / value).resolve())


def resolve_paths(cfg: RunConfig, base: Path) -> None:
    """Paths in the config are relative to the config file's folder."""
    cfg.output_dir = _absolute(cfg.output_dir, base)
    d, m = cfg.data, cfg.model
    d.catalog, d.latent_cache = _absolute(d.catalog, base), _absolute(d.latent_cache, base)
    if d.shards and "://" not in d.shards:
        d.shards = _absolute(d.shards, base)
    d.shard_cache = _absolute(d.shard_cache, base)
    d.synthetic_pairs = [_absolute(p, base) for p in d.synthetic_pairs]
    d.synthetic_sources = [s if Path(s).is_absolute() else str(base.resolve() / s) for s in d.synthetic_sources]
    m.pretrained, m.text_encoder = _absolute(m.pretrained, base), _absolute(m.text_encoder, base)
    m.vae = _absolute(m.vae, base)


def validate(cfg: RunConfig) -> None:
    """Values of the right type that still cannot work."""
    t, d, v = cfg.train, cfg.data, cfg.validation
    if d.num_frames < 1 or d.num_frames % 4 != 1:
        raise ConfigError(f"[data] num_frames = {d.num_frames}: Wan needs 4k+1 frames (e.g. 9, 17, 33, 81)")
    if t.trainable not in TRAINABLE:
        raise ConfigError(f"[train] trainable = {t.trainable!r}; use {', '.join(TRAINABLE)}")
    if t.mixed_precision not in PRECISIONS:
        raise ConfigError(f"[train] mixed_precision = {t.mixed_precision!r}; use {', '.join(PRECISIONS)}")
    if t.lr_scheduler not in LR_SCHEDULERS:
        raise ConfigError(f"[train] lr_scheduler = {t.lr_scheduler!r}; use {', '.join(LR_SCHEDULERS)}")
    if t.weighting_scheme not in weighting_schemes():
        raise ConfigError(f"[train] weighting_scheme = {t.weighting_scheme!r}: diffusers' "
                          f"compute_density_for_timestep_sampling knows {', '.join(weighting_schemes())} (any other "
                          "name silently samples uniform noise levels)")
    if not 0 < t.ema_decay < 1:
        raise ConfigError(f"[train] ema_decay = {t.ema_decay} must be between 0 and 1 (e.g. 0.999)")
    if t.lora_rank < 1 or cfg.model.text_tokens < 1:
        key, value = ("[train] lora_rank", t.lora_rank) if t.lora_rank < 1 else ("[model] text_tokens",
                                                                               cfg.model.text_tokens)
        raise ConfigError(f"{key} = {value} must be at least 1")
    for key in ("weight_decay", "max_grad_norm"):
        if not getattr(t, key) >= 0:
            raise ConfigError(f"[train] {key} = {getattr(t, key)} must be 0 or more")
    if not t.timestep_shift > 0:
        raise ConfigError(f"[train] timestep_shift = {t.timestep_shift} must be greater than 0 (e.g. 3.0)")
    _check_model_tables(cfg.model)
    if d.synthetic_count and not (d.synthetic_sources or d.synthetic_from_catalog):
        raise ConfigError(f"[data] synthetic_count = {d.synthetic_count}: no clip to simulate them from; set [data] "
                          "synthetic_sources (globs of clips) or synthetic_from_catalog = true, or synthetic_count = 0")
    if (d.synthetic_sources or d.synthetic_from_catalog) and not d.synthetic_count:
        raise ConfigError("[data] synthetic_count = 0: synthetic_sources / synthetic_from_catalog would give no pair; "
                          "set how many pairs to simulate")
    if d.synthetic_from_catalog and not d.catalog:
        raise ConfigError("[data] synthetic_from_catalog = true needs [data] catalog")
    for key in ("max_steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints"):
        if getattr(t, key) < 1:
            raise ConfigError(f"[train] {key} = {getattr(t, key)} must be at least 1")
    if not t.lr > 0:
        raise ConfigError(f"[train] lr = {t.lr} must be greater than 0")
    if not 0 <= t.lr_warmup_steps <= t.max_steps:
        raise ConfigError(f"[train] lr_warmup_steps = {t.lr_warmup_steps} must be between 0 and max_steps "
                          f"({t.max_steps})")
    check_trackers(t.trackers)
    if d.shards and d.catalog:
        raise ConfigError(f"[data] shards = {d.shards!r} and catalog = {d.catalog!r}: give one (the shards are an "
                          "export of a catalog's pairs)")
    if d.shards and d.synthetic_from_catalog:
        raise ConfigError(f"[data] shards = {d.shards!r} with synthetic_from_catalog = true: shards carry pairs, "
                          "not the catalog's reference clips; render them first (`cinectrl train synth`) and use "
                          "synthetic_pairs")
    if len(d.size) != 2 or any(s < 16 or s % 16 for s in d.size):
        raise ConfigError(f"[data] size = {d.size}: give [height, width], each a multiple of 16")
    if len(d.ratio) != 2 or min(d.ratio) < 0 or sum(d.ratio) == 0:
        raise ConfigError(f"[data] ratio = {d.ratio}: give [real, synthetic], non-negative, not [0, 0]")
    if not 0 <= d.eval_fraction < 1:
        raise ConfigError(f"[data] eval_fraction = {d.eval_fraction} must be in [0, 1)")
    for key in ("num_workers", "stride", "synthetic_count"):
        minimum = 1 if key == "stride" else 0
        if getattr(d, key) < minimum:
            raise ConfigError(f"[data] {key} = {getattr(d, key)} must be at least {minimum}")
    for key in ("every", "max_pairs", "sample_every", "samples", "sample_steps"):
        if getattr(v, key) < 0:
            raise ConfigError(f"[validation] {key} = {getattr(v, key)} must be 0 or more")
    m = cfg.model
    from .model import FORMULATIONS, check_anchor
    from .space import SPACES, TEMPORAL
    if m.formulation not in FORMULATIONS:
        raise ConfigError(f"[model] formulation = {m.formulation!r}; use one of {', '.join(FORMULATIONS)}")
    try:
        check_anchor(m.formulation, m.anchor)
    except ValueError as exc:
        raise ConfigError(f"[model] {exc}") from None
    if m.space not in SPACES:
        raise ConfigError(f"[model] space = {m.space!r}; use one of {', '.join(SPACES)}")
    if m.pixel_factor < 1 or any(s % m.pixel_factor for s in d.size):
        raise ConfigError(f"[model] pixel_factor = {m.pixel_factor}: must be at least 1 and divide [data] size "
                          f"{d.size}")
    if m.pixel_temporal not in TEMPORAL:
        raise ConfigError(f"[model] pixel_temporal = {m.pixel_temporal}; use one of {', '.join(map(str, TEMPORAL))}")
    if m.pretrained and (m.space != "vae" or m.maps or m.vae):
        raise ConfigError(f"[model] pretrained = {m.pretrained}: the checkpoint brings its own VAE and input "
                          "channels; leave space = \"vae\", maps = false and vae = \"\"")
    if m.space == "pixel" and m.vae:
        raise ConfigError(f"[model] vae = {m.vae} with space = \"pixel\": pixel space has no autoencoder; "
                          "remove one of them")
    if cfg.model.transformer not in tiny.PRESETS:
        raise ConfigError(f"[model] transformer = {cfg.model.transformer!r}; use one of {', '.join(tiny.PRESETS)}")
    if cfg.model.vae and not (Path(cfg.model.vae) / "config.json").is_file():
        raise WeightsError(f"[model] vae = {cfg.model.vae}: no trained autoencoder there (config.json missing); make "
                          "one with `cinectrl train autoencoder --out DIR`")
    if not 0 <= t.identity_fraction < 1:
        raise ConfigError(f"[train] identity_fraction = {t.identity_fraction} must be in [0, 1)")
    if t.max_minutes < 0:
        raise ConfigError(f"[train] max_minutes = {t.max_minutes} must be 0 (no limit) or more")
    try:
        cfg.model.prompt.format(scene="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"[model] prompt = {cfg.model.prompt!r}: only {{scene}} may be filled in ({exc})") from None


def _check_model_tables(m: ModelConfig) -> None:
    """`[model] tiny_transformer` / `tiny_vae` keys are the diffusers classes' own constructor arguments."""
    import inspect

    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from .model import CineCtrlTransformer3DModel
    for key, classes in (("tiny_transformer", (CineCtrlTransformer3DModel, WanTransformer3DModel)),
                         ("tiny_vae", (AutoencoderKLWan,))):
        accepted = {name for cls in classes for name in inspect.signature(cls.__init__).parameters} - {"self"}
        unknown = sorted(set(getattr(m, key)) - accepted)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(accepted), n=1)
            raise ConfigError(f"[model] {key}: unknown argument {unknown[0]!r} of {classes[-1].__name__}"
                              + (f" (did you mean {close[0]}?)" if close else "")
                              + f"; expected some of: {', '.join(sorted(accepted))}")


def check_data_paths(cfg: RunConfig) -> None:
    """Every configured data path exists and every glob matches (train.data.DataError naming the path); called
    after the model weights are checked and before anything is read."""
    d = cfg.data
    if d.catalog and not Path(d.catalog).is_file():
        raise DataError(f"[data] catalog = {d.catalog}: no such file (capture first, e.g. bash scripts/demo.sh)")
    for path in d.synthetic_pairs:
        if not Path(path).is_file():
            raise DataError(f"[data] synthetic_pairs: {path}: no such file; make it with `cinectrl train synth --out "
                            "DIR`")
    import glob
    for pattern in d.synthetic_sources:
        if not glob.glob(pattern):
            parent = Path(pattern).parent
            why = "no such directory" if not parent.is_dir() else "no file matches"
            raise DataError(f"[data] synthetic_sources: {pattern}: {why}; fix the glob or remove it")
    if d.latent_cache and not Path(d.latent_cache).parent.is_dir():
        raise DataError(f"[data] latent_cache = {d.latent_cache}: its folder {Path(d.latent_cache).parent} does not "
                        "exist")


def check_trackers(names: list[str]) -> None:
    """Trackers are accelerate's by name; one whose package is missing is refused before training starts."""
    from accelerate.utils import LoggerType
    from accelerate.tracking import _available_trackers as available_trackers
    known = sorted(t.value for t in LoggerType if t.value != "all")
    for name in names:
        if name not in known:
            raise ConfigError(f"[train] trackers = {names}: unknown tracker {name!r}; accelerate knows "
                              f"{', '.join(known)} ([] = none)")
        if name not in [str(getattr(t, "value", t)) for t in available_trackers]:
            raise ConfigError(f"[train] trackers = {names}: {name!r} is not installed (pip install {name}); or "
                              "remove it from trackers")


def to_toml(cfg: RunConfig) -> str:
    """The resolved config as TOML (every key, defaults filled in, absolute paths): loadable again."""
    import tomli_w
    data = cfg.to_dict()
    data.pop("source")
    return tomli_w.dumps(data)
