"""Signals: bit-reproducible, the same summed in slices as in one pass, the published formulas, and
symbols without posts."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from tweet_signals.stages.signals import compute_signals


def test_signals_are_reproducible_to_the_bit() -> None:
    """The same posts give the same bytes every time (polars' streaming engine did not: its float
    sums changed in the last bits in most runs of this very frame)."""
    rng = np.random.default_rng(0)
    n = 800
    posts = pl.DataFrame(
        {
            "symbols": [["NIFTY"] if i % 2 else ["SENSEX"] for i in range(n)],
            "label": rng.choice(["positive", "negative", "neutral"], n),
            "score": rng.normal(size=n),
            "engagement_weight": rng.random(n) + 0.5,
            "tfidf_relevance": rng.random(n),
            "model_id": ["m"] * n,
        }
    ).lazy()
    first = compute_signals(posts, date(2026, 1, 7), ["NIFTY", "SENSEX"])
    for _ in range(60):
        assert compute_signals(posts, date(2026, 1, 7), ["NIFTY", "SENSEX"]).equals(first)


def test_signals_summed_in_slices_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from polars.testing import assert_frame_equal

    from tweet_signals.stages import signals

    rng = np.random.default_rng(1)
    n = 101
    posts = pl.DataFrame(
        {
            "symbols": [["NIFTY", "SENSEX"][: 1 + i % 2] for i in range(n)],
            "label": rng.choice(["positive", "negative", "neutral"], n),
            "score": [None if i == 5 else float(x) for i, x in enumerate(rng.normal(size=n))],
            "engagement_weight": rng.random(n) + 0.5,
            "tfidf_relevance": rng.random(n),
            "model_id": ["m"] * n,
        }
    )
    symbols = ["NIFTY", "SENSEX", "BANKNIFTY", signals.ALL]
    whole = compute_signals(posts, date(2026, 1, 7), symbols)
    monkeypatch.setattr(signals, "SLICE_ROWS", 7)
    assert_frame_equal(compute_signals(posts.lazy(), date(2026, 1, 7), symbols), whole, rel_tol=1e-12)
    nifty = whole.row(0, named=True)
    assert nifty["n_posts"] == n
    assert nifty["mean_score"] == pytest.approx(posts["score"].mean())  # the null score left out


def test_signals_formulas_and_empty_symbols() -> None:
    posts = pl.DataFrame(
        {
            "symbols": [["NIFTY"], ["NIFTY"], ["NIFTY", "SENSEX"], ["NIFTY"]],
            "label": ["positive", "positive", "negative", "neutral"],
            "score": [0.8, 0.6, -0.9, 0.0],
            "engagement_weight": [1.0, 3.0, 1.0, 1.0],
            "tfidf_relevance": [0.5, 0.5, 0.5, 0.5],
            "model_id": ["m"] * 4,
        }
    )
    out = compute_signals(posts, date(2026, 1, 7), ["NIFTY", "SENSEX", "BANKNIFTY"])
    nifty, sensex, bank = out.rows(named=True)
    assert (nifty["n_posts"], nifty["n_bullish"], nifty["n_bearish"], nifty["n_neutral"]) == (4, 2, 1, 1)
    assert nifty["bullishness"] == pytest.approx(np.log(3 / 2))
    assert nifty["agreement"] == pytest.approx(1 - np.sqrt(1 - (1 / 3) ** 2))
    assert nifty["weighted_score"] == pytest.approx((0.8 + 1.8 - 0.9) / 6)
    assert nifty["signal"] == "insufficient"  # under min_posts (5)
    assert sensex["n_bearish"] == 1 and sensex["agreement"] == pytest.approx(1.0)
    assert bank["n_posts"] == 0 and bank["agreement"] is None and bank["signal"] == "insufficient"
