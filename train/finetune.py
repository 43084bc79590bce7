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
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from . import data as D
from . import objective as O
from . import runfiles as R
from . import textenc, tiny
from .config import ConfigError, RunConfig, load_config, to_toml
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

    from .effects import MAP_NAMES
    from .space import PixelSpace, channels as space_channels, load as load_space
    if cfg.model.pretrained:
        root = Path(cfg.model.pretrained)
        if not (root / "transformer" / "config.json").is_file() or not (root / "vae").is_dir():
            raise ConfigError(f"[model] pretrained = {root}: no transformer/config.json and vae/ there; give a local "
                              "Wan2.1 diffusers checkpoint or a cinectrl model directory")
        config = json.loads((root / "transformer" / "config.json").read_text())
        if config.get("_class_name") == CineCtrlTransformer3DModel.__name__:
            transformer = CineCtrlTransformer3DModel.from_pretrained(root / "transformer")
            check_controls(transformer, what=f"[model] pretrained = {root}")
        else:
            transformer = CineCtrlTransformer3DModel.from_wan(root / "transformer", formulation=cfg.model.formulation)
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
            formulation=m.formulation, num_maps=len(MAP_NAMES) if m.maps else 0)
    vae.requires_grad_(False).eval()
    return transformer, vae


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
            raise ConfigError(f"[data] catalog = {cfg.data.catalog}: no such file")
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
            raise ConfigError(f"[data] synthetic_pairs: {exc}") from None
    sources += [(Path(p).stem, Path(p), None)
                for p in sorted({p for pattern in cfg.data.synthetic_sources for p in glob.glob(pattern)})]
    all_scenes |= {scene for scene, _, _ in sources} | {r.scene for r in synthetic}
    # the split is decided per scene before any pair is drawn: a held-out scene gives no synthetic pair either
    held_out = D.eval_scenes(all_scenes, cfg.data.eval_fraction)
    synthetic += D.synthetic_records([s for s in sources if s[0] not in held_out], cfg.data.synthetic_count,
                                     seed=cfg.seed)
    records = D.mix(real, synthetic, tuple(cfg.data.ratio), seed=cfg.seed)
    if not records:
        gate = "train-ready (reviewed)" if cfg.data.reviewed_only else "train-ready or QC-passed unreviewed"
        why = f"; left out: {'; '.join(f'{k}: {v}' for k, v in list(left_out.items())[:3])}" if left_out else ""
        raise ConfigError(f"no training pairs: no {gate} pair in [data] catalog{why}, and no [data] synthetic_pairs "
                          "or synthetic_sources (review pairs first, set [data] reviewed_only = false to train on "
                          "QC-passed unreviewed pairs, or run `cinectrl train synth`)")
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


def _all_agree(accelerator, flag: bool) -> bool:
    """The same decision on every process (a time limit read off each process's clock could split them)."""
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="max").item() > 0)


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
        raise ConfigError(f"the launch asked for FSDP but accelerate {accelerate.__version__} applies it only on "
                          f"GPUs (or XPU/NPU/HPU); here it would run as {accelerator.distributed_type.value}, "
                          "unsharded. On CPU launch without the FSDP config (torchrun, or accelerate launch "
                          "--num_processes N --cpu), or use examples/train-deepspeed.yaml (ZeRO-2 runs on gloo)")
    if world > 1 and accelerator.num_processes != world:
        raise ConfigError(f"launched as {world} processes but accelerate runs each alone "
                          f"({accelerator.distributed_type.value}); on CPU set [train] cpu = true or launch with --cpu")
    return accelerator, precision


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


# ------------------------------------------------------------------------------------------------ loop

def train(cfg: RunConfig, *, resume: bool = False, simulate=None) -> dict[str, Any]:
    from accelerate.utils import DistributedType, set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from . import validation as V

    t, v = cfg.train, cfg.validation
    out = Path(cfg.output_dir)
    accelerator, precision = make_accelerator(cfg, out)
    set_seed(cfg.seed)
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        resolved = to_toml(cfg)
        (out / "config.toml").write_text(resolved)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        accelerator.print(f"resolved config ({out / 'config.toml'}):\n{resolved}")
    train_records, eval_records, data_info = build_records(cfg)
    simulate = simulate or default_simulator()
    dataset_kw = dict(num_frames=cfg.data.num_frames, size=tuple(cfg.data.size), simulate=simulate,
                      stride=cfg.data.stride)
    dataset = D.PairDataset(train_records, **dataset_kw)
    if len(dataset) == 0:
        raise ConfigError(f"all {len(train_records)} training pairs were skipped: "
                          + "; ".join(f"{k}: {r}" for k, r in list(dataset.skipped.reasons.items())[:4]))
    eval_set = D.PairDataset(eval_records[: v.max_pairs], **dataset_kw) if v.every else None
    transformer, vae = build_models(cfg)
    text_dim = int(transformer.config.text_dim)

    # text conditioning: every prompt encoded once, before the first step; zeros only without an encoder
    prompts = {r.prompt for r in train_records + eval_records}
    if cfg.model.text_encoder:
        try:
            encoder, tokenizer = textenc.load(cfg.model.text_encoder, accelerator.device)
        except textenc.TextEncoderError as exc:
            raise ConfigError(f"[model] {exc}") from None
        if encoder.config.d_model != text_dim:
            raise ConfigError(f"[model] text_encoder = {cfg.model.text_encoder}: its width {encoder.config.d_model} "
                              f"differs from the transformer's text_dim {text_dim}")
        cache_dir = Path(cfg.data.latent_cache) / f"rank{accelerator.process_index}" if cfg.data.latent_cache else None
        embeddings = textenc.PromptEmbeddings.precompute(encoder, tokenizer, prompts, cfg.model.text_tokens,
                                                         cache_dir=cache_dir)
        del encoder, tokenizer
        text_note = (f"{embeddings.source} ({cfg.model.text_encoder}): {len(embeddings)} prompt(s), "
                     f"{embeddings.hits} from cache")
    else:
        embeddings = textenc.PromptEmbeddings.zeros(prompts, cfg.model.text_tokens, text_dim)
        text_note = "zeros: no [model] text_encoder configured, prompts are not used"
    accelerator.print(f"text conditioning: {text_note}")

    trainable = transformer.set_trainable(t.trainable, t.lora_rank)
    if t.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    lr_scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=t.max_steps * accelerator.num_processes)
    sampler = EpochSampler(len(dataset), cfg.seed)
    workers = cfg.data.num_workers
    loader = DataLoader(dataset, batch_size=t.batch_size, sampler=sampler, collate_fn=D.collate, drop_last=False,
                        num_workers=workers, persistent_workers=workers > 0, worker_init_fn=_seed_worker)
    transformer, optimizer, loader, lr_scheduler = accelerator.prepare(transformer, optimizer, loader, lr_scheduler)
    vae.to(accelerator.device)
    cache = D.LatentCache(Path(cfg.data.latent_cache) / f"rank{accelerator.process_index}", O.vae_id(vae)) \
        if cfg.data.latent_cache else None
    sampling = {"frames": cfg.data.num_frames, "size": tuple(cfg.data.size), "stride": cfg.data.stride}
    text_for = lambda prompts: embeddings.lookup(prompts, accelerator.device)  # noqa: E731
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
        state = json.loads((existing[-1] / "trainer_state.json").read_text())
        step, run_id = int(state["step"]), state.get("catalog_run_id")
        accelerator.print(f"resumed from {existing[-1].name} (step {step})")
    elif resume:
        accelerator.print("no checkpoint to resume from; starting at step 0")
    if main:
        R.start_table(out / "loss.csv", R.LOSS_COLUMNS, step)
        R.start_table(out / "val_loss.csv", R.VAL_COLUMNS, step)
        if cfg.data.catalog and run_id is None:
            run_id = R.catalog_start(cfg, data_info, train_records, eval_records)
    if t.trackers:
        accelerator.init_trackers(cfg.name, config=_flat("", {k: x for k, x in cfg.to_dict().items()
                                                              if k != "source"}, {}))

    # fixed validation clips for sample edits: from the eval split (training pairs when it is empty)
    samples, sample_note = [], None
    if v.sample_every and v.samples and main:
        pool = eval_records or train_records
        if not eval_records:
            sample_note = "no eval split (one scene or eval_fraction = 0): samples are of training pairs"
        if accelerator.distributed_type == DistributedType.FSDP:
            sample_note = "sample edits skipped under FSDP (the model is sharded across processes)"
        else:
            samples = V.fixed_samples(pool, v.samples, dataset_kw)
    editor = _sample_editor(cfg, vae, embeddings, samples, accelerator, transformer) if samples else None

    updates_per_epoch = max(1, len(loader) // t.grad_accum)
    samples_per_step = t.batch_size * t.grad_accum * accelerator.num_processes
    bar = tqdm(total=t.max_steps, initial=step, disable=not main, desc=cfg.name, unit="step")
    started, losses_window = time.time(), []
    last_step_at, step_times = time.perf_counter(), []
    val_losses, sample_dirs = [], []
    try:
        out_of_time = False
        while step < t.max_steps and not out_of_time:
            epoch, done_in_epoch = divmod(step, updates_per_epoch)
            sampler.use_epoch(epoch)
            skip = done_in_epoch * t.grad_accum     # mid-epoch resume: skip the batches already trained on
            epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
            micro = 0
            for batch in epoch_loader:
                with accelerator.accumulate(transformer):
                    g = torch.Generator().manual_seed(cfg.seed * 7919 + step * 131 + micro * 17 +
                                                      accelerator.process_index)
                    micro += 1
                    with torch.no_grad():
                        src = O.latents(vae, batch["source"], batch["source_file"], cache, sampling)
                        tgt = O.latents(vae, batch["target"], batch["target_file"], cache, sampling)
                    noise = torch.randn(tgt.shape, generator=g).to(tgt.device, tgt.dtype)
                    sigmas = O.sample_sigmas(tgt.shape[0], t.weighting_scheme, t.timestep_shift, g).to(tgt.device)
                    with accelerator.autocast():
                        loss = O.flow_matching_loss(transformer, tgt, src, text_for(batch["prompt"]), sigmas, noise,
                                                    O.conditioning(batch, transformer, tgt))
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(params, t.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
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
                now = time.perf_counter()
                step_s, last_step_at = now - last_step_at, now
                step_times.append(step_s)
                lr = lr_scheduler.get_last_lr()[0]
                throughput = samples_per_step / step_s if step_s > 0 else float("nan")
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", it_s=f"{throughput:.2f}")
                if main:
                    R.append_row(out / "loss.csv", step, mean_loss, lr, time.time() - started, step_s, throughput)
                accelerator.log({"train/loss": mean_loss, "train/lr": lr, "train/step_s": step_s,
                                 "train/samples_per_s": throughput}, step=step)
                out_of_time = bool(t.max_minutes) and _all_agree(accelerator, time.time() - started >= t.max_minutes * 60)
                final = step >= t.max_steps or out_of_time
                if eval_set is not None and (step % v.every == 0 or final):
                    val = V.validation_loss(accelerator, transformer, vae, eval_set, text_for,
                                            shift=t.timestep_shift, seed=cfg.seed, cache=cache, sampling=sampling)
                    if val is not None:
                        val_losses.append((step, val))
                        accelerator.log({"val/loss": val}, step=step)
                        if main:
                            R.append_row(out / "val_loss.csv", step, val)
                            bar.write(f"step {step}: validation loss {val:.4f} over {len(eval_set)} pair(s)")
                if editor is not None and (step % v.sample_every == 0 or final):
                    sample_dirs.append(_write_samples(accelerator, editor, samples, out, step))
                if step % t.checkpoint_every == 0 or final:
                    R.save_checkpoint(accelerator, transformer, out, step, t.keep_checkpoints, run_id)
                last_step_at = time.perf_counter()          # validation, samples and checkpoints are not steps
                if final:
                    break
    except BaseException:
        if main and run_id is not None:
            R.catalog_update(cfg, run_id, status="failed")
        raise
    finally:
        bar.close()
    accelerator.wait_for_everyone()
    timed = step_times[1:] or step_times                 # the first step includes warm-up
    summary = {"latent_cache": None if cache is None else {"hits": cache.hits, "misses": cache.misses},
               "steps": step, "stopped_by_time": out_of_time,
               "skipped_items": dataset.skipped.count, "skipped": dataset.skipped.reasons,
               "data": data_info, "trainable_tensors": len(trainable), "mixed_precision": precision,
               "processes": accelerator.num_processes, "distributed_type": accelerator.distributed_type.value,
               "catalog_run_id": run_id, "text_conditioning": text_note,
               "lr_schedule": {"name": t.lr_scheduler, "warmup_steps": t.lr_warmup_steps},
               "trackers": list(t.trackers), "logging_dir": str(out / "logs") if t.trackers else None,
               "validation": {"losses": val_losses, "pairs": len(eval_set) if eval_set is not None else 0,
                              "note": None if eval_set is None or len(eval_set) else
                              "no eval pairs (one scene, or eval_fraction = 0): no validation loss"},
               "samples": {"dirs": sample_dirs, "note": sample_note},
               "throughput": {"median_step_s": _median(timed),
                              "samples_per_s": samples_per_step / _median(timed) if timed else None},
               "dataloader_workers": workers}
    if main:
        model_dir = out / "model"
        unwrapped = accelerator.unwrap_model(transformer)
        if ema is not None:
            ema.copy_to([p for p in unwrapped.parameters() if p.requires_grad])
        save_model_dir(unwrapped, vae, cfg, model_dir, text_conditioning=text_note, data_info=data_info)
        summary["final_loss"] = R.read_losses(out / "loss.csv")[-1][1] if step else None
        summary["loss_plot"] = str(R.plot_losses(out / "loss.csv", out / "loss.png", out / "val_loss.csv"))
        summary["model_dir"] = str(model_dir)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        if run_id is not None:
            R.catalog_update(cfg, run_id, status="done",
                             metrics={"steps": step, "final_loss": summary["final_loss"],
                                      "skipped_items": dataset.skipped.count,
                                      "val_loss": val_losses[-1][1] if val_losses else None},
                             checkpoints=[str(p) for p in checkpoints(out)] + [str(model_dir)])
    accelerator.end_training()
    return summary


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _sample_editor(cfg: RunConfig, vae, embeddings: textenc.PromptEmbeddings, samples, accelerator, transformer):
    """A ClipEditor over the model being trained (no copy): the same inference path `train edit` uses."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .editor import ClipEditor
    from .pipeline import CineCtrlPipeline, ModelCard
    pipe = CineCtrlPipeline(transformer=accelerator.unwrap_model(transformer), vae=vae,
                            scheduler=FlowMatchEulerDiscreteScheduler(shift=cfg.train.timestep_shift))
    pipe.card = ModelCard(num_frames=cfg.data.num_frames, size=list(cfg.data.size), text_tokens=cfg.model.text_tokens)
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
    try:
        cfg = load_config(args.config)
        if args.max_steps:
            cfg.train.max_steps = args.max_steps
        summary = train(cfg, resume=args.resume)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary.get("model_dir"):
        print(json.dumps({k: summary[k] for k in ("steps", "final_loss", "skipped_items", "model_dir", "processes",
                                                  "distributed_type")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
