"""Engine choice: which engine ``--engine auto`` runs on this device.

Each candidate is checked once per model revision, engine and device against torch fp32 on
calibration posts (label agreement, probability distance, speed); the verdicts are cached beside
the model's exports (``ModelRef.cache_dir``), so only a model's first run on a machine pays for
the checks. Of the candidates that pass, the fastest wins; fp32 itself when none does.

The checks take a minute or more on two cores (ONNX export, int8 quantisation, the AOTInductor
compile, every candidate run against fp32). A caller that must not wait for them defers them:
the run takes the fastest engine whose verdict is already recorded (fp32 on a first run), and the
caller checks the rest for the next runs (``stages.engine_check`` does it in a background
process at low priority).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tweet_signals.model.config import AnalyzerConfig, resolve_device
from tweet_signals.model.engines.build import REFERENCE
from tweet_signals.model.engines.cascade import CASCADE, choose_margin, margin_path, read_margin
from tweet_signals.model.engines.compiled import COMPILED, compiled_library, library_path
from tweet_signals.model.engines.cpu import cpu_flags
from tweet_signals.model.loader import build_analyzer

# Label agreement and probability distance an engine must reach against torch fp32 on the
# calibration posts before ``--engine auto`` uses it.
MIN_AGREEMENT = 0.99
MAX_PROB_DIFF = 0.1


def cpu_has_bf16() -> bool:
    """bf16 matrix units (AVX512-BF16 or AMX) make bf16 weights pay off on a CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def engine_candidates(device: str) -> list[str]:
    """Engines ``--engine auto`` checks against fp32; of those that pass, the fastest on the
    calibration posts wins (fp32, the reference, when none passes).

    On a 2-core AVX512-BF16 CPU (``tweet-signals benchmark``): ONNX int8 is the fastest but may
    disagree; the int8 cascade re-scores int8's unsure posts with fp32; bf16 weights compiled
    ahead of time into fused kernels, then the same eagerly; fp32.
    """
    if device == "cuda":
        import torch

        return ["torch-bf16", REFERENCE] if torch.cuda.is_bf16_supported() else [REFERENCE]
    if device == "mps":
        return [REFERENCE]
    return ["onnx-int8", CASCADE, *([COMPILED, "torch-bf16"] if cpu_has_bf16() else []), REFERENCE]


class ReferenceProbabilities:
    """torch fp32 probabilities of text lists, computed once per list: every candidate's check
    and the cascade's calibration compare against the same reference, loaded once."""

    def __init__(self, config: AnalyzerConfig) -> None:
        self.config = replace(config, engine=REFERENCE)
        self._analyzer: Any = None
        self._probs: dict[tuple[str, ...], np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self._probs:
            if self._analyzer is None:
                self._analyzer = build_analyzer(self.config)
            self._probs[key] = self._analyzer.predict_proba(list(texts))
        return self._probs[key]


def engine_fidelity(
    config: AnalyzerConfig, engine: str, texts: Sequence[str], reference: ReferenceProbabilities | None = None
) -> dict[str, float]:
    """Label agreement and max probability difference of ``engine`` against torch fp32, and its
    speed on these texts (after a warm-up batch, so session start-up is not counted)."""
    exact = (reference or ReferenceProbabilities(config))(texts)
    analyzer = build_analyzer(replace(config, engine=engine))
    analyzer.predict_proba(texts[:16])
    started = time.perf_counter()
    candidate = analyzer.predict_proba(texts)
    seconds = max(time.perf_counter() - started, 1e-9)
    return {
        "label_agreement": float((exact.argmax(1) == candidate.argmax(1)).mean()),
        "max_prob_diff": float(np.abs(exact - candidate).max()),
        "texts_per_s": len(texts) / seconds,
        "n": len(texts),
    }


def calibrate_cascade(
    config: AnalyzerConfig, texts: Sequence[str], reference: ReferenceProbabilities | None = None
) -> dict[str, float]:
    """Choose and store the cascade's margin on ``texts`` (int8 against torch fp32)."""
    exact = (reference or ReferenceProbabilities(config))(texts)
    fast = build_analyzer(replace(config, engine="onnx-int8")).predict_proba(texts)
    chosen = choose_margin(fast, exact)
    write_json_atomic(margin_path(config.model.cache_dir, config.device), chosen)
    return chosen


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Verdicts and margins are read by other processes, and their writer may be killed midway
    (a background check at the end of a machine's session): a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def build_engine_files(config: AnalyzerConfig, candidate: str) -> None:
    """Build the files ``candidate`` runs from (ONNX exports, the compiled library) now, where
    they are missing: done by one process, so the workers only load them."""
    from tweet_signals.model.engines.onnx_engine import cached_onnx, onnx_export_path

    cache = config.model.cache_dir
    if candidate == COMPILED:
        missing = not library_path(cache, config.max_length).is_file()
    else:
        graphs = {CASCADE: (True, False), "onnx-int8": (True,), "onnx-fp32": (False,)}.get(candidate, ())
        missing = any(not onnx_export_path(cache, quantized).is_file() for quantized in graphs)
    if not missing:
        return
    from tweet_signals.model.parts import load_parts

    parts = load_parts(config.model, candidate)
    if candidate == COMPILED:
        compiled_library(parts.load_module, parts.hf_output, cache, config.max_length)
        return
    for quantized in graphs:
        cached_onnx(parts.load_module, parts.hf_output, cache, quantized)


def check_engine(
    config: AnalyzerConfig, candidate: str, texts: Sequence[str], reference: ReferenceProbabilities | None = None
) -> dict[str, Any]:
    """The fidelity verdict of one candidate; the cascade is calibrated on the first half of the
    texts and judged on the second, so its verdict is not measured on what chose its margin."""
    reference = reference or ReferenceProbabilities(config)
    try:
        if candidate == COMPILED:  # a failed build must fail the verdict, not run eager under its name
            build_engine_files(config, candidate)
        if candidate == CASCADE:
            half = len(texts) // 2
            calibration = calibrate_cascade(config, texts[:half], reference)
            return {**engine_fidelity(config, candidate, texts[half:], reference), "calibration": calibration}
        return engine_fidelity(config, candidate, texts, reference)
    except (ImportError, RuntimeError, ValueError, OSError) as exc:  # engine unusable here
        return {"label_agreement": 0.0, "max_prob_diff": 1.0, "error": f"{type(exc).__name__}: {exc}"}


def passes(verdict: dict[str, Any]) -> bool:
    """Whether a fidelity verdict lets ``--engine auto`` use the engine."""
    return bool(verdict["label_agreement"] >= MIN_AGREEMENT and verdict["max_prob_diff"] <= MAX_PROB_DIFF)


def verdict_path(config: AnalyzerConfig, candidate: str, device: str) -> Path:
    return config.model.cache_dir / f"fidelity-{candidate}-{device}.json"


def read_verdict(config: AnalyzerConfig, candidate: str, device: str) -> dict[str, Any] | None:
    try:
        verdict: dict[str, Any] = json.loads(verdict_path(config, candidate, device).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return verdict


def record_verdict(
    config: AnalyzerConfig, candidate: str, texts: Sequence[str], reference: ReferenceProbabilities | None = None
) -> dict[str, Any]:
    """Check ``candidate`` (``config.device`` resolved) and cache its verdict."""
    verdict = check_engine(config, candidate, texts, reference)
    write_json_atomic(verdict_path(config, candidate, config.device), verdict)
    return verdict


def unchecked_engines(config: AnalyzerConfig) -> list[str]:
    """The candidates ``engine=auto`` has no cached verdict for yet on this device: empty once
    a model's first run here (or the background check it started) is done."""
    device = resolve_device(config.device)
    if config.engine != "auto":
        return []
    return [c for c in engine_candidates(device) if c != REFERENCE and read_verdict(config, c, device) is None]


def resolve_engine(
    config: AnalyzerConfig,
    calibration: Callable[[], Sequence[str]],
    defer: Callable[[AnalyzerConfig, str], None] | None = None,
) -> AnalyzerConfig:
    """``engine=auto`` → the fastest of the device's engines that agree with torch fp32 (fp32
    itself when none does); an explicit cascade gets its margin calibrated if it has none.

    Only the first run of a model revision on a device calls ``calibration`` and checks the
    candidates. With ``defer``, every candidate without a recorded verdict is handed to it
    (``defer(config with the device resolved, candidate)``) instead of being checked now: this
    run chooses among the candidates already checked (fp32 when none is), and a deferred one
    joins the choice once its verdict is recorded.
    """
    device = resolve_device(config.device)
    on_device = replace(config, device=device)
    cache = config.model.cache_dir
    texts: list[str] | None = None
    reference = ReferenceProbabilities(on_device)

    def calibration_texts() -> list[str]:
        nonlocal texts
        texts = texts if texts is not None else list(calibration())
        return texts

    def with_margin(chosen: AnalyzerConfig) -> AnalyzerConfig:
        """The cascade with its stored margin (calibrated again if the file is gone)."""
        margin = read_margin(cache, device)
        if margin is None:
            margin = calibrate_cascade(replace(chosen, device=device), calibration_texts(), reference)["margin"]
        return replace(chosen, cascade_margin=margin)

    if config.engine == CASCADE:
        return with_margin(config)
    if config.engine != "auto":
        return config
    passing: list[tuple[float, str]] = []
    for candidate in engine_candidates(device):
        if candidate == REFERENCE:
            continue
        verdict = read_verdict(config, candidate, device)
        if verdict is None and defer is not None:
            defer(on_device, candidate)
            continue
        if verdict is None:
            verdict = record_verdict(on_device, candidate, calibration_texts(), reference)
        if passes(verdict):
            passing.append((float(verdict.get("texts_per_s", 0.0)), candidate))
    if not passing:
        return replace(config, engine=REFERENCE)
    chosen = replace(config, engine=max(passing)[1])
    return with_margin(chosen) if chosen.engine == CASCADE else chosen
