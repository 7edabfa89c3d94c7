"""The Python API for notebooks: the pipeline's analyze and signals code without the CLI or Prefect.

``analyze_posts`` runs exactly the chunk function the flow maps (``analyze_chunk``), on a
spawn-based process pool when ``workers > 1``, so results equal the pipeline's.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from tweet_signals.market.sessions import DEFAULT_EXCHANGE, session_for
from tweet_signals.market.symbols import DEFAULT_SYMBOLS, alias_map, extract_symbols
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.loader import start_worker
from tweet_signals.model.reference import DEFAULT_MODEL, ModelRef, check_model_available, resolve_model
from tweet_signals.stages.analyze import ChunkResult, ScoringConfig, analyze_chunk, choose_engine, plan_chunks
from tweet_signals.stages.signals import SignalThresholds, compute_signals
from tweet_signals.stages.tfidf import fit_sample, fit_tfidf_model, save_tfidf
from tweet_signals.storage import file_digest, write_parquet_atomic


def analyze_posts(posts: pl.DataFrame, **options: Any) -> pl.DataFrame:
    """``posts`` (canonical schema: at least ``id`` and ``text``) with the analysis columns
    appended, in the same order. TF-IDF is fitted on these posts (a 200k sample above that, as in
    the flow). Options: ``model``, ``workers``, ``keyword_boost_weight``, ``include_engagement``,
    ``device``, ``engine``, ``chunk_size``."""
    return analyze_posts_with_stats(posts, **options)[0]


def analyze_posts_with_stats(
    posts: pl.DataFrame,
    *,
    model: str | ModelRef = DEFAULT_MODEL,
    workers: int = 1,
    keyword_boost_weight: float = 0.2,
    include_engagement: bool = True,
    device: str = "auto",
    engine: str = "auto",
    chunk_size: int = 2000,
    timings: dict[str, float] | None = None,
    warm_start: bool = False,
) -> tuple[pl.DataFrame, list[ChunkResult]]:
    """``analyze_posts`` plus each chunk's result (worker pid, seconds, peak memory, phases).

    ``timings``, when given, receives the seconds of ``prepare`` (posts written, TF-IDF fitted)
    and of ``analyze`` (the chunks on the pool: start-up, model loading, scoring, Parquet
    writes). With ``warm_start`` the workers start and load their model while the posts are
    prepared, and ``analyze`` starts once every worker is ready (the wait is ``startup_wait``):
    throughput at full speed, as a long-lived pool would give.
    """
    started = time.perf_counter()
    model = resolve_model(model) if isinstance(model, str) else model
    check_model_available(model)
    frame = posts.with_columns(
        [
            pl.lit(None, dtype=pl.Int64).alias(c)
            for c in ("like_count", "retweet_count", "reply_count", "quote_count")
            if c not in posts.columns
        ]
    ).with_columns(pl.col("id").cast(pl.String))
    workers = max(1, workers)
    analyzer = choose_engine(
        AnalyzerConfig(model=model, device=device, engine=engine, threads=max(1, (os.cpu_count() or 1) // workers))
    )
    scoring = ScoringConfig(keyword_boost_weight, include_engagement)
    pooled = workers > 1 and frame.height > chunk_size
    with contextlib.ExitStack() as stack:
        spawn = multiprocessing.get_context("spawn")
        pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=spawn)) if pooled else None
        ready = _all_workers_started(stack, pool, workers, analyzer) if pool is not None and warm_start else None
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="tweet-signals-"))
        root = Path(tmp)
        clean = write_parquet_atomic(
            frame.select("id", "text", "like_count", "retweet_count", "reply_count", "quote_count"),
            root / "posts.parquet",
        )
        tfidf, top = fit_tfidf_model(fit_sample(clean)[0])  # as the flow fits a day: sampled above 200k posts
        save_tfidf(tfidf, top, root / "tfidf", {})
        descs = plan_chunks(
            run_date="api",
            clean_path=str(clean),
            n_rows=frame.height,
            chunk_size=chunk_size,
            tfidf_dir=str(root / "tfidf"),
            tfidf_digest=file_digest(root / "tfidf" / "vocabulary.parquet"),
            output_path=lambda i: str(root / f"chunk-{i:04d}.parquet"),
            config_key="api",
            analyzer=analyzer,
            scoring=scoring,
        )
        prepared = time.perf_counter()
        if ready is not None:
            wait(ready)
        mapped = time.perf_counter()
        results = [analyze_chunk(d) for d in descs] if pool is None else list(pool.map(analyze_chunk, descs))
        if timings is not None:
            timings.update(
                prepare=prepared - started, startup_wait=mapped - prepared, analyze=time.perf_counter() - mapped
            )
        if not results:
            return posts, []
        analyzed = pl.concat([pl.read_parquet(r.output_path) for r in results])
    return pl.concat([posts, analyzed.drop("id")], how="horizontal"), results


def _all_workers_started(
    stack: contextlib.ExitStack, pool: ProcessPoolExecutor, workers: int, config: AnalyzerConfig
) -> list[Future[int]]:
    """Futures done once ``workers`` distinct processes have started with the model loaded."""
    rendezvous = stack.enter_context(tempfile.TemporaryDirectory(prefix="tweet-signals-workers-"))
    return [pool.submit(start_worker, config, rendezvous, workers) for _ in range(workers)]


def signals_from_posts(
    analyzed: pl.DataFrame,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    *,
    session: date | None = None,
    exchange: str = DEFAULT_EXCHANGE,
    thresholds: SignalThresholds = SignalThresholds(),
    pool: int = 1,
) -> pl.DataFrame:
    """Signals per symbol and session from ``analyze_posts`` output. Sessions come from
    ``created_at`` (posts after the close count for the next session) unless ``session`` is given.
    With ``pool`` = N > 1 the signal of session t is built from the posts of the N sessions ending
    at t (t and the N − 1 before it on the exchange's calendar), as if they were one session's:
    for sparse symbols, a trailing window instead of a day."""
    if pool < 1:
        raise ValueError(f"--pool {pool}: give a number of sessions, 1 or more")
    frame = analyzed
    if "symbols" not in frame.columns:
        aliases = alias_map(symbols)
        frame = frame.with_columns(
            pl.col("text")
            .map_elements(lambda t: extract_symbols(t, aliases), return_dtype=pl.List(pl.String))
            .alias("symbols")
        )
    if session is not None:
        return compute_signals(frame, session, symbols, thresholds)
    sessions = frame["created_at"].map_elements(lambda ts: session_for(ts, exchange), return_dtype=pl.Date)
    frame = frame.with_columns(sessions.alias("_session"))
    if pool > 1 and frame.height:
        frame = pooled_sessions(frame, pool, exchange)
    parts = [
        compute_signals(group, day, symbols, thresholds)
        for (day,), group in frame.group_by("_session", maintain_order=True)
    ]
    return pl.concat(parts).sort("session", "symbol") if parts else pl.DataFrame()


def pooled_sessions(frame: pl.DataFrame, pool: int, exchange: str) -> pl.DataFrame:
    """``frame`` (with ``_session``) with each post repeated for its own session and the next
    ``pool`` − 1 sessions of the calendar, up to the last session with posts: a post counts for
    every session whose trailing window holds it, never for one before it was written."""
    from tweet_signals.market.sessions import sessions_between

    first, last = frame["_session"].min(), frame["_session"].max()
    calendar = sessions_between(first, last, exchange)  # type: ignore[arg-type]
    index = {day: i for i, day in enumerate(calendar)}
    windows = pl.DataFrame(
        {
            "_session": calendar,
            "_pooled": [calendar[i : i + pool] for i in range(len(calendar))],
        },
        schema={"_session": pl.Date, "_pooled": pl.List(pl.Date)},
    )
    if missing := set(frame["_session"].unique().to_list()) - index.keys():
        raise ValueError(f"posts mapped to days that are not {exchange} sessions: {sorted(missing)[:3]}")
    return (
        frame.join(windows, on="_session", how="left")
        .drop("_session")
        .explode("_pooled")
        .rename({"_pooled": "_session"})
        .sort("_session", maintain_order=True)
    )


@dataclass(frozen=True)
class PostsFile:
    """A posts file (or folder) and how to read and score it: the options the evaluation takes
    from its command line. ``naive_tz``: the zone of timestamps without one; ``date_only``:
    ``next-session`` counts a post with a date and no time for the session after that date (it
    cannot look ahead of any close), ``quarantine`` (the default) refuses it. With ``cache_dir``
    the scored posts are kept there per model revision."""

    path: Path
    columns: str | None = None
    model: str = DEFAULT_MODEL
    exchange: str = DEFAULT_EXCHANGE
    naive_tz: str | None = None
    date_only: str = "quarantine"
    workers: int = 1
    cache_dir: Path | None = None


def dedupe_per_session(posts: pl.DataFrame, exchange: str) -> pl.DataFrame:
    """The pipeline's dedupe (ids, retweets, near-duplicate texts) within each session, as a
    daily run applies it: over a whole historical file a later copy could remove an earlier post
    (the earliest non-retweet of a group survives), making a session's signal depend on posts
    written after its close."""
    from tweet_signals.stages.dedupe import dedupe_posts

    if posts.is_empty():
        return dedupe_posts(posts, {})[0]
    sessions = posts["created_at"].map_elements(lambda ts: session_for(ts, exchange), return_dtype=pl.Date)
    parts = [
        dedupe_posts(group.drop("_session"), {})[0]
        for _, group in posts.with_columns(sessions.alias("_session")).group_by("_session", maintain_order=True)
    ]
    return pl.concat(parts).sort("created_at", maintain_order=True)


def scored_posts_from_file(source: PostsFile) -> pl.DataFrame:
    """Read, dedupe and analyze a whole posts file (without the ``symbols`` column: that depends on
    which symbols are asked for). With ``source.cache_dir``, the result is kept there, keyed by
    the file's content, the reading options and the model revision, so each post is scored once
    per model revision however many evaluations read the file. A file with no usable post
    raises ``ValueError`` saying why its records were refused."""
    import hashlib
    import json

    from tweet_signals.market.sessions import calendar
    from tweet_signals.sources.files import input_files, parse_column_map, read_posts
    from tweet_signals.storage import sha256_file

    path = source.path
    model = resolve_model(source.model)
    if source.date_only not in ("quarantine", "next-session"):
        raise ValueError(f"--date-only {source.date_only!r}: use quarantine or next-session")
    cached: Path | None = None
    if source.cache_dir is not None:
        identity = {
            "files": [sha256_file(f) for f in input_files(path)],
            "columns": source.columns,
            "naive_tz": source.naive_tz,
            "date_only": source.date_only,
            "exchange": source.exchange,
            "dedupe": "per-session",
            "model": model.revision,
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        cached = source.cache_dir / f"scored-{key}.parquet"
        if cached.is_file():
            return pl.read_parquet(cached)
    date_only_tz = str(calendar(source.exchange).tz) if source.date_only == "next-session" else None
    read = read_posts(path, parse_column_map(source.columns), naive_tz=source.naive_tz, date_only_tz=date_only_tz)
    if read.posts.is_empty():
        reasons = read.quarantine["reason"].value_counts(sort=True).iter_rows() if read.quarantine.height else []
        why = ", ".join(f"{reason} {count}" for reason, count in reasons) or "the file holds no records"
        hints = {
            "naive_timestamp": "give --naive-tz ZONE for timestamps without a zone",
            "date_only": "give --date-only next-session for dates without a time",
        }
        advice = "; ".join(hint for reason, hint in hints.items() if reason in why)
        message = f"no usable posts in {path}: {read.quarantine.height} quarantined ({why})"
        raise ValueError(message + (f"; {advice}" if advice else ""))
    clean = dedupe_per_session(read.posts, source.exchange)
    analyzed = analyze_posts(clean.drop("symbols"), model=model, workers=source.workers)
    if cached is not None:
        write_parquet_atomic(analyzed, cached)
    return analyzed


def signals_from_file(source: PostsFile, symbol: str) -> pl.DataFrame:
    """Signals per session for ``symbol`` from a whole posts file (see ``scored_posts_from_file``)."""
    return signals_from_posts(scored_posts_from_file(source), [symbol], exchange=source.exchange)


def ticker_column(path: Path, column: str, id_column: str = "id") -> pl.DataFrame:
    """(id, symbol) pairs from the posts file's own ticker column, for posts that carry one (a post
    under several tickers gives a pair for each); ``$aapl`` and ``#AAPL`` both become ``AAPL``, as
    price files are named."""
    from tweet_signals.sources.files import csv_delimiter, input_files
    from tweet_signals.storage.compressed import file_format, open_binary, read_bytes

    frames = []
    for file in input_files(path):
        suffix = file_format(file)
        if suffix == ".parquet":
            frame = pl.read_parquet(file)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = pl.read_ndjson(io.BytesIO(read_bytes(file)), infer_schema_length=None)
        else:
            # The separator rule of the pipeline's own reader, so the ids match the posts it read.
            with open_binary(file) as fh:
                header = fh.readline().decode("utf-8", errors="replace")
            frame = pl.read_csv(io.BytesIO(read_bytes(file)), separator=csv_delimiter(header), infer_schema_length=0)
        missing = {column, id_column} - set(frame.columns)
        if missing:
            raise ValueError(
                f"{file}: no column(s) {sorted(missing)} for --symbol-column (the posts need an id to match by); "
                f"it has {frame.columns}"
            )
        frames.append(
            frame.select(pl.col(id_column).cast(pl.String).alias("id"), pl.col(column).cast(pl.String).alias("symbol"))
        )
    out = pl.concat(frames).drop_nulls()
    out = out.with_columns(pl.col("symbol").str.strip_chars().str.strip_chars_start("$#").str.to_uppercase())
    # A post filed under several tickers (a dataset's per-ticker folders) belongs to each of them.
    return out.unique(["id", "symbol"], keep="first", maintain_order=True)


def panel_signals_from_file(
    source: PostsFile, symbols: Sequence[str], symbol_column: str | None = None, pool: int = 1
) -> pl.DataFrame:
    """Signals per (symbol, session) for ``symbols`` from a whole posts file. With
    ``symbol_column`` each post belongs to the ticker in that column (bare words like V or KO in
    the text then match nothing); otherwise symbols come from the text as in the pipeline."""
    from tweet_signals.sources.files import parse_column_map

    posts = scored_posts_from_file(source)
    if symbol_column:
        id_column = parse_column_map(source.columns).get("id", "id")
        tickers = (
            ticker_column(source.path, symbol_column, id_column)
            .filter(pl.col("symbol").is_in(list(symbols)))
            .group_by("id", maintain_order=True)
            .agg(pl.col("symbol").alias("symbols"))
        )
        posts = posts.join(tickers, on="id", how="left").with_columns(
            pl.col("symbols").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
    return signals_from_posts(posts, symbols, exchange=source.exchange, pool=pool)
