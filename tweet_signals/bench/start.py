"""Benchmark of a worker's start: a fresh process from interpreter start to its first scored batch.

Cold: the model's derived files are not cached yet (the encoder is hashed, the embedded model is
built from the encoder and adapter with transformers, its merged weights cached). Warm: what
every later worker of that model revision pays. Both in the same run, alternated, median of
``repeats`` runs each, with the floor beside them: a fresh interpreter that only imports the
engine's runtime (torch, or ONNX Runtime for the plain ONNX engines).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

_FIRST_BATCH = (
    "from tweet_signals.model.config import AnalyzerConfig;"
    "from tweet_signals.model.loader import build_analyzer;"
    "from tweet_signals.model.reference import resolve_model;"
    "c = AnalyzerConfig(model=resolve_model({model!r}), engine={engine!r}, threads={threads});"
    "{resolve}"
    "a = build_analyzer(c);"
    "a.predict_proba(['nifty breaks out above resistance, buying calls'])"
)
# The cascade needs its calibrated margin: a worker finds it cached (the run's engine choice made
# it), the cold run calibrates here, as a model's first run does.
_RESOLVE = (
    "from tweet_signals.model.engines.choice import resolve_engine;"
    "from tweet_signals.stages.analyze import calibration_texts;"
    "c = resolve_engine(c, calibration_texts);"
)


def _once(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker start failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def worker_start(
    model: str = "embedded", engine: str = "torch-bf16", threads: int = 2, repeats: int = 3
) -> dict[str, Any]:
    """Seconds from process start to the first scored batch, with an empty and a warm cache."""
    from tweet_signals.model.engines.cascade import CASCADE

    resolve = _RESOLVE if engine == CASCADE else ""
    code = _FIRST_BATCH.format(model=model, engine=engine, threads=threads, resolve=resolve)
    # The floor no cache can lower: a fresh interpreter importing the engine's runtime.
    runtime = "import onnxruntime" if engine.startswith("onnx-") and engine != CASCADE else "import torch"
    cold, warm, floor = [], [], []
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="tweet-signals-start-") as cache:
            env = {**base, "TWEET_SIGNALS_CACHE": cache}
            cold.append(_once(code, env))
            warm.append(_once(code, env))
            floor.append(_once(runtime, env))
    return {
        "model": model,
        "engine": engine,
        "threads": threads,
        "cold_s": round(statistics.median(cold), 2),
        "warm_s": round(statistics.median(warm), 2),
        "cold_over_warm": round(statistics.median(cold) / statistics.median(warm), 2),
        "runtime_import_s": round(statistics.median(floor), 2),
        "cold_runs": [round(v, 2) for v in cold],
        "warm_runs": [round(v, 2) for v in warm],
    }
