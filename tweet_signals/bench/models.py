"""Benchmark of two or more models on the same texts and engine: the first is the baseline.

Made to price a change to a model (a new fine-tune, how its texts are prepared, another encoder)
in the analyzer as the pipeline runs it: tokenising, batching and the model, each model loaded
before the clock and warmed on the first texts. The runs alternate between the models, so a
change in the machine's load hits them alike; each model's figure is the median of its runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any


def model_rates(
    texts: Sequence[str], models: Sequence[str], engine: str = "torch-bf16", repeats: int = 3, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Per model: tweets/s (median of ``repeats`` alternating runs), tokens per text after its own
    text preparation, and its rate against the first model's."""
    from tweet_signals.model.config import AnalyzerConfig
    from tweet_signals.model.loader import build_analyzer
    from tweet_signals.model.reference import resolve_model

    if len(models) < 2:
        raise ValueError("name at least two models: the first is the baseline")
    if not texts:
        raise ValueError("no texts to run the models on")
    analyzers = [build_analyzer(AnalyzerConfig(resolve_model(m), device=device, engine=engine)) for m in models]
    warm = list(texts[: max(1, len(texts) // 10)])
    for analyzer in analyzers:
        analyzer.predict_proba(warm)
    runs: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for k, analyzer in enumerate(analyzers):
            started = time.perf_counter()
            analyzer.predict_proba(texts)
            runs[k].append(len(texts) / (time.perf_counter() - started))
    rows: list[dict[str, Any]] = []
    baseline = statistics.median(runs[0])
    for model, analyzer, rates in zip(models, analyzers, runs, strict=True):
        tokens = sum(len(ids) for ids in analyzer.encode(texts)) / len(texts)
        rows.append(
            {
                "model": model,
                "engine": engine,
                "tokens_per_text": round(tokens, 1),
                "tweets_per_s": round(statistics.median(rates), 1),
                "runs": [round(r, 1) for r in rates],
                "vs_baseline": round(statistics.median(rates) / baseline, 3),
            }
        )
    return rows
