"""The ``tweet-signals`` command line: thin wrappers that run the Prefect flows for humans."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tweet_signals.analyzers.base import ModelUnavailableError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Market signals from what traders post.")
console = Console(stderr=True, width=None if sys.stderr.isatty() else 130)

DEMO_SESSIONS = (date(2026, 1, 5), date(2026, 1, 9))  # five NSE sessions, Mon-Fri

DataRoot = Annotated[str, typer.Option("--data-root", help="Root folder of all outputs")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")]
Workers = Annotated[str, typer.Option("--workers", help="Analyzer worker processes, or 'auto'")]


def _quiet_prefect(verbose: bool) -> None:
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


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _workers(value: str) -> int | str:
    return "auto" if value == "auto" else int(value)


def _run_flow(fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any, str]:
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
        _fail(str(result))
    if state.is_completed():
        return True, result, state.message or ""
    if isinstance(result, BaseException):
        return False, getattr(result, "data", None), f"{type(result).__name__}: {result}"
    return False, result, state.message or state.name


def _summary_table(manifests: list[dict[str, Any]]) -> Table:
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


def _signals_table(paths: list[str]) -> Table:
    import polars as pl

    frame = pl.concat([pl.read_parquet(p) for p in paths]).sort(["session", "symbol"])
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
    for col in cols:
        table.add_column(col, justify="right")
    for row in frame.iter_rows(named=True):
        table.add_row(*(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    return table


def _report(manifests: list[dict[str, Any]], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        out = {"runs": manifests, **(extra or {})}
        sys.stdout.write(json.dumps(out, default=str) + "\n")
        return
    console.print(_summary_table(manifests))
    paths = [m["signals"]["path"] for m in manifests if m.get("signals")]
    if paths:
        console.print(_signals_table(paths))
        from tweet_signals.storage import location

        root = location(paths[0]).parent.parent.parent
        console.print(f"outputs under [bold]{root}[/]: raw/ clean/ tfidf/ analyzed/ signals/ runs/ (date=YYYY-MM-DD)")


def _params(**fields: Any) -> Any:
    """Validated flow parameters; the model is checked here too, so a missing model is one
    clear paragraph (the flow checks again for runs started from a deployment)."""
    from pydantic import ValidationError

    from tweet_signals.analyzers.loader import check_model_available
    from tweet_signals.params import SignalsParams

    try:
        params = SignalsParams(**{k: v for k, v in fields.items() if v is not None})
        check_model_available(params.model)
    except ValidationError as exc:
        _fail(str(exc))
    except ModelUnavailableError as exc:
        _fail(str(exc))
    return params


@app.command()
def demo(
    data_root: DataRoot = "data/demo",
    workers: Workers = "auto",
    posts_per_session: Annotated[int, typer.Option(help="Synthetic posts per session")] = 2500,
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Full offline run on generated sample data (five sessions) with the embedded model."""
    _quiet_prefect(verbose)
    from flows.backfill import backfill_signals

    params = _params(
        source="synthetic",
        model="embedded",
        data_root=data_root,
        workers=_workers(workers),
        synthetic_posts=posts_per_session,
        chunk_size=1000,
    )
    ok, report, message = _run_flow(backfill_signals, DEMO_SESSIONS[0], DEMO_SESSIONS[1], params)
    _finish_backfill(ok, report, message, params.data_root, as_json)


def _finish_backfill(ok: bool, report: Any, message: str, data_root: str, as_json: bool) -> None:
    from tweet_signals.storage import Storage, read_json

    report = report if isinstance(report, dict) else {}
    dates = sorted([*report.get("completed", []), *report.get("skipped", []), *report.get("failed", {})])
    manifests = [m for d in dates if (m := read_json(Storage.at(data_root).manifest(date.fromisoformat(d))))]
    _report(manifests, as_json, {"skipped": report.get("skipped", []), "failed": report.get("failed", {})})
    if not ok:
        _fail(message, 1)


@app.command()
def run(
    run_date: Annotated[str, typer.Option("--date", help="Trading session, YYYY-MM-DD")],
    source: Annotated[str, typer.Option(help="file, x (X API v2) or synthetic")] = "file",
    query: Annotated[list[str] | None, typer.Option("--query", help="Extra X search query (repeatable)")] = None,
    x_base_url: Annotated[
        str | None, typer.Option(help="X API base URL (default TWEET_SIGNALS_X_BASE_URL, else the public API)")
    ] = None,
    x_token_secret: Annotated[str | None, typer.Option(help="Prefect Secret block with the bearer token")] = None,
    x_endpoint: Annotated[str, typer.Option(help="recent or all (full-archive)")] = "recent",
    x_max_posts: Annotated[int, typer.Option(help="Most posts read from the API per run")] = 10_000,
    x_max_requests: Annotated[int, typer.Option(help="Most API requests per run")] = 200,
    input: Annotated[str | None, typer.Option("--input", help="File or directory of posts")] = None,
    columns: Annotated[str | None, typer.Option(help="Column mapping: text=content,created_at=timestamp,...")] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Symbols (repeat, or space-separated)")] = None,
    hashtags: Annotated[list[str] | None, typer.Option(help="Hashtags as the original tool took them")] = None,
    model: Annotated[
        str, typer.Option(help="Hub id, local model dir, or 'embedded'")
    ] = "cardiffnlp/twitter-roberta-base-sentiment-latest",
    workers: Workers = "auto",
    chunk_size: Annotated[int, typer.Option(help="Posts per analyze task")] = 2000,
    task_runner: Annotated[str, typer.Option(help="process (local pool) or dask")] = "process",
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler, tcp://host:8786")] = None,
    dask_workers: Annotated[int, typer.Option(help="Workers of a local Dask cluster")] = 2,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps")] = "auto",
    engine: Annotated[
        str, typer.Option(help="auto, torch-fp32, torch-bf16, torch-int8, onnx-fp32, onnx-int8")
    ] = "auto",
    data_root: DataRoot = "data",
    force: Annotated[bool, typer.Option(help="Recompute every stage")] = False,
    naive_tz: Annotated[str | None, typer.Option(help="Zone for timestamps without one")] = None,
    exchange: Annotated[str, typer.Option(help="Exchange calendar (NSE, NYSE, ...)")] = "NSE",
    keyword_boost_weight: float = 0.2,
    include_engagement: bool = True,
    synthetic_posts: Annotated[int, typer.Option(help="Posts per session (source=synthetic)")] = 2500,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic generator")] = 2026,
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Run the pipeline for one session."""
    _quiet_prefect(verbose)
    from flows.daily_signals import daily_signals
    from tweet_signals.symbols import alias_map, resolve_hashtags

    day = _parse_date(run_date)
    chosen = _split(symbols)
    if hashtags:
        chosen += [
            s
            for s in resolve_hashtags(_split(hashtags), alias_map(chosen or ["NIFTY", "SENSEX", "BANKNIFTY"]))
            if s not in chosen
        ]
    params = _params(
        run_date=day,
        source=source,
        input=input,
        columns=columns,
        symbols=chosen or None,
        model=model,
        workers=_workers(workers),
        chunk_size=chunk_size,
        task_runner=task_runner,
        dask_address=dask_address,
        dask_workers=dask_workers,
        device=device,
        engine=engine,
        data_root=data_root,
        force=force,
        naive_tz=naive_tz,
        exchange=exchange,
        keyword_boost_weight=keyword_boost_weight,
        include_engagement=include_engagement,
        queries=query or None,
        x_base_url=x_base_url,
        x_token_secret=x_token_secret,
        x_endpoint=x_endpoint,
        x_max_posts=x_max_posts,
        x_max_requests=x_max_requests,
        synthetic_posts=synthetic_posts,
        seed=seed,
    )
    ok, result, message = _run_flow(daily_signals, params)
    if ok and isinstance(result, dict) and result.get("status") == "complete":
        _report([result], as_json)
        return
    if ok:  # not a trading session
        _report([], as_json, {"message": message})
        console.print(message)
        return
    from tweet_signals.storage import Storage, read_json

    manifest = read_json(Storage.at(data_root).manifest(day))
    if manifest and manifest.get("status") == "failed":
        _report([manifest], as_json)
    _fail(message, 1)


def _split(values: list[str] | None) -> list[str]:
    return [v for value in values or [] for v in value.replace(",", " ").split()]


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"--date {value!r} is not a date (YYYY-MM-DD)")
        raise


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="First date, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="Last date, YYYY-MM-DD")],
    source: str = "synthetic",
    input: Annotated[str | None, typer.Option("--input")] = None,
    columns: str | None = None,
    symbols: list[str] | None = None,
    model: str = "embedded",
    workers: Workers = "auto",
    chunk_size: int = 2000,
    data_root: DataRoot = "data",
    force: bool = False,
    exchange: str = "NSE",
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Run every trading session in a date range; complete sessions are skipped."""
    _quiet_prefect(verbose)
    from flows.backfill import backfill_signals

    params = _params(
        source=source,
        input=input,
        columns=columns,
        symbols=_split(symbols) or None,
        model=model,
        workers=_workers(workers),
        chunk_size=chunk_size,
        data_root=data_root,
        force=force,
        exchange=exchange,
    )
    ok, report, message = _run_flow(backfill_signals, _parse_date(start), _parse_date(end), params)
    _finish_backfill(ok, report, message, data_root, as_json)


@app.command("train-model")
def train_model_cmd(
    shared_data: Annotated[str | None, typer.Option(help="Folder holding the labelled sets")] = None,
    output: Annotated[str | None, typer.Option(help="Adapter file to write")] = None,
    epochs: int = 4,
    seed: int = 13,
    limit: Annotated[int | None, typer.Option(help="Rows per set (quick smoke runs)")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate (AdamW, linear decay; default: the model card's)")
    ] = None,
    class_weighting: Annotated[
        str, typer.Option(help="How the loss weighs rows: per-set (the default) or pooled (the previous model's)")
    ] = "per-set",
    verbose: bool = True,
) -> None:
    """Fine-tune the embedded model on ../shared/data and write its adapter and model card."""
    _quiet_prefect(verbose)
    from flows.train_model import train_model
    from tweet_signals.analyzers.embedded import ADAPTER_PATH
    from tweet_signals.training import TrainConfig, default_shared_data

    ok, report, message = _run_flow(
        train_model,
        str(shared_data or default_shared_data()),
        str(output or ADAPTER_PATH),
        epochs,
        seed,
        limit,
        TrainConfig.learning_rate if learning_rate is None else learning_rate,
        class_weighting,
    )
    if not ok:
        _fail(message, 1)
    sys.stdout.write(json.dumps(report["held_out"], indent=1) + "\n")


@app.command("evaluate-model")
def evaluate_model(
    texts: Annotated[Path | None, typer.Option(help="One text per line")] = None,
    labels: Annotated[Path | None, typer.Option(help="One label per line, aligned with --texts")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="CSV with a text and a label column")] = None,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Annotated[str | None, typer.Option(help="e.g. 0=negative,1=neutral,2=positive")] = None,
    model: Annotated[str, typer.Option(help="'embedded' or a local Hugging Face model directory")] = "embedded",
    held_out: Annotated[
        str | None, typer.Option(help="general or finance: the embedded model's held-out split in ../shared/data")
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Accuracy, macro recall, macro F1 and the confusion matrix of a model on labelled texts."""
    from tweet_signals.analyzers.base import LABELS
    from tweet_signals.analyzers.loader import AnalyzerConfig, build_analyzer
    from tweet_signals.model_eval import compute_metrics, map_labels, parse_label_map, read_labelled_csv, read_lines

    try:
        if held_out is not None:
            from tweet_signals.training import held_out_set

            split = held_out_set(held_out)
            items, raw = split.texts, [LABELS[y] for y in split.labels]
        elif csv_path is not None:
            items, raw = read_labelled_csv(csv_path, text_column, label_column)
        elif texts is not None and labels is not None:
            items, raw = read_lines(texts), read_lines(labels)
            if len(items) != len(raw):
                _fail(f"{texts} has {len(items)} lines but {labels} has {len(raw)}")
        else:
            _fail(
                "give --texts FILE --labels FILE, --csv FILE --text-column NAME --label-column NAME, "
                "or --held-out general|finance"
            )
        truth = map_labels(raw, parse_label_map(label_map))
        analyzer = build_analyzer(AnalyzerConfig(model=model))
    except (ValueError, OSError, ModelUnavailableError) as exc:
        _fail(str(exc))
    pred = analyzer.predict_proba(items).argmax(axis=1)
    metrics = compute_metrics(truth, pred.tolist())
    if as_json:
        sys.stdout.write(json.dumps({**metrics.as_dict(), "model": analyzer.model_id}) + "\n")
        return
    out = Console(width=None if sys.stdout.isatty() else 130)
    summary = Table(title=f"{analyzer.model_id} on {metrics.n} texts")
    for col in ("accuracy", "macro recall", "macro F1"):
        summary.add_column(col, justify="right")
    summary.add_row(f"{metrics.accuracy:.4f}", f"{metrics.macro_recall:.4f}", f"{metrics.macro_f1:.4f}")
    out.print(summary)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in LABELS:
        confusion.add_column(label, justify="right")
    for label, row in zip(LABELS, metrics.confusion, strict=True):
        confusion.add_row(label, *map(str, row))
    out.print(confusion)


@app.command()
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
    threshold: Annotated[float, typer.Option(help="Long when the signal is above this")] = 0.0,
    cost_bps: Annotated[float, typer.Option(help="Cost per position change, basis points")] = 5.0,
    min_sessions: int = 20,
    as_json: JsonOut = False,
    verbose: bool = False,
) -> None:
    """Judge a signal against next-session returns (no look-ahead) and write an HTML report."""
    _quiet_prefect(verbose)
    from flows.evaluate import evaluate_signals
    from tweet_signals.storage import location

    if input is None and not (location(data_root) / "signals").is_dir():
        _fail(f"no stored signals under {data_root}/signals; run the pipeline first or give --input")
    ok, result, message = _run_flow(
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
    )
    if not ok:
        _fail(message, 1)
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    Console(width=130).print(f"[bold]{result['symbol']}[/]: {result['verdict']}\nreport: {result['report']}")


@app.command()
def benchmark(
    input: Annotated[Path | None, typer.Option("--input", help="Texts, one per line (default: TweetEval val)")] = None,
    n: Annotated[int, typer.Option(help="Texts through each engine")] = 1000,
    loop_n: Annotated[int, typer.Option(help="Texts through the one-per-call loops")] = 200,
    models: Annotated[
        str, typer.Option(help="roberta-base and/or embedded, comma-separated")
    ] = "roberta-base,embedded",
    engines: Annotated[str, typer.Option(help="Engines, comma-separated")] = ",".join(
        ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8")
    ),
    workers: Annotated[str, typer.Option(help="Worker counts, comma-separated (scale runs: the last one)")] = "1,2",
    device: Annotated[str, typer.Option(help="cpu or cuda (every row runs there)")] = "cpu",
    bare: Annotated[bool, typer.Option(help="Also time the model alone on the same batches")] = False,
    warm: Annotated[
        bool, typer.Option(help="Also time each stage on workers that loaded their model before the clock")
    ] = False,
    pool_workers: Annotated[int, typer.Option(help="Processes of the one-per-call pool (0: cores)")] = 0,
    tokenizer: Annotated[
        Path | None, typer.Option(help="Tokenizer dir for the random RoBERTa (default: the packaged MiniLM one)")
    ] = None,
    scale: Annotated[bool, typer.Option(help="Run the whole pipeline at --sizes posts instead")] = False,
    sizes: Annotated[str, typer.Option(help="Posts per scale run, comma-separated")] = "100000,300000,1000000",
    model: Annotated[str, typer.Option(help="Scale runs: embedded, roberta-base (random) or a model dir")] = "embedded",
    engine: Annotated[str, typer.Option(help="Scale runs: engine")] = "auto",
    chunk_size: Annotated[int, typer.Option(help="Scale runs: posts per analyze task")] = 5000,
    task_overhead: Annotated[bool, typer.Option(help="Scale runs: also time no-op tasks on the pool")] = True,
    features: Annotated[
        bool, typer.Option(help="Time the model-independent columns instead: Python rules vs vectorised")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """Our analyze stage per engine vs the one-tweet-per-call loop, measured in the same run;
    or, with --scale, the whole pipeline at growing sizes."""
    if scale:
        _scale_benchmark(sizes, model, device, engine, workers, chunk_size, tokenizer, task_overhead, as_json)
        return
    if features:
        from datetime import date as day

        from tweet_signals.benchmark import feature_rates
        from tweet_signals.sources.synthetic import generate_posts

        rates = feature_rates([r["text"] for r in generate_posts(day(2026, 1, 7), n)])
        if as_json:
            sys.stdout.write(json.dumps({"n": n, "rows": rates}) + "\n")
            return
        feature_table = Table(title=f"keyword boost + engagement + TF-IDF relevance, {n} generated posts")
        for col in rates[0]:
            feature_table.add_column(col, justify="right")
        for rate in rates:
            feature_table.add_row(*map(str, rate.values()))
        Console().print(feature_table)
        return
    from dataclasses import asdict

    from tweet_signals.benchmark import run_benchmark
    from tweet_signals.model_eval import read_lines
    from tweet_signals.training import default_shared_data

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    default = default_shared_data() / "tweeteval-sentiment-val" / "val_text.txt"
    if input is not None:
        texts = read_lines(input)
    elif default.is_file():
        texts = read_lines(default)
    else:
        from datetime import date as day

        from tweet_signals.sources.synthetic import generate_posts

        texts = [r["text"] for r in generate_posts(day(2026, 1, 7), n)]
    texts = (texts * (n // max(1, len(texts)) + 1))[:n]
    rows = run_benchmark(
        texts,
        _split([models]),
        _split([engines]),
        [int(w) for w in _split([workers])],
        loop_n,
        progress=lambda row: console.print(f"measured {row}"),
        device=device,
        bare=bare,
        pool_workers=pool_workers,
        tokenizer_dir=tokenizer,
        warm=warm,
    )
    if as_json:
        sys.stdout.write(json.dumps({"n": n, "loop_n": loop_n, "rows": [asdict(r) for r in rows]}) + "\n")
        return
    table = Table(
        title=f"analyze throughput ({n} texts; loops on {loop_n}); roberta-base has random weights: speed only"
    )
    cols = (
        "model",
        "kind",
        "engine",
        "device",
        "workers",
        "tweets_per_s",
        "speedup_vs_baseline",
        "share_of_bare",
        "peak_rss_mb_per_worker",
        "label_agreement",
        "max_prob_diff",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*("-" if getattr(row, c) is None else str(getattr(row, c)) for c in cols))
    Console(width=160).print(table)


def _scale_benchmark(
    sizes: str,
    model: str,
    device: str,
    engine: str,
    workers: str,
    chunk_size: int,
    tokenizer: Path | None,
    task_overhead: bool,
    as_json: bool,
) -> None:
    from dataclasses import asdict

    from tweet_signals.scale import measure_task_overhead, run_scale

    _quiet_prefect(False)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    worker_counts = _split([workers])
    try:
        rows = run_scale(
            [int(n) for n in _split([sizes])],
            model=model,
            device=device,
            engine=engine,
            workers=worker_counts[-1] if worker_counts else "auto",
            chunk_size=chunk_size,
            tokenizer_dir=tokenizer,
            progress=lambda row: console.print(f"measured {row}"),
        )
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc), 1)
        return
    overhead = measure_task_overhead(200, 2) if task_overhead else None
    if as_json:
        sys.stdout.write(json.dumps({"rows": [asdict(r) for r in rows], "task_overhead": overhead}) + "\n")
        return
    if overhead:
        console.print(
            f"process-pool task overhead (200 no-op tasks, 2 workers): pool start {overhead['pool_start_s']} s, "
            f"{overhead['per_task_ms']} ms per task"
        )
    table = Table(title=f"whole pipeline per size ({model}, {device}); seconds per stage")
    cols = tuple(asdict(rows[0])) if rows else ()
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in asdict(row).values()))
    Console(width=220).print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
