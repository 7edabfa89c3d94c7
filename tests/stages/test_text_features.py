"""Text features: keyword boosts and log-scaled engagement weights, vectorised and equal to the plain Python rules."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tweet_signals.stages.text_features import engagement_weight
from tweet_signals.stages.tfidf import fit_tfidf_model

_PIECES = [
    *"aZ 9_'#$@.,!-\t\n",
    "nifty",
    "NIFTY",
    "rally",
    "crash",
    "bullish",
    "Bearish",
    "breakout",
    "don't",
    "$TCS",
    "#Nifty50",
    "🚀",
    "📈",
    "📉",
    "₹",
    "é",
    "Ü",
    "ﬁ",
    "²",
    "५",
    "िं",
    "निफ्टी",
    "İ",
    "ΣΑΣ",
    "\u200d",
    "😀",
]


_FEATURE_CORPUS = [
    "Nifty rally on strong FII buying 🚀",
    "BANKNIFTY crash, bearish breakdown",
    "#nifty50 $TCS target 4200",
    "Sensex flat; market waits for RBI",
    "निफ्टी में तेजी 📈 nifty bullish",
    "café chat about nothing",
    "RELIANCE breakout! buy buy buy",
    "don't short the market now",
    "",
]


def test_engagement_weight_is_log_scaled() -> None:
    assert engagement_weight(0, 0, 0, 0) == 1.0
    assert engagement_weight(100_000, 0, 0, 0) < 13  # a viral post weighs ~12 quiet ones, not 100k


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), min_size=1, max_size=20))
def test_vectorised_features_equal_the_python_rules(texts: list[str]) -> None:
    """Rust regex and Python re must give the same keyword boosts and TF-IDF relevance, ASCII
    or not (non-ASCII rows take the Python rule); engagement likewise."""
    from tweet_signals.market.lexicon import keyword_boost
    from tweet_signals.stages.text_features import engagement_weights, keyword_boosts
    from tweet_signals.stages.tfidf import market_relevances

    model, _ = fit_tfidf_model([*_FEATURE_CORPUS, *texts[:5]], symbols=["NIFTY", "TCS"])
    np.testing.assert_allclose(keyword_boosts(texts), [keyword_boost(t) for t in texts], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        market_relevances(model, texts), model.market_relevance_reference(texts), rtol=1e-12, atol=1e-12
    )
    counts = [pl.Series([None, 0, -3, 7, 2**40][: len(texts)] + [1] * max(0, len(texts) - 5))] * 4
    expected = [engagement_weight(*(c or 0 for c in row)) for row in zip(*(s.to_list() for s in counts), strict=True)]
    np.testing.assert_allclose(engagement_weights(*counts), expected, rtol=1e-15)
