"""Benchmark of the model-independent columns: the per-post Python rules vs the vectorised code."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def feature_rates(
    texts: Sequence[str], slice_rows: Sequence[int] = (1024, 0), repeats: int = 3
) -> list[dict[str, Any]]:
    """Microseconds per post for the model-independent columns: the per-post Python rules
    against the vectorised path, on the same posts in the same process, whole chunk (0) and in
    slices of ``slice_rows`` (how a GPU worker computes them between batch launches)."""
    import polars as pl

    from tweet_signals.market.lexicon import keyword_boost
    from tweet_signals.stages.text_features import engagement_weight, engagement_weights, keyword_boosts
    from tweet_signals.stages.tfidf import fit_tfidf_model, market_relevances

    texts = list(texts)
    rng = np.random.default_rng(0)
    counts = [pl.Series(rng.integers(0, 500, len(texts))) for _ in range(4)]
    model, _ = fit_tfidf_model(texts, ["NIFTY", "SENSEX", "BANKNIFTY"])

    def python_rules(part: slice) -> None:
        [keyword_boost(t) for t in texts[part]]
        [engagement_weight(*row) for row in zip(*(c[part].to_list() for c in counts), strict=True)]
        model.market_relevance_reference(texts[part])

    def vectorised(part: slice) -> None:
        keyword_boosts(texts[part])
        engagement_weights(*(c[part] for c in counts))
        market_relevances(model, texts[part])

    def per_post(run: Any, rows: int) -> float:
        parts = [slice(i, i + (rows or len(texts))) for i in range(0, len(texts), rows or len(texts))]
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for part in parts:
                run(part)
            best = min(best, time.perf_counter() - started)
        return best / len(texts) * 1e6

    rates = []
    for rows in slice_rows:
        python_us, vector_us = per_post(python_rules, rows), per_post(vectorised, rows)
        rates.append(
            {
                "slice_rows": rows or len(texts),
                "python_us_per_post": round(python_us, 2),
                "vectorised_us_per_post": round(vector_us, 2),
                "speedup": round(python_us / vector_us, 2),
            }
        )
    return rates
