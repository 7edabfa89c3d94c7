"""Dedupe: ids, retweets and near-duplicate texts collapse to their earliest original; the vectorised
key equals the Python rule; the streaming file path keeps the same survivors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tweet_signals.market.symbols import alias_map
from tweet_signals.sources.schema import POST_SCHEMA
from tweet_signals.stages.dedupe import dedupe_posts, normalise_text

ALIASES = alias_map(["NIFTY", "SENSEX", "BANKNIFTY", "RELIANCE"])


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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"aZ 9.,#$@:/_-…!é\t\nRT", "http://x.y/z", "RT @bob: ", "www.a.b"])).map("".join))
def test_vectorised_near_duplicate_key_equals_the_python_rule(text: str) -> None:
    from tweet_signals.stages.dedupe import near_duplicate_key

    assert pl.select(near_duplicate_key(pl.lit(text))).item() == normalise_text(text)


@pytest.mark.slow
def test_dedupe_file_streams_the_same_survivors_as_dedupe_posts(tmp_path: Path, monkeypatch) -> None:
    from tweet_signals.sources.schema import NormaliseStats, normalise_record, posts_frame
    from tweet_signals.sources.synthetic import generate_posts
    from tweet_signals.stages import dedupe

    monkeypatch.setattr(dedupe, "WRITE_BATCH", 500)  # several batches
    stats_in = NormaliseStats()
    posts = posts_frame([normalise_record(r, "synthetic", stats_in) for r in generate_posts(date(2026, 1, 7), 3000)])
    raw = tmp_path / "raw.parquet"
    posts.write_parquet(raw, row_group_size=700)
    in_memory, stats = dedupe_posts(posts, ALIASES)
    rows, streamed_stats = dedupe.dedupe_file(raw, tmp_path / "clean.parquet", ALIASES, {"key": 1}, workers=2)
    serial_rows, _ = dedupe.dedupe_file(raw, tmp_path / "serial.parquet", ALIASES, {"key": 1}, workers=1)
    streamed = pl.read_parquet(tmp_path / "clean.parquet")
    assert stats == streamed_stats and rows == streamed.height == in_memory.height
    assert 0.8 * posts.height < rows < posts.height  # retweets and copies go, distinct posts stay
    assert streamed.sort("created_at", "id").equals(in_memory)
    assert streamed["id"].to_list() == sorted(streamed["id"].to_list())  # collection order
    assert serial_rows == rows and pl.read_parquet(tmp_path / "serial.parquet").equals(streamed)  # 2 processes or 1
