"""CineCtrlPipeline: source video + photographic controls (+ trajectory, + prompt) -> edited video.

ReCamMaster-style sampling: the target half `[target_t | source_clean]` is integrated with a flow-matching
scheduler while the source half stays the clean latents of the input; only the target half is decoded. The
target half starts from noise ("flow", the paper's formulation) or from the source itself ("bridge": the model
moves the source by the asked change; neutral controls on an untrained model give the source back). The working
space is the model's `vae/`: a Wan VAE or the exact pixel space (train/space.py).
Guidance is split per branch (three passes batched together when any scale != 1):
  pred = uncond + camera_guidance * (camera_only - uncond) + photo_guidance * (full - camera_only)
with the negative prompt in `uncond` (text guidance rides with the camera term, as in ReCamMaster's single CFG).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler

from . import objective, space, textenc
from .model import CineCtrlTransformer3DModel, check_controls, controls_tensor, identity_trajectory

CARD = "cinectrl.json"


class ModelDirError(FileNotFoundError):
    """A directory that is not a usable CineCtrl model; the message says what is missing and what to give."""


@dataclass
class ModelCard:
    """What a model directory says about how it was trained (`cinectrl.json`): the clip length and size it
    saw, the prompt token count, how text was conditioned, the unit its camera paths' translations were in.
    Edits follow it (windows, resize, camera paths)."""

    num_frames: int | None = None               # None: unknown (a bare save_pretrained) -> clips edited whole
    size: list[int] | None = None               # [height, width]; None -> the clip's own size (multiples of 16)
    text_tokens: int = 16
    text_conditioning: str = "zeros"            # "zeros" | "text encoder ..."
    prompt: str = ""                            # the training prompt template
    translation_unit_m: float | None = None     # camera-path translation unit the model read (camera_path.py)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path) -> "ModelCard":
        path = root / CARD
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__ and k != "extra"}
        return cls(**known, extra=data)

    def save(self, root: Path) -> None:
        data = asdict(self)
        data.update(data.pop("extra"))
        (root / CARD).write_text(json.dumps(data, indent=2, default=str))


class CineCtrlPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _optional_components = ["text_encoder", "tokenizer"]

    def __init__(self, transformer: CineCtrlTransformer3DModel, vae: AutoencoderKLWan,
                 scheduler: FlowMatchEulerDiscreteScheduler, text_encoder=None, tokenizer=None) -> None:
        super().__init__()
        self.register_modules(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer)
        self._interrupt = False

    @classmethod
    def from_pretrained(cls, path, device: str | torch.device = "cpu", **kwargs) -> "CineCtrlPipeline":
        """The one loader (`load_pipeline`): a model directory from `cinectrl train run` or `save_pretrained`."""
        return load_pipeline(path, device, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """diffusers' layout (model_index.json + a folder per component) plus `cinectrl.json` (the model card)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        card = getattr(self, "card", None)
        if card is not None:
            card.save(Path(save_directory))

    # ------------------------------------------------------------------ helpers
    def _video_tensor(self, video: Any) -> torch.Tensor:
        """(B,3,T,H,W) in [-1,1] from a tensor of that shape or uint8 frames (T,H,W,3) / list of them."""
        if isinstance(video, torch.Tensor) and video.ndim == 5:
            return video.float()
        arr = np.asarray(video)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"video of shape {arr.shape}: give uint8 frames (T, H, W, 3) or a (B, 3, T, H, W) "
                             "tensor in [-1, 1]")
        t = torch.from_numpy(arr.astype(np.float32) / 127.5 - 1.0)
        return t.permute(3, 0, 1, 2).unsqueeze(0)

    def _check_sizes(self, video: torch.Tensor) -> None:
        _, _, frames, h, w = video.shape
        if (frames - 1) % 4:
            raise ValueError(f"{frames} frames: Wan's VAE needs 4k+1 frames (e.g. {((frames - 1) // 4) * 4 + 1})")
        if h % 16 or w % 16:
            raise ValueError(f"frame size {h}x{w}: height and width must be multiples of 16")

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return space.encode(self.vae, video)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return space.decode(self.vae, latents)

    def encode_prompt(self, prompt: str | list[str], max_sequence_length: int = 512) -> torch.Tensor:
        if self.text_encoder is None or self.tokenizer is None:
            raise ValueError("this pipeline has no text encoder/tokenizer: pass prompt_embeds instead of a prompt")
        return textenc.encode(self.text_encoder, self.tokenizer, prompt, max_sequence_length)

    def context(self, prompt: str | None, tokens: int) -> torch.Tensor:
        """Prompt embeddings as the model was trained: the text encoder's when it has one, else zeros."""
        if self.text_encoder is not None and self.tokenizer is not None:
            return self.encode_prompt(prompt or "", tokens)
        return torch.zeros(1, tokens, self.transformer.config.text_dim)

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(self, video: Any, controls: Mapping[str, float] | torch.Tensor | None = None,
                 trajectory: torch.Tensor | None = None, prompt: str | list[str] | None = None,
                 negative_prompt: str | list[str] | None = None, prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None, num_inference_steps: int = 30,
                 camera_guidance: float = 1.0, photo_guidance: float = 1.0,
                 camera_strength: float = 1.0, photo_strength: float = 1.0,
                 generator: torch.Generator | None = None, output_type: str = "np",
                 callback_on_step_end: Callable[..., dict] | None = None, max_sequence_length: int = 512,
                 return_dict: bool = False, disparity: torch.Tensor | np.ndarray | None = None,
                 anchor: Any = None):
        """Returns frames (B, T, H, W, 3) float in [0, 1] ("np"), a (B, 3, T, H, W) tensor ("pt") or latents.
        `disparity` (T, H, W) of the clip feeds the blur map of a model trained with physical maps and the
        simulator anchor's bokeh. `anchor` (same form as `video`): the clip an anchor = "simulator" bridge starts
        from when the caller rendered it already (the editor does, to carry the change to full size); by
        default `objective.anchor_video` of the source."""
        self._interrupt = False
        device = self.transformer.device
        dtype = self.transformer.dtype
        source = self._video_tensor(video)
        self._check_sizes(source)
        batch = source.shape[0]
        if prompt_embeds is None:
            prompt_embeds = self.encode_prompt(prompt if prompt is not None else "", max_sequence_length)
        prompt_embeds = prompt_embeds.to(device, dtype).expand(batch, -1, -1)
        src_latents = self.encode_video(source).to(device, dtype)
        latent_frames = src_latents.shape[2]

        if controls is None:
            ctrl = None
        else:
            ctrl = (controls if isinstance(controls, torch.Tensor) else controls_tensor(dict(controls)))
            ctrl = ctrl.to(device).expand(batch, -1)
        poses = (source.shape[2] - 1) // 4 + 1        # one pose per 4 frames + 1, whatever the working space
        traj = identity_trajectory(batch, poses) if trajectory is None else trajectory
        if traj.ndim == 2:
            traj = traj.unsqueeze(0)
        if traj.shape[1] != poses:
            raise ValueError(f"trajectory has {traj.shape[1]} poses; this clip of {source.shape[2]} frames takes "
                             f"{poses} (one pose per 4 frames + 1)")
        traj = traj.to(device).expand(batch, -1, -1)

        guided = camera_guidance != 1.0 or photo_guidance != 1.0
        if guided:
            if negative_prompt_embeds is None:
                negative_prompt_embeds = (self.encode_prompt(negative_prompt or "", max_sequence_length)
                                          if self.text_encoder is not None and negative_prompt is not None
                                          else torch.zeros_like(prompt_embeds))
            neg = negative_prompt_embeds.to(device, dtype).expand(batch, -1, -1)
            text = torch.cat([neg, prompt_embeds, prompt_embeds])
            cam_s = torch.tensor([0.0] * batch + [camera_strength] * 2 * batch, device=device)
            photo_s = torch.tensor([0.0] * 2 * batch + [photo_strength] * batch, device=device)
            ctrl_in = None if ctrl is None else ctrl.repeat(3, 1)
            traj_in = traj.repeat(3, 1, 1)
        else:
            text, cam_s, photo_s, ctrl_in, traj_in = prompt_embeds, camera_strength, photo_strength, ctrl, traj
        extra = {}
        disp = None if disparity is None else torch.as_tensor(np.asarray(disparity), dtype=torch.float32)
        disp = None if disp is None else disp.reshape(-1, *disp.shape[-3:]).expand(batch, -1, -1, -1)
        asked = controls_tensor({}).to(device).expand(batch, -1) if ctrl is None else ctrl
        if self.transformer.config.get("num_maps"):
            maps = objective.physical_maps(asked, disp, tuple(source.shape[2:]), src_latents)
            extra["maps"] = maps.repeat(3, 1, 1, 1, 1) if guided else maps

        start = self._video_tensor(anchor) if anchor is not None else \
            objective.anchor_video(self.transformer, source, asked, disp)
        anchor_latents = src_latents if start is source else self.encode_video(start).to(device, dtype)
        noise = torch.randn(src_latents.shape, generator=generator, dtype=torch.float32).to(device, dtype)
        latents = objective.start_point(objective.formulation(self.transformer), noise, anchor_latents).clone()
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                if self._interrupt:
                    break
                copies = 3 if guided else 1
                hidden = torch.cat([latents, src_latents], dim=2).repeat(copies, 1, 1, 1, 1)
                pred = self.transformer(hidden_states=hidden, timestep=t.expand(hidden.shape[0]),
                                        encoder_hidden_states=text, controls=ctrl_in, trajectory=traj_in,
                                        camera_strength=cam_s, photo_strength=photo_s, return_dict=False,
                                        **extra)[0][:, :, :latent_frames]
                if guided:
                    uncond, cam_only, full = pred.chunk(3)
                    pred = uncond + camera_guidance * (cam_only - uncond) + photo_guidance * (full - cam_only)
                latents = self.scheduler.step(pred, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    result = callback_on_step_end(self, i, t, {"latents": latents}) or {}
                    latents = result.get("latents", latents)
                bar.update()

        if output_type == "latent":
            out = latents
        else:
            video_out = self.decode_latents(latents)
            out = video_out if output_type == "pt" else video_out.permute(0, 2, 3, 4, 1).cpu().numpy()
        self.maybe_free_model_hooks()
        return {"frames": out} if return_dict else out


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory, or a training run's output directory holding one in `model/`."""
    root = Path(path)
    if not root.is_dir():
        raise ModelDirError(f"{root}: no such model directory; give the model/ folder `cinectrl train run` wrote "
                            "(or its run directory)")
    if not (root / "transformer").is_dir() and (root / "model" / "transformer").is_dir():
        root = root / "model"
    missing = [p for p in ("transformer/config.json", "vae") if not (root / p).exists()]
    if missing:
        raise ModelDirError(f"{root}: not a cinectrl model directory (no {', '.join(missing)}); train one with "
                            "`cinectrl train run CONFIG.toml` and give its model/ folder")
    return root


def check_model_dir(path: str | Path) -> Path:
    """`resolve_model_dir` + what its configs say, without loading weights: a CineCtrl transformer trained with
    this cinectrl's control list (rigs.controls.ControlError otherwise)."""
    from rigs import controls as registry
    root = resolve_model_dir(path)
    config = json.loads((root / "transformer" / "config.json").read_text())
    if config.get("_class_name") != CineCtrlTransformer3DModel.__name__:
        raise ModelDirError(f"{root}/transformer is a {config.get('_class_name')}, not a CineCtrl transformer; a stock "
                            "Wan model has no controls: fine-tune it first ([model] pretrained = that directory)")
    registry.check_model_controls(config.get("control_names"), what=f"model {root}")
    return root


def load_pipeline(path: str | Path, device: str | torch.device = "cpu", **components: Any) -> CineCtrlPipeline:
    """The one way a model directory becomes a pipeline (`train edit`, `train eval`, `serve`, samples during
    training): checks the transformer is a CineCtrl one with this cinectrl's control list, loads each component by
    its own class (diffusers' generic loader refuses a transformer class outside its pipelines package), attaches
    the model card as `pipe.card`."""
    import diffusers
    root = check_model_dir(path)
    transformer = components.get("transformer") or CineCtrlTransformer3DModel.from_pretrained(root / "transformer")
    check_controls(transformer, what=f"model {root}")
    vae = components.get("vae") or space.load(root / "vae")
    scheduler = components.get("scheduler")
    if scheduler is None:
        if (root / "scheduler" / "scheduler_config.json").is_file():
            name = json.loads((root / "scheduler" / "scheduler_config.json").read_text()).get("_class_name")
            scheduler = getattr(diffusers, name or "FlowMatchEulerDiscreteScheduler").from_pretrained(root / "scheduler")
        else:
            scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    encoder, tokenizer = components.get("text_encoder"), components.get("tokenizer")
    if encoder is None and textenc.has_text_encoder(root):
        encoder, tokenizer = textenc.load(root, device)
    pipe = CineCtrlPipeline(transformer=transformer.eval(), vae=vae.eval(), scheduler=scheduler, text_encoder=encoder,
                            tokenizer=tokenizer)
    pipe.card = ModelCard.read(root)
    from .camera_path import CameraPathError, translation_unit
    try:
        translation_unit(pipe.card.translation_unit_m, what=f"model {root}")
    except CameraPathError as exc:
        raise ModelDirError(str(exc)) from None
    pipe.root = root
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
