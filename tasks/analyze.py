"""analyze: one task per chunk descriptor; the model is loaded once per worker process."""

from __future__ import annotations

from prefect import task

from tweet_signals.analysis import ChunkDescriptor, ChunkResult, analyze_chunk


# No retry delay: a chunk retry is for a lost worker or a transient I/O error, not for the
# model, which is deterministic. The flow sets the retry count from its parameters.
@task(name="analyze-chunk", task_run_name="analyze-chunk-{desc.chunk}")
def analyze_chunk_task(desc: ChunkDescriptor) -> ChunkResult:
    # The body lives in an importable module so each worker's model cache (an lru_cache in
    # tweet_signals.analyzers.loader) survives across the chunks that worker receives.
    return analyze_chunk(desc)
