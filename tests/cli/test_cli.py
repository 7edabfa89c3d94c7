"""The commands a newcomer types, run as subprocesses the way the README shows them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import polars as pl
import pytest
from conftest import CLI, KIRTI_COLUMNS, KIRTI_CSV, newcomer_env, synthetic_run, wait_for

pytestmark = pytest.mark.slow  # real servers, clusters or CLI subprocesses


def test_demo_twice_second_run_computes_nothing_until_an_output_is_lost(tmp_path: Path) -> None:
    args = [*CLI, "demo", "--data-root", str(tmp_path / "out"), "--posts-per-session", "1500", "--json"]
    first = subprocess.run(args, capture_output=True, text=True, env=newcomer_env(tmp_path), timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)
    assert [r["run_date"] for r in report["runs"]] == [f"2026-01-0{d}" for d in range(5, 10)]
    assert all(r["status"] == "complete" and r["model"]["id"] == "embedded" for r in report["runs"])
    assert all(r["signals"]["rows"] == 3 for r in report["runs"])
    second = subprocess.run(args, capture_output=True, text=True, env=newcomer_env(tmp_path), timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout)["skipped"] == [r["run_date"] for r in report["runs"]]

    # "Complete" is checked against the files: a deleted chunk and a truncated one (of two other
    # sessions) are recomputed, and nothing else is.
    by_date = {r["run_date"]: r for r in report["runs"]}
    deleted = Path(by_date["2026-01-06"]["chunks"][1]["output_path"])
    truncated = Path(by_date["2026-01-08"]["chunks"][0]["output_path"])
    assert all(len(by_date[d]["chunks"]) == 2 for d in ("2026-01-06", "2026-01-08"))
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    third = subprocess.run(args, capture_output=True, text=True, env=newcomer_env(tmp_path), timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    repaired = json.loads(third.stdout)
    assert repaired["skipped"] == ["2026-01-05", "2026-01-07", "2026-01-09"]
    rerun = [r for r in repaired["runs"] if r["run_date"] not in repaired["skipped"]]
    computed = {(r["run_date"], c["chunk"]) for r in rerun for c in r["chunks"] if c["status"] == "computed"}
    assert computed == {("2026-01-06", 1), ("2026-01-08", 0)}
    assert deleted.exists() and pl.read_parquet(truncated).height == by_date["2026-01-08"]["chunks"][0]["rows"]


def test_run_command_on_indian_csv_with_summary(tmp_path: Path, tiny_roberta: Path, prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    args = [
        *CLI,
        "run",
        "--date",
        "2026-01-07",
        "--input",
        str(KIRTI_CSV),
        "--columns",
        KIRTI_COLUMNS,
        "--hashtags",
        "nifty sensex",
        "--model",
        str(tiny_roberta),
        "--workers",
        "2",
        "--chunk-size",
        "100",
        "--data-root",
        str(tmp_path),
    ]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run summary" in done.stderr and "NIFTY" in done.stderr
    bad = subprocess.run(
        [
            *CLI,
            "run",
            "--date",
            "2026-01-07",
            "--input",
            str(KIRTI_CSV),
            "--model",
            "nope/missing",
            "--data-root",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert bad.returncode == 2
    assert "--model embedded" in bad.stderr and "Traceback" not in bad.stderr


def test_interrupted_run_resumes_without_recomputing_finished_chunks(tmp_path: Path, prefect_server: str) -> None:
    import signal
    import time

    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    args = synthetic_run(tmp_path, posts=2500, chunk_size=100)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks = tmp_path / "analyzed" / "date=2026-01-07"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(chunks.glob("*/chunk-*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # as Ctrl-C would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    manifest = json.loads((tmp_path / "runs" / "date=2026-01-07" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    finished = len(list(chunks.glob("*/chunk-*.parquet")))
    assert finished >= 2

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    analyze = json.loads(done.stdout)["runs"][0]["analyze"]
    assert analyze["reused"] == finished and analyze["computed"] == analyze["chunks"] - finished


def test_two_runs_of_one_session_one_computes_the_other_waits_or_refuses(tmp_path: Path, prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    root = tmp_path / "shared-root"
    lease = root / "runs" / "date=2026-01-07" / "lease.json"
    first = subprocess.Popen(synthetic_run(root), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: lease.exists() or first.poll() is not None, 120, "the first run's lease")
    holder = json.loads(lease.read_text())
    second = subprocess.Popen(synthetic_run(root), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    refused = subprocess.run(
        synthetic_run(root, "--on-busy", "fail"), env=env, capture_output=True, text=True, timeout=300
    )
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 0, err2[-2000:]
    # The refused run names the holder and does nothing.
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert holder["run_id"] in refused.stderr and f"pid {holder['pid']}" in refused.stderr
    a, b = json.loads(out1)["runs"][0], json.loads(out2)["runs"][0]
    assert a["analyze"]["computed"] == a["analyze"]["chunks"] > 1
    assert b["analyze"]["computed"] == 0 and b["analyze"]["reused"] == a["analyze"]["chunks"]
    assert b["lease_wait_s"] > 0 and b["collect"]["status"] == "reused"
    # What the two wrote together is what one run alone writes.
    alone = subprocess.run(synthetic_run(tmp_path / "alone"), env=env, capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-2000:]
    signals = [
        pl.read_parquet(r / "signals" / "date=2026-01-07" / "signals.parquet") for r in (root, tmp_path / "alone")
    ]
    assert signals[0].equals(signals[1])
    assert not lease.exists()


def test_a_killed_cli_leaves_no_server_and_the_next_run_reports_it(tmp_path: Path) -> None:
    import signal

    import psutil

    root = tmp_path / "root"
    manifest = root / "runs" / "date=2026-01-07" / "manifest.json"
    proc = subprocess.Popen(
        synthetic_run(root), env=newcomer_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def server_pids() -> list[int]:
        return [
            p.pid
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "uvicorn" in " ".join(p.cmdline()) and "prefect.server" in " ".join(p.cmdline())
        ]

    wait_for(lambda: manifest.exists() and json.loads(manifest.read_text())["status"] == "running", 180, "the run")
    servers = server_pids()
    assert len(servers) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    wait_for(
        lambda: not psutil.pid_exists(servers[0]) or psutil.Process(servers[0]).status() == "zombie",
        20,
        "the orphaned Prefect server to stop",
    )

    again = subprocess.run(synthetic_run(root), env=newcomer_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    run = json.loads(again.stdout)["runs"][0]
    assert run["status"] == "complete" and run["previous_run"]["status"] == "killed"
    assert run["previous_run"]["pid"] == proc.pid and "was killed" in again.stderr
