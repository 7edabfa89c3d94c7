"""Build analyzers from an ``AnalyzerConfig`` and keep one per worker process (``load_analyzer``),
and bring pool workers up with their model loaded (``start_worker``)."""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

from tweet_signals.model.base import LABELS, BatchedTextClassifier
from tweet_signals.model.config import AnalyzerConfig, batch_shape, resolve_device
from tweet_signals.model.engines.build import build_logits_fn
from tweet_signals.model.parts import load_parts
from tweet_signals.model.reference import check_model_available

# How many times this process has really loaded a model; the analyze task reports it so
# tests (and the manifest) can prove a worker loads its model once, not once per chunk.
LOADS_IN_PROCESS = 0


def build_analyzer(config: AnalyzerConfig) -> BatchedTextClassifier:
    """Load the model named by ``config`` and wrap its engine (no caching; see ``load_analyzer``)."""
    global LOADS_IN_PROCESS
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
    parts = load_parts(config.model, engine)
    logits_fn = build_logits_fn(config, parts, device)
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
        prepare=parts.prepare,
        extra={"device": device, "engine": engine, "labels": LABELS},
    )


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
        logging.getLogger(__name__).warning("warm-up of %s failed: %s", config.model.name, exc)


# A worker that cannot start within this long is left to the pool; the others go on.
RENDEZVOUS_TIMEOUT_S = 300.0


def start_worker(config: AnalyzerConfig, rendezvous: str, workers: int) -> int:
    """A pool task that brings its worker up with the model loaded, then waits until ``workers``
    tasks have checked in under ``rendezvous``: holding the task keeps a fast worker from taking
    a second one, so a spawn pool (one new process per task submitted while none is idle) really
    starts all its processes. Returns the worker's process id."""
    from pathlib import Path

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
