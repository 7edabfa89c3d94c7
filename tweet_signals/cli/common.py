"""What every command shares: the console, clear failures, running a flow, the summary tables."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tweet_signals.faults import api_line, api_unreachable
from tweet_signals.model.base import ModelUnavailableError

console = Console(stderr=True, width=None if sys.stderr.isatty() else 130)


def quiet_prefect(verbose: bool) -> None:
    """Prefect's own logs only with --verbose; the pipeline's progress lines always; tracebacks
    and Prefect's records in the log file (``cli/logs.py``). Call it before Prefect is imported:
    its logging is set up on import, in this process and in every worker process it spawns."""
    import logging

    from rich.logging import RichHandler

    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(Path(__file__).with_name("logging.yml")))
    os.environ["TWEET_SIGNALS_VERBOSE"] = "1" if verbose else "0"

    progress = logging.getLogger("tweet_signals.progress")
    progress.setLevel(logging.INFO)
    progress.addHandler(RichHandler(console=console, show_path=False, show_level=False))
    progress.propagate = False
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, whatever its length
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


# What systemd, Docker, Kubernetes, a Prefect worker's cancellation, Ctrl-C and a closed terminal
# send; each stops a run the same way, and the command exits 128 + the signal's number.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def run_flow(fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any, str]:
    """Run a flow against a Prefect API; return (ok, result, message) instead of raising.

    A stop signal or the API going away ends the command here with one line (see ``_stopped``
    and ``_api_gone``); the flow has already recorded in the manifest where it stopped.
    """
    import signal

    from tweet_signals.prefect_local import prefect_api

    received: list[int] = []

    def on_stop(signum: int, frame: object) -> None:
        if received:  # a second signal while stopping: stop now
            _stopped(signum, hard=True)
        received.append(signum)
        raise KeyboardInterrupt

    for name in STOP_SIGNALS:
        # The flow engine swaps SIGTERM for its own handler while the flow runs and passes the
        # signal back to this one when the flow has unwound (``prefect.utilities.engine.capture_sigterm``).
        signal.signal(getattr(signal, name), on_stop)
    api_url = ""
    try:
        with prefect_api() as api_url:
            state = fn(*args, return_state=True, **kwargs)
            try:
                result = state.result(raise_on_failure=False)
            except Exception as exc:  # the result itself failed to load
                result = exc
    except BaseException as exc:
        # Ctrl-C reaches the temporary API server too (same process group), so what follows an
        # interrupt is a cascade of connection errors: report the interrupt, not them.
        if received:
            _stopped(received[0])
        if isinstance(exc, Exception) and api_unreachable(exc):
            _api_gone(api_url, exc)
        raise
    if isinstance(result, ModelUnavailableError):
        fail(str(result))
    if state.is_completed():
        return True, result, state.message or ""
    if isinstance(result, BaseException):
        return False, getattr(result, "data", None), f"{type(result).__name__}: {result}"
    return False, result, state.message or state.name


def stop_children(grace_s: float = 5.0) -> None:
    """Stop every process this one started and that still runs (pool workers, a temporary API
    server, the server's guard): SIGTERM, then SIGKILL after ``grace_s``."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _exit_now(code: int) -> None:
    """Exit without the interpreter's exit handlers: they would flush logs to an API server that
    is stopped or gone, and wait on pool queues whose workers were killed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stopped(signum: int, hard: bool = False) -> None:
    import signal

    stop_children(grace_s=0 if hard else 5.0)
    name = signal.Signals(signum).name
    console.print(
        f"[bold]interrupted[/] ({name}): workers stopped; the manifest says interrupted; finished chunks "
        "are kept; run the same command again to continue",
        soft_wrap=True,
    )
    _exit_now(128 + signum)


def _api_gone(api_url: str, exc: BaseException) -> None:
    import logging

    from tweet_signals.cli.logs import DETAIL, log_file
    from tweet_signals.flows.progress import current_stage

    logging.getLogger(DETAIL).error("the Prefect API went away", exc_info=exc)
    stop_children()
    line = api_line(api_url or "configured", current_stage())
    console.print(f"[bold red]error:[/] {line} (details: {log_file()})", soft_wrap=True)
    _exit_now(1)


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
