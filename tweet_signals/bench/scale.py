"""``tweet-signals benchmark scale``: the whole pipeline on growing synthetic days.

Each size runs the daily flow in a fresh process (``python -m tweet_signals.bench.scale``, with its
own temporary Prefect server and a fresh data root), so every size pays the same start-up and the
coordinator's peak memory is that size's alone. Per-stage seconds and the coordinator's peak RSS
come from the run's manifest. ``measure_task_overhead`` times no-op tasks on a warm process pool:
what one task costs apart from its work, which sets how small a chunk may be.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tweet_signals.storage import Storage, read_json

SCALE_DATE = date(2026, 1, 7)  # a Wednesday session on NSE/BSE
SCALE_SYMBOLS = ("NIFTY", "SENSEX", "BANKNIFTY", "RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "ALL")
STAGES = ("collect", "dedupe", "tfidf", "analyze", "signals")


@dataclass(frozen=True)
class ScaleRow:
    posts: int
    clean_posts: int
    collect_s: float
    dedupe_s: float
    tfidf_s: float
    analyze_s: float
    signals_s: float
    pipeline_s: float
    posts_per_s: float
    analyze_tweets_per_s: float
    coordinator_peak_rss_mb: float
    worker_peak_rss_mb: float
    chunks: int
    workers: int
    engine: str
    device: str


def _run_once(params: dict[str, Any], root: Path) -> dict[str, Any]:
    """One size in a fresh process; the run's manifest."""
    command = [sys.executable, "-m", "tweet_signals.bench.scale", json.dumps({**params, "data_root": str(root)})]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    manifest = read_json(Storage(root).manifest(SCALE_DATE))
    if done.returncode != 0 or not manifest or manifest.get("status") != "complete":
        raise RuntimeError(f"scale run failed (exit {done.returncode}): {done.stderr[-3000:]}")
    return manifest


def run_scale(
    sizes: Sequence[int],
    model: str = "embedded",
    device: str = "cpu",
    engine: str = "auto",
    workers: int | str = "auto",
    chunk_size: int = 5000,
    tokenizer_dir: Path | None = None,
    progress: Callable[[ScaleRow], Any] = print,
) -> list[ScaleRow]:
    rows: list[ScaleRow] = []
    with tempfile.TemporaryDirectory(prefix="tweet-signals-scale-") as tmp:
        if model == "roberta-base":
            from tweet_signals.bench.engines import build_random_roberta_base

            model = str(build_random_roberta_base(Path(tmp) / "roberta-base", tokenizer_dir))
        if engine == "auto":  # resolved here, so no size pays (or hides) the one-off fidelity check
            from tweet_signals.model.config import AnalyzerConfig
            from tweet_signals.model.reference import resolve_model
            from tweet_signals.stages.analyze import choose_engine

            engine = choose_engine(AnalyzerConfig(model=resolve_model(model), device=device)).engine
        for n in sizes:
            root = Path(tmp) / f"posts-{n}"
            params = {
                "run_date": SCALE_DATE.isoformat(),
                "source": "synthetic",
                "synthetic_posts": n,
                "symbols": list(SCALE_SYMBOLS),
                "model": model,
                "device": device,
                "engine": engine,
                "workers": workers,
                "chunk_size": chunk_size,
            }
            manifest = _run_once(params, root)
            timings = manifest["timings"]
            pipeline = sum(float(timings[s]) for s in STAGES)
            row = ScaleRow(
                posts=n,
                clean_posts=int(manifest["analyze"]["rows"]),
                collect_s=round(timings["collect"], 1),
                dedupe_s=round(timings["dedupe"], 1),
                tfidf_s=round(timings["tfidf"], 1),
                analyze_s=round(timings["analyze"], 1),
                signals_s=round(timings["signals"], 1),
                pipeline_s=round(pipeline, 1),
                posts_per_s=round(n / pipeline, 1),
                analyze_tweets_per_s=float(manifest["analyze"]["tweets_per_s"] or 0.0),
                coordinator_peak_rss_mb=float(manifest["coordinator_peak_rss_mb"]),
                worker_peak_rss_mb=max(float(c.get("peak_rss_mb", 0.0)) for c in manifest["chunks"]),
                chunks=int(manifest["analyze"]["chunks"]),
                workers=int(manifest["analyze"]["workers"]),
                engine=str(manifest["analyze"]["engine"]),
                device=device,
            )
            rows.append(row)
            progress(row)
    return rows


def measure_task_overhead(tasks: int = 200, workers: int = 2) -> dict[str, float]:
    """Pool start-up seconds and per-task milliseconds of Prefect's process pool (no-op tasks)."""
    from tweet_signals.flows.overhead import task_overhead
    from tweet_signals.prefect_local import prefect_api

    with prefect_api():
        return task_overhead(tasks, workers)


def _run_child(params_json: str) -> int:
    """The child process of one size: the daily flow with these parameters, on its own server."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tweet_signals.flows.daily_signals import daily_signals
    from tweet_signals.params import SignalsParams
    from tweet_signals.prefect_local import prefect_api

    params = SignalsParams.model_validate_json(params_json)
    with prefect_api():
        state = daily_signals(params, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(_run_child(sys.argv[1]))
