"""The tiny model configurations, defined once for tests, benchmarks, examples and CPU runs.

Shapes follow diffusers' own Wan tests (docs/model.md §6): a 2-layer transformer and a 4-level VAE that
build in milliseconds on a CPU. Real runs load a Wan2.1 checkpoint from a local directory instead.
"""

from __future__ import annotations

from pathlib import Path
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


#: A T5 encoder at test size (docs/model.md §6): d_model must equal the transformer's text_dim.
TEXT_ENCODER: dict[str, Any] = dict(d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8)
#: Its word-level vocabulary: special tokens, then words a lab's prompts use; anything else is <unk>.
TEXT_VOCAB = ("<pad>", "</s>", "<unk>", "a", "an", "the", "of", "on", "in", "with", "and", "scene", "tabletop",
              "still", "life", "lab", "clip", "camera", "bokeh", "focus", "bright", "dark", "warm", "cool", "light",
              "red", "green", "blue", "table", "cup", "book", "plant", "wall", "window", "shot", "video")


def save_text_encoder(root: str | Path, *, d_model: int | None = None, seed: int = 0) -> Path:
    """A tiny random T5 encoder + word-level tokenizer in diffusers' layout (`text_encoder/`, `tokenizer/`),
    built offline: what tests and CPU runs configure as `[model] text_encoder` (Wan uses UMT5-XXL)."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel
    root = Path(root)
    vocab = {word: i for i, word in enumerate(TEXT_VOCAB)}
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(vocab), d_model=d_model or TRANSFORMER["text_dim"], pad_token_id=0,
                      eos_token_id=1, decoder_start_token_id=0, **TEXT_ENCODER)
    T5EncoderModel(config).save_pretrained(root / "text_encoder")
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        eos_token="</s>")
    tokenizer.save_pretrained(root / "tokenizer")
    return root
