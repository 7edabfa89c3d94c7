"""Build analyzers from an ``AnalyzerConfig``: Hugging Face models by hub id or local directory,
and the embedded offline model. One cached load per process (see ``load_analyzer``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tweet_signals.model.base import (
    LABELS,
    BatchedTextClassifier,
    ModelUnavailableError,
    label_permutation,
)

if TYPE_CHECKING:
    import torch

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
    engine: str = "auto"  # auto | torch-fp32 | torch-bf16 | torch-int8 | onnx-fp32 | onnx-int8
    max_length: int = 128
    batch_tokens: int = 0  # padded tokens per batch; 0: the device's default (BATCH_SHAPES)
    max_batch_size: int = 0  # 0: the device's default
    threads: int = 0  # torch intra-op threads; 0: leave torch's default

    def output_fields(self) -> dict[str, object]:
        """The fields that change the numbers a model produces (part of chunk cache keys)."""
        return {
            "model": self.model,
            "revision": model_revision(self.model),
            "max_length": self.max_length,
            "engine": self.engine,
        }


# (token budget, most rows) per batch. CPU: batches of 32 beat 64 and 128 (cache-sized
# matrices); a CUDA GPU needs ~1024 rows of tweets to fill its matrix units (measured on an
# H200); the MPS shape is a middle guess, not measured.
BATCH_SHAPES: dict[str, tuple[int, int]] = {"cpu": (4096, 32), "mps": (8192, 64), "cuda": (65536, 1024)}


def batch_shape(config: AnalyzerConfig, device: str) -> tuple[int, int]:
    tokens, rows = BATCH_SHAPES.get(device.split(":")[0], BATCH_SHAPES["cpu"])
    return config.batch_tokens or tokens, config.max_batch_size or rows


def resolve_device(device: str, engine: str = "") -> str:
    if device != "auto":
        return device
    if engine.startswith("onnx-"):  # ask ONNX Runtime, so an ONNX worker never imports torch
        import onnxruntime

        return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=16)
def model_revision(model: str) -> str:
    """A short fingerprint of the model's weights, so a changed model never reuses old chunks."""
    if model == EMBEDDED:
        from tweet_signals.model.embedded_files import ADAPTER_PATH, BASE_SHA256
        from tweet_signals.storage import sha256_file

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
    # A hub id: transformers' cache resolves the Hub revision; the name keys our own caches.
    return "hub-" + hashlib.sha256(model.encode()).hexdigest()[:12]


def check_model_available(model: str) -> None:
    """Fail early, before anything is written, with one paragraph saying what to do."""
    if model == EMBEDDED:
        from tweet_signals.model.embedded_files import ADAPTER_PATH, base_model_dir, verify_base_weights

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


@dataclass(frozen=True)
class ModelParts:
    """What every engine needs from a model, with the torch weights loaded only on demand:
    an ONNX engine whose export is cached never holds the fp32 module (hundreds of MB)."""

    tokenizer: Any
    load_module: Callable[[], torch.nn.Module]  # loads the fp32 classifier (each engine calls it once at most)
    permutation: list[int | None]
    model_id: str
    pad_token_id: int
    hf_output: bool  # the module returns an object with ``.logits``


def _load_parts(config: AnalyzerConfig, engine: str) -> ModelParts:
    """The model's tokenizer, labels and a loader for its weights. ONNX engines on a local
    model read ``tokenizer.json`` with the Rust ``tokenizers`` library directly: transformers'
    tokenizer classes import torch, which costs an ONNX worker ~200 MB for nothing."""
    direct = engine.startswith("onnx-")
    if config.model == EMBEDDED:
        from tweet_signals.model.embedded_files import EMBEDDED_MODEL_ID, base_model_dir

        def load_embedded_module() -> torch.nn.Module:
            from tweet_signals.model.embedded import load_embedded_module as load

            return load()

        # Always the Rust tokenizer: the same ids as transformers' (a test checks), without its import.
        tokenizer, _ = _tokenizer(base_model_dir(), direct=True)
        return ModelParts(tokenizer, load_embedded_module, [0, 1, 2], EMBEDDED_MODEL_ID, 0, hf_output=False)
    local_dir = Path(config.model) if Path(config.model).is_dir() else None
    local = local_dir is not None or _offline()
    try:
        if local_dir is not None:
            tokenizer, pad_id = _tokenizer(local_dir, direct)
            id2label = json.loads((local_dir / "config.json").read_text(encoding="utf-8"))["id2label"]
        else:
            from transformers import AutoConfig, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(config.model, local_files_only=local)
            pad_id = int(tokenizer.pad_token_id or 0)
            model_config = AutoConfig.from_pretrained(config.model, local_files_only=local, trust_remote_code=False)
            id2label = model_config.id2label
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(_unavailable_message(config.model)) from exc

    def load_module() -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        try:
            module = AutoModelForSequenceClassification.from_pretrained(
                config.model, local_files_only=local, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(_unavailable_message(config.model)) from exc
        return module.eval()

    return ModelParts(tokenizer, load_module, label_permutation(id2label), config.model, pad_id, hf_output=True)


def _tokenizer(directory: Path, direct: bool) -> tuple[Any, int]:
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


def load_torch_model(
    config: AnalyzerConfig, device: str
) -> tuple[Any, torch.nn.Module, list[int | None], str, int, bool]:
    """Tokenizer, fp32 module, label permutation, model id, pad id, whether it returns ``.logits``."""
    parts = _load_parts(config, "torch-fp32")
    return parts.tokenizer, parts.load_module(), parts.permutation, parts.model_id, parts.pad_token_id, parts.hf_output


def build_analyzer(config: AnalyzerConfig) -> BatchedTextClassifier:
    """Load the model named by ``config`` and wrap its engine (no caching; see ``load_analyzer``)."""
    global LOADS_IN_PROCESS
    from tweet_signals.model.engines.selection import make_logits_fn

    if config.engine == "auto":
        raise ValueError("engine 'auto' must be resolved first (tweet_signals.stages.analyze.choose_engine)")
    engine = config.engine
    if config.threads > 0:
        if not engine.startswith("onnx-"):  # ONNX Runtime takes its thread count per session
            import torch

            torch.set_num_threads(config.threads)
        # The Rust tokenizer's thread pool (built at its first batch) gets the same share of the
        # cores: N workers x all cores each would oversubscribe the machine.
        os.environ.setdefault("RAYON_NUM_THREADS", str(config.threads))
    device = resolve_device(config.device, engine)
    check_model_available(config.model)
    parts = _load_parts(config, engine)
    model_dir = Path(config.model) if Path(config.model).is_dir() else None
    logits_fn = make_logits_fn(
        engine, parts.load_module, device, parts.hf_output, config.threads, model_dir, model_revision(config.model)
    )
    LOADS_IN_PROCESS += 1
    batch_tokens, max_batch_size = batch_shape(config, device)
    return BatchedTextClassifier(
        model_id=parts.model_id,
        tokenizer=parts.tokenizer,
        logits_fn=logits_fn,
        permutation=parts.permutation,
        max_length=config.max_length,
        batch_tokens=batch_tokens,
        max_batch_size=max_batch_size,
        pad_token_id=parts.pad_token_id,
        extra={"device": device, "engine": engine, "labels": LABELS},
    )


# Label agreement and probability distance an engine must reach against torch fp32 on the
# calibration posts before ``--engine auto`` uses it.
MIN_AGREEMENT = 0.99
MAX_PROB_DIFF = 0.1


def engine_fidelity(config: AnalyzerConfig, engine: str, texts: Sequence[str]) -> dict[str, float]:
    """Label agreement and max probability difference of ``engine`` against torch fp32."""
    reference = build_analyzer(replace(config, engine="torch-fp32")).predict_proba(texts)
    candidate = build_analyzer(replace(config, engine=engine)).predict_proba(texts)
    return {
        "label_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
        "max_prob_diff": float(np.abs(reference - candidate).max()),
        "n": len(texts),
    }


def resolve_engine(config: AnalyzerConfig, calibration: Callable[[], Sequence[str]]) -> AnalyzerConfig:
    """``engine=auto`` → the device's fastest engine that agrees with torch fp32.

    Agreement is measured once per model revision, engine and device on the texts
    ``calibration`` gives, and cached beside the ONNX exports, so only the first run of a model
    pays for the check (and only that run calls ``calibration``).
    """
    from tweet_signals.model.engines.onnx_engine import onnx_cache_dir
    from tweet_signals.model.engines.selection import REFERENCE, engine_candidates

    if config.engine != "auto":
        return config
    device = resolve_device(config.device)
    model_dir = Path(config.model) if Path(config.model).is_dir() else None
    cache = onnx_cache_dir(model_dir, model_revision(config.model))
    for candidate in engine_candidates(device):
        if candidate == REFERENCE:
            break
        verdict_path = cache / f"fidelity-{candidate}-{device}.json"
        try:
            verdict = json.loads(verdict_path.read_text())
        except (OSError, json.JSONDecodeError):
            try:
                verdict = engine_fidelity(replace(config, device=device), candidate, calibration())
            except (ImportError, RuntimeError, ValueError, OSError) as exc:  # engine unusable here
                verdict = {"label_agreement": 0.0, "max_prob_diff": 1.0, "error": f"{type(exc).__name__}: {exc}"}
            verdict_path.parent.mkdir(parents=True, exist_ok=True)
            verdict_path.write_text(json.dumps(verdict))
        if verdict["label_agreement"] >= MIN_AGREEMENT and verdict["max_prob_diff"] <= MAX_PROB_DIFF:
            return replace(config, engine=candidate)
    return replace(config, engine=REFERENCE)


@lru_cache(maxsize=2)
def load_analyzer(config: AnalyzerConfig) -> BatchedTextClassifier:
    """The per-process model cache: a worker loads each configured model once and reuses it."""
    return build_analyzer(config)


def warm_worker(config: AnalyzerConfig) -> None:
    """Load the model and run it once (on a GPU the first call pays for the CUDA context and
    kernel loading), so the worker's first chunk starts at full speed.

    Best effort: a failed warm-up is logged and left for the first chunk's own load to raise,
    where retries and the failure report apply."""
    try:
        load_analyzer(config).predict_proba(["warm-up"])
    except Exception as exc:
        logging.getLogger(__name__).warning("warm-up of %s failed: %s", config.model, exc)


# A worker that cannot start within this long is left to the pool; the others go on.
RENDEZVOUS_TIMEOUT_S = 300.0


def start_worker(config: AnalyzerConfig, rendezvous: str, workers: int) -> int:
    """A pool task that brings its worker up with the model loaded, then waits until ``workers``
    tasks have checked in under ``rendezvous``: holding the task keeps a fast worker from taking
    a second one, so a spawn pool (one new process per task submitted while none is idle) really
    starts all its processes. Returns the worker's process id."""
    warm_worker(config)
    directory = Path(rendezvous)
    (directory / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
    while sum(1 for _ in directory.iterdir()) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


def config_digest(fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
