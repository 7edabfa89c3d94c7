"""What every engine needs from a model: its tokenizer, labels, and a loader for its weights."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweet_signals.model.base import (
    ModelUnavailableError,
    TextPreparation,
    label_permutation,
    preprocess_text,
    text_preparation,
)
from tweet_signals.model.reference import ModelRef, cache_only, unavailable_message

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelParts:
    """The model's pieces, with the torch weights loaded only on demand: an ONNX engine whose
    export is cached never holds the fp32 module (hundreds of MB)."""

    tokenizer: Any
    load_module: Callable[[], torch.nn.Module]  # loads the fp32 classifier (each engine calls it once at most)
    permutation: list[int | None]
    model_id: str
    pad_token_id: int
    hf_output: bool  # the module returns an object with ``.logits``
    prepare: TextPreparation = preprocess_text  # how texts are prepared before tokenising


def load_parts(ref: ModelRef, engine: str) -> ModelParts:
    """The model's tokenizer, labels and a loader for its weights. ONNX engines on a local
    model read ``tokenizer.json`` with the Rust ``tokenizers`` library directly: transformers'
    tokenizer classes import torch, which costs an ONNX worker ~200 MB for nothing."""
    direct = engine.startswith("onnx-")
    if ref.kind == "embedded":
        from tweet_signals.model.embedded_files import EMBEDDED_MODEL_ID, base_model_dir, read_adapter_metadata

        adapter = ref.path
        assert adapter is not None

        def load_embedded_module() -> torch.nn.Module:
            from tweet_signals.model.embedded import load_embedded_module as load

            return load(adapter)

        # Always the Rust tokenizer: the same ids as transformers' (a test checks), without its import.
        tokenizer, _ = local_tokenizer(base_model_dir(), direct=True)
        model_id = EMBEDDED_MODEL_ID if ref.model_dir is None else f"{EMBEDDED_MODEL_ID}:{adapter.parent.name}"
        prepare = text_preparation(read_adapter_metadata(adapter)) if adapter.is_file() else preprocess_text
        return ModelParts(tokenizer, load_embedded_module, [0, 1, 2], model_id, 0, hf_output=False, prepare=prepare)
    local = cache_only(ref)
    try:
        if ref.kind == "local":
            assert ref.path is not None
            tokenizer, pad_id = local_tokenizer(ref.path, direct)
            id2label = json.loads((ref.path / "config.json").read_text(encoding="utf-8"))["id2label"]
        else:
            from transformers import AutoConfig, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(ref.name, local_files_only=local)
            pad_id = int(tokenizer.pad_token_id or 0)
            model_config = AutoConfig.from_pretrained(ref.name, local_files_only=local, trust_remote_code=False)
            id2label = model_config.id2label
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(unavailable_message(ref.name)) from exc

    def load_module() -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        try:
            module = AutoModelForSequenceClassification.from_pretrained(
                ref.name, local_files_only=local, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(unavailable_message(ref.name)) from exc
        return module.eval()

    return ModelParts(tokenizer, load_module, label_permutation(id2label), ref.name, pad_id, hf_output=True)


def local_tokenizer(directory: Path, direct: bool) -> tuple[Any, int]:
    """(tokenizer, pad token id) of a local model directory; ``direct``: the Rust tokenizer
    from ``tokenizer.json`` when there is one (same ids, see the tests), else transformers'."""
    if direct and (directory / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        settings = (
            json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
            if (directory / "tokenizer_config.json").is_file()
            else {}
        )
        pad = settings.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
        return tokenizer, int(pad_id or 0)
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return auto, int(auto.pad_token_id or 0)
