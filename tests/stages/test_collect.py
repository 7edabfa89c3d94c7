"""Collect: every record accounted for; impossible (future) timestamps quarantined, not deferred."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tweet_signals.params import SignalsParams
from tweet_signals.stages.collect import collect_session
from tweet_signals.storage import Storage

DAY = date(2026, 1, 7)


def _write_posts(path: Path, stamps: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i, stamp in enumerate(stamps):
            out.write(json.dumps({"id": str(100 + i), "created_at": stamp, "text": f"#nifty post {i}"}) + "\n")
    return path


def test_a_post_dated_years_ahead_is_quarantined_as_future_timestamp(tmp_path: Path) -> None:
    stamps = [
        "2026-01-07T05:00:00Z",  # in the session (10:30 IST)
        "2026-01-07T06:00:00Z",  # in the session
        "2026-01-08T05:00:00Z",  # the next session: out of this window, not impossible
        "2031-01-07T05:00:00Z",  # after the collection time: impossible
    ]
    source = _write_posts(tmp_path / "posts.jsonl", stamps)
    params = SignalsParams(run_date=DAY, input=str(source), data_root=str(tmp_path / "root"), model="embedded")
    result = collect_session(params, DAY)
    assert (result.records_in, result.posts, result.out_of_window, result.quarantined) == (4, 2, 1, 1)
    quarantine = pl.read_parquet(Storage.at(params.data_root).quarantine(DAY))
    assert quarantine["reason"].to_list() == ["future_timestamp"]
    assert "2031-01-07" in quarantine["detail"][0] and json.loads(quarantine["record"][0])["id"] == "103"


@pytest.mark.slow
def test_a_synthetic_day_is_the_same_from_any_number_of_processes(tmp_path: Path) -> None:
    """Shards are generated in parallel and written in order: the file holds the same posts as
    one process writes, shard after shard, and as the generator yields them."""
    from tweet_signals.sources.synthetic import generate_posts, generate_shard
    from tweet_signals.stages import collect

    params = SignalsParams(run_date=DAY, source="synthetic", synthetic_posts=2_300, data_root=str(tmp_path))
    parallel = collect.write_synthetic(params, DAY, tmp_path / "parallel.parquet", shard_posts=500, workers=2)
    serial = collect.write_synthetic(params, DAY, tmp_path / "serial.parquet", shard_posts=500, workers=1)
    assert parallel == serial and parallel["records_in"] == 2_300
    written = pl.read_parquet(tmp_path / "parallel.parquet")
    assert written.equals(pl.read_parquet(tmp_path / "serial.parquet"))
    generated = list(generate_posts(DAY, 2_300, params.symbols, params.seed, shard_posts=500))
    kept = set(written["id"].to_list())  # the posts inside the session's window
    inside = [r["id"] for r in generated if r["id"] in kept]
    assert written["id"].to_list() == inside  # in generation order
    # A shard on its own is the same as its part of the whole day, and shards differ.
    third = list(generate_shard(DAY, 2_300, 2, params.symbols, params.seed, shard_posts=500))
    assert third == generated[1_000:1_500] and third[0]["text"] != generated[0]["text"]
