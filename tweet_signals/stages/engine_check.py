"""The engine checks a model's first run on a machine defers: done in a background process at low
priority once the run, analysing on the reference engine, is done, so the next runs can choose.

``--engine auto`` checks every candidate engine against fp32 once per model revision and device
(``model.engines.choice``): ONNX export and int8 quantisation, the AOTInductor compile, each
candidate run on the calibration posts. That is a minute or more on two cores, and a first run
would wait for all of it before analysing a post. The flow hands the candidates here instead.

One checker per model cache and device: it holds a lock there (an OS file lock, released when
the process dies, however it dies), and a run that finds the lock held starts none. Verdicts are
written atomically, one by one, so a checker killed midway leaves whole verdicts or none, and the
next run checks what is left. The speeds in the verdicts are measured once the run that started
the checker is done, not against its analysis.

``TWEET_SIGNALS_ENGINE_CHECKS`` says what a run does with candidates that have no verdict:
``background`` (the default), ``inline`` (check them before analysing, as a benchmark does) or
``off`` (run on what is recorded; the tests' setting, so they leave no processes behind).

Run as ``python -m tweet_signals.stages.engine_check``, the pickled (config, candidates, pid to
wait for) on stdin.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.processes import pid_alive

CHECKS_ENV = "TWEET_SIGNALS_ENGINE_CHECKS"
CheckMode = Literal["background", "inline", "off"]
# The checker starts once its parent is gone, or after this long (a long-lived parent:
# a Prefect worker serving deployments).
PARENT_WAIT_S = 600.0


def check_mode() -> CheckMode:
    """How this process's runs check engines without a verdict (``CHECKS_ENV``)."""
    mode = os.environ.get(CHECKS_ENV, "background").strip().lower()
    if mode not in ("background", "inline", "off"):
        raise ValueError(f"{CHECKS_ENV}={mode!r}: use background, inline or off")
    return mode  # type: ignore[return-value]


def lock_path(config: AnalyzerConfig) -> Path:
    """Held by the one process checking engines of this model on ``config.device`` (resolved)."""
    return config.model.cache_dir / f"engine-check-{config.device}.lock"


def checking(config: AnalyzerConfig) -> bool:
    """Whether a background check of this model on ``config.device`` runs now."""
    lock = FileLock(str(lock_path(config)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def check_in_background(
    config: AnalyzerConfig, candidates: Sequence[str], log_file: Path, wait_for: int | None = None
) -> subprocess.Popen[bytes] | None:
    """Start a low-priority process that builds and checks ``candidates`` (``config.device``
    resolved) and records their verdicts, unless one checks this model already; its output is
    appended to ``log_file``. It starts once ``wait_for`` (default: this process; 0: none) has
    exited. Returns the process, or None when none was started."""
    if not candidates or checking(config):
        return None
    log_file.parent.mkdir(parents=True, exist_ok=True)
    config.model.cache_dir.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tweet_signals.stages.engine_check"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the run, and a Ctrl-C of the run does not reach it
        )
    assert process.stdin is not None
    parent = os.getpid() if wait_for is None else wait_for
    process.stdin.write(pickle.dumps((config, list(candidates), parent if parent > 0 else None)))
    process.stdin.close()
    return process


def check_candidates(config: AnalyzerConfig, candidates: Sequence[str], wait_for: int | None) -> dict[str, bool]:
    """Wait for ``wait_for`` to exit, build ``candidates``' files, then record each verdict.
    Returns whether each candidate passed (the ones another process recorded meanwhile are left
    out). Holds the model's check lock throughout; returns {} if another process holds it."""
    from tweet_signals.model.engines.choice import (
        ReferenceProbabilities,
        build_engine_files,
        passes,
        read_verdict,
        record_verdict,
    )
    from tweet_signals.stages.analyze import calibration_texts

    lock = FileLock(str(lock_path(config)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return {}
    try:
        todo = [c for c in candidates if read_verdict(config, c, config.device) is None]
        if not todo:
            return {}
        # Nothing runs beside the run's analysis, not even at low priority: its torch threads
        # wait for each other, and a busy core slowed its first chunk five-fold (6 s → 34 s,
        # 2 cores). And the speeds recorded are not measured against it.
        deadline = time.monotonic() + PARENT_WAIT_S
        while wait_for is not None and pid_alive(wait_for) and time.monotonic() < deadline:
            time.sleep(0.5)
        texts = calibration_texts()
        # fp32 first, then the exports: the order of an inline check (the exported graph
        # depends on which loader ran first in the process).
        reference = ReferenceProbabilities(config)
        reference(texts)
        for candidate in todo:
            try:
                build_engine_files(config, candidate)
            except Exception as exc:  # the check below records the failure as its verdict
                print(f"building {candidate} failed: {type(exc).__name__}: {exc}", flush=True)
        passed = {}
        for candidate in todo:
            verdict = record_verdict(config, candidate, texts, reference)
            print(f"engine check of {candidate} ({config.model.name}): {verdict}", flush=True)
            passed[candidate] = passes(verdict)
        return passed
    finally:
        lock.release()


def main() -> None:
    config, candidates, wait_for = pickle.loads(sys.stdin.buffer.read())
    os.nice(10)  # the run analysing meanwhile keeps the cores; the compiler it starts inherits this
    started = time.monotonic()
    passed = check_candidates(config, candidates, wait_for)
    if passed:
        print(f"engine checks done in {time.monotonic() - started:.0f} s: {passed}", flush=True)


if __name__ == "__main__":
    main()
