"""Build analyzers from an ``AnalyzerConfig``: Hugging Face models by hub id or local directory,
and the embedded offline model. One cached load per process (see ``load_analyzer``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tweet_signals.analyzers.base import (
    LABELS,
    BatchedTextClassifier,
    ModelUnavailableError,
    label_permutation,
)

DEFAULT_MODEL = "cardiffnlp/twitter-roberta-base-sentiment-latest"
EMBEDDED = "embedded"

# How many times this process has really loaded a model; the analyze task reports it so
# tests (and the manifest) can prove a worker loads its model once, not once per chunk.
LOADS_IN_PROCESS = 0


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything that decides an analyzer's outputs, plus how to run it."""

    model: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cpu | cuda | mps
    max_length: int = 128
    batch_tokens: int = 4096
    max_batch_size: int = 32
    threads: int = 0  # torch intra-op threads; 0: leave torch's default

    def output_fields(self) -> dict[str, object]:
        """The fields that change the numbers a model produces (part of chunk cache keys)."""
        return {"model": self.model, "revision": model_revision(self.model), "max_length": self.max_length}


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=16)
def model_revision(model: str) -> str:
    """A short fingerprint of the model's weights, so a changed model never reuses old chunks."""
    if model == EMBEDDED:
        from tweet_signals.analyzers.embedded import ADAPTER_PATH, BASE_SHA256, sha256_file

        if not ADAPTER_PATH.is_file():
            return "missing"
        return hashlib.sha256((BASE_SHA256 + sha256_file(ADAPTER_PATH)).encode()).hexdigest()[:16]
    path = Path(model)
    if path.is_dir():
        digest = hashlib.sha256()
        for f in sorted(path.glob("*")):
            if f.is_file() and f.suffix in {".json", ".safetensors", ".txt", ".model"}:
                st = f.stat()
                digest.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]
    return "hub"  # a hub id: the Hub's own revision is resolved by transformers' cache


def check_model_available(model: str) -> None:
    """Fail early, before anything is written, with one paragraph saying what to do."""
    if model == EMBEDDED:
        from tweet_signals.analyzers.embedded import ADAPTER_PATH, base_model_dir, verify_base_weights

        verify_base_weights(base_model_dir() / "model.safetensors")
        if not ADAPTER_PATH.is_file():
            raise ModelUnavailableError(f"The embedded model's adapter is missing ({ADAPTER_PATH}).")
        return
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file() or not list(path.glob("*.safetensors")):
            raise ModelUnavailableError(
                f"{path} is not a Hugging Face model directory with safetensors weights "
                "(config.json and *.safetensors are required; pickled .bin weights are refused)."
            )
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model, local_files_only=_offline(), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_unavailable_message(model)) from exc


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


def _unavailable_message(model: str) -> str:
    return (
        f"The sentiment model {model!r} could not be loaded: it is not a local directory and "
        "it is not in the Hugging Face cache, and the Hub could not be reached (or HF_HUB_OFFLINE "
        "is set). Either run with `--model embedded` (the offline model bundled with tweet-signals), "
        "or point `--model` at a local model directory (for example one saved with "
        "`save_pretrained`, or copied from a machine that has it), or download it once on a "
        f"connected machine with `huggingface-cli download {model}` and copy the cache "
        "(~/.cache/huggingface) here. Nothing was written for this run."
    )


def _torch_logits(module: torch.nn.Module, device: str, hf_output: bool):
    def logits_fn(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(input_ids)
        att = torch.from_numpy(mask)
        if device != "cpu":
            ids = ids.pin_memory().to(device, non_blocking=True)
            att = att.pin_memory().to(device, non_blocking=True)
        with torch.inference_mode():
            out = module(input_ids=ids, attention_mask=att)
            logits = out.logits if hf_output else out
            return logits.float().cpu().numpy()

    return logits_fn


def build_analyzer(config: AnalyzerConfig) -> BatchedTextClassifier:
    """Load the model named by ``config`` (no caching; see ``load_analyzer``)."""
    global LOADS_IN_PROCESS
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    check_model_available(config.model)
    if config.model == EMBEDDED:
        from tweet_signals.analyzers.embedded import EMBEDDED_MODEL_ID, load_embedded

        tokenizer, module = load_embedded()
        module.to(device)
        permutation: list[int | None] = [0, 1, 2]
        model_id, pad_id, hf_output = EMBEDDED_MODEL_ID, 0, False
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        local = Path(config.model).is_dir() or _offline()
        try:
            tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=local)
            module = AutoModelForSequenceClassification.from_pretrained(
                config.model, local_files_only=local, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(_unavailable_message(config.model)) from exc
        module.eval().to(device)
        permutation = label_permutation(module.config.id2label)
        model_id = config.model
        pad_id = int(tokenizer.pad_token_id or 0)
        hf_output = True
    LOADS_IN_PROCESS += 1
    return BatchedTextClassifier(
        model_id=model_id,
        tokenizer=tokenizer,
        logits_fn=_torch_logits(module, device, hf_output),
        permutation=permutation,
        max_length=config.max_length,
        batch_tokens=config.batch_tokens,
        max_batch_size=config.max_batch_size,
        pad_token_id=pad_id,
        extra={"device": device, "labels": LABELS},
    )


@lru_cache(maxsize=2)
def load_analyzer(config: AnalyzerConfig) -> BatchedTextClassifier:
    """The per-process model cache: a worker loads each configured model once and reuses it."""
    return build_analyzer(config)


def config_digest(fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def analyzer_config_dict(config: AnalyzerConfig) -> dict[str, object]:
    return asdict(config)
