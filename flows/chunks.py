"""Mapping the analyze chunks over workers, surviving the death of a worker process.

A process-pool worker can die under any chunk (the kernel's OOM killer, a segfault in a native
library, an operator's ``kill``). Python's ``ProcessPoolExecutor`` then declares the whole pool
broken and fails every chunk it had, running or queued. ``run_chunks`` instead keeps what
finished, works out which worker died holding which chunk (each chunk's worker writes a claim
before it starts: ``ChunkDescriptor.claim_dir``), rebuilds the pool and resubmits the chunks that
had not finished. A chunk whose workers die ``MAX_DEATHS_PER_CHUNK`` times fails the run, named.
On Dask, the scheduler itself reschedules a lost worker's tasks.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed

from tweet_signals.faults import storage_cause
from tweet_signals.flows.progress import say
from tweet_signals.processes import pid_alive
from tweet_signals.stages.analyze import ChunkDescriptor, read_claim
from tweet_signals.tasks.analyze import analyze_chunk_task

# Deaths of workers holding the same chunk before the run gives up on it: one death is bad luck
# (another process's memory spike, an operator), two in a row mean the chunk itself kills them.
MAX_DEATHS_PER_CHUNK = 2


@dataclass(frozen=True)
class WorkerDeath:
    pid: int | None
    exit: str  # "signal SIGKILL", "exit code 1", or "unknown"
    chunk: int | None  # the chunk it held, when its claim says so
    peak_rss_mb: float | None  # the worker's peak memory when it took that chunk
    likely_out_of_memory: bool

    def describe(self) -> str:
        held = f"while analyzing chunk {self.chunk}" if self.chunk is not None else "between chunks"
        memory = f", peak {self.peak_rss_mb:.0f} MB" if self.peak_rss_mb else ""
        oom = " (likely out of memory)" if self.likely_out_of_memory else ""
        return f"worker {self.pid} died {held}: {self.exit}{oom}{memory}"


class ChunkPool:
    """The current task runner for the chunks; ``rebuild`` replaces a broken one (context manager)."""

    def __init__(self, make_runner: Callable[[], Any]) -> None:
        self.make_runner = make_runner
        self.runner: Any = None
        self.rebuilds = 0
        self.processes: dict[int, Any] = {}  # every pool process seen, by pid (kept after the pool drops them)

    def __enter__(self) -> ChunkPool:
        self.runner = self.make_runner().__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, *exc: object) -> None:
        if self.runner is None:
            return
        if exc_type is not None:
            # The run is failing or interrupted (SIGTERM, a cancellation, a storage fault): stop
            # the workers now. Shutting the pool down as usual would wait for every running chunk
            # and leave processes behind if this process is killed meanwhile.
            self.stop_workers()
        self.runner.__exit__(None, None, None)
        self.runner = None

    def stop_workers(self) -> None:
        """Terminate the pool's processes (SIGTERM) and drop its queues without waiting on them."""
        self.remember_processes()
        for process in self.processes.values():
            if process.exitcode is None:
                process.terminate()
        self._drop_queues()

    def _drop_queues(self) -> None:
        # A worker killed while writing to one of the pool's queues dies holding the queue's
        # lock: anything this process still feeds into it would wait forever, and so would the
        # interpreter's exit, which joins the queues' feeder threads. Those queues are dropped
        # with the pool; don't wait for them.
        executor = getattr(self.runner, "_executor", None)
        for queue in (getattr(self.runner, "_subprocess_message_queue", None), getattr(executor, "_call_queue", None)):
            if queue is not None and hasattr(queue, "cancel_join_thread"):
                queue.cancel_join_thread()

    def remember_processes(self) -> None:
        """Note the pool's current processes: a broken pool may drop them before we ask how they
        ended (Python's executor keeps them in a private dict; other runners have none)."""
        processes = getattr(getattr(self.runner, "_executor", None), "_processes", None) or {}
        self.processes.update(dict(processes))

    def worker_exits(self, settle_s: float = 5.0) -> dict[int, int | None]:
        """Exit codes of the processes seen, by pid, once all have ended (the executor terminates
        the survivors of a broken pool; up to ``settle_s`` for that)."""
        self.remember_processes()
        deadline = time.monotonic() + settle_s
        while any(p.exitcode is None for p in self.processes.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {pid: proc.exitcode for pid, proc in self.processes.items()}

    def rebuild(self) -> dict[int, int | None]:
        """A fresh runner in place of the broken one; how the old one's processes ended, by pid."""
        exits = self.worker_exits()
        self.processes = {}
        self._drop_queues()
        self.__exit__()
        self.__enter__()
        self.rebuilds += 1
        return exits


def _exit_text(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def diagnose(unfinished: list[ChunkDescriptor], exits: dict[int, int | None]) -> list[WorkerDeath]:
    """Which workers died and what they held. The executor terminates the survivors of a broken
    pool with SIGTERM, so the dead are the processes that ended otherwise; their chunk comes from
    the claims of the chunks that did not finish."""
    claims = {d.chunk: read_claim(d.claim_dir, d.chunk) for d in unfinished if d.claim_dir}
    held = {int(str(c["pid"])): (chunk, c) for chunk, c in claims.items() if c is not None}
    dead = [pid for pid, code in exits.items() if code is not None and code != -signal.SIGTERM]
    if not dead:  # no exit codes to go by: a claimed pid that no longer exists
        dead = [pid for pid in held if not pid_alive(pid)]
    deaths = []
    for pid in dead:
        chunk, claim = held.get(pid, (None, None))
        code = exits.get(pid)
        deaths.append(
            WorkerDeath(
                pid=pid,
                exit=_exit_text(code),
                chunk=chunk,
                peak_rss_mb=float(str(claim["peak_rss_mb"])) if claim else None,
                likely_out_of_memory=code == -signal.SIGKILL,
            )
        )
    return deaths or [WorkerDeath(None, "unknown", None, None, False)]


def _broken_pool(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokenProcessPool):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class ChunkRun:
    """What mapping the chunks gave: results, failures by chunk, and the workers that died."""

    results: list[dict[str, Any]]
    failures: dict[int, str]
    deaths: list[WorkerDeath]

    def deaths_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.deaths]


def run_chunks(descs: list[ChunkDescriptor], pool: ChunkPool, retries: int, artifact_key: str) -> ChunkRun:
    """Map the chunks; wait for all of them; recover from dead workers (see the module doc).

    Progress (chunks done / total, tweets/s) goes to a progress artifact, the run log and the
    ``tweet_signals.progress`` logger that the CLI prints.
    """
    logger = get_run_logger()
    chunk_task = analyze_chunk_task.with_options(retries=retries)
    run = ChunkRun([], {}, [])
    if not descs:
        return run
    artifact = create_progress_artifact(0.0, key=artifact_key, description="analyze chunks")
    assert isinstance(artifact, UUID)  # the sync API in a sync flow
    started, computed_rows, done = time.perf_counter(), 0, 0
    deaths_per_chunk: Counter[int] = Counter()
    pending = list(descs)
    while pending:
        futures = {pool.runner.submit(chunk_task, parameters={"desc": d}): d for d in pending}
        pool.remember_processes()
        unfinished: list[ChunkDescriptor] = []
        for future in as_completed(list(futures)):
            pool.remember_processes()
            desc = futures[future]
            try:
                result = future.result().as_dict()
            except Exception as exc:
                if _broken_pool(exc):  # not this chunk's fault: it is run again on a new pool
                    unfinished.append(desc)
                    continue
                if storage_cause(exc) is not None:
                    # The data root refuses writes: every other chunk would fail alike. The run
                    # ends with one line naming the root (the flow); finished chunks are kept.
                    raise
                # The chunk itself failed after its retries; the others go on.
                run.failures[desc.chunk] = f"{type(exc).__name__}: {exc}"
                logger.error("chunk %d failed: %s", desc.chunk, run.failures[desc.chunk])
            else:
                run.results.append(result)
                computed_rows += int(result["rows"]) if result["status"] == "computed" else 0
            done += 1
            rate = computed_rows / max(time.perf_counter() - started, 1e-9)
            message = f"{desc.run_date}: analyze {done}/{len(descs)} chunks, {rate:.0f} tweets/s"
            update_progress_artifact(artifact, 100.0 * done / len(descs), description=message)
            say(logger, message)
        if not unfinished:
            break
        deaths = diagnose(unfinished, pool.rebuild())
        run.deaths += deaths
        for death in deaths:
            if death.chunk is not None:
                deaths_per_chunk[death.chunk] += 1
            message = f"{descs[0].run_date}: {death.describe()}; {len(unfinished)} unfinished chunk(s) go to a new pool"
            say(logger, message, logging.WARNING)
        given_up = {c for c, n in deaths_per_chunk.items() if n >= MAX_DEATHS_PER_CHUNK}
        for chunk in sorted(given_up - set(run.failures)):
            last = [d for d in run.deaths if d.chunk == chunk][-1]
            run.failures[chunk] = (
                f"WorkerDied: {deaths_per_chunk[chunk]} workers died analyzing this chunk (last: {last.describe()})"
            )
            logger.error("chunk %d failed: %s", chunk, run.failures[chunk])
            done += 1
        pending = [d for d in unfinished if d.chunk not in given_up]
    run.results.sort(key=lambda r: r["chunk"])
    return run
