"""Evaluate a symbol's signal against daily closes and write the report (a Prefect flow)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from tweet_signals.eval_report import write_report
from tweet_signals.evaluation import align_next_return, evaluate_signal, load_prices, rolling_features
from tweet_signals.sessions import sessions_between
from tweet_signals.signals import SIGNALS_SCHEMA
from tweet_signals.storage import AnyPath, glob, link, location, publish, uri


def stored_signals(data_root: AnyPath, symbol: str, until: date | None = None) -> pl.DataFrame:
    """A symbol's signals from every stored session (up to ``until``)."""
    parts = glob(data_root, "signals/date=*/signals.parquet")
    if until is not None:
        parts = [p for p in parts if date.fromisoformat(p.parent.name.removeprefix("date=")) <= until]
    frames = [pl.read_parquet(uri(p)).filter(pl.col("symbol") == symbol) for p in parts]
    return pl.concat(frames) if frames else pl.DataFrame(schema=SIGNALS_SCHEMA)


def signals_from_file(path: Path, columns: str | None, symbol: str, model: str, exchange: str) -> pl.DataFrame:
    """Read, dedupe and analyze a whole posts file; signals per session for ``symbol``."""
    from tweet_signals.api import analyze_posts, signals_from_posts
    from tweet_signals.dedupe import dedupe_posts
    from tweet_signals.sources.files import parse_column_map, read_posts
    from tweet_signals.symbols import alias_map

    read = read_posts(path, parse_column_map(columns))
    if read.posts.is_empty():
        raise ValueError(f"no usable posts in {path} ({read.quarantine.height} quarantined)")
    clean, _ = dedupe_posts(read.posts, alias_map([symbol]))
    analyzed = analyze_posts(clean, model=model, workers=1)
    return signals_from_posts(analyzed, [symbol], exchange=exchange)


def with_empty_sessions(signals: pl.DataFrame, symbol: str, exchange: str) -> pl.DataFrame:
    """Sessions without posts become explicit rows with zero posts (not gaps)."""
    if signals.is_empty():
        return signals
    sessions = sessions_between(signals["session"].min(), signals["session"].max(), exchange)  # type: ignore[arg-type]
    frame = pl.DataFrame(
        {"session": sessions, "symbol": [symbol] * len(sessions)}, schema={"session": pl.Date, "symbol": pl.String}
    )
    out = frame.join(signals, on=["session", "symbol"], how="left")
    return out.with_columns(pl.col("n_posts", "n_bullish", "n_bearish", "n_neutral").fill_null(0)).select(
        list(SIGNALS_SCHEMA)
    )


@task(name="evaluate-signal")
def evaluate_task(
    signals: pl.DataFrame,
    symbol: str,
    prices_path: str,
    price_columns: str,
    out_dir: str,
    exchange: str,
    threshold: float,
    cost_bps: float,
    min_sessions: int,
    window: int,
) -> dict[str, Any]:
    from tweet_signals.sources.files import parse_column_map

    mapping = {"date": "Date", "close": "Close", **parse_column_map(price_columns)}
    prices = load_prices(Path(prices_path), mapping["date"], mapping["close"])
    history = rolling_features(with_empty_sessions(signals, symbol, exchange), window)
    target = location(out_dir)
    # Reports are written on a local disk; for an object-store target they are uploaded after.
    out = target if isinstance(target, Path) else Path(tempfile.mkdtemp(prefix="tweet-signals-report-"))
    out.mkdir(parents=True, exist_ok=True)
    history.write_parquet(out / "signal_history.parquet")
    aligned = align_next_return(history, prices)
    evaluation = evaluate_signal(aligned, threshold, cost_bps, min_sessions)
    context = {
        "symbol": symbol,
        "exchange": exchange,
        "prices": Path(prices_path).name,
        "sessions with a signal": int(history.filter(pl.col("n_posts") > 0).height),
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
    create_markdown_artifact(
        f"# Signal evaluation: {symbol}\n\n{evaluation.verdict}\n\nReport: [{report.name}]({link(report)})",
        key=f"evaluation-{symbol.lower()}",
        description="signal vs prices",
    )
    return {"report": str(report), "symbol": symbol, **summary}


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
) -> dict[str, Any]:
    """Signals from stored runs (``data_root``) or straight from a posts file (``input``)."""
    symbol = symbol.upper()
    if input:
        signals = signals_from_file(Path(input), columns, symbol, model, exchange)
    elif data_root:
        signals = stored_signals(location(data_root), symbol, until)
    else:
        raise ValueError("give data_root (stored signals) or input (a posts file)")
    target = out_dir or str(location(data_root or ".") / "reports" / symbol.lower())
    return evaluate_task(
        signals, symbol, prices, price_columns, target, exchange, threshold, cost_bps, min_sessions, window
    )
