"""Judge a symbol's signal history, or a panel of symbols, against daily closes; write the report.

No Prefect here: the flows and tasks call these functions."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tweet_signals.evaluation.composite import evaluate_composite
from tweet_signals.evaluation.history import with_empty_sessions
from tweet_signals.evaluation.movement import movement_figures
from tweet_signals.evaluation.panel import (
    DEFAULT_COLUMN,
    PanelSettings,
    engagement_warnings,
    forward_returns,
    json_ready,
)
from tweet_signals.evaluation.panel_report import write_panel_report
from tweet_signals.evaluation.report import write_report
from tweet_signals.evaluation.statistics import align_next_return, evaluate_signal, load_prices, rolling_features
from tweet_signals.evaluation.targets import Target, check_movement, definition, extra_columns
from tweet_signals.evaluation.tearsheet import tear_sheet
from tweet_signals.sources.files import parse_column_map
from tweet_signals.stages.signals import SignalThresholds, with_history
from tweet_signals.storage import AnyPath, location, publish


@dataclass(frozen=True)
class EvaluationSettings:
    """Where the prices are, where the report goes, and how the signal is judged."""

    prices_path: str
    out_dir: str
    price_columns: str = "date=Date,close=Close"
    exchange: str = "NSE"
    threshold: float = 0.0  # long when the centred signal (z-score) is above this
    cost_bps: float = 5.0  # per position change
    min_sessions: int = 20  # fewer: "not enough data", not a number
    window: int = 20  # sessions of the rolling z-scores (features and the strategy's centring)
    signal_column: str = DEFAULT_COLUMN  # the column judged
    min_posts: int = SignalThresholds().min_posts  # sessions with fewer posts carry no signal
    # (up, down) thresholds of the next-session move: direction figures with the dead band dropped
    movement: tuple[float, float] | None = None
    target: Target = "return"  # what the signal is judged against (``targets``)

    def __post_init__(self) -> None:
        check_movement(self.target, self.movement)


def read_single_prices(
    prices_path: str, price_columns: str = "date=Date,close=Close", target: str = "return"
) -> pl.DataFrame:
    """(session, close) of one symbol's prices CSV; ``price_columns`` names its date and close
    columns (``date=COLUMN,close=COLUMN``, either may be left out). Another ``target`` adds the
    columns it reads, ``high``, ``low`` and ``volume`` in the same mapping (default ``High``,
    ``Low``, ``Volume``); the range is measured against the mapped close, so map the close of
    the same adjustment basis as the high and low (Yahoo's raw ``Close``, the default)."""
    mapping = {"date": "Date", "close": "Close", **parse_column_map(price_columns)}
    extra = extra_columns(target, {**mapping, "range_close": mapping["close"]})
    return load_prices(Path(prices_path), mapping["date"], mapping["close"], extra, target)


def evaluate_signal_history(signals: pl.DataFrame, symbol: str, settings: EvaluationSettings) -> dict[str, Any]:
    """Judge ``signals`` of ``symbol`` against the closes in ``settings.prices_path`` (next-session
    returns, no look-ahead); write the HTML report and its data under ``settings.out_dir``; return
    the summary."""
    prices = read_single_prices(settings.prices_path, settings.price_columns, settings.target)
    history = rolling_features(with_history(with_empty_sessions(signals, symbol, settings.exchange)), settings.window)
    target = location(settings.out_dir)
    # Reports are written on a local disk; for an object-store target they are uploaded after.
    out = target if isinstance(target, Path) else Path(tempfile.mkdtemp(prefix="tweet-signals-report-"))
    out.mkdir(parents=True, exist_ok=True)
    history.write_parquet(out / "signal_history.parquet")
    aligned = align_next_return(
        history, prices, settings.signal_column, settings.min_posts, keep_gaps=True, target=settings.target
    )
    evaluation = evaluate_signal(
        aligned,
        settings.threshold,
        settings.cost_bps,
        settings.min_sessions,
        z_window=settings.window,
        signal_column=settings.signal_column,
        target=settings.target,
    )
    context = {
        "symbol": symbol,
        "exchange": settings.exchange,
        "prices": Path(settings.prices_path).name,
        "signal column": settings.signal_column,
        "sessions with posts": int(history.filter(pl.col("n_posts") > 0).height),
        f"sessions with fewer than {settings.min_posts} posts (left out)": int(
            history.filter((pl.col("n_posts") > 0) & (pl.col("n_posts") < settings.min_posts)).height
        ),
        "first session": str(history["session"].min()) if history.height else "-",
        "last session": str(history["session"].max()) if history.height else "-",
        "model": str(history["model_id"].drop_nulls().first()) if history.height else "-",
    }
    report: AnyPath = write_report(out, symbol, aligned, evaluation, context)
    if not isinstance(target, Path):
        for produced in sorted(out.rglob("*")):
            if produced.is_file():
                publish(produced, target / produced.relative_to(out).as_posix())
        report = target / report.name
    summary = evaluation.as_dict()
    summary.get("strategy", {}).pop("equity", None)
    summary.get("strategy", {}).pop("buy_and_hold", None)
    warnings = engagement_warnings(settings.signal_column)
    if warnings:
        summary["verdict"] += " " + " ".join(f"Warning: {w}" for w in warnings)
    extra: dict[str, Any] = {"warnings": warnings, "target_definition": definition(settings.target)}
    if settings.movement is not None:
        up, down = settings.movement
        calls = aligned.select(pl.lit(symbol).alias("symbol"), "session", "signal", "next_return")
        extra["movement"] = json_ready(movement_figures(calls, up, down, settings.window))
    return {"report": str(report), "symbol": symbol, **summary, **extra}


def evaluate_signal_panel(
    signals: pl.DataFrame, panel: dict[str, pl.DataFrame], prices_dir: str, out_dir: str, settings: PanelSettings
) -> dict[str, Any]:
    """Judge every symbol present in both ``signals`` and the price ``panel`` (``load_price_panel``
    of ``prices_dir``) at once (see ``panel``); write the tear sheet and its data under ``out_dir``;
    return the summary (JSON-ready)."""
    wanted = set(signals["symbol"].unique().to_list()) if signals.height else set()
    if settings.benchmark:
        wanted.add(settings.benchmark)
    present = {s: p for s, p in panel.items() if s in wanted}
    if not (present.keys() - {settings.benchmark}):
        raise ValueError(
            f"no symbol has both posts and a price file: prices for {', '.join(sorted(panel)[:10])}"
            f"{' …' if len(panel) > 10 else ''}; posts for {', '.join(sorted(wanted)[:10]) or 'none'}"
        )
    returns = forward_returns(present, settings.horizons, settings.benchmark, settings.target)
    result = evaluate_composite(signals, returns, settings)  # evaluate_panel, or of the composite
    result["tear_sheet"] = tear_sheet(result["_frame"], settings)  # the figures beyond IC and quantile means
    target = location(out_dir)
    out = target if isinstance(target, Path) else Path(tempfile.mkdtemp(prefix="tweet-signals-report-"))
    out.mkdir(parents=True, exist_ok=True)
    result["_frame"].write_parquet(out / "panel.parquet")
    context = {
        "prices": prices_dir,
        "symbols with prices": len(panel),
        "symbols with posts and prices": result["n_symbols"],
        "first session": str(result["_frame"]["session"].min()),
        "last session": str(result["_frame"]["session"].max()),
        "model": str(signals["model_id"].drop_nulls().first())
        if "model_id" in signals.columns and signals.height
        else "-",
    }
    report: AnyPath = write_panel_report(out, result, context)
    summary = json_ready({k: v for k, v in result.items() if not k.startswith("_")})
    (out / "evaluation.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if not isinstance(target, Path):
        for produced in sorted(out.rglob("*")):
            if produced.is_file():
                publish(produced, target / produced.relative_to(out).as_posix())
        report = target / report.name
    return {"report": str(report), **summary}
