"""``evaluate``: judge a signal against next-session returns and write an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tweet_signals.cli.common import fail, quiet_prefect, run_flow, write_json

DataRoot = Annotated[str, typer.Option("--data-root", help="Root folder of all outputs")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")]


def evaluate(
    prices: Annotated[Path, typer.Option(help="Daily closes CSV")],
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
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Judge a signal against next-session returns (no look-ahead) and write an HTML report."""
    quiet_prefect(verbose)
    from flows.evaluate import BAD_INPUT, evaluate_signals
    from tweet_signals.storage import Storage

    if input is None and not Storage.at(data_root).partitions("signals", "signals.parquet"):
        fail(f"no stored signals under {data_root}/signals; run the pipeline first or give --input")
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
    if not ok:
        fail(message, 2 if message.startswith(BAD_INPUT) else 1)
    if as_json:
        write_json(result)
        return
    Console(width=130).print(f"[bold]{result['symbol']}[/]: {result['verdict']}\nreport: {result['report']}")


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
