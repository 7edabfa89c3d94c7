"""Evaluate a symbol's signal, or a panel of symbols, against daily closes and write the report (a Prefect flow)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow
from prefect.states import Failed, State

from tweet_signals.api import PostsFile, panel_signals_from_file, signals_from_file
from tweet_signals.evaluation.history import stored_panel_signals, stored_signals
from tweet_signals.evaluation.judge import read_single_prices
from tweet_signals.evaluation.panel import infer_exchange, load_price_panel
from tweet_signals.evaluation.params import EvaluationParams
from tweet_signals.storage import Storage, location
from tweet_signals.tasks.evaluate import evaluate_panel_task, evaluate_task

BAD_INPUT = "bad input"  # how the flow's message starts when the input, not the code, is at fault


def scored_cache(data_root: str | None) -> Path | None:
    """Where scored posts files are kept: under a local data root; without one (or on an object
    store) nothing is kept, rather than writing into the working directory."""
    if not data_root:
        return None
    cache = location(data_root) / "cache" / "scored"
    return cache if isinstance(cache, Path) else None


def exchange_of(params: EvaluationParams, sessions: Iterable[date]) -> tuple[str, bool]:
    """The calendar in use and whether it was inferred: the one given, else the exchange whose
    trading days match the price dates (posts after a close count for the next session, so a
    wrong calendar would misplace them)."""
    if params.exchange:
        return params.exchange, False
    return infer_exchange(sessions), True


def posts_file(params: EvaluationParams, exchange: str) -> PostsFile:
    """The ``--input`` posts file and how to read and score it."""
    assert params.input is not None  # callers check
    return PostsFile(
        Path(params.input),
        params.columns,
        params.model,
        exchange,
        params.naive_tz,
        params.date_only,
        params.workers,
        scored_cache(params.data_root),
    )


def stored_storage(params: EvaluationParams) -> Storage:
    """The data root whose stored signals are judged when no posts file is given."""
    if not params.data_root:
        raise ValueError("give --data-root (stored signals) or --input (a posts file)")
    return Storage.at(params.data_root)


def evaluate_single(params: EvaluationParams) -> dict[str, Any]:
    """One symbol's signal against the closes in ``params.prices``."""
    assert params.prices is not None  # the model requires exactly one mode
    # Read with the target's columns now, so a file without them is refused before posts are scored.
    sessions = read_single_prices(params.prices, params.price_columns, params.target)["session"]
    exchange, inferred = exchange_of(params, sessions.to_list())
    symbol = params.symbol
    if params.input:
        signals = signals_from_file(posts_file(params, exchange), symbol)
    else:
        signals = stored_signals(stored_storage(params), symbol)
    target = params.out or str(location(params.data_root or ".") / "reports" / symbol.lower())
    result = evaluate_task(signals, symbol, params.single_settings(target, exchange))
    return {**result, "exchange": exchange, "exchange_inferred": inferred}


def panel_signals(params: EvaluationParams, symbols: list[str], exchange: str) -> pl.DataFrame:
    """Signals per (symbol, session): from the posts file, pooled over ``params.pool`` sessions
    when asked, else from every stored run under the data root."""
    if not params.input:
        # The model refuses --pool without --input: stored signals are already per session.
        return stored_panel_signals(stored_storage(params))
    return panel_signals_from_file(posts_file(params, exchange), symbols, params.symbol_column, pool=params.pool)


def evaluate_panel(params: EvaluationParams) -> dict[str, Any]:
    """Every symbol with posts and a price file in ``params.prices_dir``, judged at once."""
    assert params.prices_dir is not None  # the model requires exactly one mode
    settings = params.panel_settings()
    # Read once (symbols here, the target in the task), with the columns the target reads: a folder
    # without them is refused before any post is scored.
    panel = load_price_panel(Path(params.prices_dir), target=params.target)
    exchange, inferred = exchange_of(params, (d for prices in panel.values() for d in prices["session"].to_list()))
    symbols = [s for s in panel if s != settings.benchmark]
    signals = panel_signals(params, symbols, exchange)
    target = params.out or str(location(params.data_root or ".") / "reports" / "panel")
    result = evaluate_panel_task(signals, panel, params.prices_dir, target, settings)
    return {**result, "exchange": exchange, "exchange_inferred": inferred}


@flow(name="evaluate")
def evaluate_flow(params: EvaluationParams) -> dict[str, Any] | State:
    """Judge signals from stored runs (``data_root``) or straight from a posts file (``input``):
    one symbol against ``prices``, or every symbol with a price file in ``prices_dir`` (rank IC by
    horizon, quantile returns, turnover, per-symbol figures, optionally split in and out of
    sample). Scored posts are cached under ``data_root`` per model revision. Bad input ends the
    run Failed with one message (no traceback)."""
    try:
        return evaluate_panel(params) if params.panel else evaluate_single(params)
    except (ValueError, OSError) as exc:
        return Failed(message=f"{BAD_INPUT}: {exc}")
