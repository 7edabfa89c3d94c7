"""The engine checks a model's first run on a machine defers: built and checked in a background
process at low priority while the run analyses, so the next run can choose them.

``--engine auto`` checks every candidate engine against fp32 once per model revision and device
(``model.engines.choice``). The compiled engine must first be built by a C++ compiler (tens of
seconds on two cores, most of a first run's wait); the flow hands it here instead, and chooses
among the engines that need no compiler. The build's output goes to the run's log file.

Run as ``python -m tweet_signals.stages.engine_check``, the pickled (config, candidate) on stdin.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.processes import pid_alive

PARENT_WAIT_S = 600.0


def pending_path(config: AnalyzerConfig, candidate: str) -> Path:
    """Names the background process checking ``candidate`` (its pid) while it runs."""
    return config.model.cache_dir / f"fidelity-{candidate}-{config.device}.pending"


def check_in_background(config: AnalyzerConfig, candidate: str, log_file: Path) -> bool:
    """Start a low-priority process that builds and checks ``candidate`` (``config.device``
    resolved) unless one already does; its output is appended to ``log_file``. Returns whether
    one was started."""
    pending = pending_path(config, candidate)
    with contextlib.suppress(OSError, ValueError):
        if pid_alive(int(pending.read_text())):
            return False
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pending.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tweet_signals.stages.engine_check"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives the run, and a Ctrl-C of the run does not reach it
        )
    pending.write_text(str(process.pid))
    assert process.stdin is not None
    process.stdin.write(pickle.dumps((config, candidate, os.getpid())))
    process.stdin.close()
    return True


def main() -> None:
    """Build and check one deferred candidate, then record its verdict (``choice.record_verdict``)."""
    from filelock import FileLock

    from tweet_signals.model.engines.choice import build_engine_files, read_verdict, record_verdict
    from tweet_signals.stages.analyze import calibration_texts

    config, candidate, parent = pickle.loads(sys.stdin.buffer.read())
    pending = pending_path(config, candidate)
    try:
        with FileLock(str(pending.with_suffix(".lock"))):
            if read_verdict(config, candidate, config.device) is not None:
                return
            os.nice(10)  # the run analysing meanwhile keeps the cores
            try:
                build_engine_files(config, candidate)
            except Exception as exc:  # recorded as a failed verdict below, so no run defers it again
                print(f"building {candidate} failed: {exc}", flush=True)
            else:
                # The verdict includes a speed: measured once the run that started the check is
                # done (or after a while, for a long-lived parent), not against its analysis.
                deadline = time.monotonic() + PARENT_WAIT_S
                while pid_alive(parent) and time.monotonic() < deadline:
                    time.sleep(1.0)
            verdict = record_verdict(config, candidate, calibration_texts())
            print(f"engine check of {candidate} ({config.model.name}): {verdict}", flush=True)
    finally:
        pending.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
