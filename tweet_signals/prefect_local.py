"""Run flows from the CLI without a configured Prefect server.

With no ``PREFECT_API_URL``, Prefect's ephemeral mode starts a temporary API server in every
process that talks to it, pool workers included (6-12 s each, several SQLite writers). The CLI
instead starts one temporary server on a free loopback port and points this process and every
worker it spawns at it. With ``PREFECT_API_URL`` set (a running ``prefect server start``), that
server is used and the runs show up in its UI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by spawned workers
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        _send_queued_logs()
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _send_queued_logs() -> None:
    """Send the runs' queued log records while the temporary server is still up; otherwise
    Prefect's log worker sends them at interpreter exit, to a stopped server, and prints
    "Error logging to API" after every command."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
