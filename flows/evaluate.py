"""Evaluate a symbol's signal against daily closes and write the report (a Prefect flow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Failed, State

from tasks.evaluate import evaluate_task
from tweet_signals.api import signals_from_file
from tweet_signals.evaluation.history import stored_signals
from tweet_signals.evaluation.judge import EvaluationSettings
from tweet_signals.storage import Storage, location

BAD_INPUT = "bad input"  # how the flow's message starts when the input, not the code, is at fault


@flow(name="evaluate-signals")
def evaluate_signals(
    prices: str,
    symbol: str = "NIFTY",
    data_root: str | None = "data",
    input: str | None = None,
    columns: str | None = None,
    model: str = "embedded",
    exchange: str = "NSE",
    price_columns: str = "date=Date,close=Close",
    out_dir: str | None = None,
    threshold: float = 0.0,
    cost_bps: float = 5.0,
    min_sessions: int = 20,
    window: int = 20,
    until: date | None = None,
    signal_column: str = "weighted_score",
    min_posts: int = 5,
    naive_tz: str | None = None,
    date_only: str = "quarantine",
    workers: int = 1,
) -> dict[str, Any] | State:
    """Signals from stored runs (``data_root``) or straight from a posts file (``input``). Bad
    input ends the run Failed with one message (no traceback)."""
    symbol = symbol.upper()
    try:
        if input:
            signals = signals_from_file(Path(input), columns, symbol, model, exchange, naive_tz, date_only, workers)
        elif data_root:
            signals = stored_signals(Storage.at(data_root), symbol, until)
        else:
            raise ValueError("give data_root (stored signals) or input (a posts file)")
    except (ValueError, OSError) as exc:
        return Failed(message=f"{BAD_INPUT}: {exc}")
    target = out_dir or str(location(data_root or ".") / "reports" / symbol.lower())
    settings = EvaluationSettings(
        prices, target, price_columns, exchange, threshold, cost_bps, min_sessions, window, signal_column, min_posts
    )
    return evaluate_task(signals, symbol, settings)
