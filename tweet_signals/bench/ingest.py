"""``tweet-signals benchmark ingest``: collect and dedupe of one synthetic day, in one process and on
every core, measured in the same run.

Both stages are Python per post where it counts (generating and normalising records; the symbol
lookup of each clean post): one process is the baseline, and the ratio says what the worker
processes (``processes.ordered_map``) buy on this machine. Runs alternate and the median of
``repeats`` is reported; each run writes a fresh raw and clean file.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from tweet_signals.params import SignalsParams

INGEST_DATE = date(2026, 1, 7)
INGEST_SYMBOLS = ("NIFTY", "SENSEX", "BANKNIFTY", "RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "ALL")


def _once(params: SignalsParams, folder: Path, workers: int) -> tuple[float, float, int]:
    """(collect seconds, dedupe seconds, clean posts) of one run."""
    from tweet_signals.stages.collect import write_synthetic
    from tweet_signals.stages.dedupe import dedupe_file

    raw, clean = folder / "raw.parquet", folder / "clean.parquet"
    started = time.perf_counter()
    write_synthetic(params, INGEST_DATE, raw, workers=workers)
    collected = time.perf_counter()
    rows, _ = dedupe_file(raw, clean, params.aliases(), {}, workers=workers)
    return collected - started, time.perf_counter() - collected, rows


def ingest_rates(n: int, repeats: int = 3, workers: int = 0) -> list[dict[str, Any]]:
    """A row per mode (one process; ``workers`` processes, 0: every core): median seconds and
    posts/s of collect and dedupe, and the ratio to one process."""
    cores = workers or os.cpu_count() or 1
    params = SignalsParams(run_date=INGEST_DATE, source="synthetic", synthetic_posts=n, symbols=list(INGEST_SYMBOLS))
    runs: dict[int, list[tuple[float, float, int]]] = {1: [], cores: []}
    with tempfile.TemporaryDirectory(prefix="tweet-signals-ingest-") as tmp:
        for k in range(repeats):
            for processes in runs:
                folder = Path(tmp) / f"{processes}-{k}"
                folder.mkdir()
                runs[processes].append(_once(params, folder, processes))
    rows: list[dict[str, Any]] = []
    base: dict[str, float] = {}
    for processes, measured in runs.items():
        collect_s = statistics.median(m[0] for m in measured)
        dedupe_s = statistics.median(m[1] for m in measured)
        if not base:
            base = {"collect": collect_s, "dedupe": dedupe_s}
        rows.append(
            {
                "posts": n,
                "clean_posts": measured[0][2],
                "processes": processes,
                "collect_s": round(collect_s, 2),
                "collect_posts_per_s": round(n / collect_s),
                "collect_speedup": round(base["collect"] / collect_s, 2),
                "dedupe_s": round(dedupe_s, 2),
                "dedupe_posts_per_s": round(n / dedupe_s),
                "dedupe_speedup": round(base["dedupe"] / dedupe_s, 2),
                "collect_runs": [round(m[0], 2) for m in measured],
                "dedupe_runs": [round(m[1], 2) for m in measured],
            }
        )
    return rows
