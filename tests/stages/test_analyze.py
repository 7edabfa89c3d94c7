"""The analyze stage's chunk plan: every clean row in exactly one chunk."""

from __future__ import annotations

from tweet_signals.stages.analyze import row_ranges


def test_chunk_plan_covers_every_row_once() -> None:
    assert row_ranges(0, 10) == []
    assert row_ranges(25, 10) == [(0, 10), (10, 20), (20, 25)]
