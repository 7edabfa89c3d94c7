"""What a daily run writes about itself in its manifest: stage timings, the analyze summary, the
per-chunk entries, and the outputs that "complete" rests on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tweet_signals.flows.chunks import ChunkPool, ChunkRun
from tweet_signals.model.loader import AnalyzerConfig
from tweet_signals.stages.collect import CollectResult
from tweet_signals.stages.dedupe import DedupeResult
from tweet_signals.stages.signals import SignalsResult
from tweet_signals.stages.tfidf import TfidfResult
from tweet_signals.storage import location, output_record


class StageClock:
    """Wall-clock seconds of each stage of one run, in the order they ran; ``announce`` is told
    each stage as it starts (the progress line, and the stage a fault report names)."""

    def __init__(self, announce: Callable[[str], None] = lambda stage: None) -> None:
        self.seconds: dict[str, float] = {}
        self._announce = announce

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self._announce(stage)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {stage: round(s, 3) for stage, s in self.seconds.items()}


def analyze_summary(
    chunk_run: ChunkRun,
    chunks: int,
    config_key: str,
    workers: int,
    analyzer: AnalyzerConfig,
    worker_pids: list[int],
    pool: ChunkPool,
    seconds: float,
) -> dict[str, Any]:
    """The manifest's ``analyze`` entry: what was computed, reused or failed, and how fast."""
    results = chunk_run.results
    computed = [r for r in results if r["status"] == "computed"]
    computed_rows = sum(int(r["rows"]) for r in computed)
    return {
        "config_key": config_key,
        "workers": workers,
        "engine": analyzer.engine,
        # With the engine, what the chunks' key needs to be rebuilt by a later run of the day.
        "cascade_margin": analyzer.cascade_margin,
        "chunks": chunks,
        "computed": len(computed),
        "reused": len(results) - len(computed),
        "failed": sorted(chunk_run.failures),
        "rows": sum(int(r["rows"]) for r in results),
        # Processes started (model loaded) while collect, dedupe and TF-IDF ran; none for Dask
        # or for a day that had completed before.
        "worker_pids": worker_pids,
        # Workers that died (pid, signal or exit code, the chunk they held); their unfinished
        # chunks went to a rebuilt pool.
        "worker_deaths": chunk_run.deaths_as_dicts(),
        "pool_rebuilds": pool.rebuilds,
        "tweets_per_s": round(computed_rows / seconds, 1) if computed and seconds > 0 else None,
        # The int8 cascade: share of each computed chunk's rows that int8 was unsure of and fp32
        # re-scored (the rows are in each chunk's entry under "chunks").
        "rescored_share": {
            str(r["chunk"]): round(int(r["rescored_rows"]) / max(1, int(r["rows"])), 4)
            for r in computed
            if r.get("rescored_rows") is not None
        }
        or None,
    }


def chunk_entries(chunk_run: ChunkRun) -> list[dict[str, Any]]:
    """One entry per chunk, in chunk order: its result, or its failure."""
    done = sorted(chunk_run.results, key=lambda r: r["chunk"])
    failed = [{"chunk": c, "status": "failed", "error": e} for c, e in sorted(chunk_run.failures.items())]
    return done + failed


def complete_outputs(
    collected: CollectResult, clean: DedupeResult, tfidf: TfidfResult, chunk_run: ChunkRun, signals: SignalsResult
) -> list[dict[str, Any]]:
    """What "complete" rests on: a later run or backfill re-checks these files before trusting it."""
    return [
        output_record(collected.path),
        output_record(clean.path),
        output_record(location(tfidf.dir) / "vocabulary.parquet"),
        *(output_record(r["output_path"], int(r["rows"])) for r in chunk_run.results),
        output_record(signals.path),
    ]


def started_pids(started: list[Any]) -> list[int]:
    """Pids of the workers started early (a pool rebuilt since may have lost some)."""
    pids = set()
    for future in started:
        try:
            pids.add(int(future.result()))
        except Exception:  # its pool broke: the worker is gone
            continue
    return sorted(pids)
