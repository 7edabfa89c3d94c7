"""``benchmark``: speed figures as ratios against a baseline measured in the same run.

``benchmark`` with no subcommand is ``benchmark engines``; ``benchmark --scale ...`` and
``benchmark --features ...`` still reach the other two.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from tweet_signals.cli.common import console, fail, quiet_prefect, split, write_json
from tweet_signals.model.engines.build import ENGINES

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")]
Device = Annotated[str, typer.Option(help="cpu or cuda (every row runs there)")]
Tokenizer = Annotated[
    Path | None, typer.Option(help="Tokenizer dir for the random RoBERTa (default: the packaged MiniLM one)")
]


class BenchmarkGroup(TyperGroup):
    """Routes the flag-style calls (``benchmark --scale ...``) to the matching subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h")):
            for legacy, command in (("--scale", "scale"), ("--features", "features")):
                if legacy in args:
                    args = [command, *(a for a in args if a != legacy)]
                    break
            else:
                args = ["engines", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(cls=BenchmarkGroup, help="Speed of the analyze stage, the whole pipeline, or the features.")


def _print_rows(title: str, rows: list[dict[str, Any]], cols: tuple[str, ...] | None = None, width: int = 160) -> None:
    table = Table(title=title)
    cols = cols or (tuple(rows[0]) if rows else ())
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row[c]) for c in cols))
    Console(width=width).print(table)


def _texts(input: Path | None, n: int) -> list[str]:
    """``n`` texts: the given file, else the TweetEval validation texts, else generated posts."""
    from tweet_signals.sources.synthetic import generate_posts
    from tweet_signals.training.metrics import read_lines
    from tweet_signals.training.trainer import default_shared_data

    default = default_shared_data() / "tweeteval-sentiment-val" / "val_text.txt"
    if input is not None:
        texts = read_lines(input)
    elif default.is_file():
        texts = read_lines(default)
    else:
        texts = [r["text"] for r in generate_posts(date(2026, 1, 7), n)]
    return (texts * (n // max(1, len(texts)) + 1))[:n]


@bench_app.command("engines")
def engines(
    input: Annotated[Path | None, typer.Option("--input", help="Texts, one per line (default: TweetEval val)")] = None,
    n: Annotated[int, typer.Option(help="Texts through each engine")] = 1000,
    loop_n: Annotated[int, typer.Option(help="Texts through the one-per-call loops")] = 200,
    models: Annotated[
        str, typer.Option(help="roberta-base and/or embedded, comma-separated")
    ] = "roberta-base,embedded",
    engines: Annotated[str, typer.Option(help="Engines, comma-separated")] = ",".join(ENGINES),
    workers: Annotated[str, typer.Option(help="Worker counts, comma-separated")] = "1,2",
    device: Device = "cpu",
    bare: Annotated[bool, typer.Option(help="Also time the model alone on the same batches")] = False,
    warm: Annotated[
        bool, typer.Option(help="Also time each stage on workers that loaded their model before the clock")
    ] = False,
    pool_workers: Annotated[int, typer.Option(help="Processes of the one-per-call pool (0: cores)")] = 0,
    tokenizer: Tokenizer = None,
    as_json: JsonOut = False,
) -> None:
    """Our analyze stage per engine vs the one-tweet-per-call loop, measured in the same run."""
    from tweet_signals.bench.engines import run_benchmark

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = _texts(input, n)
    rows = run_benchmark(
        texts,
        split([models]),
        split([engines]),
        [int(w) for w in split([workers])],
        loop_n,
        progress=lambda row: console.print(f"measured {row}"),
        device=device,
        bare=bare,
        pool_workers=pool_workers,
        tokenizer_dir=tokenizer,
        warm=warm,
    )
    if as_json:
        write_json({"n": n, "loop_n": loop_n, "rows": [asdict(r) for r in rows]})
        return
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
        "load_s",
    )
    title = f"analyze throughput ({n} texts; loops on {loop_n}); roberta-base has random weights: speed only"
    _print_rows(title, [asdict(r) for r in rows], cols)


@bench_app.command("scale")
def scale(
    sizes: Annotated[str, typer.Option(help="Posts per run, comma-separated")] = "100000,300000,1000000",
    model: Annotated[str, typer.Option(help="embedded, roberta-base (random) or a model dir")] = "embedded",
    device: Device = "cpu",
    engine: Annotated[str, typer.Option(help="Engine (auto: the fastest that passes the fidelity gate)")] = "auto",
    workers: Annotated[str, typer.Option(help="Analyze workers (the last of a comma-separated list)")] = "auto",
    chunk_size: Annotated[int, typer.Option(help="Posts per analyze task")] = 5000,
    tokenizer: Tokenizer = None,
    task_overhead: Annotated[bool, typer.Option(help="Also time no-op tasks on the pool")] = True,
    as_json: JsonOut = False,
) -> None:
    """The whole pipeline on growing synthetic days: seconds per stage, posts/s, peak memory."""
    from tweet_signals.bench.scale import measure_task_overhead, run_scale

    quiet_prefect(False)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    worker_counts = split([workers])
    try:
        rows = run_scale(
            [int(n) for n in split([sizes])],
            model=model,
            device=device,
            engine=engine,
            workers=worker_counts[-1] if worker_counts else "auto",
            chunk_size=chunk_size,
            tokenizer_dir=tokenizer,
            progress=lambda row: console.print(f"measured {row}"),
        )
    except (RuntimeError, ValueError) as exc:
        fail(str(exc), 1)
        return
    overhead = measure_task_overhead(200, 2) if task_overhead else None
    if as_json:
        write_json({"rows": [asdict(r) for r in rows], "task_overhead": overhead})
        return
    if overhead:
        console.print(
            f"process-pool task overhead (200 no-op tasks, 2 workers): pool start {overhead['pool_start_s']} s, "
            f"{overhead['per_task_ms']} ms per task"
        )
    _print_rows(f"whole pipeline per size ({model}, {device}); seconds per stage", [asdict(r) for r in rows], width=220)


@bench_app.command("features")
def features(
    n: Annotated[int, typer.Option(help="Generated posts")] = 1000,
    as_json: JsonOut = False,
) -> None:
    """The model-independent columns: per-post Python rules vs the vectorised code, same posts."""
    from tweet_signals.bench.features import feature_rates
    from tweet_signals.sources.synthetic import generate_posts

    rates = feature_rates([r["text"] for r in generate_posts(date(2026, 1, 7), n)])
    if as_json:
        write_json({"n": n, "rows": rates})
        return
    _print_rows(f"keyword boost + engagement + TF-IDF relevance, {n} generated posts", rates, width=120)


@bench_app.command("ingest")
def ingest(
    n: Annotated[int, typer.Option(help="Posts of the synthetic day")] = 1_000_000,
    repeats: Annotated[int, typer.Option(help="Runs of each mode (the median is reported)")] = 3,
    workers: Annotated[int, typer.Option(help="Processes of the parallel mode (0: every core)")] = 0,
    as_json: JsonOut = False,
) -> None:
    """Collect and dedupe of one synthetic day: one process against every core, same run."""
    from tweet_signals.bench.ingest import ingest_rates

    rows = ingest_rates(n, repeats, workers)
    if as_json:
        write_json({"rows": rows})
        return
    _print_rows(f"collect + dedupe of {n} generated posts (median of {repeats})", rows, width=200)


@bench_app.command("start")
def start(
    model: Annotated[str, typer.Option(help="embedded, or a local model directory")] = "embedded",
    engine: Annotated[str, typer.Option(help="Engine the worker runs")] = "torch-bf16",
    threads: Annotated[int, typer.Option(help="Threads of the worker")] = 2,
    repeats: Annotated[int, typer.Option(help="Runs of each kind (the median is reported)")] = 3,
    as_json: JsonOut = False,
) -> None:
    """A worker's start, fresh process to first scored batch: with an empty cache, and warm."""
    from tweet_signals.bench.start import worker_start

    row = worker_start(model, engine, threads, repeats)
    if as_json:
        write_json(row)
        return
    _print_rows("worker start: process start to first scored batch (median seconds)", [row], width=160)


@bench_app.command("train-step")
def train_step(
    steps: Annotated[int, typer.Option(help="Timed steps of each form (the median is reported)")] = 40,
    batch_size: int = 32,
    length: Annotated[int, typer.Option(help="Tokens per row")] = 40,
    as_json: JsonOut = False,
) -> None:
    """One training step of the embedded model: LoRA against the full fine-tune, same batches."""
    from tweet_signals.bench.train_step import train_step_rates

    rows = train_step_rates(steps, batch_size, length)
    if as_json:
        write_json({"steps": steps, "batch_size": batch_size, "length": length, "rows": rows})
        return
    _print_rows(f"training step, batch {batch_size} x {length} tokens (median of {steps})", rows, width=120)


@bench_app.command("models")
def models(
    model: Annotated[
        list[str], typer.Option("--model", help="A model as --model takes it; twice or more, the first is the baseline")
    ],
    input: Annotated[Path | None, typer.Option("--input", help="Texts, one per line (default: TweetEval val)")] = None,
    n: Annotated[int, typer.Option(help="Texts per run")] = 2000,
    engine: Annotated[str, typer.Option(help="The engine every model runs on")] = "torch-bf16",
    repeats: Annotated[int, typer.Option(help="Alternating runs per model (the median is reported)")] = 3,
    device: Device = "cpu",
    as_json: JsonOut = False,
) -> None:
    """Models against the first one on the same texts and engine: what a new fine-tune costs."""
    from tweet_signals.bench.models import model_rates
    from tweet_signals.model.base import ModelUnavailableError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if engine not in ENGINES:
        fail(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    try:
        rows = model_rates(_texts(input, n), model, engine, repeats, device)
    except (ValueError, ModelUnavailableError) as exc:
        fail(str(exc))
    if as_json:
        write_json({"n": n, "repeats": repeats, "rows": rows})
        return
    _print_rows(f"analyzer throughput, {n} texts, median of {repeats} alternating runs", rows, width=160)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="benchmark")
