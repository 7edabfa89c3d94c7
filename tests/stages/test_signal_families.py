"""Attention, surprise, disagreement and reach: the per-session columns from a session's posts,
and the history columns from a symbol's previous sessions, against hand computations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tweet_signals.stages.signals import (
    HISTORY_COLUMNS,
    SIGNALS_SCHEMA,
    compute_signals,
    history_before,
    with_history,
)
from tweet_signals.storage import Storage, write_parquet_atomic

DAY = date(2026, 1, 7)


def _posts(rows: list[tuple[str, str, float, str | None, int | None]]) -> pl.DataFrame:
    """(symbol, label, score, author, followers) → analyzed posts as the signals stage reads them."""
    return pl.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "created_at": [datetime(2026, 1, 7, 5, tzinfo=UTC) + timedelta(minutes=i) for i in range(len(rows))],
            "symbols": [[r[0]] for r in rows],
            "label": [r[1] for r in rows],
            "score": [r[2] for r in rows],
            "engagement_weight": [1.0] * len(rows),
            "tfidf_relevance": [0.5] * len(rows),
            "author_id": [r[3] for r in rows],
            "author_followers": [r[4] for r in rows],
            "model_id": ["m"] * len(rows),
        },
        schema_overrides={"author_followers": pl.Int64, "author_id": pl.String},
    )


def test_authors_dispersion_and_reach_from_the_sessions_posts() -> None:
    rows = [
        ("NIFTY", "positive", 0.8, "a", 100),
        ("NIFTY", "positive", 0.6, "a", 100),  # the same author twice
        ("NIFTY", "negative", -0.7, "b", 10_000),
        ("NIFTY", "neutral", 0.1, None, None),  # no author, no followers
        ("SENSEX", "positive", 0.5, "c", None),  # an author without a follower count
    ]
    out = compute_signals(_posts(rows), DAY, ["NIFTY", "SENSEX", "BANKNIFTY"]).sort("symbol")
    by = {r["symbol"]: r for r in out.iter_rows(named=True)}
    assert (by["NIFTY"]["n_authors"], by["SENSEX"]["n_authors"], by["BANKNIFTY"]["n_authors"]) == (2, 1, 0)
    assert by["NIFTY"]["score_dispersion"] == pytest.approx(np.std([0.8, 0.6, -0.7, 0.1], ddof=1))
    assert by["SENSEX"]["score_dispersion"] is None  # one post: no dispersion
    bull, bear = 2 * np.log1p(100), np.log1p(10_000)
    assert by["NIFTY"]["reach_bullishness"] == pytest.approx(np.log((1 + bull) / (1 + bear)))
    assert by["SENSEX"]["reach_bullishness"] is None  # no follower count on its polar posts
    assert list(out.columns) == list(SIGNALS_SCHEMA)
    assert all(out[c].null_count() == out.height for c in HISTORY_COLUMNS)  # history needs other sessions


def test_without_any_author_the_count_is_unknown_not_zero() -> None:
    out = compute_signals(_posts([("NIFTY", "positive", 0.5, None, None)]), DAY, ["NIFTY"])
    assert out["n_authors"].to_list() == [None]


def _history(posts: list[int], bullishness: list[float], authors: list[int]) -> pl.DataFrame:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(len(posts))]
    return pl.DataFrame(
        {"session": days, "symbol": "X", "n_posts": posts, "bullishness": bullishness, "n_authors": authors}
    )


def test_attention_and_surprise_equal_a_hand_computation() -> None:
    posts = [3, 0, 5, 2, 8, 1, 0, 12]
    bull = [0.4, 0.0, -0.2, 0.7, 0.1, 0.3, 0.0, 0.9]
    authors = [2, 0, 4, 2, 5, 1, 0, 9]
    out = with_history(_history(posts, bull, authors), window=4)  # at least 3 previous sessions
    log_posts, log_authors = np.log1p(posts), np.log1p(authors)
    for t in range(len(posts)):
        row = out.row(t, named=True)
        past = log_posts[max(0, t - 4) : t]
        if len(past) < 3:
            assert row["attention"] is None and row["attention_z"] is None and row["authors_z"] is None
            continue
        assert row["attention"] == pytest.approx(log_posts[t] - past.mean())
        assert row["attention_z"] == pytest.approx((log_posts[t] - past.mean()) / past.std(ddof=1))
        a_past = log_authors[max(0, t - 4) : t]
        assert row["authors_z"] == pytest.approx((log_authors[t] - a_past.mean()) / a_past.std(ddof=1))
        # Surprise: the previous 4 sessions, those with posts only; null on a quiet session.
        with_posts = [bull[k] for k in range(max(0, t - 4), t) if posts[k] > 0]
        if posts[t] == 0 or len(with_posts) < 3:
            assert row["surprise"] is None
        else:
            assert row["surprise"] == pytest.approx(bull[t] - np.mean(with_posts))
            assert row["surprise_z"] == pytest.approx((bull[t] - np.mean(with_posts)) / np.std(with_posts, ddof=1))


def test_a_symbol_without_history_gets_null_attention_and_a_flat_history_no_z_score() -> None:
    fresh = with_history(_history([4], [0.2], [3]))
    assert fresh["attention"].to_list() == [None] and fresh["attention_z"].to_list() == [None]
    flat = with_history(_history([2, 2, 2, 2, 2, 9], [0.1] * 6, [1] * 6), window=5)
    assert flat["attention"][-1] == pytest.approx(np.log1p(9) - np.log1p(2))
    assert flat["attention_z"][-1] is None  # the trailing values never varied


def test_the_daily_stage_reads_the_stored_sessions_before_its_own(tmp_path) -> None:
    storage = Storage.at(str(tmp_path))
    for i in range(3):
        day = date(2026, 1, 5 + i)
        frame = compute_signals(_posts([("NIFTY", "positive", 0.5, f"u{i}", 10)] * (i + 1)), day, ["NIFTY"])
        write_parquet_atomic(frame, storage.signals(day))
    old = storage.signals(date(2026, 1, 2))  # written before n_authors existed
    older = pl.read_parquet(storage.signals(date(2026, 1, 5))).drop("n_authors")
    write_parquet_atomic(older.with_columns(pl.lit(date(2026, 1, 2)).alias("session")), old)
    history = history_before(storage, date(2026, 1, 7))
    assert history["session"].to_list() == [date(2026, 1, 2), date(2026, 1, 5), date(2026, 1, 6)]
    assert history["n_authors"].to_list() == [None, 1, 1]


def test_the_run_summary_shows_attention_next_to_direction() -> None:
    from tweet_signals.stages.summary import attention_text, summary_markdown

    manifest = {
        "run_date": "2026-01-09",
        "status": "complete",
        "collect": {
            "status": "collected",
            "records_in": 3,
            "posts": 3,
            "out_of_window": 0,
            "quarantined": 0,
            "repairs": {},
        },
        "dedupe": {
            "status": "computed",
            "posts_in": 3,
            "posts_out": 3,
            "duplicate_ids": 0,
            "retweets": 0,
            "near_duplicates": 0,
        },
        "analyze": {"chunks": 1, "computed": 1, "reused": 0, "failed": [], "workers": 1, "tweets_per_s": 10},
        "timings": {"analyze": 1.0},
        "model": {"id": "embedded", "revision": "r"},
    }
    signals = pl.DataFrame(
        {
            "symbol": ["NIFTY", "SENSEX"],
            "signal": ["bearish", "neutral"],
            "bullishness": [-0.5, 0.0],
            "weighted_score": [-0.2, 0.0],
            "agreement": [0.3, None],
            "n_posts": [40, 3],
            "attention_z": [2.14, None],
        }
    )
    text = summary_markdown(manifest, signals, None, "data")
    assert "| NIFTY | **bearish** | +2.1σ |" in text and "| SENSEX | **neutral** | – |" in text
    assert attention_text(-0.04) == "-0.0σ"


def test_the_chart_reads_sessions_stored_before_the_newer_columns(tmp_path) -> None:
    from tweet_signals.stages.summary import write_chart

    storage = Storage.at(str(tmp_path))
    new = compute_signals(_posts([("NIFTY", "positive", 0.5, "u", 10)]), date(2026, 1, 6), ["NIFTY"])
    write_parquet_atomic(new, storage.signals(date(2026, 1, 6)))
    old = new.drop("n_authors", *HISTORY_COLUMNS).with_columns(pl.lit(date(2026, 1, 5)).alias("session"))
    write_parquet_atomic(old, storage.signals(date(2026, 1, 5)))
    assert write_chart(storage, date(2026, 1, 6)) is not None
