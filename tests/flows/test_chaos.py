"""Chaos: the whole process group of a CLI run killed (SIGKILL) during collect, dedupe, analyze and
signals, each time rerun; the last rerun must equal an uninterrupted run, with every clean post
analyzed once, a complete manifest, no temporary file and no process left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import polars as pl
import psutil
import pytest
from conftest import kill_a_writer_mid_file, synthetic_run
from polars.testing import assert_frame_equal

pytestmark = pytest.mark.slow  # CLI subprocesses with a process pool

DAY = "2026-01-07"


def _run(root: Path, env: dict[str, str]) -> list[str]:
    return synthetic_run(root, posts=1500, chunk_size=300, workers=2)


def _kill_group_at(root: Path, env: dict[str, str], line: str) -> set[int]:
    """Start a run in its own process group; SIGKILL the group when stderr shows ``line``.
    Returns the session's processes seen."""
    proc = subprocess.Popen(
        _run(root, env), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    for text in proc.stderr:
        if line in text:
            break
    else:
        raise AssertionError(f"the run ended before {line!r}: exit {proc.wait()}")
    members = {p.pid for p in psutil.process_iter() if _sid(p.pid) == proc.pid}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return members


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_sigkill_of_the_group_at_every_stage_then_a_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, prefect_server: str
) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    root = tmp_path / "chaos"
    seen: set[int] = set()
    for line in (f"{DAY}: collect", f"{DAY}: dedupe", f"{DAY}: analyze 1/", f"{DAY}: signals"):
        seen |= _kill_group_at(root, env, line)
    kill_a_writer_mid_file(root / "raw" / f"date={DAY}" / "posts.parquet", env)
    assert list(root.rglob(".*.tmp")), "the killed write left no temporary file to clean"

    done = subprocess.run(_run(root, env), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)["runs"][0]
    assert run["status"] == "complete" and run["previous_run"]["status"] == "killed"
    assert not list(root.rglob("*.tmp"))
    assert not [p for p in seen if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    clean = pl.read_parquet(root / "clean" / f"date={DAY}" / "posts.parquet")
    analyzed = pl.concat([pl.read_parquet(c["output_path"]) for c in run["chunks"]])
    assert analyzed["id"].to_list() == clean["id"].to_list()  # every clean post once, in order

    alone = subprocess.run(_run(tmp_path / "alone", env), env=env, capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    signals = [pl.read_parquet(r / "signals" / f"date={DAY}" / "signals.parquet") for r in (root, tmp_path / "alone")]
    # Counts, labels and signals exactly; scores to float32 precision (a chunk's scores can differ
    # in the last bits with the pool process that computed it).
    assert_frame_equal(signals[0], signals[1], check_exact=False, rel_tol=1e-6)
