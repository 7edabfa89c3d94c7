"""Synthetic panels with a planted truth: a signal that leads returns by ``lead`` sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

BULLISH = ("{t} breaking out, strong buy, loading up more", "very bullish on {t}, great results, going higher")
BEARISH = ("{t} crashing hard, sell now, terrible news", "dumping {t}, awful guidance, heading lower")
# Words that make every post's text distinct, so near-duplicate removal keeps them all.
FILLER = [
    "today",
    "tomorrow",
    "morning",
    "chart",
    "volume",
    "desk",
    "friends",
    "watching",
    "again",
    "clearly",
    "honestly",
    "traders",
    "everyone",
    "week",
    "month",
    "quarter",
    "session",
    "open",
    "close",
    "gap",
    "futures",
    "options",
    "earnings",
    "guidance",
    "sector",
    "peers",
    "analysts",
]


def business_days(start: date, n: int) -> list[date]:
    days, day = [], start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def planted_panel(
    seed: int, lead: int = 5, strength: float = 0.3, n_symbols: int = 30, n_sessions: int = 260, sign: int = 1
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Closes per symbol and a signal per (session, symbol) equal to ``sign`` × ``strength`` ×
    the standardised return from close t+lead−1 to close t+lead, plus unit noise (as both
    ``mean_score`` and ``weighted_score``)."""
    rng = np.random.default_rng(seed)
    days = business_days(date(2024, 1, 1), n_sessions + 30)
    panel, rows = {}, []
    for s in range(n_symbols):
        returns = rng.normal(0.0005, 0.01, len(days))
        panel[f"S{s}"] = pl.DataFrame({"session": days, "close": 100 * np.cumprod(1 + returns)})
        for t in range(n_sessions):
            planted = returns[t + lead] / 0.01 if lead else 0.0
            rows.append((days[t], f"S{s}", 10, sign * strength * planted + rng.normal()))
    signals = pl.DataFrame(rows, schema=["session", "symbol", "n_posts", "mean_score"], orient="row")
    # The same values under the engagement-weighted name, for tests that judge that column.
    return panel, signals.with_columns(pl.col("mean_score").alias("weighted_score"))


def write_panel_files(
    root: Path,
    n_symbols: int = 8,
    n_sessions: int = 60,
    posts_per_session: int = 6,
    seed: int = 3,
    hour_utc: int = 5,
    days: list[date] | None = None,
) -> tuple[Path, Path]:
    """A prices folder (``<SYMBOL>.csv``, Yahoo columns, plus an ``INDEX.csv`` benchmark) and a posts
    CSV with a ticker column, whose mood on session t is the sign of the next session's return.
    Posts are written at ``hour_utc`` on each of ``days`` (default: weekdays from 3 March 2025)."""
    rng = np.random.default_rng(seed)
    prices = root / "prices"
    prices.mkdir(parents=True, exist_ok=True)
    days = days[: n_sessions + 2] if days else business_days(date(2025, 3, 3), n_sessions + 2)
    posts = []
    index = np.zeros(len(days))
    for s in range(n_symbols):
        ticker = f"TK{s}"
        returns = rng.normal(0.0, 0.015, len(days))
        index += returns / n_symbols
        close = 50 * np.cumprod(1 + returns)
        pl.DataFrame(
            {"Date": [d.isoformat() for d in days], "Close": close, "Adj Close": close, "Volume": 1000}
        ).write_csv(prices / f"{ticker}.csv")
        for t in range(n_sessions):
            up = returns[t + 1] > 0
            for k in range(posts_per_session):
                template = (BULLISH if up else BEARISH)[k % 2]
                stamp = datetime(days[t].year, days[t].month, days[t].day, hour_utc, 0, tzinfo=UTC) + timedelta(
                    minutes=k
                )
                posts.append(
                    {
                        "id": f"{ticker}-{t}-{k}",
                        "created_at": stamp.isoformat(),
                        "text": template.format(t=f"${ticker}") + " " + " ".join(rng.choice(FILLER, 4, replace=False)),
                        "ticker": ticker,
                    }
                )
    pl.DataFrame({"Date": [d.isoformat() for d in days], "Close": 100 * np.cumprod(1 + index)}).write_csv(
        prices / "INDEX.csv"
    )
    posts_path = root / "posts.csv"
    pl.DataFrame(posts).write_csv(posts_path)
    return prices, posts_path
