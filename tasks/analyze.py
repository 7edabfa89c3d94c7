"""analyze: one task per chunk descriptor; the model is loaded once per worker process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prefect import task

from tweet_signals.analysis import ChunkDescriptor, ChunkResult, analyze_chunk
from tweet_signals.analyzers.loader import AnalyzerConfig, warm_worker


# No retry delay: a chunk retry is for a lost worker or a transient I/O error, not for the
# model, which is deterministic. The flow sets the retry count from its parameters.
@task(name="analyze-chunk", task_run_name="analyze-chunk-{desc.chunk}")
def analyze_chunk_task(desc: ChunkDescriptor) -> ChunkResult:
    # The body lives in an importable module so each worker's model cache (an lru_cache in
    # tweet_signals.analyzers.loader) survives across the chunks that worker receives.
    return analyze_chunk(desc)


@task(name="start-worker", task_run_name="start-worker-{index}")
def start_worker_task(index: int, config: AnalyzerConfig, rendezvous: str, workers: int) -> int:
    """Bring one worker up with its model loaded (best effort: a chunk reports any load error),
    then wait until every worker has checked in: holding this task keeps a fast worker from
    taking a second start task, so all ``workers`` processes really start."""
    warm_worker(config)
    (Path(rendezvous) / f"{index}-{os.getpid()}").touch()
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
    while sum(1 for _ in Path(rendezvous).iterdir()) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


# A worker that cannot start within this long is left to the pool; the others go on.
RENDEZVOUS_TIMEOUT_S = 300.0
