"""The notebook API runs the pipeline's own chunk code and keeps the caller's order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tweet_signals.api import analyze_posts, signals_from_posts
from tweet_signals.sources.schema import NormaliseStats, normalise_record, posts_frame
from tweet_signals.sources.synthetic import generate_posts


def _posts(n: int) -> pl.DataFrame:
    stats = NormaliseStats()
    return posts_frame([normalise_record(r, "synthetic", stats) for r in generate_posts(date(2026, 1, 7), n)])


@pytest.mark.slow
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


def test_a_historical_file_is_deduplicated_within_each_session_never_by_a_later_post() -> None:
    """A retweet on 2 March and the same text posted as an original on 9 March: over the whole
    file the later original would remove the earlier retweet (the earliest non-retweet of a group
    survives), so 2 March's signal would depend on a post written a week later."""
    from datetime import UTC, datetime

    from tweet_signals.api import dedupe_per_session

    stats = NormaliseStats()
    records = [
        {"id": "1", "created_at": "2015-03-02T15:00:00Z", "text": "RT @bob: $AAPL going higher, strong buy"},
        {"id": "2", "created_at": "2015-03-09T15:00:00Z", "text": "$AAPL going higher, strong buy"},
        {"id": "3", "created_at": "2015-03-09T15:05:00Z", "text": "$AAPL going higher, strong buy"},
    ]
    posts = posts_frame([normalise_record(r, "file", stats) for r in records])
    clean = dedupe_per_session(posts, "NYSE")
    assert clean["id"].to_list() == ["1", "2"]  # the copy inside 9 March's session still goes
    assert clean["created_at"].to_list()[0] == datetime(2015, 3, 2, 15, tzinfo=UTC)
