"""A pool worker killed mid-run costs a retry of its chunk, not the day; a chunk that keeps killing
its workers fails the run by name. Real processes: the CLI, its pool, and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import synthetic_run

pytestmark = pytest.mark.slow  # CLI subprocesses with a process pool

DAY = "2026-01-07"


def _claim_pid(claims: Path, chunk: int, not_in: set[int], proc: subprocess.Popen[str], timeout: float = 300) -> int:
    """The pid of the worker that claims ``chunk`` (other than ``not_in``), as soon as it does."""
    deadline = time.time() + timeout
    path = claims / f"chunk-{chunk:04d}.json"
    while time.time() < deadline and proc.poll() is None:
        try:
            pid = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            pid = None
        if pid is not None and pid not in not_in:
            return pid
        time.sleep(0.02)
    raise AssertionError(f"no new worker claimed chunk {chunk}: {proc.poll()}")


def _start_run(root: Path, prefect_server: str) -> subprocess.Popen[str]:
    """A CLI run of 10 chunks on two pool workers, in the background."""
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    args = synthetic_run(root, posts=6000, chunk_size=600, workers=2)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_worker_costs_a_retry_not_the_run(tmp_path: Path, prefect_server: str) -> None:
    root = tmp_path / "root"
    proc = _start_run(root, prefect_server)
    victim = _claim_pid(root / "runs" / f"date={DAY}" / "claims", 2, set(), proc)
    os.kill(victim, signal.SIGKILL)  # what the OOM killer does
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    run = json.loads(out)["runs"][0]
    analyze = run["analyze"]
    assert run["status"] == "complete" and analyze["failed"] == [] and analyze["pool_rebuilds"] == 1
    (death,) = [d for d in analyze["worker_deaths"] if d["pid"] == victim]
    assert death["exit"] == "signal SIGKILL" and death["likely_out_of_memory"] and death["chunk"] == 2
    assert death["peak_rss_mb"] > 0 and f"worker {victim} died while analyzing chunk 2" in err
    # Every clean post was analyzed exactly once, in order.
    clean = pl.read_parquet(root / "clean" / f"date={DAY}" / "posts.parquet")
    analyzed = pl.concat([pl.read_parquet(c["output_path"]) for c in run["chunks"]])
    assert analyzed["id"].to_list() == clean["id"].to_list()


def test_a_chunk_that_keeps_killing_its_workers_fails_the_run_by_name(tmp_path: Path, prefect_server: str) -> None:
    root = tmp_path / "root"
    claims = root / "runs" / f"date={DAY}" / "claims"
    proc = _start_run(root, prefect_server)
    killed: set[int] = set()
    for _ in range(2):
        pid = _claim_pid(claims, 3, killed, proc)
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "Traceback" not in err
    assert "chunk 3" in err and "2 workers died analyzing this chunk" in err
    manifest = json.loads((root / "runs" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["analyze"]["failed"] == [3]
    assert {d["pid"] for d in manifest["analyze"]["worker_deaths"] if d["chunk"] == 3} == killed
    # The other chunks finished and are kept: a rerun computes only chunk 3.
    done = [c["chunk"] for c in manifest["chunks"] if c["status"] == "computed"]
    assert sorted(done) == [c for c in range(manifest["analyze"]["chunks"]) if c != 3]
