"""analyze: one task per chunk descriptor; the model is loaded once per worker process."""

from __future__ import annotations

from prefect import task

from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.loader import start_worker
from tweet_signals.stages.analyze import ChunkDescriptor, ChunkResult, analyze_chunk


# No retry delay: a chunk retry is for a lost worker or a transient I/O error, not for the
# model, which is deterministic. The flow sets the retry count from its parameters.
@task(name="analyze-chunk", task_run_name="analyze-chunk-{desc.chunk}")
def analyze_chunk_task(desc: ChunkDescriptor) -> ChunkResult:
    # The body lives in an importable module so each worker's model cache (an lru_cache in
    # tweet_signals.model.loader) survives across the chunks that worker receives.
    return analyze_chunk(desc)


@task(name="start-worker", task_run_name="start-worker-{index}")
def start_worker_task(index: int, config: AnalyzerConfig, rendezvous: str, workers: int) -> int:
    """Bring one pool worker up with its model loaded (see ``loader.start_worker``)."""
    return start_worker(config, rendezvous, workers)
