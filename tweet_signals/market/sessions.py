"""Exchange trading sessions: which session a post counts for, and each session's post window.

A session's window runs from the previous session's close (exclusive) to its own close
(inclusive), so posts after the close, on weekends or on holidays count for the next session.
Holidays come from ``exchange_calendars`` (NSE and BSE share them: ``XBOM``).
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

import pandas as pd

DEFAULT_EXCHANGE = "XBOM"  # BSE/NSE: Asia/Kolkata, 09:15-15:30
EXCHANGE_ALIASES = {"NSE": "XBOM", "BSE": "XBOM", "XNSE": "XBOM", "NYSE": "XNYS", "NASDAQ": "XNYS"}


class NotASessionError(ValueError):
    """The run date is not a trading session of the exchange."""


@lru_cache(maxsize=8)
def calendar(exchange: str = DEFAULT_EXCHANGE):  # type: ignore[no-untyped-def]
    import exchange_calendars as xc

    return xc.get_calendar(EXCHANGE_ALIASES.get(exchange.upper(), exchange.upper()))


def is_session(day: date, exchange: str = DEFAULT_EXCHANGE) -> bool:
    cal = calendar(exchange)
    ts = pd.Timestamp(day)
    return bool(cal.first_session <= ts <= cal.last_session and cal.is_session(ts))


def session_window(day: date, exchange: str = DEFAULT_EXCHANGE) -> tuple[datetime, datetime]:
    """(previous close, this close] in UTC for session ``day``."""
    if not is_session(day, exchange):
        raise NotASessionError(f"{day} is not a trading session on {exchange}")
    cal = calendar(exchange)
    ts = pd.Timestamp(day)
    close = cal.session_close(ts)
    prev = cal.session_close(cal.previous_session(ts)) if ts > cal.first_session else close - pd.Timedelta(days=1)
    return prev.to_pydatetime(), close.to_pydatetime()


def sessions_between(start: date, end: date, exchange: str = DEFAULT_EXCHANGE) -> list[date]:
    cal = calendar(exchange)
    return [d.date() for d in cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def session_for(moment: datetime, exchange: str = DEFAULT_EXCHANGE) -> date:
    """The session a post at ``moment`` counts for (the first session closing at or after it)."""
    cal = calendar(exchange)
    ts = pd.Timestamp(moment)
    day = ts.tz_convert(cal.tz).normalize().tz_localize(None)
    session = cal.date_to_session(day, direction="next")
    if cal.session_close(session) < ts:
        session = cal.next_session(session)
    return session.date()
