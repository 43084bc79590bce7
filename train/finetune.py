"""Fine-tuning loop (accelerate): flow matching on the target half of `[target_noisy | source_clean]` latents.

Runs the same under `python -m train.finetune CONFIG`, `cinectrl train run CONFIG`, `accelerate launch` (DDP,
DeepSpeed ZeRO-2, FSDP on GPUs) and `torchrun` (CPU processes use gloo). The usual instruments: accelerate's
trackers (TensorBoard by default), an LR schedule with warmup (diffusers' `get_scheduler`), the validation loss on
the eval split and sample edits of fixed validation clips every N steps, per-step throughput, DataLoader workers,
the resolved config printed and saved. Checkpoints are `checkpoints/checkpoint-<step>/` (accelerate's
`save_state`: model, optimizer, LR schedule, RNG, EMA) plus the transformer in diffusers format; `resume=True`
continues from the newest one and reproduces the losses of an uninterrupted run (noise and sampling order are
seeded by step).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Sampler

from . import data as D
from . import objective as O
from . import runfiles as R
from . import textenc, tiny
from .config import (ConfigError, DataError, LaunchError, RunConfig, WeightsError, check_data_paths, exit_code,
                     load_config, to_toml)
from .model import CineCtrlTransformer3DModel, check_controls
from .runfiles import checkpoints, read_losses, save_model_dir  # noqa: F401  (the run's files, for callers)

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "RunConfig", "load_config", "train", "build_models", "build_records", "checkpoints",
           "read_losses", "save_model_dir", "default_simulator", "main"]


# ------------------------------------------------------------------------------------------------ model

def build_models(cfg: RunConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformer, working space): a trained CineCtrl model directory, a stock Wan2.1 diffusers directory (new
    modules freshly initialised), or a preset transformer on the configured space (VAE or pixels), formulation
    and input maps."""
    from diffusers import AutoencoderKLWan
    check_weights(cfg)

    from .effects import MAP_NAMES
    from .space import PixelSpace, channels as space_channels, load as load_space
    if cfg.model.pretrained:
        root = Path(cfg.model.pretrained)
        config = json.loads((root / "transformer" / "config.json").read_text())
        if config.get("_class_name") == CineCtrlTransformer3DModel.__name__:
            check_translation_unit(root)
            transformer = CineCtrlTransformer3DModel.from_pretrained(root / "transformer")
            check_controls(transformer, what=f"[model] pretrained = {root}")
        else:
            transformer = CineCtrlTransformer3DModel.from_wan(root / "transformer", formulation=cfg.model.formulation,
                                                              anchor=cfg.model.anchor)
        vae = load_space(root / "vae")
    else:
        m = cfg.model
        torch.manual_seed(cfg.seed)
        if m.space == "pixel":
            vae = PixelSpace(m.pixel_factor, m.pixel_temporal)
        else:
            vae = AutoencoderKLWan.from_pretrained(m.vae) if m.vae else AutoencoderKLWan(**m.tiny_vae)
        latent = space_channels(vae)
        transformer = CineCtrlTransformer3DModel(**tiny.transformer_config(
            m.transformer, **{"in_channels": latent, "out_channels": latent, **m.tiny_transformer}),
            formulation=m.formulation, num_maps=len(MAP_NAMES) if m.maps else 0, anchor=m.anchor)
    vae.requires_grad_(False).eval()
    return transformer, vae


def check_translation_unit(root: Path) -> None:
    """A CineCtrl model fine-tuned further reads camera paths in the unit this code trains with; one trained with
    another (its card's `translation_unit_m`) would silently read every pair's trajectory at another scale."""
    from .camera_path import TRANSLATION_SCALE_M
    from .pipeline import ModelCard
    unit = ModelCard.read(root).translation_unit_m
    if unit is not None and unit != TRANSLATION_SCALE_M:
        raise ConfigError(f"[model] pretrained = {root}: its camera paths were trained in units of {unit} m "
                          f"(cinectrl.json translation_unit_m); this cinectrl trains in {TRANSLATION_SCALE_M} m. "
                          "Start from a model trained in that unit, or from a stock Wan")


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
    """(train, eval, data snapshot): the catalog's pairs (reviewed only, unless `reviewed_only = false`), the
    synthetic pairs `train synth` wrote, and pairs simulated on the fly; every record gets its prompt."""
    real: list[D.PairRecord] = []
    left_out: dict[str, str] = {}
    all_scenes: set[str] = set()
    sources: list[tuple[str, Path, Path | None]] = []
    if cfg.data.catalog:
        from capture.catalog import open_catalog
        if not Path(cfg.data.catalog).is_file():
            raise DataError(f"[data] catalog = {cfg.data.catalog}: no such file")
        with open_catalog(cfg.data.catalog, readonly=True) as cat:
            try:
                real = D.records_from_catalog(cat, train_ready_only=cfg.data.reviewed_only, skipped=left_out)
            except D.PairWithoutControls as exc:
                raise ConfigError(f"[data] catalog = {cfg.data.catalog}: {exc}") from None
            all_scenes = set(D.session_scenes(cat).values())
            if cfg.data.synthetic_from_catalog:
                sources += D.catalog_sources(cat)
    elif cfg.data.shards:
        from .shards import ShardError, records_from_shards
        cache = cfg.data.shard_cache or str(Path(cfg.output_dir) / "shard-cache")
        try:
            real, all_scenes, manifest = records_from_shards(cfg.data.shards, cache)
        except ShardError as exc:
            raise ConfigError(str(exc)) from None
        left_out = dict(manifest.get("left_out") or {})
    synthetic: list[D.PairRecord] = []
    for path in cfg.data.synthetic_pairs:
        try:
            synthetic += D.records_from_synthetic_pairs(path)
        except ValueError as exc:
            raise DataError(f"[data] synthetic_pairs: {exc}") from None
    sources += [(Path(p).stem, Path(p), None)
                for p in sorted({p for pattern in cfg.data.synthetic_sources for p in glob.glob(pattern)})]
    all_scenes |= {scene for scene, _, _ in sources} | {r.scene for r in synthetic}
    # the split is decided per scene before any pair is drawn: a held-out scene gives no synthetic pair either
    held_out = D.eval_scenes(all_scenes, cfg.data.eval_fraction)
    synthetic += D.synthetic_records([s for s in sources if s[0] not in held_out], cfg.data.synthetic_count,
                                     seed=cfg.seed)
    records = D.mix(real, synthetic, tuple(cfg.data.ratio), seed=cfg.seed)
    if not records:
        raise DataError(_no_pairs(cfg, left_out, sources))
    for r in records:
        r.prompt = r.prompt or cfg.model.prompt.format(scene=r.scene)
    train_records, eval_records = D.split_by_scene(records, cfg.data.eval_fraction, scenes=all_scenes)
    snapshot = hashlib.sha256(json.dumps(sorted(f"{r.kind}:{r.pair_id}:{r.source}:{r.target}:{r.controls}"
                                                for r in records)).encode()).hexdigest()[:16]
    info = {"real": sum(r.kind == "real" for r in records), "synthetic": sum(r.kind == "synthetic" for r in records),
            "reviewed_only": cfg.data.reviewed_only,
            "unreviewed": sorted(r.pair_id for r in records if r.kind == "real" and not r.reviewed),
            "left_out": left_out, "train": len(train_records), "eval": len(eval_records), "snapshot": snapshot,
            "eval_scenes": sorted(held_out)}
    return train_records, eval_records, info


def _no_pairs(cfg: RunConfig, left_out: dict[str, str], sources: list) -> str:
    """The "no training pairs" error: what each configured source gave, by name."""
    d = cfg.data
    gate = "train-ready (reviewed)" if d.reviewed_only else "train-ready or QC-passed unreviewed"
    said = []
    if d.catalog:
        why = f" (left out: {'; '.join(f'{k}: {v}' for k, v in list(left_out.items())[:3])})" if left_out else ""
        said.append(f"[data] catalog = {d.catalog}: no {gate} pair{why}")
    else:
        said.append("[data] catalog unset")
    said += [f"[data] synthetic_pairs {p}: no pair" for p in d.synthetic_pairs]
    if d.synthetic_sources or d.synthetic_from_catalog:
        said.append(f"{len(sources)} synthetic source clip(s) ({', '.join(d.synthetic_sources) or 'the catalog'}), "
                    "all in held-out scenes or unusable" if sources else "no synthetic source clip")
    elif not d.synthetic_pairs:
        said.append("no [data] synthetic_pairs or synthetic_sources")
    return ("no training pairs: " + "; ".join(said) + " (review pairs first, set [data] reviewed_only = false to "
            "train on QC-passed unreviewed pairs, or run `cinectrl train synth`)")


def default_simulator():
    """The effect simulator in train.data.Simulator form ((T, H, W, 3) uint8 in and out)."""
    from .effects import simulate_uint8
    return simulate_uint8


def _seed_worker(worker_id: int) -> None:
    import random

    import numpy as np
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


# ------------------------------------------------------------------------------------------------ accelerate

def make_accelerator(cfg: RunConfig, out: Path):
    """Accelerator with the configured trackers; DeepSpeed on a machine without GPUs is told to use gloo, and a
    launch that asked for FSDP or several processes but would silently run each process alone is refused."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, InitProcessGroupKwargs, ProjectConfiguration
    t = cfg.train
    check_launch(os.environ)
    precision = t.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not t.cpu else "no"
    handlers, cpu = [], t.cpu
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" and not torch.cuda.is_available():
        handlers.append(InitProcessGroupKwargs(backend="gloo"))   # accelerate's DeepSpeed path ignores cpu=True
        cpu = False
    accelerator = Accelerator(gradient_accumulation_steps=t.grad_accum, mixed_precision=precision, cpu=cpu,
                              log_with=list(t.trackers) or None, kwargs_handlers=handlers,
                              project_config=ProjectConfiguration(project_dir=str(out),
                                                                  logging_dir=str(out / "logs")))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and \
            accelerator.distributed_type != DistributedType.FSDP:
        import accelerate
        raise LaunchError(f"the launch asked for FSDP but accelerate {accelerate.__version__} applies it only on "
                          f"GPUs (or XPU/NPU/HPU); here it would run as {accelerator.distributed_type.value}, "
                          "unsharded. On CPU launch without the FSDP config (torchrun, or accelerate launch "
                          "--num_processes N --cpu), or use examples/train-deepspeed.yaml (ZeRO-2 runs on gloo)")
    if world > 1 and accelerator.num_processes != world:
        raise LaunchError(f"launched as {world} processes but accelerate runs each alone "
                          f"({accelerator.distributed_type.value}); on CPU set [train] cpu = true or launch with --cpu")
    return accelerator, precision


def check_launch(env: Mapping[str, str], launcher_args: list[str] | None = None) -> None:
    """`accelerate launch --num_processes N` on a machine without GPUs (and no `--multi_gpu`) goes to accelerate's
    simple launcher, which starts ONE process and ignores N (it sets MASTER_ADDR, not WORLD_SIZE). Refused, with
    the launch lines that do start N processes (gloo on CPU). N is read from the launcher's own command line."""
    if "ACCELERATE_USE_CPU" not in env or "MASTER_ADDR" not in env or "WORLD_SIZE" in env:
        return
    n = _asked_processes(_parent_args() if launcher_args is None else launcher_args)
    if n and n > 1:
        raise LaunchError(f"accelerate launch asked for {n} processes but started one: without GPUs, accelerate's "
                          "launcher needs --multi_gpu to start them (it then runs them on gloo); launch with "
                          f"`accelerate launch --multi_gpu --num_processes {n} -m train.finetune CONFIG` or "
                          f"`torchrun --nproc_per_node {n} -m train.finetune CONFIG`")


def _parent_args() -> list[str]:
    try:
        return Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _asked_processes(args: list[str]) -> int | None:
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in ("--num_processes", "--num-processes"):
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            return int(value) if value.isdigit() else None
    return None


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Nested config -> flat scalars (what TensorBoard's hparams accept)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}{k}/" if isinstance(v, dict) else f"{prefix}{k}", v, out)
    else:
        out[prefix.rstrip("/")] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    return out


def _log_images(accelerator: Any, images: dict[str, Any], step: int) -> None:
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            for name, image in images.items():
                tracker.writer.add_image(name, image, global_step=step, dataformats="HWC")
        elif hasattr(tracker, "log_images"):
            tracker.log_images({k: [v] for k, v in images.items()}, step=step)


# ------------------------------------------------------------------------------------------------ the run, in steps

@dataclass
class Run:
    """Everything one training run holds between its named steps (the shape of diffusers' training scripts, cut
    into functions: prepare -> resume -> loop of steps -> finish)."""

    cfg: RunConfig
    out: Path
    accelerator: Any
    precision: str
    train_records: list[D.PairRecord]
    eval_records: list[D.PairRecord]
    data_info: dict[str, Any]
    dataset: D.PairDataset
    eval_set: D.PairDataset | None
    dataset_kw: dict[str, Any]
    transformer: Any = None
    vae: Any = None
    embeddings: textenc.PromptEmbeddings | None = None
    text_note: str = ""
    trainable: list[str] = field(default_factory=list)
    params: list[torch.nn.Parameter] = field(default_factory=list)
    optimizer: Any = None
    lr_scheduler: Any = None
    sampler: EpochSampler | None = None
    loader: Any = None
    cache: D.LatentCache | None = None
    ema: Any = None
    step: int = 0
    run_id: int | None = None
    samples: list[Any] = field(default_factory=list)
    sample_note: str | None = None
    editor: Any = None
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    sample_dirs: list[str] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    out_of_time: bool = False

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def sampling(self) -> dict[str, Any]:
        return {"frames": self.cfg.data.num_frames, "size": tuple(self.cfg.data.size), "stride": self.cfg.data.stride}

    def text_for(self, prompts: list[str]) -> torch.Tensor:
        return self.embeddings.lookup(prompts, self.accelerator.device)

    def averaged(self):
        """The weights the saved model holds: the EMA weights when `[train] ema` is on (swapped in for the block,
        the raw ones restored after), else the raw ones."""
        return ema_weights(self.ema, self.params)


@contextmanager
def ema_weights(ema: Any, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """diffusers' store / copy_to / restore: evaluate (or save) with the EMA weights, then train on the raw ones."""
    if ema is None:
        yield
        return
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)


def train(cfg: RunConfig, *, resume: bool = False, simulate=None) -> dict[str, Any]:
    """Fine-tune by `cfg`; returns the run's summary (also written to OUTPUT/summary.json)."""
    run = prepare(cfg, simulate)
    restore(run, resume)
    start_outputs(run)
    try:
        loop(run)
    except BaseException:
        if run.main and run.run_id is not None:
            R.catalog_update(cfg, run.run_id, status="failed")
        raise
    return finish(run)


def prepare(cfg: RunConfig, simulate=None) -> Run:
    """Checks the model weights, then the data, before anything is written; then models, text and optimizer."""
    from accelerate.utils import set_seed
    check_weights(cfg)
    check_data_paths(cfg)
    out = Path(cfg.output_dir)
    accelerator, precision = make_accelerator(cfg, out)
    set_seed(cfg.seed)
    train_records, eval_records, data_info = build_records(cfg)
    dataset_kw = dict(num_frames=cfg.data.num_frames, size=tuple(cfg.data.size),
                      simulate=simulate or default_simulator(), stride=cfg.data.stride)
    dataset = D.PairDataset(train_records, **dataset_kw)
    if len(dataset) == 0:
        raise DataError(f"all {len(train_records)} training pairs were skipped: "
                        + "; ".join(f"{k}: {r}" for k, r in list(dataset.skipped.reasons.items())[:4]))
    eval_set = D.PairDataset(eval_records[: cfg.validation.max_pairs], **dataset_kw) if cfg.validation.every else None
    run = Run(cfg, out, accelerator, precision, train_records, eval_records, data_info, dataset, eval_set, dataset_kw)
    run.transformer, run.vae = build_models(cfg)
    run.embeddings, run.text_note = prepare_text(run)
    accelerator.print(f"text conditioning: {run.text_note}")
    if run.main:
        out.mkdir(parents=True, exist_ok=True)
        resolved = to_toml(cfg)
        (out / "config.toml").write_text(resolved)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        accelerator.print(f"resolved config ({out / 'config.toml'}):\n{resolved}")
    prepare_optimization(run)
    return run


def check_weights(cfg: RunConfig) -> None:
    """The model's weights exist before the data is read and before a run folder is made (a missing checkpoint is
    the first thing a GPU run must say)."""
    if cfg.model.pretrained:
        root = Path(cfg.model.pretrained)
        if not (root / "transformer" / "config.json").is_file() or not (root / "vae").is_dir():
            raise WeightsError(f"[model] pretrained = {root}: no transformer/config.json and vae/ there; give a local "
                               "Wan2.1 diffusers checkpoint or a cinectrl model directory")
    encoder = Path(cfg.model.text_encoder)
    if cfg.model.text_encoder and not ((encoder / "config.json").is_file()
                                       or (encoder / "text_encoder" / "config.json").is_file()):
        raise WeightsError(f"[model] text_encoder = {cfg.model.text_encoder}: no config.json (nor "
                           "text_encoder/config.json) there; give a local UMT5/T5 encoder directory")


def prepare_text(run: Run) -> tuple[textenc.PromptEmbeddings, str]:
    """Every prompt encoded once, before the first step; zeros only without an encoder."""
    cfg, accelerator = run.cfg, run.accelerator
    text_dim = int(run.transformer.config.text_dim)
    prompts = {r.prompt for r in run.train_records + run.eval_records}
    if not cfg.model.text_encoder:
        return (textenc.PromptEmbeddings.zeros(prompts, cfg.model.text_tokens, text_dim),
                "zeros: no [model] text_encoder configured, prompts are not used")
    try:
        encoder, tokenizer = textenc.load(cfg.model.text_encoder, accelerator.device)
    except textenc.TextEncoderError as exc:
        raise WeightsError(f"[model] {exc}") from None
    if encoder.config.d_model != text_dim:
        raise ConfigError(f"[model] text_encoder = {cfg.model.text_encoder}: its width {encoder.config.d_model} "
                          f"differs from the transformer's text_dim {text_dim}")
    cache_dir = Path(cfg.data.latent_cache) / f"rank{accelerator.process_index}" if cfg.data.latent_cache else None
    embeddings = textenc.PromptEmbeddings.precompute(encoder, tokenizer, prompts, cfg.model.text_tokens,
                                                     cache_dir=cache_dir)
    return embeddings, (f"{embeddings.source} ({cfg.model.text_encoder}): {len(embeddings)} prompt(s), "
                        f"{embeddings.hits} from cache")


def prepare_optimization(run: Run) -> None:
    """Trainable set, AdamW, diffusers' LR schedule, the seeded sampler and loader, EMA; all through accelerate."""
    from diffusers.optimization import get_scheduler
    cfg, t, accelerator = run.cfg, run.cfg.train, run.accelerator
    run.trainable = run.transformer.set_trainable(t.trainable, t.lora_rank)
    if t.gradient_checkpointing:
        run.transformer.enable_gradient_checkpointing()
    run.params = [p for p in run.transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(run.params, lr=t.lr, weight_decay=t.weight_decay)
    # accelerate steps a prepared scheduler once per process at each optimizer step: scale the step counts
    lr_scheduler = get_scheduler(t.lr_scheduler, optimizer,
                                 num_warmup_steps=t.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=t.max_steps * accelerator.num_processes)
    run.sampler = EpochSampler(len(run.dataset), cfg.seed)
    workers = cfg.data.num_workers
    loader = DataLoader(run.dataset, batch_size=t.batch_size, sampler=run.sampler, collate_fn=D.collate,
                        drop_last=False, num_workers=workers, persistent_workers=workers > 0,
                        worker_init_fn=_seed_worker)
    run.transformer, run.optimizer, run.loader, run.lr_scheduler = accelerator.prepare(
        run.transformer, optimizer, loader, lr_scheduler)
    run.vae.to(accelerator.device)
    if cfg.data.latent_cache:
        run.cache = D.LatentCache(Path(cfg.data.latent_cache) / f"rank{accelerator.process_index}", O.vae_id(run.vae))
    if t.ema:
        from diffusers.training_utils import EMAModel
        run.ema = EMAModel(run.params, decay=t.ema_decay)
        run.ema.to(accelerator.device)
        accelerator.register_for_checkpointing(run.ema)


def restore(run: Run, resume: bool) -> None:
    """`--resume`: the newest checkpoint's raw weights, optimizer, schedule, RNG and EMA, and its step."""
    existing = checkpoints(run.out)
    if resume and existing:
        run.accelerator.load_state(str(existing[-1]))
        state = json.loads((existing[-1] / "trainer_state.json").read_text())
        run.step, run.run_id = int(state["step"]), state.get("catalog_run_id")
        run.accelerator.print(f"resumed from {existing[-1].name} (step {run.step})")
    elif resume:
        run.accelerator.print("no checkpoint to resume from; starting at step 0")


def start_outputs(run: Run) -> None:
    """Tables cut at the resumed step, the catalog row, trackers (TensorBoard purges events after the resumed
    step, so replayed steps are not shown twice), the shared parts of every checkpoint's model directory, and
    the fixed sample clips."""
    from accelerate.utils import DistributedType

    from . import validation as V
    cfg, accelerator, out = run.cfg, run.accelerator, run.out
    if run.main:
        R.start_table(out / "loss.csv", R.LOSS_COLUMNS, run.step)
        R.start_table(out / "val_loss.csv", R.VAL_COLUMNS, run.step)
        if cfg.data.catalog and run.run_id is None:
            run.run_id = R.catalog_start(cfg, run.data_info, run.train_records, run.eval_records)
    if cfg.train.trackers:
        init_kwargs = {"tensorboard": {"purge_step": run.step + 1}} if run.step else {}
        accelerator.init_trackers(cfg.name, config=_flat("", {k: x for k, x in cfg.to_dict().items()
                                                              if k != "source"}, {}), init_kwargs=init_kwargs)
    v = cfg.validation
    if v.sample_every and v.samples and run.main:
        pool = run.eval_records or run.train_records
        if not run.eval_records:
            run.sample_note = "no eval split (one scene or eval_fraction = 0): samples are of training pairs"
        if accelerator.distributed_type == DistributedType.FSDP:
            run.sample_note = "sample edits skipped under FSDP (the model is sharded across processes)"
        else:
            run.samples = V.fixed_samples(pool, v.samples, run.dataset_kw)
    if run.samples:
        run.editor = _sample_editor(cfg, run.vae, run.embeddings, run.samples, accelerator, run.transformer)


def loop(run: Run) -> None:
    """Epochs of seeded batches until max_steps (or max_minutes, decided alike on every process)."""
    from tqdm.auto import tqdm
    t = run.cfg.train
    updates_per_epoch = max(1, len(run.loader) // t.grad_accum)
    bar = tqdm(total=t.max_steps, initial=run.step, disable=not run.main, desc=run.cfg.name, unit="step")
    clock = {"started": time.time(), "last": time.perf_counter()}
    try:
        while run.step < t.max_steps and not run.out_of_time:
            epoch, done_in_epoch = divmod(run.step, updates_per_epoch)
            run.sampler.use_epoch(epoch)
            skip = done_in_epoch * t.grad_accum     # mid-epoch resume: skip the batches already trained on
            loader = run.accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
            losses, micro = [], 0
            for batch in loader:
                loss, lr = train_micro_step(run, batch, micro)
                losses.append(loss)
                micro += 1
                if not run.accelerator.sync_gradients:
                    continue
                record_step(run, torch.stack(losses).mean(), lr, bar, clock)
                losses, micro = [], 0
                if periodic(run, bar):
                    return
                clock["last"] = time.perf_counter()        # validation, samples and checkpoints are not steps
    finally:
        bar.close()


def train_micro_step(run: Run, batch: dict[str, Any], micro: int) -> tuple[torch.Tensor, float]:
    """One forward/backward (an optimizer step when accumulation is complete); (loss, the LR it ran at)."""
    cfg, t, accelerator = run.cfg, run.cfg.train, run.accelerator
    with accelerator.accumulate(run.transformer):
        g = torch.Generator().manual_seed(cfg.seed * 7919 + run.step * 131 + micro * 17 + accelerator.process_index)
        with torch.no_grad():
            src = O.latents(run.vae, batch["source"], batch["source_file"], run.cache, run.sampling)
            tgt = O.latents(run.vae, batch["target"], batch["target_file"], run.cache, run.sampling)
        noise = torch.randn(tgt.shape, generator=g).to(tgt.device, tgt.dtype)
        sigmas = O.sample_sigmas(tgt.shape[0], t.weighting_scheme, t.timestep_shift, g).to(tgt.device)
        if t.identity_fraction > 0:
            batch, tgt = O.identity_pairs(batch, src, tgt, t.identity_fraction, g)
        start = O.anchor_latents(run.transformer, run.vae, batch, src)     # after identity pairs: neutral = source
        with accelerator.autocast():
            loss = O.flow_matching_loss(run.transformer, tgt, src, run.text_for(batch["prompt"]), sigmas, noise,
                                        O.conditioning(batch, run.transformer, tgt), anchor=start)
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(run.params, t.max_grad_norm)
        lr = run.optimizer.param_groups[0]["lr"]            # the LR this optimizer step runs at
        run.optimizer.step()
        run.lr_scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return loss.detach(), lr


def record_step(run: Run, loss: torch.Tensor, lr: float, bar: Any, clock: dict[str, float]) -> None:
    """EMA update, the step's loss (mean over accumulation and processes), LR, time and throughput: bar, table,
    trackers; the time limit as a trigger every process agrees on."""
    t, accelerator = run.cfg.train, run.accelerator
    if run.ema is not None:
        run.ema.step(run.params)
    mean_loss = accelerator.gather(loss.reshape(1)).mean().item()
    run.step += 1
    now = time.perf_counter()
    step_s, clock["last"] = now - clock["last"], now
    run.step_times.append(step_s)
    throughput = samples_per_step(run) / step_s if step_s > 0 else float("nan")
    bar.update(1)
    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", it_s=f"{throughput:.2f}")
    if run.main:
        R.append_row(run.out / "loss.csv", run.step, mean_loss, lr, time.time() - clock["started"], step_s, throughput)
    accelerator.log({"train/loss": mean_loss, "train/lr": lr, "train/step_s": step_s,
                     "train/samples_per_s": throughput}, step=run.step)
    if t.max_minutes:                          # one decision for all processes (their clocks may differ)
        if time.time() - clock["started"] >= t.max_minutes * 60:
            accelerator.set_trigger()
        run.out_of_time = accelerator.check_trigger()


def samples_per_step(run: Run) -> int:
    return run.cfg.train.batch_size * run.cfg.train.grad_accum * run.accelerator.num_processes


def periodic(run: Run, bar: Any) -> bool:
    """Validation loss, sample edits (both with the weights the model will hold) and checkpoints when due;
    True at the last step."""
    from . import validation as V
    t, v = run.cfg.train, run.cfg.validation
    final = run.step >= t.max_steps or run.out_of_time
    if run.eval_set is not None and (run.step % v.every == 0 or final):
        with run.averaged():
            val = V.validation_loss(run.accelerator, run.transformer, run.vae, run.eval_set, run.text_for,
                                    shift=t.timestep_shift, seed=run.cfg.seed, cache=run.cache, sampling=run.sampling)
        if val is not None:
            run.val_losses.append((run.step, val))
            run.accelerator.log({"val/loss": val}, step=run.step)
            if run.main:
                R.append_row(run.out / "val_loss.csv", run.step, val)
                bar.write(f"step {run.step}: validation loss {val:.4f} over {len(run.eval_set)} pair(s)")
    if run.editor is not None and (run.step % v.sample_every == 0 or final):
        with run.averaged():
            run.sample_dirs.append(_write_samples(run.accelerator, run.editor, run.samples, run.out, run.step))
    if run.step % t.checkpoint_every == 0 or final:
        R.save_checkpoint(run.accelerator, run.transformer, run.out, run.step, t.keep_checkpoints, run.run_id,
                          averaged=run.averaged, model_dir=lambda model, path: _save_model(run, model, path))
    return final


def _save_model(run: Run, transformer: Any, path: Path) -> Path:
    return save_model_dir(transformer, run.vae, run.cfg, path, text_conditioning=run.text_note,
                          data_info=run.data_info, step=run.step, link_text_encoder=True)


def finish(run: Run) -> dict[str, Any]:
    """The summary; on the main process the model directory (EMA weights when on), the loss plot, the catalog row."""
    cfg, accelerator, out, t = run.cfg, run.accelerator, run.out, run.cfg.train
    accelerator.wait_for_everyone()
    timed = run.step_times[1:] or run.step_times                 # the first step includes warm-up
    summary = {"latent_cache": None if run.cache is None else {"hits": run.cache.hits, "misses": run.cache.misses},
               "steps": run.step, "samples_seen": run.step * samples_per_step(run),
               "samples_per_step": samples_per_step(run), "stopped_by_time": run.out_of_time,
               "skipped_items": run.dataset.skipped.count, "skipped": run.dataset.skipped.reasons,
               "data": run.data_info, "trainable_tensors": len(run.trainable), "mixed_precision": run.precision,
               "processes": accelerator.num_processes, "distributed_type": accelerator.distributed_type.value,
               "catalog_run_id": run.run_id, "text_conditioning": run.text_note, "ema": t.ema,
               "lr_schedule": {"name": t.lr_scheduler, "warmup_steps": t.lr_warmup_steps},
               "trackers": list(t.trackers), "logging_dir": str(out / "logs") if t.trackers else None,
               "validation": {"losses": run.val_losses, "pairs": len(run.eval_set) if run.eval_set is not None else 0,
                              "note": None if run.eval_set is None or len(run.eval_set) else
                              "no eval pairs (one scene, or eval_fraction = 0): no validation loss"},
               "samples": {"dirs": run.sample_dirs, "note": run.sample_note},
               "throughput": {"median_step_s": _median(timed),
                              "samples_per_s": samples_per_step(run) / _median(timed) if timed else None},
               "dataloader_workers": cfg.data.num_workers}
    if run.main:
        model_dir = out / "model"
        unwrapped = accelerator.unwrap_model(run.transformer)
        if run.ema is not None:
            run.ema.copy_to(run.params)
        save_model_dir(unwrapped, run.vae, cfg, model_dir, text_conditioning=run.text_note, data_info=run.data_info)
        summary["final_loss"] = R.read_losses(out / "loss.csv")[-1][1] if run.step else None
        summary["loss_plot"] = str(R.plot_losses(out / "loss.csv", out / "loss.png", out / "val_loss.csv"))
        summary["model_dir"] = str(model_dir)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        if run.run_id is not None:
            R.catalog_update(cfg, run.run_id, status="done",
                             metrics={"steps": run.step, "final_loss": summary["final_loss"],
                                      "skipped_items": run.dataset.skipped.count,
                                      "val_loss": run.val_losses[-1][1] if run.val_losses else None},
                             checkpoints=[str(p) for p in checkpoints(out)] + [str(model_dir)])
    accelerator.end_training()
    return summary


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _sample_editor(cfg: RunConfig, vae, embeddings: textenc.PromptEmbeddings, samples, accelerator, transformer):
    """A ClipEditor over the model being trained (no copy): the same inference path `train edit` uses."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .camera_path import TRANSLATION_SCALE_M
    from .editor import ClipEditor
    from .pipeline import CineCtrlPipeline, ModelCard
    pipe = CineCtrlPipeline(transformer=accelerator.unwrap_model(transformer), vae=vae,
                            scheduler=FlowMatchEulerDiscreteScheduler(shift=cfg.train.timestep_shift))
    pipe.card = ModelCard(num_frames=cfg.data.num_frames, size=list(cfg.data.size), text_tokens=cfg.model.text_tokens,
                          translation_unit_m=TRANSLATION_SCALE_M)
    pipe.set_progress_bar_config(disable=True)
    editor = ClipEditor(pipe, steps=cfg.validation.sample_steps, seed=cfg.seed)
    for sample in samples:
        editor.remember_context(sample.prompt, embeddings.lookup([sample.prompt], accelerator.device))
    return editor


def _write_samples(accelerator, editor, samples, out: Path, step: int) -> str:
    from . import validation as V
    model = editor.pipe.transformer
    was_training = model.training
    model.eval()
    try:
        written = V.save_samples(editor, samples, out / "samples" / f"step-{step:06d}")
    finally:
        model.train(was_training)
    _log_images(accelerator, {f"samples/{w['name']}": w["image"] for w in written}, step)
    return str(out / "samples" / f"step-{step:06d}")


def main(argv: list[str] | None = None) -> int:
    """Entry point for `accelerate launch -m train.finetune CONFIG [--resume]` and torchrun."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog="python -m train.finetune")
    parser.add_argument("config")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--max-steps", type=int, default=None, help="override [train] max_steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from rigs.controls import ControlError

    from .pipeline import ModelDirError
    try:
        cfg = load_config(args.config)
        if args.max_steps:
            cfg.train.max_steps = args.max_steps
        summary = train(cfg, resume=args.resume)
    except (ConfigError, ControlError, ModelDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    if summary.get("model_dir"):
        print(json.dumps({k: summary[k] for k in ("steps", "final_loss", "skipped_items", "model_dir", "processes",
                                                  "distributed_type")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
