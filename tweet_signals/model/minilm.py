"""The embedded model's encoder (BERT, as all-MiniLM-L6-v2 uses it) in plain torch, for inference.

Importing transformers costs a worker about two seconds; this module needs only torch. Its
modules and parameters are named exactly as transformers' ``BertModel`` names them, so the same
state dict loads into either, and a test checks both give the same hidden states. Training and
the first build of the merged weights still use transformers; workers that load the cached
merged weights use this.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@contextmanager
def uninitialised_parameters() -> Iterator[None]:
    """Build modules without initialising their weights, for weights loaded right afterwards.

    Random initialisation of MiniLM's 22M parameters costs a worker about 0.1 s, all of it
    overwritten by the load. (Building on the meta device instead is no faster to start: torch's
    meta initialisers import ``torch._dynamo``, 0.7 s.)"""
    layers: tuple[type[nn.Module], ...] = (nn.Linear, nn.Embedding, nn.LayerNorm)
    saved = [vars(layer)["reset_parameters"] for layer in layers]
    try:
        for layer in layers:
            setattr(layer, "reset_parameters", lambda self: None)  # noqa: B010 - patched on the class
        yield
    finally:
        for layer, original in zip(layers, saved, strict=True):
            setattr(layer, "reset_parameters", original)  # noqa: B010


class _Embeddings(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # Token type 0 everywhere, as transformers does when none is given.
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        hidden, self.heads = c["hidden_size"], c["num_attention_heads"]
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), keep)
        return context.transpose(1, 2).reshape(batch, length, hidden)


class _Output(nn.Module):
    """dense → dropout (none at inference) → LayerNorm(· + residual)."""

    def __init__(self, inner: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _Output(c["hidden_size"], c["hidden_size"], c["layer_norm_eps"])


class _Intermediate(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])


class _Layer(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _Output(c["intermediate_size"], c["hidden_size"], c["layer_norm_eps"])

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        attended = self.attention.output(self.attention.self(x, keep), x)
        return self.output(F.gelu(self.intermediate.dense(attended)), attended)  # "gelu": the exact erf form


class _Encoder(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c["num_hidden_layers"]))


class BertEncoder(nn.Module):
    """``BertModel(config, add_pooling_layer=False)`` for inference: returns the last hidden states."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if (
            config.get("hidden_act", "gelu") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ValueError("only BERT encoders with exact GELU and absolute positions are supported")
        if config["hidden_size"] % config["num_attention_heads"]:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        self.scale = 1 / math.sqrt(config["hidden_size"] // config["num_attention_heads"])
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keep = attention_mask[:, None, None, :].to(torch.bool)  # (batch, 1, 1, length): True = attend
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x
