"""``--data-root`` on an object store: a real S3 API server (moto) on loopback, worker processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.params import SignalsParams
from tweet_signals.storage import Storage, read_json, uri

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto's standalone server) on a loopback port."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("the S3 server did not start")
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials and endpoint as a desk would set them; read by s3fs and polars alike, and
    inherited by the worker processes."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    import fsspec

    s3 = fsspec.filesystem("s3", skip_instance_cache=True)
    if not s3.exists("desk-bucket"):  # the server lives for the module; its bucket too
        s3.mkdir("desk-bucket")
    return "s3://desk-bucket/signals"


def test_flow_on_an_s3_data_root_matches_the_local_run_and_reruns_nothing(
    s3_env: str, tmp_path: Path, tiny_roberta: Path
) -> None:
    day = date(2026, 1, 7)
    fields = dict(
        run_date=day, source="synthetic", synthetic_posts=600, model=str(tiny_roberta), workers=2, chunk_size=150
    )
    local_state = daily_signals(SignalsParams(**fields, data_root=str(tmp_path)), return_state=True)
    state = daily_signals(SignalsParams(**fields, data_root=s3_env), return_state=True)
    assert local_state.is_completed() and state.is_completed(), state.message

    remote, local = Storage.at(s3_env), Storage.at(str(tmp_path))
    assert not isinstance(remote.root, Path)
    manifest = read_json(remote.manifest(day))
    assert manifest is not None and manifest["status"] == "complete" and manifest["analyze"]["chunks"] == 4
    assert len({c["pid"] for c in manifest["chunks"]}) == 2  # two worker processes wrote to the store
    for stage in (Storage.raw, Storage.clean, Storage.signals):
        assert pl.read_parquet(uri(stage(remote, day))).equals(pl.read_parquet(stage(local, day)))
    assert remote.signals(day).with_name("chart.png").exists()
    assert manifest["analyze"]["config_key"] == read_json(local.manifest(day))["analyze"]["config_key"]  # type: ignore[index]

    again = daily_signals(SignalsParams(**fields, data_root=s3_env), return_state=True)
    assert again.is_completed()
    rerun = read_json(remote.manifest(day))
    assert rerun is not None and rerun["analyze"]["computed"] == 0 and rerun["dedupe"]["status"] == "reused"


def test_session_lease_on_an_object_store_is_exclusive(s3_env: str) -> None:
    from tweet_signals.storage.lease import Holder, SessionBusyError, SessionLease

    path = Storage.at(s3_env).lease(date(2026, 1, 7))
    first = SessionLease(path, Holder.this_process("run-a"))
    first.acquire(wait_s=0)
    # The conditional put refuses a second creator even when it does not look first.
    assert first._write({"run_id": "run-b"}, create=True) is False
    with pytest.raises(SessionBusyError, match="run-a"):
        SessionLease(path, Holder.this_process("run-b")).acquire(wait_s=0)
    first.release()
    second = SessionLease(path, Holder.this_process("run-b"))
    second.acquire(wait_s=0)
    assert json.loads(path.read_text())["run_id"] == "run-b"
    second.release()
    assert not path.exists()
