"""TF-IDF: the day's fit matches scikit-learn and round-trips through Parquet; fitting on a sample is
exact for small days and bounded for large ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from sklearn.feature_extraction.text import TfidfVectorizer

from tweet_signals.stages.tfidf import TOKEN_PATTERN, fit_tfidf_model


def test_tfidf_matches_scikit_learn_and_round_trips(tmp_path) -> None:
    texts = ["nifty rally buy calls", "sensex crash sell", "nifty flat market", "bank nifty bullish breakout"]
    model, top = fit_tfidf_model(texts, ["NIFTY"])
    reference = TfidfVectorizer(token_pattern=TOKEN_PATTERN, sublinear_tf=True).fit(texts)
    np.testing.assert_allclose(model.transform(texts).toarray(), reference.transform(texts).toarray(), atol=1e-12)
    assert top["term"][0] == "nifty"
    relevance = model.market_relevance(["nifty rally", "hello world"])
    assert relevance[0] > 0.5 and relevance[1] == 0.0

    from tweet_signals.stages.tfidf import load_tfidf, save_tfidf
    from tweet_signals.storage import file_digest

    save_tfidf(model, top, tmp_path, {"clean": "x"})
    loaded = load_tfidf(str(tmp_path), file_digest(tmp_path / "vocabulary.parquet"))
    np.testing.assert_allclose(loaded.transform(texts).toarray(), model.transform(texts).toarray())


def test_tfidf_fit_sample_is_exact_for_small_days_and_bounded_for_large(tmp_path: Path) -> None:
    from tweet_signals.stages.tfidf import fit_sample

    path = tmp_path / "clean.parquet"
    pl.DataFrame({"id": [str(i) for i in range(1000)], "text": [f"post {i}" for i in range(1000)]}).write_parquet(path)
    texts, total = fit_sample(path, max_docs=5000)
    assert total == 1000 and sorted(texts) == sorted(f"post {i}" for i in range(1000))
    sample, total = fit_sample(path, max_docs=100)
    assert total == 1000 and len(sample) == 100 == len(set(sample))
    assert fit_sample(path, max_docs=100)[0] == sample  # deterministic
