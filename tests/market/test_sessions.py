"""Session windows: a post after the close, on a weekend or a holiday belongs to the next trading session."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tweet_signals.market.sessions import NotASessionError, session_for, session_window


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
