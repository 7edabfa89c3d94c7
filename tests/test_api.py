"""The notebook API runs the pipeline's own chunk code and keeps the caller's order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from tweet_signals.api import analyze_posts, signals_from_posts
from tweet_signals.sources.schema import NormaliseStats, normalise_record, posts_frame
from tweet_signals.sources.synthetic import generate_posts


def _posts(n: int) -> pl.DataFrame:
    stats = NormaliseStats()
    return posts_frame([normalise_record(r, "synthetic", stats) for r in generate_posts(date(2026, 1, 7), n)])


def test_analyze_posts_same_order_any_worker_count(tiny_roberta: Path) -> None:
    posts = _posts(250).sample(fraction=1.0, shuffle=True, seed=1)
    one = analyze_posts(posts, model=str(tiny_roberta), workers=1, chunk_size=60)
    two = analyze_posts(posts, model=str(tiny_roberta), workers=2, chunk_size=60)
    assert one["id"].to_list() == posts["id"].to_list()
    assert one.equals(two)
    assert {"p_negative", "label", "score", "engagement_weight", "tfidf_relevance"} <= set(one.columns)


def test_signals_from_posts_groups_by_session(tiny_roberta: Path) -> None:
    analyzed = analyze_posts(_posts(120), model=str(tiny_roberta))
    signals = signals_from_posts(analyzed, ["NIFTY", "SENSEX", "BANKNIFTY"])
    assert signals["session"].unique().to_list() == [date(2026, 1, 7)]
    assert signals["n_posts"].sum() >= 100
