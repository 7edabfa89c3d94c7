"""Stops and faults an operator meets, on the real CLI: SIGTERM and SIGHUP, a full or read-only data
root (a real tmpfs, mounted in a user namespace), the Prefect API going away."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from conftest import newcomer_env, synthetic_run, wait_for

pytestmark = pytest.mark.slow  # CLI subprocesses, Prefect servers

DAY = "2026-01-07"


def _chunks(root: Path) -> list[Path]:
    return list((root / "analyzed" / f"date={DAY}").glob("*/chunk-*.parquet"))


def _manifest(root: Path) -> dict[str, object]:
    return json.loads((root / "runs" / f"date={DAY}" / "manifest.json").read_text())


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _none_alive(pids: set[int]) -> bool:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return not alive


def _stop_mid_analyze(root: Path, env: dict[str, str], sig: signal.Signals) -> tuple[int, str, set[int]]:
    """A two-worker run stopped by ``sig`` once it has written two chunks: exit code, stderr, and
    every process it had started (its temporary server, the server's guard, the pool)."""
    before = len(_chunks(root))
    proc = subprocess.Popen(
        synthetic_run(root, posts=3000, chunk_size=150, workers=2),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()

    def two_chunks() -> bool:
        seen.update(_descendants(proc.pid))
        return len(_chunks(root)) >= before + 2 or proc.poll() is not None

    wait_for(two_chunks, 300, "two analyzed chunks")
    seen.update(_descendants(proc.pid))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err, seen


def test_sigterm_and_sighup_stop_like_ctrl_c_and_leave_no_process(tmp_path: Path) -> None:
    root, env = tmp_path / "root", newcomer_env(tmp_path)  # the CLI starts its own server
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        returncode, err, started = _stop_mid_analyze(root, env, sig)
        assert returncode == code, err[-3000:]
        assert f"interrupted ({sig.name})" in err and "run the same command again" in err
        assert "Traceback" not in err
        manifest = _manifest(root)
        assert manifest["status"] == "interrupted" and manifest["stage"] == "analyze"
        finished = manifest["finished"]
        assert isinstance(finished, dict) and finished["clean"] and finished["analyzed_chunks"] >= 2
        # Workers, the temporary server and its guard are all gone, at once.
        assert len(started) >= 4, started
        wait_for(lambda started=started: _none_alive(started), 10, f"the processes of the run stopped by {sig.name}")
    # The second run resumed from the first one's chunks (a rerun completing from them is tested
    # with Ctrl-C in test_cli and with the API going away below).
    assert _manifest(root)["finished"]["analyzed_chunks"] >= 4  # type: ignore[index]


def _in_namespace(mount: str, command: list[str]) -> list[str]:
    """``command`` in a user and mount namespace where a small tmpfs is mounted on the data root,
    copied out to ``<root>.after`` when the command ends (the mount ends with the namespace)."""
    quoted = " ".join(f"'{c}'" for c in command)
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        f'mount -t tmpfs -o {mount} tmpfs "$ROOT" && {quoted}; rc=$?; cp -a "$ROOT"/. "$ROOT.after"; exit $rc',
    ]


@pytest.fixture(scope="module")
def namespaces() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"unprivileged user namespaces are off here: {probe.stderr.strip()}")


def test_a_full_or_read_only_data_root_ends_in_one_line_and_the_next_run_completes(
    tmp_path: Path, prefect_server: str, namespaces: None
) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "root.after").mkdir()
    run = synthetic_run(root, posts=600, chunk_size=200)

    read_only = subprocess.run(
        _in_namespace("ro,size=1m", run), env={**env, "ROOT": str(root)}, capture_output=True, text=True, timeout=300
    )
    assert read_only.returncode == 1, read_only.stderr[-3000:]

    assert f"storage fault under data root {root} during start: read-only file system" in read_only.stderr
    assert "Traceback" not in read_only.stderr

    full = subprocess.run(
        _in_namespace("size=80k", run), env={**env, "ROOT": str(root)}, capture_output=True, text=True, timeout=300
    )
    assert full.returncode == 1, full.stderr[-3000:]
    assert f"storage fault under data root {root} during " in full.stderr
    assert "no space left on the device" in full.stderr and "run the same command again" in full.stderr
    assert "Traceback" not in full.stderr and "FileNotFoundError" not in full.stderr
    # Copied out of the namespace: what the failed run kept. Nothing is marked complete.
    kept = tmp_path / "root.after"
    manifest = json.loads((kept / "runs" / f"date={DAY}" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "no space left" in manifest["error"]
    assert (kept / "raw" / f"date={DAY}" / "posts.parquet").exists()  # collect finished before the disk filled

    # Space freed: the next run completes and collects nothing again.
    done = subprocess.run(synthetic_run(kept, posts=600, chunk_size=200), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads(done.stdout)["runs"][0]
    assert again["status"] == "complete" and again["collect"]["status"] == "reused"
    assert not list(kept.rglob("*.tmp"))


def test_the_prefect_api_going_away_ends_in_one_line_and_the_next_run_resumes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    # Few client retries: the server killed here never comes back (the default rides out ~1 min).
    env = {**newcomer_env(tmp_path), "PREFECT_CLIENT_MAX_RETRIES": "1"}
    args = synthetic_run(root, posts=1200, chunk_size=150)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(_chunks(root)) >= 2 or proc.poll() is not None, 300, "two analyzed chunks")
    (server,) = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "uvicorn" in " ".join(p.cmdline()) and "prefect.server" in " ".join(p.cmdline())
    ]
    server.kill()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-3000:]
    assert "the Prefect API at http://127.0.0.1:" in err and "stopped answering while analyze was running" in err
    assert "run the same command again" in err and "Traceback" not in err
    finished = len(_chunks(root))

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)["runs"][0]
    assert run["status"] == "complete" and run["analyze"]["reused"] >= finished >= 2


def test_a_prefect_server_restart_during_a_run_is_ridden_out(tmp_path: Path) -> None:
    """A short outage (the server restarted on its port, with its database) costs the run
    nothing: Prefect's client retries carry it, and it completes."""
    root = tmp_path / "root"
    env = newcomer_env(tmp_path)  # Prefect's default client retries
    args = synthetic_run(root, posts=1200, chunk_size=150)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: len(_chunks(root)) >= 1 or proc.poll() is not None, 300, "an analyzed chunk")
        (server,) = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "uvicorn" in " ".join(p.cmdline()) and "prefect.server" in " ".join(p.cmdline())
        ]
        command, server_env, cwd = server.cmdline(), server.environ(), server.cwd()
        server.kill()
        # Dead once it is gone or a zombie (the CLI, its parent, reaps it when it stops).
        wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 30, "the server's end")
        # The same server again, on the same port and database, as a service manager restarts it.
        restarted = subprocess.Popen(
            command, env=server_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        run = json.loads(out)["runs"][0]
        assert run["status"] == "complete" and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        if restarted is not None:
            restarted.kill()
            restarted.wait()
