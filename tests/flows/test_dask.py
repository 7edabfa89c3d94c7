"""Analyze on a real multi-process Dask cluster (a scheduler and two workers on loopback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO

from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.params import SignalsParams
from tweet_signals.storage import Storage, read_json

pytestmark = pytest.mark.slow  # real servers, clusters or CLI subprocesses


BIN = Path(sys.executable).parent
DAY = date(2026, 1, 8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dask_cluster(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("dask-logs")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            cwd=REPO,
            stdout=(logs / "scheduler.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        from distributed import Client

        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    env=env,
                    cwd=REPO,
                    stdout=(logs / f"worker{i}.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@pytest.fixture
def dask_worker_pids(dask_cluster: str) -> list[int]:
    from distributed import Client

    with Client(dask_cluster, timeout=60) as client:
        return sorted(client.run(os.getpid).values())


def _analyzed(root: Path, key: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted(Storage(root).analyzed_dir(DAY, key).glob("chunk-*"))])


def test_dask_cluster_run_equals_process_pool_run(dask_cluster: str, tmp_path: Path, tiny_roberta: Path) -> None:
    base = dict(
        run_date=DAY,
        source="synthetic",
        synthetic_posts=800,
        model=str(tiny_roberta),
        engine="torch-fp32",
        chunk_size=100,
    )
    state = daily_signals(SignalsParams(**base, workers=2, data_root=str(tmp_path / "pool")), return_state=True)
    assert state.is_completed(), state.message
    state = daily_signals(
        SignalsParams(**base, task_runner="dask", dask_address=dask_cluster, data_root=str(tmp_path / "dask")),
        return_state=True,
    )
    assert state.is_completed(), state.message
    pool = read_json(Storage(tmp_path / "pool").manifest(DAY))
    dask = read_json(Storage(tmp_path / "dask").manifest(DAY))
    assert pool is not None and dask is not None
    assert _analyzed(tmp_path / "pool", pool["analyze"]["config_key"]).equals(
        _analyzed(tmp_path / "dask", dask["analyze"]["config_key"])
    )
    signals = [pl.read_parquet(Storage(tmp_path / r).signals(DAY)) for r in ("pool", "dask")]
    assert signals[0].equals(signals[1])
    # Both Dask worker processes took chunks, each loading its model once.
    by_pid: dict[int, list[int]] = {}
    for chunk in dask["chunks"]:
        by_pid.setdefault(chunk["pid"], []).append(chunk["model_loads_in_process"])
    assert len(by_pid) == 2 and all(set(loads) == {1} for loads in by_pid.values())


def test_a_lost_dask_worker_s_chunks_are_rescheduled(
    dask_cluster: str, dask_worker_pids: list[int], tmp_path: Path, tiny_roberta: Path
) -> None:
    import signal
    import threading

    params = SignalsParams(
        run_date=DAY,
        source="synthetic",
        synthetic_posts=3000,
        model=str(tiny_roberta),
        engine="torch-fp32",
        chunk_size=100,
        task_runner="dask",
        dask_address=dask_cluster,
        data_root=str(tmp_path),
    )
    states: list[object] = []
    runner = threading.Thread(target=lambda: states.append(daily_signals(params, return_state=True)))
    runner.start()
    chunks = tmp_path / "analyzed" / f"date={DAY}"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(chunks.glob("*/chunk-*.parquet"))) < 3:
        time.sleep(0.1)
    os.kill(dask_worker_pids[0], signal.SIGKILL)  # its nanny starts a fresh one; the scheduler reschedules
    runner.join(timeout=600)
    (state,) = states
    assert state.is_completed(), state.message  # type: ignore[attr-defined]
    manifest = read_json(Storage(tmp_path).manifest(DAY))
    assert manifest is not None and manifest["analyze"]["failed"] == []
    clean = pl.read_parquet(Storage(tmp_path).clean(DAY))
    assert _analyzed(tmp_path, manifest["analyze"]["config_key"])["id"].to_list() == clean["id"].to_list()
