"""Run flows from the CLI without a configured Prefect server.

With no ``PREFECT_API_URL``, Prefect's ephemeral mode starts a temporary API server in every
process that talks to it, pool workers included (6-12 s each, several SQLite writers). The CLI
instead starts one temporary server on a free loopback port and points this process and every
worker it spawns at it. With ``PREFECT_API_URL`` set (a running ``prefect server start``), that
server is used and the runs show up in its UI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tweet_signals.processes import pid_alive


def _configured_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()


@contextmanager
def prefect_api() -> Iterator[str]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    configured = _configured_api_url()
    if configured:
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    # The temporary server keeps its SQLite database in PREFECT_HOME, which Prefect does not
    # create with its parents: a missing folder ended in a connection-timeout traceback.
    Path(PREFECT_HOME.value()).expanduser().mkdir(parents=True, exist_ok=True)
    server = SubprocessASGIServer()
    server.start()
    if server.server_process is not None:
        _guard_server(server.server_process.pid)
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by spawned workers
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        if server.server_process is not None and server.server_process.poll() is None:
            _send_queued_logs()  # not to a server that died: that would only wait for the timeout
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _send_queued_logs() -> None:
    """Send the runs' queued log records while the temporary server is still up; otherwise
    Prefect's log worker sends them at interpreter exit, to a stopped server, and prints
    "Error logging to API" after every command."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def _guard_server(server_pid: int) -> None:
    """Start the guard that stops the server ``server_pid`` when this process dies."""
    subprocess.Popen(
        [sys.executable, "-m", "tweet_signals.prefect_local", str(os.getpid()), str(server_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the command's process group does not reach it
    )


def guard(parent: int, server: int, poll_s: float = 0.5, grace_s: float = 5.0) -> None:
    """Wait while ``parent`` lives (this process is re-parented when it dies); then stop
    ``server``: SIGTERM, and SIGKILL after ``grace_s``. Returns at once if the server is gone."""
    while os.getppid() == parent and pid_alive(server):
        time.sleep(poll_s)
    if not pid_alive(server):
        return
    os.kill(server, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and pid_alive(server):
        time.sleep(0.1)
    if pid_alive(server):
        os.kill(server, signal.SIGKILL)


if __name__ == "__main__":  # the guard process
    guard(int(sys.argv[1]), int(sys.argv[2]))
