"""One writer per session: the lease is exclusive, names its holder, and passes on when its holder dies."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tweet_signals.storage import lease as lease_module
from tweet_signals.storage.lease import Holder, SessionBusyError, SessionLease


def _holder(run_id: str) -> Holder:
    return Holder.this_process(run_id)


def test_a_held_lease_names_its_holder_and_refuses_a_second_run(tmp_path: Path) -> None:
    first = SessionLease(tmp_path / "lease.json", _holder("run-a"))
    first.acquire(wait_s=0)
    second = SessionLease(tmp_path / "lease.json", _holder("run-b"))
    with pytest.raises(SessionBusyError) as busy:
        second.acquire(wait_s=0)
    message = str(busy.value)
    assert "run-a" in message and socket.gethostname() in message and f"pid {first.holder.pid}" in message
    assert first.holder.started_at in message
    first.release()
    second.acquire(wait_s=0)  # free again
    assert json.loads((tmp_path / "lease.json").read_text())["run_id"] == "run-b"
    second.release()
    assert not (tmp_path / "lease.json").exists()


def test_a_waiting_run_gets_the_lease_when_the_holder_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "POLL_S", 0.1)
    first = SessionLease(tmp_path / "lease.json", _holder("run-a"))
    first.acquire(wait_s=0)
    threading.Timer(0.8, first.release).start()
    seen: list[dict[str, object]] = []
    second = SessionLease(tmp_path / "lease.json", _holder("run-b"))
    second.acquire(wait_s=30, on_wait=seen.append)
    assert seen and seen[0]["run_id"] == "run-a" and second.waited_s >= 0.5
    second.release()


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = {**Holder("run-dead", socket.gethostname(), int(gone.stdout), "2026-01-07T10:00:00+00:00").__dict__}
    dead["expires_at"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()  # not expired: the pid decides
    (tmp_path / "lease.json").write_text(json.dumps(dead))
    taker = SessionLease(tmp_path / "lease.json", _holder("run-b"))
    taker.acquire(wait_s=0)
    assert taker.taken_over is not None and taker.taken_over["run_id"] == "run-dead"
    taker.release()


def test_a_live_holder_elsewhere_blocks_until_its_lease_expires(tmp_path: Path) -> None:
    elsewhere = {"run_id": "run-x", "host": "another-host", "pid": 1, "started_at": "2026-01-07T10:00:00+00:00"}
    path = tmp_path / "lease.json"
    path.write_text(json.dumps({**elsewhere, "expires_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}))
    with pytest.raises(SessionBusyError, match="another-host"):
        SessionLease(path, _holder("run-b")).acquire(wait_s=0)
    path.write_text(json.dumps({**elsewhere, "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}))
    taker = SessionLease(path, _holder("run-b"))
    taker.acquire(wait_s=0)
    assert taker.taken_over is not None and taker.taken_over["host"] == "another-host"
    taker.release()


def _race(path: str, run_id: str, start_at: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    time.sleep(max(0.0, start_at - time.time()))
    holder = SessionLease(Path(path), Holder.this_process(run_id)).try_acquire()
    out.put((run_id, holder is None))
    time.sleep(1.0)  # keep the process (and its pid) alive while the others decide


@pytest.mark.slow  # six real processes
@pytest.mark.parametrize("stale", [False, True])
def test_racing_processes_never_both_win(tmp_path: Path, stale: bool) -> None:
    path = tmp_path / "lease.json"
    if stale:  # all of them find a dead holder's lease and try to take it over at once
        path.write_text(
            json.dumps({"run_id": "dead", "host": "h", "pid": 1, "expires_at": "2000-01-01T00:00:00+00:00"})
        )
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0
    procs = [context.Process(target=_race, args=(str(path), f"run-{i}", start_at, out)) for i in range(6)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    winners = [run for run, won in results if won]
    assert len(winners) == 1
    assert json.loads(path.read_text())["run_id"] == winners[0]
