"""What one Prefect task costs on the process pool, apart from its work: no-op tasks, warm pool."""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.futures import wait
from prefect.task_runners import ProcessPoolTaskRunner


@task(name="noop-chunk")
def noop_chunk(index: int) -> int:
    return index


@flow(name="task-overhead")
def task_overhead(tasks: int = 200, workers: int = 2) -> dict[str, float]:
    """Seconds to start the pool, and milliseconds per task once it runs (submit → result)."""
    started = time.perf_counter()
    with ProcessPoolTaskRunner(max_workers=workers) as runner:
        wait([runner.submit(noop_chunk, parameters={"index": i}) for i in range(workers)])
        warm = time.perf_counter()
        futures = [runner.submit(noop_chunk, parameters={"index": i}) for i in range(tasks)]
        results = [f.result() for f in futures]
        done = time.perf_counter()
    assert results == list(range(tasks))
    return {"pool_start_s": round(warm - started, 2), "per_task_ms": round(1000 * (done - warm) / tasks, 1)}
