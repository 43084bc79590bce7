"""The tiny model configurations, defined once for tests, benchmarks, examples and CPU runs.

Shapes follow diffusers' own Wan tests (docs/model.md §6): a 2-layer transformer and a 4-level VAE that
build in milliseconds on a CPU. Real runs load a Wan2.1 checkpoint from a local directory instead.
"""

from __future__ import annotations

from typing import Any

#: CineCtrl/Wan transformer at test size (text_dim 32: prompt embeddings are (B, tokens, 32)).
TRANSFORMER: dict[str, Any] = dict(
    patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32)

#: AutoencoderKLWan at test size (z_dim 16 as Wan's, stride 4 in time and 8 in space).
VAE: dict[str, Any] = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])


#: a few times wider and deeper than TRANSFORMER: the size the lab-day benchmark trains on a CPU in minutes
SMALL_TRANSFORMER: dict[str, Any] = {**TRANSFORMER, "num_attention_heads": 4, "attention_head_dim": 16,
                                     "ffn_dim": 128, "num_layers": 4}
PRESETS: dict[str, dict[str, Any]] = {"tiny": TRANSFORMER, "small": SMALL_TRANSFORMER}


def transformer_config(preset: str = "tiny", **overrides: Any) -> dict[str, Any]:
    """A fresh copy of a preset (callers may mutate it) with overrides applied."""
    if preset not in PRESETS:
        raise ValueError(f"transformer preset {preset!r}: use one of {', '.join(PRESETS)}")
    return {**{k: list(v) if isinstance(v, list) else v for k, v in PRESETS[preset].items()}, **overrides}


def vae_config(**overrides: Any) -> dict[str, Any]:
    return {**{k: list(v) if isinstance(v, list) else v for k, v in VAE.items()}, **overrides}
