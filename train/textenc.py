"""Text conditioning: a local text encoder (UMT5 for Wan) turns prompts into the transformer's context tokens.

Training encodes every distinct prompt once before the first step and keeps the embeddings (on disk beside
the latent cache when one is configured), so the encoder never sits in memory during training. Without an
encoder the context is all zeros, and the run's summary says so. The model directory keeps the encoder and
tokenizer (`text_encoder/`, `tokenizer/`, diffusers' layout) so edits and the server encode prompts the same way.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import torch


class TextEncoderError(ValueError):
    """A text encoder directory that cannot be used; the message names it and what it lacks."""


def _parts(root: Path) -> tuple[Path, Path]:
    """(encoder dir, tokenizer dir): a diffusers pipeline root (text_encoder/ + tokenizer/, e.g. a Wan2.1
    checkpoint) or one transformers directory holding both."""
    enc = root / "text_encoder" if (root / "text_encoder" / "config.json").is_file() else root
    tok = root / "tokenizer" if (root / "tokenizer").is_dir() else enc
    return enc, tok


parts = _parts          # public: a checkpoint's model directory links these instead of copying them


def has_text_encoder(root: str | Path) -> bool:
    return (Path(root) / "text_encoder" / "config.json").is_file()


def load(root: str | Path, device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """(encoder, tokenizer) from a local directory, offline (never the Hub)."""
    from transformers import AutoConfig, AutoTokenizer, T5EncoderModel, UMT5EncoderModel
    root = Path(root)
    enc_dir, tok_dir = _parts(root)
    if not (enc_dir / "config.json").is_file():
        raise TextEncoderError(f"text encoder {root}: no config.json (nor text_encoder/config.json); give a local "
                               "UMT5/T5 encoder directory, e.g. a Wan2.1 diffusers checkpoint (text_encoder/ + "
                               "tokenizer/)")
    try:
        config = AutoConfig.from_pretrained(enc_dir, local_files_only=True)
        cls = UMT5EncoderModel if config.model_type == "umt5" else T5EncoderModel
        if config.model_type not in ("umt5", "t5", "mt5"):
            raise TextEncoderError(f"text encoder {enc_dir}: model type {config.model_type!r}; Wan uses a UMT5 "
                                   "(or T5) encoder")
        encoder = cls.from_pretrained(enc_dir, local_files_only=True).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        if isinstance(exc, TextEncoderError):
            raise
        raise TextEncoderError(f"text encoder {root}: cannot load ({str(exc).splitlines()[0]})") from None
    encoder.requires_grad_(False)
    return encoder, tokenizer


def encoder_id(encoder: Any) -> str:
    """Short hash of the encoder's config and weights' shapes + a weight checksum (cache key part)."""
    h = hashlib.sha256(json.dumps(encoder.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(encoder.state_dict().items())[:4]:
        h.update(name.encode() + tensor.float().sum().item().hex().encode())
    return h.hexdigest()[:12]


@torch.no_grad()
def encode(encoder: Any, tokenizer: Any, prompts: str | list[str], max_tokens: int) -> torch.Tensor:
    """(N, max_tokens, dim) context tokens; padding positions are zero, as Wan's pipelines make them."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    ids = tokenizer(prompts, padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")
    device = next(encoder.parameters()).device
    mask = ids.attention_mask.to(device)
    out = encoder(ids.input_ids.to(device), attention_mask=mask).last_hidden_state
    return out * mask.unsqueeze(-1).to(out)


class PromptEmbeddings:
    """Every distinct prompt of a run encoded once: `lookup(prompts)` stacks them for a batch.
    With a cache directory, embeddings persist keyed by encoder id + prompt + token count."""

    def __init__(self, table: dict[str, torch.Tensor], *, source: str, hits: int = 0, misses: int = 0) -> None:
        self.table, self.source, self.hits, self.misses = table, source, hits, misses

    @classmethod
    def zeros(cls, prompts: Iterable[str], tokens: int, dim: int) -> "PromptEmbeddings":
        zero = torch.zeros(tokens, dim)
        return cls({p: zero for p in set(prompts)}, source="zeros")

    @classmethod
    def precompute(cls, encoder: Any, tokenizer: Any, prompts: Iterable[str], tokens: int, *,
                   cache_dir: Path | None = None, batch: int = 16) -> "PromptEmbeddings":
        from safetensors.torch import load_file, save_file
        wanted = sorted(set(prompts))
        ident = encoder_id(encoder)
        table, todo, hits = {}, [], 0
        for prompt in wanted:
            path = _cache_path(cache_dir, ident, prompt, tokens)
            if path is not None and path.is_file():
                table[prompt] = load_file(str(path))["embedding"]
                hits += 1
            else:
                todo.append(prompt)
        for i in range(0, len(todo), batch):
            chunk = todo[i:i + batch]
            out = encode(encoder, tokenizer, chunk, tokens).float().cpu()
            for prompt, emb in zip(chunk, out):
                table[prompt] = emb.contiguous()
                path = _cache_path(cache_dir, ident, prompt, tokens)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f"{path.stem}.{id(emb)}.tmp")
                    save_file({"embedding": table[prompt]}, str(tmp))
                    tmp.replace(path)
        return cls(table, source=f"text encoder {ident}", hits=hits, misses=len(todo))

    def lookup(self, prompts: list[str], device: torch.device | str, dtype: torch.dtype = torch.float32
               ) -> torch.Tensor:
        return torch.stack([self.table[p] for p in prompts]).to(device, dtype)

    def __len__(self) -> int:
        return len(self.table)


def _cache_path(cache_dir: Path | None, ident: str, prompt: str, tokens: int) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(f"{ident}|{tokens}|{prompt}".encode()).hexdigest()
    return Path(cache_dir) / "prompts" / f"{key}.safetensors"
