"""Pooled signals for sparse panels: session t's signal from the posts of the trailing N sessions
equals the signal of those posts concatenated by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tweet_signals.api import signals_from_posts
from tweet_signals.market.sessions import sessions_between
from tweet_signals.stages.signals import compute_signals

SYMBOLS = ["AAPL", "MSFT"]


def _analyzed(seed: int = 4) -> pl.DataFrame:
    """Scored posts over 12 NYSE sessions, 0–3 posts a session and symbol, written 15:00 UTC
    (before the 16:00 New York close, so each counts for its own session)."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in sessions_between(date(2015, 3, 2), date(2015, 3, 17), "NYSE"):
        for symbol in SYMBOLS:
            for k in range(int(rng.integers(0, 4))):
                score = float(rng.uniform(-1, 1))
                rows.append(
                    {
                        "id": f"{symbol}-{day}-{k}",
                        "created_at": datetime(day.year, day.month, day.day, 15, tzinfo=UTC) + timedelta(minutes=k),
                        "symbols": [symbol],
                        "label": "positive" if score > 0.3 else "negative" if score < -0.3 else "neutral",
                        "score": score,
                        "engagement_weight": float(rng.uniform(1, 3)),
                        "tfidf_relevance": float(rng.uniform()),
                        "model_id": "test",
                    }
                )
    return pl.DataFrame(rows)


@pytest.mark.parametrize("pool", [2, 3, 5])
def test_pool_equals_the_trailing_sessions_posts_concatenated_by_hand(pool: int) -> None:
    posts = _analyzed()
    pooled = signals_from_posts(posts, SYMBOLS, exchange="NYSE", pool=pool)
    calendar = sessions_between(date(2015, 3, 2), date(2015, 3, 17), "NYSE")
    own = posts.with_columns(pl.col("created_at").dt.date().alias("_day"))
    for i, day in enumerate(calendar):
        window = calendar[max(0, i - pool + 1) : i + 1]
        by_hand = compute_signals(own.filter(pl.col("_day").is_in(window)).drop("_day"), day, SYMBOLS)
        got = pooled.filter(pl.col("session") == day).sort("symbol")
        assert got.height == len(SYMBOLS), day
        for column in ("n_posts", "n_bullish", "n_bearish", "mean_score", "weighted_score", "bullishness"):
            assert got[column].to_list() == pytest.approx(by_hand.sort("symbol")[column].to_list(), nan_ok=True), (
                day,
                column,
            )


def test_pool_of_one_is_the_plain_signal_and_a_bad_pool_is_refused() -> None:
    posts = _analyzed()
    plain = signals_from_posts(posts, SYMBOLS, exchange="NYSE")
    assert signals_from_posts(posts, SYMBOLS, exchange="NYSE", pool=1).equals(plain)
    with pytest.raises(ValueError, match="--pool 0"):
        signals_from_posts(posts, SYMBOLS, exchange="NYSE", pool=0)
