"""Fine-tuning loop (accelerate): flow matching on the target half of `[target_noisy | source_clean]` latents.

Runs the same under `python -m train.finetune CONFIG`, `cinectrl train run CONFIG`, `accelerate launch` and
`torchrun` (DDP; CPU processes use gloo). Checkpoints are `checkpoints/checkpoint-<step>/` holding accelerate's
`save_state` (optimizer, RNG, EMA) plus the transformer in diffusers format; `resume=True` continues from the
newest one and reproduces the losses of an uninterrupted run (noise and sampling order are seeded by step).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import inspect
import json
import logging
import math
import shutil
import subprocess
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

from . import data as D
from . import tiny
from .model import CineCtrlTransformer3DModel, check_controls

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


# ------------------------------------------------------------------------------------------------ config

@dataclass
class DataConfig:
    catalog: str = ""                       # train-ready pairs from this catalog ('' = none)
    synthetic_sources: list[str] = field(default_factory=list)   # globs of source clips for synthetic pairs
    synthetic_from_catalog: bool = False    # also make synthetic pairs from the catalog's reference clips
    synthetic_count: int = 0
    ratio: list[int] = field(default_factory=lambda: [1, 1])     # real:synthetic
    num_frames: int = 9
    size: list[int] = field(default_factory=lambda: [32, 32])
    stride: int = 1
    eval_fraction: float = 0.2
    latent_cache: str = ""                  # directory for cached VAE latents of file-backed clips ('' = off)


@dataclass
class ModelConfig:
    pretrained: str = ""                    # diffusers dir with transformer/ and vae/ ('' = tiny from config)
    transformer: str = "tiny"               # preset of train/tiny.py when nothing pretrained: tiny | small
    tiny_transformer: dict[str, Any] = field(default_factory=dict)   # overrides of the preset's config
    tiny_vae: dict[str, Any] = field(default_factory=tiny.vae_config)
    vae: str = ""                           # a trained autoencoder (`cinectrl train autoencoder`) instead of tiny_vae
    text_tokens: int = 16


@dataclass
class TrainConfig:
    max_steps: int = 100
    batch_size: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-2
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    trainable: str = "new"                  # new | new+self_attn | all | lora
    lora_rank: int = 8
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"           # auto | no | bf16 | fp16
    ema: bool = False
    ema_decay: float = 0.999
    max_minutes: float = 0.0                # stop after this long (0 = no limit); the step reached is recorded
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    timestep_shift: float = 3.0
    weighting_scheme: str = "logit_normal"
    cpu: bool = False


@dataclass
class RunConfig:
    name: str
    output_dir: str
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML ({exc})") from None
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in sections:
            cls = sections[key]
            known = set(inspect.signature(cls).parameters)
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigError(f"{path}: unknown key(s) [{key}] {', '.join(unknown)}; known: {', '.join(sorted(known))}")
            kwargs[key] = cls(**value)
        elif key in ("name", "output_dir", "seed"):
            kwargs[key] = value
        else:
            raise ConfigError(f"{path}: unknown top-level key {key!r}; use name, output_dir, seed, [data], [model], [train]")
    for required in ("name", "output_dir"):
        if required not in kwargs:
            raise ConfigError(f"{path}: missing {required!r} (e.g. {required} = \"...\")")
    cfg = RunConfig(**kwargs, source=str(path))
    out = Path(cfg.output_dir)
    if not out.is_absolute():
        cfg.output_dir = str((path.parent / out).resolve())
    for attr in ("catalog", "latent_cache"):
        value = getattr(cfg.data, attr)
        if value and not Path(value).is_absolute():
            setattr(cfg.data, attr, str((path.parent / value).resolve()))
    cfg.data.synthetic_sources = [s if Path(s).is_absolute() else str(path.parent / s) for s in cfg.data.synthetic_sources]
    for attr in ("pretrained", "vae"):
        value = getattr(cfg.model, attr)
        if value and not Path(value).is_absolute():
            setattr(cfg.model, attr, str((path.parent / value).resolve()))
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    t = cfg.train
    D.check_num_frames(cfg.data.num_frames)
    if t.trainable not in ("new", "new+self_attn", "all", "lora"):
        raise ConfigError(f"[train] trainable = {t.trainable!r}; use new, new+self_attn, all or lora")
    if t.mixed_precision not in ("auto", "no", "bf16", "fp16"):
        raise ConfigError(f"[train] mixed_precision = {t.mixed_precision!r}; use auto, no, bf16 or fp16")
    for key in ("max_steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints"):
        if getattr(t, key) < 1:
            raise ConfigError(f"[train] {key} = {getattr(t, key)} must be at least 1")
    if len(cfg.data.size) != 2 or any(s % 16 for s in cfg.data.size):
        raise ConfigError(f"[data] size = {cfg.data.size}: give [height, width], multiples of 16")
    if cfg.model.transformer not in tiny.PRESETS:
        raise ConfigError(f"[model] transformer = {cfg.model.transformer!r}; use one of {', '.join(tiny.PRESETS)}")
    if cfg.model.vae and not (Path(cfg.model.vae) / "config.json").is_file():
        raise ConfigError(f"[model] vae = {cfg.model.vae}: no trained autoencoder there (config.json missing); make "
                          "one with `cinectrl train autoencoder --out DIR`")
    if t.max_minutes < 0:
        raise ConfigError(f"[train] max_minutes = {t.max_minutes} must be 0 (no limit) or more")


# ------------------------------------------------------------------------------------------------ model

def build_models(cfg: RunConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformer, vae): a trained CineCtrl model directory, a stock Wan2.1 diffusers directory (new modules
    freshly initialised), or the tiny configuration."""
    from diffusers import AutoencoderKLWan
    if cfg.model.pretrained:
        root = Path(cfg.model.pretrained)
        config = json.loads((root / "transformer" / "config.json").read_text())
        if config.get("_class_name") == CineCtrlTransformer3DModel.__name__:
            transformer = CineCtrlTransformer3DModel.from_pretrained(root / "transformer")
            check_controls(transformer, what=f"[model] pretrained = {root}")
        else:
            transformer = CineCtrlTransformer3DModel.from_wan(root / "transformer")
        vae = AutoencoderKLWan.from_pretrained(root / "vae")
    else:
        torch.manual_seed(cfg.seed)
        transformer = CineCtrlTransformer3DModel(**tiny.transformer_config(cfg.model.transformer,
                                                                            **cfg.model.tiny_transformer))
        vae = AutoencoderKLWan.from_pretrained(cfg.model.vae) if cfg.model.vae else AutoencoderKLWan(**cfg.model.tiny_vae)
    vae.requires_grad_(False).eval()
    return transformer, vae


def conditioning_kwargs(model: torch.nn.Module, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The CineCtrl transformer's condition inputs from a collated batch."""
    return {"controls": batch["controls"], "trajectory": batch["trajectory"]}


def encode(vae: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Normalised VAE latents (argmax of the posterior, as Wan pipelines do)."""
    latents = vae.encode(video.to(vae.dtype)).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    return (latents - mean) / std


def sample_sigmas(batch: int, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    from diffusers.training_utils import compute_density_for_timestep_sampling
    u = compute_density_for_timestep_sampling(cfg.weighting_scheme, batch, logit_mean=0.0, logit_std=1.0,
                                              mode_scale=1.29, generator=generator)
    shift = cfg.timestep_shift
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(model: torch.nn.Module, target_latents: torch.Tensor, source_latents: torch.Tensor,
                       text: torch.Tensor, sigmas: torch.Tensor, noise: torch.Tensor,
                       conditions: Mapping[str, Any]) -> torch.Tensor:
    """MSE of the predicted velocity (noise - x0) on the target half only; the source half stays clean."""
    s = sigmas.view(-1, 1, 1, 1, 1).to(target_latents.dtype)
    noisy = (1 - s) * target_latents + s * noise
    frames = target_latents.shape[2]
    hidden = torch.cat([noisy, source_latents], dim=2)
    pred = model(hidden_states=hidden, timestep=sigmas * 1000, encoder_hidden_states=text, return_dict=False,
                 **conditions)[0]
    return F.mse_loss(pred[:, :, :frames].float(), (noise - target_latents).float())


class EpochSampler(Sampler[int]):
    """A permutation seeded by (seed, epoch), so a resumed run sees the batches an uninterrupted one would.
    (Deliberately not named `set_epoch`: accelerate would call that with its own per-process iteration count,
    which restarts at 0 after a resume.)"""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


# ------------------------------------------------------------------------------------------------ data

def build_records(cfg: RunConfig) -> tuple[list[D.PairRecord], list[D.PairRecord], dict[str, Any]]:
    real: list[D.PairRecord] = []
    all_scenes: set[str] = set()
    sources: list[tuple[str, Path, Path | None]] = []
    if cfg.data.catalog:
        from capture.catalog import open_catalog
        if not Path(cfg.data.catalog).is_file():
            raise ConfigError(f"[data] catalog = {cfg.data.catalog}: no such file")
        with open_catalog(cfg.data.catalog, readonly=True) as cat:
            real = D.records_from_catalog(cat, train_ready_only=True)
            all_scenes = set(D.session_scenes(cat).values())
            if cfg.data.synthetic_from_catalog:
                sources += D.catalog_sources(cat)
    sources += [(Path(p).stem, Path(p), None)
                for p in sorted({p for pattern in cfg.data.synthetic_sources for p in glob.glob(pattern)})]
    all_scenes |= {scene for scene, _, _ in sources}
    # the split is decided per scene before any pair is drawn: a held-out scene gives no synthetic pair either
    held_out = D.eval_scenes(all_scenes, cfg.data.eval_fraction)
    synthetic = D.synthetic_records([s for s in sources if s[0] not in held_out], cfg.data.synthetic_count,
                                    seed=cfg.seed)
    records = D.mix(real, synthetic, tuple(cfg.data.ratio), seed=cfg.seed)
    if not records:
        raise ConfigError("no training pairs: no train-ready pair in [data] catalog and no [data] synthetic_sources "
                          "matched (review pairs first, or point synthetic_sources at clips)")
    train, evaluation = D.split_by_scene(records, cfg.data.eval_fraction, scenes=all_scenes)
    snapshot = hashlib.sha256(json.dumps(sorted(f"{r.kind}:{r.pair_id}:{r.source}:{r.target}:{r.controls}"
                                                for r in records)).encode()).hexdigest()[:16]
    info = {"real": sum(r.kind == "real" for r in records), "synthetic": sum(r.kind == "synthetic" for r in records),
            "train": len(train), "eval": len(evaluation), "snapshot": snapshot,
            "eval_scenes": sorted(held_out)}
    return train, evaluation, info


def default_simulator():
    """The effect simulator in train.data.Simulator form ((T, H, W, 3) uint8 in and out)."""
    from .effects import simulate_uint8
    return simulate_uint8


# ------------------------------------------------------------------------------------------------ loop

def checkpoints(output_dir: Path) -> list[Path]:
    found = [p for p in (output_dir / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def code_version() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "train"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train(cfg: RunConfig, *, resume: bool = False, simulate=None) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    t = cfg.train
    out = Path(cfg.output_dir)
    precision = t.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not t.cpu else "no"
    accelerator = Accelerator(gradient_accumulation_steps=t.grad_accum, mixed_precision=precision, cpu=t.cpu,
                              project_config=ProjectConfiguration(project_dir=str(out)))
    set_seed(cfg.seed)
    main = accelerator.is_main_process
    train_records, eval_records, data_info = build_records(cfg)
    dataset = D.PairDataset(train_records, num_frames=cfg.data.num_frames, size=tuple(cfg.data.size),
                            simulate=simulate or default_simulator(), stride=cfg.data.stride)
    if len(dataset) == 0:
        raise ConfigError(f"all {len(train_records)} training pairs were skipped: {dataset.skipped.reasons}")
    transformer, vae = build_models(cfg)
    trainable = transformer.set_trainable(t.trainable, t.lora_rank)
    if t.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    sampler = EpochSampler(len(dataset), cfg.seed)
    loader = DataLoader(dataset, batch_size=t.batch_size, sampler=sampler, collate_fn=D.collate, drop_last=False)
    transformer, optimizer, loader = accelerator.prepare(transformer, optimizer, loader)
    vae.to(accelerator.device)
    cache = D.LatentCache(Path(cfg.data.latent_cache) / f"rank{accelerator.process_index}", _vae_id(vae)) \
        if cfg.data.latent_cache else None
    sampling = {"frames": cfg.data.num_frames, "size": tuple(cfg.data.size), "stride": cfg.data.stride}
    ema = None
    if t.ema:
        from diffusers.training_utils import EMAModel
        ema = EMAModel(params, decay=t.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    step, run_id = 0, None
    existing = checkpoints(out)
    if resume and existing:
        accelerator.load_state(str(existing[-1]))
        step = int(json.loads((existing[-1] / "trainer_state.json").read_text())["step"])
        accelerator.print(f"resumed from {existing[-1].name} (step {step})")
        run_id = json.loads((existing[-1] / "trainer_state.json").read_text()).get("catalog_run_id")
    elif resume:
        accelerator.print("no checkpoint to resume from; starting at step 0")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        _truncate_loss_csv(out / "loss.csv", step)
        if cfg.data.catalog and run_id is None:
            run_id = _catalog_start(cfg, data_info, train_records, eval_records)
    text = torch.zeros(t.batch_size, cfg.model.text_tokens, _text_dim(transformer), device=accelerator.device)
    batches_per_epoch = math.ceil(len(loader))
    updates_per_epoch = max(1, batches_per_epoch // t.grad_accum)
    bar = tqdm(total=t.max_steps, initial=step, disable=not main, desc=cfg.name, unit="step")
    started, losses_window = time.time(), []
    try:
        while step < t.max_steps:
            epoch, done_in_epoch = divmod(step, updates_per_epoch)
            sampler.use_epoch(epoch)
            skip = done_in_epoch * t.grad_accum     # mid-epoch resume: drop the batches already trained on
            micro = 0
            for index, batch in enumerate(loader):
                if index < skip:
                    continue
                with accelerator.accumulate(transformer):
                    g = torch.Generator().manual_seed(cfg.seed * 7919 + step * 131 + micro * 17 +
                                                      accelerator.process_index)
                    micro += 1
                    with torch.no_grad():
                        src = _latents(vae, batch["source"], batch["source_file"], cache, sampling)
                        tgt = _latents(vae, batch["target"], batch["target_file"], cache, sampling)
                    noise = torch.randn(tgt.shape, generator=g).to(tgt.device, tgt.dtype)
                    sigmas = sample_sigmas(tgt.shape[0], t, g).to(tgt.device)
                    with accelerator.autocast():
                        loss = flow_matching_loss(transformer, tgt, src, text[: tgt.shape[0]], sigmas, noise,
                                                  conditioning_kwargs(transformer, batch))
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(params, t.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                losses_window.append(loss.detach())
                if not accelerator.sync_gradients:
                    continue
                if ema is not None:
                    ema.step(params)
                mean_loss = accelerator.gather(torch.stack(losses_window).mean().reshape(1)).mean().item()
                losses_window = []
                step += 1
                micro = 0
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                if main:
                    _append_loss(out / "loss.csv", step, mean_loss, t.lr, time.time() - started)
                out_of_time = bool(t.max_minutes) and _all_agree(accelerator, time.time() - started >= t.max_minutes * 60)
                if step % t.checkpoint_every == 0 or step == t.max_steps or out_of_time:
                    save_checkpoint(accelerator, transformer, out, step, t.keep_checkpoints, run_id)
                if step >= t.max_steps or out_of_time:
                    t.max_steps = step if out_of_time else t.max_steps
                    break
    except BaseException:
        if main and run_id is not None:
            _catalog_update(cfg, run_id, status="failed")
        raise
    finally:
        bar.close()
    accelerator.wait_for_everyone()
    summary = {"latent_cache": None if cache is None else {"hits": cache.hits, "misses": cache.misses},
               "steps": step, "skipped_items": dataset.skipped.count, "skipped": dataset.skipped.reasons,
               "data": data_info, "trainable_tensors": len(trainable), "mixed_precision": precision,
               "processes": accelerator.num_processes, "catalog_run_id": run_id}
    if main:
        model_dir = out / "model"
        unwrapped = accelerator.unwrap_model(transformer)
        if ema is not None:
            ema.copy_to([p for p in unwrapped.parameters() if p.requires_grad])
        _save_model_dir(unwrapped, vae, cfg, model_dir, data_info)
        summary["final_loss"] = _last_loss(out / "loss.csv")
        summary["loss_plot"] = str(plot_losses(out / "loss.csv", out / "loss.png"))
        summary["model_dir"] = str(model_dir)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        if run_id is not None:
            _catalog_update(cfg, run_id, status="done", metrics={k: summary[k] for k in
                                                                ("steps", "final_loss", "skipped_items")},
                            checkpoints=[str(p) for p in checkpoints(out)] + [str(model_dir)])
    accelerator.end_training()
    return summary


def _all_agree(accelerator, flag: bool) -> bool:
    """The same decision on every process (a time limit read off each process's clock could split them)."""
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="max").item() > 0)


def _latents(vae, video: torch.Tensor, files: list[str], cache: D.LatentCache | None,
             sampling: Mapping[str, Any]) -> torch.Tensor:
    """Encode a batch; with a cache, file-backed clips are encoded once (keyed by file hash + sampling + VAE)."""
    device = next(vae.parameters()).device
    if cache is None:
        return encode(vae, video.to(device))
    out = []
    for i, path in enumerate(files):
        one = lambda i=i: encode(vae, video[i:i + 1].to(device))  # noqa: E731
        out.append(cache.get_or_compute(path, one, **sampling).to(device) if path else one())
    return torch.cat(out)


def _vae_id(vae) -> str:
    return hashlib.sha256(json.dumps(dict(vae.config), sort_keys=True, default=str).encode()).hexdigest()[:12]


def _text_dim(model) -> int:
    return int(getattr(model, "module", model).config.text_dim)


def save_checkpoint(accelerator, model, out: Path, step: int, keep: int, run_id: int | None) -> Path:
    path = out / "checkpoints" / f"checkpoint-{step}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(path / "transformer")
        (path / "trainer_state.json").write_text(json.dumps({"step": step, "catalog_run_id": run_id}))
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def _save_model_dir(transformer, vae, cfg: RunConfig, model_dir: Path, data_info: Mapping[str, Any]) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler
    transformer.save_pretrained(model_dir / "transformer")
    vae.save_pretrained(model_dir / "vae")
    FlowMatchEulerDiscreteScheduler(shift=cfg.train.timestep_shift).save_pretrained(model_dir / "scheduler")
    (model_dir / "cinectrl.json").write_text(json.dumps({
        "num_frames": cfg.data.num_frames, "size": cfg.data.size, "text_tokens": cfg.model.text_tokens,
        "trained_by": cfg.name, "code_version": code_version(), "eval_scenes": data_info.get("eval_scenes", []),
        "data": {k: data_info.get(k) for k in ("real", "synthetic", "train", "eval", "snapshot")}}, indent=2))


def _truncate_loss_csv(path: Path, step: int) -> None:
    if not path.is_file():
        path.write_text("step,loss,lr,elapsed_s\n")
        return
    rows = list(csv.reader(path.open()))
    kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(kept)


def _append_loss(path: Path, step: int, loss: float, lr: float, elapsed: float) -> None:
    with path.open("a", newline="") as fh:
        csv.writer(fh).writerow([step, f"{loss:.8f}", lr, f"{elapsed:.3f}"])


def read_losses(path: Path) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(path.open())]


def _last_loss(path: Path) -> float | None:
    rows = read_losses(path)
    return rows[-1][1] if rows else None


def plot_losses(csv_path: Path, png_path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = read_losses(csv_path)
    fig, ax = plt.subplots(figsize=(5, 3))
    if rows:
        ax.plot([r[0] for r in rows], [r[1] for r in rows])
    ax.set_xlabel("step"), ax.set_ylabel("flow-matching loss"), ax.set_yscale("log")
    fig.tight_layout(), fig.savefig(png_path, dpi=90), plt.close(fig)
    return png_path


def _catalog_start(cfg: RunConfig, info: Mapping[str, Any], train_records, eval_records) -> int:
    from capture.catalog import open_catalog
    pairs = {r.pair_id: "train" for r in train_records if r.pair_id is not None}
    pairs.update({r.pair_id: "eval" for r in eval_records if r.pair_id is not None})
    with open_catalog(cfg.data.catalog, create=False) as cat:
        return cat.start_training_run(cfg.name, config=cfg.to_dict(), code_version=code_version(),
                                      data_snapshot=json.dumps(dict(info), default=str), output_dir=cfg.output_dir,
                                      pair_ids=pairs)


def _catalog_update(cfg: RunConfig, run_id: int, **kw: Any) -> None:
    from capture.catalog import open_catalog
    with open_catalog(cfg.data.catalog, create=False) as cat:
        cat.update_training_run(run_id, **kw)


def main(argv: list[str] | None = None) -> int:
    """Entry point for `accelerate launch -m train.finetune CONFIG [--resume]` and torchrun."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m train.finetune")
    parser.add_argument("config")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--max-steps", type=int, default=None, help="override [train] max_steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    if args.max_steps:
        cfg.train.max_steps = args.max_steps
    summary = train(cfg, resume=args.resume)
    if summary.get("model_dir"):
        print(json.dumps({k: summary[k] for k in ("steps", "final_loss", "skipped_items", "model_dir",
                                                  "processes")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
