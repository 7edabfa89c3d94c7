"""prefect.yaml against a real Prefect server: deploy, start a process worker, trigger runs
through the REST API as the UI's "Run" button does, and wait for them."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, SHARED_DATA

from tweet_signals.deployments.serve import build_deployments, declared_deployments
from tweet_signals.stages.summary import root_tag

pytestmark = pytest.mark.slow  # real servers, clusters or CLI subprocesses


BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        HF_HUB_OFFLINE="1",
    )
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("prefect server did not become healthy: " + (home / "server.log").read_text()[-2000:])
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _prefect(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _api(env: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=env["PREFECT_API_URL"], timeout=30)


def _wait(client: httpx.Client, run_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = client.get(f"/flow_runs/{run_id}").json()
        if run["state"]["type"] in TERMINAL:
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout} s: {run['state']}")


def _create_run(client: httpx.Client, deployment_id: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A flow run of a deployment, as the UI's "Run" button makes it. The server's own transient
    errors (a 5xx while its SQLite database is busy with the runs before) are retried twice; any
    other refusal fails with the server's answer."""
    body = {} if parameters is None else {"parameters": parameters}
    for attempt in range(3):
        response = client.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
        if response.status_code < 500 or attempt == 2:
            break
        time.sleep(2)
    assert response.status_code == 201, (response.status_code, response.text)
    run: dict[str, Any] = response.json()
    return run


def test_serve_builds_the_same_deployments_as_prefect_yaml() -> None:
    declared = declared_deployments()
    built = {d.name: d for d in build_deployments()}
    assert set(built) == set(declared) == {"daily-signals", "backfill-signals", "signal-health"}
    daily = built["daily-signals"].schedules[0].schedule
    assert (daily.cron, daily.timezone) == ("30 16 * * 1-5", "Asia/Kolkata")
    # Out of the box the schedule is off: active, it would produce synthetic signals every weekday.
    assert built["daily-signals"].schedules[0].active is False
    # The health check runs after the daily signals, also off until prices_dir is set.
    health = built["signal-health"]
    after_daily = health.schedules[0].schedule
    assert (after_daily.cron, after_daily.timezone) == ("0 18 * * 1-5", "Asia/Kolkata")
    assert health.schedules[0].active is False
    # It reads the data root the daily runs write.
    assert health.parameters["params"]["data_root"] == built["daily-signals"].parameters["params"]["data_root"]
    assert all(d.enforce_parameter_schema for d in built.values())


@pytest.fixture(scope="module")
def worker(server: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    """prefect.yaml deployed, and one process worker running their flow runs."""
    _prefect(server, "work-pool", "create", "tweet-signals", "--type", "process")
    _prefect(server, "deploy", "--all")
    worker_log = (tmp_path_factory.mktemp("worker") / "worker.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "tweet-signals"],
        env=server,
        cwd=REPO,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_deploy_and_run_both_deployments_through_the_api(
    server: dict[str, str], worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    with _api(server) as client:
        daily = client.get("/deployments/name/daily-signals/daily-signals").json()
        backfill = client.get("/deployments/name/backfill-signals/backfill-signals").json()
        assert daily["schedules"][0]["schedule"]["cron"] == "30 16 * * 1-5"
        assert daily["schedules"][0]["active"] is False  # ships inactive
        assert daily["enforce_parameter_schema"] and backfill["enforce_parameter_schema"]
        # The UI renders this schema as a form: one model, with defaults and descriptions.
        schema = json.dumps(daily["parameter_openapi_schema"])
        assert "Trading session to process" in schema and "chunk_size" in schema

        out = tmp_path / "out"
        # A partial object, as a custom run from the UI or `prefect deployment run --param params=...`
        # sends it: model, source and symbols are not given, so the deployment's (prefect.yaml:
        # embedded, synthetic, NIFTY/SENSEX/BANKNIFTY) apply, not the model's defaults (the hub
        # RoBERTa, which an offline worker cannot load).
        params = {"synthetic_posts": 300, "workers": 1, "chunk_size": 100, "data_root": str(out)}
        unknown = client.post(
            f"/deployments/{daily['id']}/create_flow_run",
            json={"parameters": {"params": {**params, "modle": "embedded"}}},
        )
        assert unknown.status_code in (409, 422) and "modle" in unknown.text, unknown.text
        bad = client.post(
            f"/deployments/{daily['id']}/create_flow_run",
            json={"parameters": {"params": {**params, "chunk_size": 1}}},
        )
        assert bad.status_code in (409, 422), bad.text  # rejected by the parameter schema

        run = _create_run(client, daily["id"], {"params": {**params, "run_date": "2026-01-07"}})
        finished = _wait(client, run["id"])
        assert finished["state"]["type"] == "COMPLETED", finished["state"]
        assert finished["name"] == "signals-2026-01-07"
        assert (out / "signals" / "date=2026-01-07" / "signals.parquet").exists()
        ran = json.loads((out / "runs" / "date=2026-01-07" / "manifest.json").read_text())["params"]
        assert (ran["model"], ran["source"], ran["symbols"]) == (
            "embedded",
            "synthetic",
            ["NIFTY", "SENSEX", "BANKNIFTY"],
        )
        assert (ran["synthetic_posts"], ran["data_root"]) == (300, str(out))
        tag = root_tag(str(out))
        artifacts = {a["key"]: a for a in client.post("/artifacts/filter", json={}).json()}
        keys = {f"{kind}-2026-01-07-{tag}" for kind in ("signals-summary", "signals-table", "analyze-progress")}
        assert keys <= set(artifacts)
        # The summary leads with the verdicts and shows the chart inline; the table leads with
        # symbol and signal, numbers rounded.
        summary = artifacts[f"signals-summary-2026-01-07-{tag}"]
        assert str(out) in summary["description"]
        body = summary["data"]
        assert body.index("| symbol | signal |") < body.index("data:image/png;base64,") < body.index("**collect**")
        table = json.loads(artifacts[f"signals-table-2026-01-07-{tag}"]["data"])
        assert list(table[0])[:2] == ["symbol", "signal"]
        assert all(len(str(v).split(".")[-1]) <= 3 for row in table for v in row.values() if isinstance(v, float))

        # Two runs of one session (a click on "Run" while the scheduled run goes): the second
        # queues behind the first (concurrency_limit 1) and then reuses everything.
        both = [_create_run(client, daily["id"], {"params": {**params, "run_date": "2026-01-09"}}) for _ in range(2)]
        for twin in both:
            assert _wait(client, twin["id"])["state"]["type"] == "COMPLETED"
        last = json.loads((out / "runs" / "date=2026-01-09" / "manifest.json").read_text())
        assert last["analyze"]["computed"] == 0 and last["analyze"]["reused"] == last["analyze"]["chunks"] > 1
        assert not (out / "runs" / "date=2026-01-09" / "lease.json").exists()

        run = _create_run(client, backfill["id"], {"start": "2026-01-06", "end": "2026-01-08", "params": params})
        finished = _wait(client, run["id"])
        assert finished["state"]["type"] == "COMPLETED", finished["state"]
        manifest = json.loads((out / "runs" / "date=2026-01-08" / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        children = client.post(
            "/flow_runs/filter", json={"flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}}}
        ).json()
        backfill_summary = next(
            a for a in client.post("/artifacts/filter", json={}).json() if a["key"].startswith("backfill-")
        )
        assert "| 2026-01-07 | skipped: already complete |" in backfill_summary["data"]
        assert "| 2026-01-06 | computed |" in backfill_summary["data"]
        # 01-07 was complete already: only 01-06 and 01-08 ran, as subflows.
        assert sorted(c["name"] for c in children if c["name"].startswith("signals-")) == [
            "signals-2026-01-06",
            "signals-2026-01-08",
        ]

        _run_signal_health(client, out, tmp_path / "prices")


def _run_signal_health(client: httpx.Client, data_root: Path, prices: Path) -> None:
    """signal-health through the API: with the shipped parameters (prices_dir is a placeholder)
    it ends Failed naming the folder; given prices, it judges what the daily runs stored."""
    health = client.get("/deployments/name/signal-health/signal-health").json()
    assert health["enforce_parameter_schema"] and health["schedules"][0]["active"] is False
    assert "Coverage collapse threshold" in json.dumps(health["parameter_openapi_schema"])
    shipped = _create_run(client, health["id"])
    finished = _wait(client, shipped["id"])
    assert finished["state"]["type"] == "FAILED", finished["state"]
    assert "prices_dir 'prices'" in finished["state"]["message"] and "no such folder" in finished["state"]["message"]

    prices.mkdir()
    (prices / "NIFTY.csv").write_bytes((SHARED_DATA / "nifty50-daily" / "nifty50.csv").read_bytes())
    run = _create_run(client, health["id"], {"params": {"data_root": str(data_root), "prices_dir": str(prices)}})
    finished = _wait(client, run["id"])
    # Three symbols (one priced) are too few to rank against each other: a verdict, not a failure.
    assert finished["state"]["type"] == "COMPLETED", finished["state"]
    artifacts = client.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    summary = next(a for a in artifacts if a["key"] == "signal-health-summary")
    assert summary["data"].startswith("# Signal health: not measurable")
    assert any(a["key"] == "signal-health" for a in artifacts)
    assert (data_root / "reports" / "signal-health" / "2026-01-09" / "report.html").exists()


def test_a_burst_of_runs_queues_and_a_cancelled_run_stops_everything(
    server: dict[str, str], worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """Runs for three dates started at once run one at a time (concurrency_limit 1 in prefect.yaml)
    and all complete; Cancel on a running one (the worker's SIGTERM) leaves an interrupted manifest
    and no process behind."""
    import psutil

    out = tmp_path / "out"
    params = {"synthetic_posts": 300, "workers": 1, "chunk_size": 100, "engine": "torch-fp32", "data_root": str(out)}
    with _api(server) as client:
        daily = client.get("/deployments/name/daily-signals/daily-signals").json()
        assert daily["global_concurrency_limit"]["limit"] == 1
        assert daily["concurrency_options"]["collision_strategy"] == "ENQUEUE"
        burst = [
            _create_run(client, daily["id"], {"params": {**params, "run_date": day}})
            for day in ("2026-01-12", "2026-01-13", "2026-01-14")
        ]
        runs = [_wait(client, run["id"]) for run in burst]
        assert [r["state"]["type"] for r in runs] == ["COMPLETED"] * 3
        spans = sorted((r["start_time"], r["end_time"]) for r in runs)
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), spans

        # Cancel a two-worker run mid-analyze, as the UI's Cancel button does.
        big = {**params, "synthetic_posts": 3000, "chunk_size": 150, "workers": 2, "run_date": "2026-01-16"}
        run = _create_run(client, daily["id"], {"params": big})
        chunks = out / "analyzed" / "date=2026-01-16"
        deadline = time.time() + 300
        while time.time() < deadline and len(list(chunks.glob("*/chunk-*.parquet"))) < 2:
            time.sleep(0.2)
        started = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
        assert len(started) >= 3, started  # the flow run's process and its pool
        client.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "CANCELLING"}, "force": True})
        assert _wait(client, run["id"], timeout=120)["state"]["type"] == "CANCELLED"
        manifest = json.loads((out / "runs" / "date=2026-01-16" / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and manifest["stage"] == "analyze"
        deadline = time.time() + 15
        while time.time() < deadline and any(psutil.pid_exists(p) for p in started):
            time.sleep(0.2)
        assert not [p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
