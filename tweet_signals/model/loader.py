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
    engine: str = "auto"  # auto or one of engines.selection.ENGINES
    max_length: int = 128
    batch_tokens: int = 0  # padded tokens per batch; 0: the device's default (BATCH_SHAPES)
    max_batch_size: int = 0  # 0: the device's default
    threads: int = 0  # torch intra-op threads; 0: leave torch's default
    # The int8 cascade's margin, set by ``resolve_engine`` so that workers on any machine (Dask)
    # use the one the run calibrated; None: the one stored beside the ONNX exports.
    cascade_margin: float | None = None

    def output_fields(self) -> dict[str, object]:
        """The fields that change the numbers a model produces (part of chunk cache keys)."""
        fields: dict[str, object] = {
            "model": self.model,
            "revision": model_revision(self.model),
            "max_length": self.max_length,
            "engine": self.engine,
        }
        if self.cascade_margin is not None:
            fields["cascade_margin"] = self.cascade_margin
        return fields


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
    from tweet_signals.model.embedded_files import embedded_adapter

    adapter = embedded_adapter(model)
    if adapter is not None:
        from tweet_signals.hashing import sha256_file
        from tweet_signals.model.embedded_files import BASE_SHA256

        if not adapter.is_file():
            return "missing"
        return hashlib.sha256((BASE_SHA256 + sha256_file(adapter)).encode()).hexdigest()[:16]
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
    from tweet_signals.model.embedded_files import embedded_adapter

    adapter = embedded_adapter(model)
    if adapter is not None:
        from tweet_signals.model.embedded_files import base_model_dir, verify_base_weights

        verify_base_weights(base_model_dir() / "model.safetensors")
        if not adapter.is_file():
            raise ModelUnavailableError(f"The embedded model's adapter is missing ({adapter}).")
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
    from tweet_signals.model.embedded_files import embedded_adapter

    adapter = embedded_adapter(config.model)
    if adapter is not None:
        from tweet_signals.model.embedded_files import EMBEDDED_MODEL_ID, base_model_dir

        def load_embedded_module() -> torch.nn.Module:
            from tweet_signals.model.embedded import load_embedded_module as load

            return load(adapter)

        # Always the Rust tokenizer: the same ids as transformers' (a test checks), without its import.
        tokenizer, _ = _tokenizer(base_model_dir(), direct=True)
        model_id = EMBEDDED_MODEL_ID if config.model == EMBEDDED else f"{EMBEDDED_MODEL_ID}:{adapter.parent.name}"
        return ModelParts(tokenizer, load_embedded_module, [0, 1, 2], model_id, 0, hf_output=False)
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
        engine,
        parts.load_module,
        device,
        parts.hf_output,
        config.threads,
        model_dir,
        model_revision(config.model),
        config.cascade_margin,
        max_tokens=config.max_length,
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
    """Label agreement and max probability difference of ``engine`` against torch fp32, and its
    speed on these texts (after a warm-up batch, so session start-up is not counted)."""
    reference = build_analyzer(replace(config, engine="torch-fp32")).predict_proba(texts)
    analyzer = build_analyzer(replace(config, engine=engine))
    analyzer.predict_proba(texts[:16])
    started = time.perf_counter()
    candidate = analyzer.predict_proba(texts)
    seconds = max(time.perf_counter() - started, 1e-9)
    return {
        "label_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
        "max_prob_diff": float(np.abs(reference - candidate).max()),
        "texts_per_s": len(texts) / seconds,
        "n": len(texts),
    }


def engine_cache_dir(model: str) -> Path:
    """Where a model's ONNX exports, fidelity verdicts and cascade margin live (per revision)."""
    from tweet_signals.model.engines.onnx_engine import onnx_cache_dir

    return onnx_cache_dir(Path(model) if Path(model).is_dir() else None, model_revision(model))


def calibrate_cascade(config: AnalyzerConfig, texts: Sequence[str]) -> dict[str, float]:
    """Choose and store the cascade's margin on ``texts`` (int8 against torch fp32)."""
    from tweet_signals.model.engines.cascade import choose_margin, margin_path

    exact = build_analyzer(replace(config, engine="torch-fp32")).predict_proba(texts)
    fast = build_analyzer(replace(config, engine="onnx-int8")).predict_proba(texts)
    chosen = choose_margin(fast, exact)
    path = margin_path(engine_cache_dir(config.model), config.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chosen))
    return chosen


def _verdict(config: AnalyzerConfig, candidate: str, texts: Sequence[str]) -> dict[str, Any]:
    """The fidelity verdict of one candidate; the cascade is calibrated on the first half of the
    texts and judged on the second, so its verdict is not measured on what chose its margin."""
    from tweet_signals.model.engines.cascade import CASCADE
    from tweet_signals.model.engines.compiled import COMPILED, compiled_library

    try:
        if candidate == COMPILED:  # a failed build must fail the verdict, not run eager under its name
            parts = _load_parts(config, candidate)
            compiled_library(parts.load_module, parts.hf_output, engine_cache_dir(config.model), config.max_length)
        if candidate == CASCADE:
            half = len(texts) // 2
            calibration = calibrate_cascade(config, texts[:half])
            return {**engine_fidelity(config, candidate, texts[half:]), "calibration": calibration}
        return engine_fidelity(config, candidate, texts)
    except (ImportError, RuntimeError, ValueError, OSError) as exc:  # engine unusable here
        return {"label_agreement": 0.0, "max_prob_diff": 1.0, "error": f"{type(exc).__name__}: {exc}"}


def passes(verdict: dict[str, Any]) -> bool:
    """Whether a fidelity verdict lets ``--engine auto`` use the engine."""
    return bool(verdict["label_agreement"] >= MIN_AGREEMENT and verdict["max_prob_diff"] <= MAX_PROB_DIFF)


def resolve_engine(config: AnalyzerConfig, calibration: Callable[[], Sequence[str]]) -> AnalyzerConfig:
    """``engine=auto`` → the fastest of the device's engines that agree with torch fp32 (fp32
    itself when none does); an explicit cascade gets its margin calibrated if it has none.

    Verdicts (agreement, probability distance, speed on the calibration posts) are measured once
    per model revision, engine and device and cached beside the ONNX exports, so only the first
    run of a model pays for the checks (and only that run calls ``calibration``).
    """
    from tweet_signals.model.engines.cascade import CASCADE, read_margin
    from tweet_signals.model.engines.selection import REFERENCE, engine_candidates

    device = resolve_device(config.device)
    cache = engine_cache_dir(config.model)

    def with_margin(chosen: AnalyzerConfig) -> AnalyzerConfig:
        """The cascade with its stored margin (calibrated again if the file is gone)."""
        margin = read_margin(cache, device)
        if margin is None:
            margin = calibrate_cascade(replace(chosen, device=device), list(calibration()))["margin"]
        return replace(chosen, cascade_margin=margin)

    if config.engine == CASCADE:
        return with_margin(config)
    if config.engine != "auto":
        return config
    texts: list[str] | None = None
    passing: list[tuple[float, str]] = []
    for candidate in engine_candidates(device):
        if candidate == REFERENCE:
            continue
        verdict_path = cache / f"fidelity-{candidate}-{device}.json"
        try:
            verdict = json.loads(verdict_path.read_text())
        except (OSError, json.JSONDecodeError):
            texts = texts if texts is not None else list(calibration())
            verdict = _verdict(replace(config, device=device), candidate, texts)
            verdict_path.parent.mkdir(parents=True, exist_ok=True)
            verdict_path.write_text(json.dumps(verdict))
        if passes(verdict):
            passing.append((float(verdict.get("texts_per_s", 0.0)), candidate))
    if not passing:
        return replace(config, engine=REFERENCE)
    chosen = replace(config, engine=max(passing)[1])
    return with_margin(chosen) if chosen.engine == CASCADE else chosen


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
    try:
        (directory / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
        while sum(1 for _ in directory.iterdir()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
    except FileNotFoundError:
        # The run ended (failed or interrupted) and removed the folder: the worker is up, which is
        # all this task is for; failing here would only add a second error to the first.
        pass
    return os.getpid()


def config_digest(fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
