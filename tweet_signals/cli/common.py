"""What every command shares: the console, clear failures, running a flow, the summary tables."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tweet_signals.model.base import ModelUnavailableError

console = Console(stderr=True, width=None if sys.stderr.isatty() else 130)


def quiet_prefect(verbose: bool) -> None:
    """Prefect's own logs only with --verbose; the pipeline's progress lines always."""
    import logging

    from rich.logging import RichHandler

    progress = logging.getLogger("tweet_signals.progress")
    progress.setLevel(logging.INFO)
    progress.addHandler(RichHandler(console=console, show_path=False, show_level=False))
    progress.propagate = False
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def split(values: list[str] | None) -> list[str]:
    """Repeated or comma/space-separated values as one list."""
    return [v for value in values or [] for v in value.replace(",", " ").split()]


def parse_date(value: str, option: str = "--date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")
        raise


def write_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def run_flow(fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any, str]:
    """Run a flow against a Prefect API; return (ok, result, message) instead of raising."""
    import signal

    from tweet_signals.prefect_local import prefect_api

    interrupted = False

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        with prefect_api():
            state = fn(*args, return_state=True, **kwargs)
            try:
                result = state.result(raise_on_failure=False)
            except Exception as exc:  # the result itself failed to load
                result = exc
    except BaseException:
        # Ctrl-C reaches the temporary API server too (same process group), so what follows an
        # interrupt is a cascade of connection errors: report the interrupt, not them.
        if not interrupted:
            raise
        console.print("[bold]interrupted[/]: finished chunks are kept; run the same command again to continue")
        sys.stderr.flush()
        os._exit(130)  # skip exit handlers that would flush logs to the stopped server
    if isinstance(result, ModelUnavailableError):
        fail(str(result))
    if state.is_completed():
        return True, result, state.message or ""
    if isinstance(result, BaseException):
        return False, getattr(result, "data", None), f"{type(result).__name__}: {result}"
    return False, result, state.message or state.name


def summary_table(manifests: list[dict[str, Any]]) -> Table:
    table = Table(title="tweet-signals run summary")
    for col in ("session", "status", "posts in", "clean", "chunks computed/reused", "tweets/s", "signals"):
        table.add_column(col, justify="right")
    for m in manifests:
        a = m.get("analyze", {})
        table.add_row(
            m["run_date"],
            m["status"],
            str(m.get("collect", {}).get("records_in", "-")),
            str(m.get("dedupe", {}).get("posts_out", "-")),
            f"{a.get('computed', 0)}/{a.get('reused', 0)}",
            str(a.get("tweets_per_s") or "-"),
            str(m.get("signals", {}).get("rows", "-")),
        )
    return table


def signals_table(paths: list[str]) -> Table:
    import polars as pl

    from tweet_signals.stages.summary import attention_text

    frame = pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed").sort(["session", "symbol"])
    table = Table(title="signals")
    cols = (
        "session",
        "symbol",
        "n_posts",
        "n_bullish",
        "n_bearish",
        "weighted_score",
        "bullishness",
        "agreement",
        "signal",
    )
    for col in (*cols, "attention"):
        table.add_column(col, justify="right")
    for row in frame.iter_rows(named=True):
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        table.add_row(*cells, attention_text(row.get("attention_z")))
    return table


def report(manifests: list[dict[str, Any]], as_json: bool, data_root: str, extra: dict[str, Any] | None = None) -> None:
    """The runs as one JSON object, or the summary and signals tables."""
    if as_json:
        write_json({"runs": manifests, **(extra or {})})
        return
    console.print(summary_table(manifests))
    paths = [m["signals"]["path"] for m in manifests if m.get("signals")]
    if paths:
        console.print(signals_table(paths))
        console.print(
            f"outputs under [bold]{data_root}[/]: raw/ clean/ tfidf/ analyzed/ signals/ runs/ (date=YYYY-MM-DD)"
        )
