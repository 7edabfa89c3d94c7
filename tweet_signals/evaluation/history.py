"""A symbol's signal history: from every stored session, with sessions without posts made explicit."""

from __future__ import annotations

from datetime import date

import polars as pl

from tweet_signals.market.sessions import sessions_between
from tweet_signals.stages.signals import SIGNALS_SCHEMA
from tweet_signals.storage import Storage, uri


def stored_signals(storage: Storage, symbol: str, until: date | None = None) -> pl.DataFrame:
    """A symbol's signals from every stored session (up to ``until``)."""
    frames = [
        pl.read_parquet(uri(path)).filter(pl.col("symbol") == symbol)
        for _, path in storage.partitions("signals", "signals.parquet", until)
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema=SIGNALS_SCHEMA)


def with_empty_sessions(signals: pl.DataFrame, symbol: str, exchange: str) -> pl.DataFrame:
    """Sessions without posts become explicit rows with zero posts (not gaps)."""
    if signals.is_empty():
        return signals
    sessions = sessions_between(signals["session"].min(), signals["session"].max(), exchange)  # type: ignore[arg-type]
    frame = pl.DataFrame(
        {"session": sessions, "symbol": [symbol] * len(sessions)}, schema={"session": pl.Date, "symbol": pl.String}
    )
    out = frame.join(signals, on=["session", "symbol"], how="left")
    # Sessions stored by older versions lack the newer columns: null there.
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in SIGNALS_SCHEMA.items() if c not in out.columns]
    return quiet_counts(out.with_columns(missing)).select(list(SIGNALS_SCHEMA))


def quiet_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows added for sessions without posts get zero counts; ``n_authors`` is 0 there too (no
    authors, not an unknown number), and stays as it is on sessions with posts."""
    counts = [c for c in ("n_posts", "n_bullish", "n_bearish", "n_neutral") if c in frame.columns]
    frame = frame.with_columns(pl.col(counts).fill_null(0))
    if "n_authors" not in frame.columns:
        return frame
    quiet = pl.when(pl.col("n_posts") == 0).then(pl.col("n_authors").fill_null(0))
    return frame.with_columns(quiet.otherwise(pl.col("n_authors")).alias("n_authors"))


def stored_panel_signals(storage: Storage, until: date | None = None) -> pl.DataFrame:
    """Every symbol's signals from every stored session (up to ``until``)."""
    frames = [pl.read_parquet(uri(path)) for _, path in storage.partitions("signals", "signals.parquet", until)]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=SIGNALS_SCHEMA)
