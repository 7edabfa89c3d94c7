"""Evaluate a symbol's signal, or a panel of symbols, against daily closes and write the report (Prefect flows)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Failed, State

from tasks.evaluate import evaluate_panel_task, evaluate_task
from tweet_signals.api import PostsFile, panel_signals_from_file, signals_from_file
from tweet_signals.evaluation.history import stored_panel_signals, stored_signals
from tweet_signals.evaluation.judge import EvaluationSettings
from tweet_signals.evaluation.panel import MIN_SYMBOLS, PanelSettings, load_price_panel, parse_horizons
from tweet_signals.storage import Storage, location

BAD_INPUT = "bad input"  # how the flow's message starts when the input, not the code, is at fault


def scored_cache(data_root: str | None) -> Path | None:
    """Where scored posts files are kept: under a local data root; without one (or on an object
    store) nothing is kept, rather than writing into the working directory."""
    if not data_root:
        return None
    cache = location(data_root) / "cache" / "scored"
    return cache if isinstance(cache, Path) else None


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
            source = PostsFile(
                Path(input), columns, model, exchange, naive_tz, date_only, workers, scored_cache(data_root)
            )
            signals = signals_from_file(source, symbol)
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


@flow(name="evaluate-panel")
def evaluate_panel_signals(
    prices_dir: str,
    data_root: str | None = "data",
    input: str | None = None,
    columns: str | None = None,
    model: str = "embedded",
    exchange: str = "NSE",
    out_dir: str | None = None,
    horizons: str = "1,5,10,20",
    quantiles: int = 5,
    benchmark: str | None = None,
    symbol_column: str | None = None,
    split: date | None = None,
    close_column: str | None = None,
    threshold: float = 0.0,
    cost_bps: float = 5.0,
    min_sessions: int = 20,
    window: int = 20,
    signal_column: str = "weighted_score",
    min_posts: int = 5,
    min_symbols: int | None = None,
    naive_tz: str | None = None,
    date_only: str = "quarantine",
    workers: int = 1,
) -> dict[str, Any] | State:
    """Every symbol with posts and a price file in ``prices_dir``, judged at once: rank IC by
    horizon, quantile returns, turnover, per-symbol figures, optionally split in and out of
    sample. Scored posts are cached under ``data_root`` per model revision. Bad input ends the
    run Failed with one message (no traceback)."""
    try:
        settings = PanelSettings(
            horizons=parse_horizons(horizons),
            quantiles=quantiles,
            min_posts=min_posts,
            min_symbols=min_symbols if min_symbols is not None else max(MIN_SYMBOLS, quantiles),
            signal_column=signal_column,
            window=window,
            threshold=threshold,
            cost_bps=cost_bps,
            min_sessions=min_sessions,
            benchmark=benchmark.upper() if benchmark else None,
            split=split,
        )
        panel = load_price_panel(Path(prices_dir), close_column)  # read once: symbols here, returns in the task
        symbols = [s for s in panel if s != settings.benchmark]
        if input:
            source = PostsFile(
                Path(input), columns, model, exchange, naive_tz, date_only, workers, scored_cache(data_root)
            )
            signals = panel_signals_from_file(source, symbols, symbol_column)
        elif data_root:
            signals = stored_panel_signals(Storage.at(data_root))
        else:
            raise ValueError("give data_root (stored signals) or input (a posts file)")
        target = out_dir or str(location(data_root or ".") / "reports" / "panel")
        return evaluate_panel_task(signals, panel, prices_dir, target, settings)
    except (ValueError, OSError) as exc:
        return Failed(message=f"{BAD_INPUT}: {exc}")
