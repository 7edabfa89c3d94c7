"""Pure transforms: symbols, sessions, dedupe, TF-IDF, scoring, signals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from tweet_signals.analysis import engagement_weight, plan_chunks
from tweet_signals.dedupe import dedupe_posts, normalise_text
from tweet_signals.schema import POST_SCHEMA
from tweet_signals.sessions import NotASessionError, session_for, session_window
from tweet_signals.signals import compute_signals
from tweet_signals.symbols import alias_map, extract_symbols, resolve_hashtags
from tweet_signals.tfidf import TOKEN_PATTERN, fit_tfidf

ALIASES = alias_map(["NIFTY", "SENSEX", "BANKNIFTY", "RELIANCE"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#Nifty50 and #SENSEX today", ["NIFTY", "SENSEX"]),
        ("$NIFTY calls, bank nifty puts", ["NIFTY", "BANKNIFTY"]),
        ("#BankNifty #niftybank", ["BANKNIFTY"]),
        ("RELIANCE results", ["RELIANCE"]),
        ("nothing here", []),
    ],
)
def test_symbols_from_hashtags_cashtags_and_words(text: str, expected: list[str]) -> None:
    assert extract_symbols(text, ALIASES) == expected


def test_hashtags_as_the_original_tool_took_them() -> None:
    assert resolve_hashtags(["nifty", "#sensex", "nifty50", "infy"], ALIASES) == ["NIFTY", "SENSEX", "INFY"]


def test_session_windows_roll_after_close_weekends_and_holidays() -> None:
    start, end = session_window(date(2026, 1, 7))
    assert end == datetime(2026, 1, 7, 10, 0, tzinfo=UTC)  # 15:30 IST
    assert start == datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    assert session_for(datetime(2026, 1, 7, 9, 59, tzinfo=UTC)) == date(2026, 1, 7)
    assert session_for(datetime(2026, 1, 7, 10, 1, tzinfo=UTC)) == date(2026, 1, 8)
    assert session_for(datetime(2026, 1, 10, 6, 0, tzinfo=UTC)) == date(2026, 1, 12)  # Saturday → Monday
    assert session_for(datetime(2026, 1, 26, 6, 0, tzinfo=UTC)) == date(2026, 1, 27)  # Republic Day
    with pytest.raises(NotASessionError):
        session_window(date(2026, 1, 26))


def _posts(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {k: None for k in POST_SCHEMA}
    return pl.DataFrame([{**base, **r} for r in rows], schema=POST_SCHEMA)


def test_dedupe_ids_retweets_and_near_duplicates() -> None:
    t = datetime(2026, 1, 7, 5, tzinfo=UTC)
    posts = _posts(
        [
            {"id": "1", "created_at": t, "text": "Nifty rally to 26,100! https://t.co/a @bob"},
            {"id": "1", "created_at": t.replace(minute=5), "text": "edited copy"},  # same id, later
            {
                "id": "2",
                "created_at": t.replace(minute=1),
                "text": "RT @alice: Nifty rally to 26,100! https://t.co/a @bob",
            },
            {"id": "3", "created_at": t.replace(minute=2), "text": "NIFTY RALLY TO 26,250!! https://t.co/zz @carol"},
            {"id": "4", "created_at": t.replace(minute=3), "text": "Sensex falls", "retweet_of": "5"},
            {"id": "5", "created_at": t.replace(minute=4), "text": "Sensex falls hard"},
            {"id": "6", "created_at": t.replace(minute=6), "text": "Bank nifty flat"},
        ]
    )
    clean, stats = dedupe_posts(posts, ALIASES)
    assert clean["id"].to_list() == ["1", "5", "6"]
    assert clean["dup_count"].to_list() == [2, 1, 0]
    assert clean["symbols"].to_list() == [["NIFTY"], ["SENSEX"], ["BANKNIFTY"]]
    assert stats.as_dict() == {
        "posts_in": 7,
        "duplicate_ids": 1,
        "duplicate_ids_conflicting": 1,
        "retweets": 2,
        "near_duplicates": 1,
        "posts_out": 3,
    }


def test_normalised_text_masks_links_mentions_numbers() -> None:
    assert normalise_text("RT @x: Buy @Bob 1,200 http://a.b/c !!") == "buy _user_ _num_ _url_"


def test_tfidf_matches_scikit_learn_and_round_trips(tmp_path) -> None:
    texts = ["nifty rally buy calls", "sensex crash sell", "nifty flat market", "bank nifty bullish breakout"]
    model, top = fit_tfidf(texts, ["NIFTY"])
    reference = TfidfVectorizer(token_pattern=TOKEN_PATTERN, sublinear_tf=True).fit(texts)
    np.testing.assert_allclose(model.transform(texts).toarray(), reference.transform(texts).toarray(), atol=1e-12)
    assert top["term"][0] == "nifty"
    relevance = model.market_relevance(["nifty rally", "hello world"])
    assert relevance[0] > 0.5 and relevance[1] == 0.0

    from tweet_signals.storage import file_digest
    from tweet_signals.tfidf import load_tfidf, save_tfidf

    save_tfidf(model, top, tmp_path, {"clean": "x"})
    loaded = load_tfidf(str(tmp_path), file_digest(tmp_path / "vocabulary.parquet"))
    np.testing.assert_allclose(loaded.transform(texts).toarray(), model.transform(texts).toarray())


def test_engagement_weight_is_log_scaled() -> None:
    assert engagement_weight(0, 0, 0, 0) == 1.0
    assert engagement_weight(100_000, 0, 0, 0) < 13  # a viral post weighs ~12 quiet ones, not 100k


def test_chunk_plan_covers_every_row_once() -> None:
    assert plan_chunks(0, 10) == []
    assert plan_chunks(25, 10) == [(0, 10), (10, 20), (20, 25)]


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

    from tweet_signals import signals

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


def test_tfidf_fit_sample_is_exact_for_small_days_and_bounded_for_large(tmp_path: Path) -> None:
    from tweet_signals.tfidf import fit_sample

    path = tmp_path / "clean.parquet"
    pl.DataFrame({"id": [str(i) for i in range(1000)], "text": [f"post {i}" for i in range(1000)]}).write_parquet(path)
    texts, total = fit_sample(path, max_docs=5000)
    assert total == 1000 and sorted(texts) == sorted(f"post {i}" for i in range(1000))
    sample, total = fit_sample(path, max_docs=100)
    assert total == 1000 and len(sample) == 100 == len(set(sample))
    assert fit_sample(path, max_docs=100)[0] == sample  # deterministic


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"aZ 9.,#$@:/_-…!é\t\nRT", "http://x.y/z", "RT @bob: ", "www.a.b"])).map("".join))
def test_vectorised_near_duplicate_key_equals_the_python_rule(text: str) -> None:
    from tweet_signals.dedupe import near_duplicate_key

    assert pl.select(near_duplicate_key(pl.lit(text))).item() == normalise_text(text)


def test_dedupe_file_streams_the_same_survivors_as_dedupe_posts(tmp_path: Path, monkeypatch) -> None:
    from tweet_signals import dedupe
    from tweet_signals.schema import NormaliseStats, normalise_record, posts_frame
    from tweet_signals.sources.synthetic import generate_posts

    monkeypatch.setattr(dedupe, "WRITE_BATCH", 500)  # several batches
    stats_in = NormaliseStats()
    posts = posts_frame([normalise_record(r, "synthetic", stats_in) for r in generate_posts(date(2026, 1, 7), 3000)])
    raw = tmp_path / "raw.parquet"
    posts.write_parquet(raw, row_group_size=700)
    in_memory, stats = dedupe_posts(posts, ALIASES)
    rows, streamed_stats = dedupe.dedupe_file(raw, tmp_path / "clean.parquet", ALIASES, {"key": 1})
    streamed = pl.read_parquet(tmp_path / "clean.parquet")
    assert stats == streamed_stats and rows == streamed.height == in_memory.height
    assert 0.8 * posts.height < rows < posts.height  # retweets and copies go, distinct posts stay
    assert streamed.sort("created_at", "id").equals(in_memory)
    assert streamed["id"].to_list() == sorted(streamed["id"].to_list())  # collection order


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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), min_size=1, max_size=20))
def test_vectorised_features_equal_the_python_rules(texts: list[str]) -> None:
    """Rust regex and Python re must give the same keyword boosts and TF-IDF relevance, ASCII
    or not (non-ASCII rows take the Python rule); engagement likewise."""
    from tweet_signals.lexicon import keyword_boost
    from tweet_signals.text_features import engagement_weights, keyword_boosts, market_relevances

    model, _ = fit_tfidf([*_FEATURE_CORPUS, *texts[:5]], symbols=["NIFTY", "TCS"])
    np.testing.assert_allclose(keyword_boosts(texts), [keyword_boost(t) for t in texts], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        market_relevances(model, texts), model.market_relevance_reference(texts), rtol=1e-12, atol=1e-12
    )
    counts = [pl.Series([None, 0, -3, 7, 2**40][: len(texts)] + [1] * max(0, len(texts) - 5))] * 4
    expected = [engagement_weight(*(c or 0 for c in row)) for row in zip(*(s.to_list() for s in counts), strict=True)]
    np.testing.assert_allclose(engagement_weights(*counts), expected, rtol=1e-15)
