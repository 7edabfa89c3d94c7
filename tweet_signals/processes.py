"""Processes on this machine, as the lease, the pool's recovery and the server guard see them, and
the ordered process map that spreads collect's and dedupe's per-post Python over the cores."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one this user may not signal still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ordered_map(fn: Callable[[T], R], items: Sequence[T], workers: int, in_flight: int | None = None) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` fresh processes, results in the items' order, with at
    most ``in_flight`` items submitted and not yet consumed (default twice the workers), so a
    slow consumer holds a bounded number of results. One worker, one item, or a daemonic caller:
    in this process.

    Processes are spawned, not forked: the caller is often a Prefect flow whose threads (event
    loop, log shipping) a forked child would inherit mid-operation.
    """
    # A daemonic process (a Dask or pool worker running this) may not start children.
    if workers <= 1 or len(items) <= 1 or multiprocessing.current_process().daemon:
        yield from map(fn, items)
        return
    limit = in_flight or 2 * workers
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future[R]] = deque(pool.submit(fn, item) for item in items[:limit])
        following = iter(items[limit:])
        while pending:
            result = pending.popleft().result()
            item = next(following, _DONE)
            if item is not _DONE:
                pending.append(pool.submit(fn, item))  # type: ignore[arg-type]
            yield result
