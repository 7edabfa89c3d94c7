"""``evaluate``: judge a signal against next-session returns and write an HTML report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tweet_signals.cli.common import fail, quiet_prefect, run_flow, write_json

DataRoot = Annotated[str, typer.Option("--data-root", help="Root folder of all outputs")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")]


def evaluate(
    prices: Annotated[Path | None, typer.Option(help="Daily closes CSV of --symbol (one series)")] = None,
    prices_dir: Annotated[
        Path | None,
        typer.Option(help="Panel mode: a folder of <SYMBOL>.csv (Date, Adj Close or Close); every symbol with posts"),
    ] = None,
    symbol: Annotated[str, typer.Option(help="Symbol to judge (ALL: every post)")] = "NIFTY",
    data_root: DataRoot = "data",
    input: Annotated[
        str | None, typer.Option("--input", help="Posts file to analyze instead of stored signals")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="Column mapping of --input")] = None,
    model: str = "embedded",
    exchange: str = "NSE",
    price_columns: Annotated[str, typer.Option(help="date=COLUMN,close=COLUMN")] = "date=Date,close=Close",
    out: Annotated[str | None, typer.Option(help="Report folder (default DATA_ROOT/reports/SYMBOL)")] = None,
    threshold: Annotated[
        float, typer.Option(help="Long when the signal's z-score against its previous --window sessions is above this")
    ] = 0.0,
    cost_bps: Annotated[float, typer.Option(help="Cost per position change, basis points")] = 5.0,
    min_sessions: Annotated[int, typer.Option(help="Fewer sessions with a signal: no figures, 'not enough data'")] = 20,
    window: Annotated[int, typer.Option(help="Sessions of the trailing z-scores (features, strategy)")] = 20,
    signal_column: Annotated[
        str, typer.Option(help="Column judged: weighted_score, mean_score, bullishness, score_z, volume_z, ...")
    ] = "weighted_score",
    min_posts: Annotated[int, typer.Option(help="Sessions with fewer posts carry no signal (gaps)")] = 5,
    naive_tz: Annotated[str | None, typer.Option(help="Zone of --input timestamps without one (e.g. UTC)")] = None,
    date_only: Annotated[
        str, typer.Option(help="--input posts with a date and no time: quarantine, or next-session (no look-ahead)")
    ] = "quarantine",
    workers: Annotated[int, typer.Option(help="Analyzer worker processes for --input")] = 1,
    horizons: Annotated[str, typer.Option(help="Panel: forward-return horizons in sessions")] = "1,5,10,20",
    quantiles: Annotated[int, typer.Option(help="Panel: signal quantiles per session (5: quintiles)")] = 5,
    benchmark: Annotated[
        str | None, typer.Option(help="Panel: the index's symbol in --prices-dir; returns become market-relative")
    ] = None,
    symbol_column: Annotated[
        str | None, typer.Option(help="Panel: the posts' own ticker column (else symbols come from the text)")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Panel: YYYY-MM-DD; fit on sessions before it, report both parts side by side")
    ] = None,
    min_symbols: Annotated[
        int | None,
        typer.Option(
            help="Panel: symbols a session needs to enter the cross-section (default: 5, or --quantiles if more)"
        ),
    ] = None,
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Judge a signal against next-session returns (no look-ahead) and write an HTML report."""
    quiet_prefect(verbose)
    from flows.evaluate import evaluate_panel_signals, evaluate_signals
    from tweet_signals.storage import Storage

    if (prices is None) == (prices_dir is None):
        fail("give --prices FILE (one symbol) or --prices-dir FOLDER (every symbol with a price file), not both")
    if input is None and not Storage.at(data_root).partitions("signals", "signals.parquet"):
        fail(f"no stored signals under {data_root}/signals; run the pipeline first or give --input")
    if prices_dir is not None:
        from datetime import date

        try:
            split_date = date.fromisoformat(split) if split else None
        except ValueError:
            fail(f"--split {split!r}: give a date as YYYY-MM-DD", 2)
        ok, result, message = run_flow(
            evaluate_panel_signals,
            str(prices_dir),
            data_root,
            input,
            columns,
            model,
            exchange,
            out,
            horizons,
            quantiles,
            benchmark,
            symbol_column,
            split_date,
            None,
            threshold,
            cost_bps,
            min_sessions,
            window,
            signal_column,
            min_posts,
            min_symbols,
            naive_tz,
            date_only,
            workers,
        )
        _finish(ok, result, message, as_json, lambda r: f"{r['n_symbols']} symbol{'' if r['n_symbols'] == 1 else 's'}")
        return
    if split is not None:
        fail("--split needs --prices-dir (panel mode)", 2)
    ok, result, message = run_flow(
        evaluate_signals,
        str(prices),
        symbol,
        data_root,
        input,
        columns,
        model,
        exchange,
        price_columns,
        out,
        threshold,
        cost_bps,
        min_sessions,
        window,
        None,
        signal_column,
        min_posts,
        naive_tz,
        date_only,
        workers,
    )
    _finish(ok, result, message, as_json, lambda r: str(r["symbol"]))


def _finish(ok: bool, result: Any, message: str, as_json: bool, headline: Callable[[dict[str, Any]], str]) -> None:
    """The flow's outcome: exit 2 for bad input (1 otherwise), else the JSON or the verdict."""
    from flows.evaluate import BAD_INPUT

    if not ok:
        fail(message, 2 if message.startswith(BAD_INPUT) else 1)
    if as_json:
        write_json(result)
        return
    Console(width=130).print(f"[bold]{headline(result)}[/]: {result['verdict']}\nreport: {result['report']}")


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
