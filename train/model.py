"""CineCtrl transformer: Wan2.1 extended to video-to-video with camera and photographic conditioning.

Why this shape (see docs/model.md):
- V2V as in ReCamMaster: `hidden_states` holds `[target_noisy | source_clean]` along the frame axis; the base
  model's RoPE and patching see one longer clip, so nothing about frames/height/width is hard-coded.
- Camera-decoupled cross-attention (IP-Adapter style): each block's `attn2` gets a processor module that keeps
  the text branch untouched and adds two branches (camera tokens, photographic tokens) with their own K/V
  projections and key RMSNorm, sharing the text query. Each branch's output projection is zero-initialised and
  multiplied by a runtime strength, so a fresh model equals the base Wan model bit for bit.
- Condition tokens reach the processors through `_ConditionStore` set in `forward` (diffusers' Wan blocks do not
  forward attention kwargs). The store keeps the last tokens so gradient-checkpoint recomputation sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn
from diffusers import WanTransformer3DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

from rigs import controls as registry

#: Order of the photographic controls fed to the photographic encoder: the registry's (rigs/controls.py).
CONTROL_NAMES = registry.NAMES
#: Trainable-set modes understood by `CineCtrlTransformer3DModel.set_trainable`.
TRAINABLE_MODES = ("new", "new+self_attn", "lora", "all")
#: What the model is trained to do (`[model] formulation`): "flow" = the paper's flow matching from noise to the
#: target; "bridge" = source-anchored flow from the source to the target (the model predicts the change, and
#: its output projection starts at zero, so an untrained model returns the source exactly).
FORMULATIONS = ("flow", "bridge")
#: Where the bridge starts (`[model] anchor`): "source" = the source clip itself; "simulator" = the effect
#: simulator's render of the asked controls (train/effects.py), so the model learns only what the simulator gets
#: wrong and an untrained model returns the simulator's render. Bridge only.
ANCHORS = ("source", "simulator")


def check_anchor(formulation: str, anchor: str) -> None:
    """The (formulation, anchor) pairs a model can have; ValueError naming the fix otherwise."""
    if anchor not in ANCHORS:
        raise ValueError(f"anchor = {anchor!r}; use one of {', '.join(ANCHORS)}")
    if anchor != "source" and formulation != "bridge":
        raise ValueError(f"anchor = {anchor!r} needs formulation = \"bridge\" (formulation = {formulation!r} starts "
                         "from noise); set formulation = \"bridge\" or anchor = \"source\"")


def sinusoidal_embedding(values: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Cos/sin features of scalars in about [-1, 1], any shape -> (..., dim): diffusers' timestep embedding of
    1000·value (scaled so small control steps move the embedding)."""
    flat = get_timestep_embedding(values.float().reshape(-1) * 1000.0, dim, flip_sin_to_cos=True,
                                  downscale_freq_shift=0, max_period=max_period)
    return flat.reshape(*values.shape, dim)


class _ConditionStore:
    """Per-forward condition tokens and strengths shared by the model and its processors (not a module)."""

    def __init__(self) -> None:
        self.camera: torch.Tensor | None = None
        self.photo: torch.Tensor | None = None
        self.camera_strength: float | torch.Tensor = 1.0
        self.photo_strength: float | torch.Tensor = 1.0


class CameraEncoder(nn.Module):
    """Per latent frame: 12 numbers (3x4 pose relative to the source's first frame) + frame index -> one token."""

    def __init__(self, dim: int, pose_dim: int = 12, index_dim: int = 32) -> None:
        super().__init__()
        self.index_dim = index_dim
        self.mlp = nn.Sequential(nn.Linear(pose_dim + index_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, trajectory: torch.Tensor) -> torch.Tensor:
        b, f, _ = trajectory.shape
        idx = torch.arange(f, device=trajectory.device, dtype=torch.float32) / 1000.0
        feats = torch.cat([trajectory.float(), sinusoidal_embedding(idx, self.index_dim).expand(b, f, -1)], dim=-1)
        return self.mlp(feats.to(self.mlp[0].weight.dtype))


class PhotoEncoder(nn.Module):
    """Sinusoidal embedding of each control -> shared MLP -> `num_tokens` tokens."""

    def __init__(self, dim: int, num_controls: int, num_tokens: int, freq_dim: int = 64) -> None:
        super().__init__()
        self.num_controls, self.num_tokens, self.freq_dim = num_controls, num_tokens, freq_dim
        self.mlp = nn.Sequential(nn.Linear(num_controls * freq_dim, dim), nn.SiLU(), nn.Linear(dim, num_tokens * dim))

    def forward(self, controls: torch.Tensor) -> torch.Tensor:
        if controls.shape[-1] != self.num_controls:
            raise ValueError(f"controls has {controls.shape[-1]} values per clip; this model takes exactly "
                             f"{self.num_controls} (the registry's {', '.join(CONTROL_NAMES)}); build them with "
                             "train.model.controls_tensor")
        emb = sinusoidal_embedding(controls, self.freq_dim).flatten(-2)
        out = self.mlp(emb.to(self.mlp[0].weight.dtype))
        return out.unflatten(-1, (self.num_tokens, -1))


class _Branch(nn.Module):
    """K/V projections + key RMSNorm + zero-initialised output projection for one condition token stream."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.norm_k = nn.RMSNorm(dim, eps=eps)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, heads: int) -> torch.Tensor:
        tokens = tokens.to(self.to_k.weight.dtype)
        key = self.norm_k(self.to_k(tokens)).unflatten(2, (heads, -1))
        value = self.to_v(tokens).unflatten(2, (heads, -1))
        out = dispatch_attention_fn(query, key.to(query.dtype), value.to(query.dtype))
        return self.to_out(out.flatten(2, 3).to(self.to_out.weight.dtype))


class CineCtrlCrossAttnProcessor(nn.Module):
    """Camera-decoupled cross-attention: text branch as Wan's, plus camera and photographic branches."""

    def __init__(self, dim: int, eps: float, store: _ConditionStore) -> None:
        super().__init__()
        self.camera = _Branch(dim, eps)
        self.photo = _Branch(dim, eps)
        self._text = WanAttnProcessor()
        object.__setattr__(self, "_store", store)   # plain attribute: not a submodule, not saved

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        out = self._text(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
        store = self._store
        if store.camera is None and store.photo is None:
            return out
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        if store.camera is not None:
            out = out + _strength(store.camera_strength, out) * self.camera(query, store.camera, attn.heads).to(out.dtype)
        if store.photo is not None:
            out = out + _strength(store.photo_strength, out) * self.photo(query, store.photo, attn.heads).to(out.dtype)
        return out


def _strength(value: float | torch.Tensor, like: torch.Tensor) -> float | torch.Tensor:
    """A scalar, or one strength per batch item (CFG batches mix strengths)."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return value.to(like).view(-1, 1, 1)
    return value


class CineCtrlTransformer3DModel(WanTransformer3DModel):
    """Wan transformer + camera encoder + photographic encoder + decoupled cross-attention in every block.

    forward(hidden_states=[target|source] latents (B, C, 2F, H, W), timestep, encoder_hidden_states,
            controls=(B, <=num_controls) or None, trajectory=(B, F, 12) or None,
            camera_strength=1.0, photo_strength=1.0)
    A branch whose input is None is skipped, so the model then equals the base Wan model.
    """

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        camera_dim: int = 12,
        num_controls: int = len(CONTROL_NAMES),
        num_control_tokens: int = 4,
        control_freq_dim: int = 64,
        control_names: tuple[str, ...] | list[str] = CONTROL_NAMES,
        formulation: str = "flow",
        num_maps: int = 0,
        anchor: str = "source",
    ) -> None:
        if formulation not in FORMULATIONS:
            raise ValueError(f"formulation {formulation!r}: use one of {', '.join(FORMULATIONS)}")
        check_anchor(formulation, anchor)
        # every parent argument repeated explicitly: from_config forwards only named parameters (model.md §5);
        # physical maps (num_maps channels) enter the patch embedding beside the latents
        super().__init__(patch_size=patch_size, num_attention_heads=num_attention_heads,
                         attention_head_dim=attention_head_dim, in_channels=in_channels, out_channels=out_channels,
                         text_dim=text_dim, freq_dim=freq_dim, ffn_dim=ffn_dim, num_layers=num_layers,
                         cross_attn_norm=cross_attn_norm, qk_norm=qk_norm, eps=eps, image_dim=image_dim,
                         added_kv_proj_dim=added_kv_proj_dim, rope_max_seq_len=rope_max_seq_len,
                         pos_embed_seq_len=pos_embed_seq_len)
        if len(control_names) != num_controls:
            raise ValueError(f"num_controls={num_controls} but control_names lists {len(control_names)} "
                             f"({', '.join(control_names)})")
        dim = num_attention_heads * attention_head_dim
        if num_maps:
            self.patch_embedding = nn.Conv3d(in_channels + num_maps, dim, kernel_size=patch_size, stride=patch_size)
        self._conditions = _ConditionStore()
        self.camera_encoder = CameraEncoder(dim, camera_dim)
        self.photo_encoder = PhotoEncoder(dim, num_controls, num_control_tokens, control_freq_dim)
        for block in self.blocks:
            block.attn2.set_processor(CineCtrlCrossAttnProcessor(dim, eps, self._conditions))
        if formulation == "bridge":          # predicts the change from the source: none at the start
            nn.init.zeros_(self.proj_out.weight)
            nn.init.zeros_(self.proj_out.bias)

    # ------------------------------------------------------------------ forward
    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                encoder_hidden_states_image: torch.Tensor | None = None, return_dict: bool = True,
                attention_kwargs: dict[str, Any] | None = None, controls: torch.Tensor | None = None,
                trajectory: torch.Tensor | None = None, camera_strength: float | torch.Tensor = 1.0,
                photo_strength: float | torch.Tensor = 1.0, maps: torch.Tensor | None = None):
        """`maps` (B, num_maps, F, H, W) on the latent grid of one half: given to the target half; the source
        half gets zeros (None = all zeros, e.g. a model trained without maps' inputs)."""
        if self.config.num_maps:
            b, _, frames2, h, w = hidden_states.shape
            half = torch.zeros(b, self.config.num_maps, frames2 // 2, h, w, dtype=hidden_states.dtype,
                               device=hidden_states.device)
            target_maps = half if maps is None else maps.to(half)
            hidden_states = torch.cat([hidden_states, torch.cat([target_maps, half], dim=2)], dim=1)
        store = self._conditions
        store.camera = self.camera_encoder(trajectory.to(hidden_states.device)) if trajectory is not None else None
        store.photo = self.photo_encoder(controls.to(hidden_states.device)) if controls is not None else None
        store.camera_strength, store.photo_strength = camera_strength, photo_strength
        return super().forward(hidden_states, timestep, encoder_hidden_states, encoder_hidden_states_image,
                               return_dict=return_dict, attention_kwargs=attention_kwargs)

    # ------------------------------------------------------------------ parameters
    def new_module_names(self) -> list[str]:
        """Parameter-name prefixes of the modules CineCtrl adds to Wan. Under the bridge formulation the output
        projection is re-initialised to zero (the model predicts a change: none before training), so it is new
        too: frozen at zero it would block every gradient and the model could never leave the identity."""
        bridge = ["proj_out."] if self.config.formulation == "bridge" else []
        return ["camera_encoder.", "photo_encoder."] + bridge + [f"blocks.{i}.attn2.processor."
                                                                  for i in range(len(self.blocks))]

    def is_new_parameter(self, name: str) -> bool:
        return any(name.startswith(p) for p in self.new_module_names())

    def set_trainable(self, mode: str = "new", lora_rank: int = 16) -> list[str]:
        """Freeze all, unfreeze `mode`'s set: "new" (CineCtrl modules), "new+self_attn" (+ every attn1, as
        ReCamMaster), "lora" (new modules + PEFT LoRA on Wan's attention projections), "all". Returns names."""
        if mode not in TRAINABLE_MODES:
            raise ValueError(f"trainable mode {mode!r}: use one of {', '.join(TRAINABLE_MODES)}")
        self.requires_grad_(False)
        if mode == "lora":
            from peft import LoraConfig
            self.add_adapter(LoraConfig(r=lora_rank, lora_alpha=lora_rank, init_lora_weights=True,
                                        target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        names = []
        for name, param in self.named_parameters():
            if (mode == "all" or self.is_new_parameter(name) or (mode == "lora" and "lora_" in name)
                    or (mode == "new+self_attn" and ".attn1." in name)):
                param.requires_grad_(True)
                names.append(name)
        return names

    def parameter_counts(self) -> dict[str, int]:
        """{"base": Wan parameters, "new": CineCtrl parameters, "total"} (works on the meta device)."""
        new = sum(p.numel() for n, p in self.named_parameters() if self.is_new_parameter(n))
        total = sum(p.numel() for p in self.parameters())
        return {"base": total - new, "new": new, "total": total}

    # ------------------------------------------------------------------ loading a stock Wan
    @classmethod
    def from_wan(cls, base: WanTransformer3DModel | str | Path, **new_config: Any) -> "CineCtrlTransformer3DModel":
        """A CineCtrl transformer holding a stock Wan2.1 transformer's weights (a model or a local diffusers
        directory, e.g. `Wan2.1-T2V-1.3B-Diffusers/transformer`) with freshly initialised new modules."""
        if not isinstance(base, WanTransformer3DModel):
            path = Path(base)
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path}: no config.json; give a local diffusers Wan transformer directory "
                                        "(e.g. Wan2.1-T2V-1.3B-Diffusers/transformer)")
            base = WanTransformer3DModel.from_pretrained(path)
        config = {k: v for k, v in base.config.items() if not k.startswith("_")}
        model = cls.from_config({**config, **new_config})
        result = model.load_state_dict(base.state_dict(), strict=False)
        stray = [k for k in result.missing_keys if not model.is_new_parameter(k)]
        if stray or result.unexpected_keys:
            raise ValueError(f"base weights do not fit: missing {stray[:5]}, unexpected {result.unexpected_keys[:5]}")
        if model.config.formulation == "bridge":    # the bridge predicts the change: none before training
            nn.init.zeros_(model.proj_out.weight)
            nn.init.zeros_(model.proj_out.bias)
        dtype = next(base.parameters()).dtype
        return model if dtype == torch.float32 else model.to(dtype=dtype)


def wan21_config(size: str = "1.3B") -> dict[str, Any]:
    """The transformer configuration of Wan2.1 T2V 1.3B or 14B (model.md §3)."""
    table = {"1.3B": dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
             "14B": dict(num_attention_heads=40, attention_head_dim=128, ffn_dim=13824, num_layers=40)}
    if size not in table:
        raise ValueError(f"Wan2.1 size {size!r}: use one of {', '.join(table)}")
    return dict(patch_size=(1, 2, 2), in_channels=16, out_channels=16, text_dim=4096, freq_dim=256,
                cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024, **table[size])


def meta_parameter_counts(size: str = "1.3B", **new_config: Any) -> dict[str, int]:
    """Parameter counts of a full-size configuration, instantiated on the meta device (no memory)."""
    with torch.device("meta"):
        model = CineCtrlTransformer3DModel(**wan21_config(size), **new_config)
    return model.parameter_counts()


def identity_trajectory(batch: int, latent_frames: int) -> torch.Tensor:
    """Relative poses of a static camera: [I | 0] flattened to 12 numbers per latent frame."""
    eye = torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1).flatten()
    return eye.expand(batch, latent_frames, 12).clone()


def controls_tensor(controls: Mapping[str, float] | Iterable[Mapping[str, float]]) -> torch.Tensor:
    """{"K": .., "d_f": .., ...} (or a list of them) -> (B, len(registry)) in registry order; missing controls
    take their neutral value; unknown names and out-of-range values are refused (rigs.controls.ControlError)."""
    items = [controls] if isinstance(controls, Mapping) else list(controls)
    return torch.tensor([registry.vector(i) for i in items], dtype=torch.float32)


def check_controls(model: CineCtrlTransformer3DModel, *, what: str = "model") -> None:
    """Refuse a model trained with another control list than this cinectrl's registry."""
    registry.check_model_controls(model.config.get("control_names"), what=what)
