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


def transformer_config(**overrides: Any) -> dict[str, Any]:
    """A fresh copy (callers may mutate it) with overrides applied."""
    return {**{k: list(v) if isinstance(v, list) else v for k, v in TRANSFORMER.items()}, **overrides}


def vae_config(**overrides: Any) -> dict[str, Any]:
    return {**{k: list(v) if isinstance(v, list) else v for k, v in VAE.items()}, **overrides}
