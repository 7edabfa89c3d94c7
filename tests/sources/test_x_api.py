"""The X API v2 collector against a local v2 server: pagination, 429, 503, a malformed page,
resume without refetching, budget caps, and a token that never leaks."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from x_server import XApiServer

from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.market.symbols import alias_map
from tweet_signals.params import SignalsParams
from tweet_signals.sources.x_api import build_query, search_terms
from tweet_signals.storage import Storage, read_json

TOKEN = "AAAA-test-bearer-token-7f3c9e"
DAY = date(2026, 1, 7)
WINDOW_START = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)  # previous close, 15:30 IST


def _tweets(first_id: int, n: int, start: datetime, step_s: int) -> list[dict[str, Any]]:
    words = ["#Nifty50 breakout, buying", "#Sensex weak, selling", "$BANKNIFTY flat today", "#nifty crash fear"]
    return [
        {
            "id": str(first_id + i),
            "text": f"{words[i % 4]} take {i}",
            "created_at": (start + timedelta(seconds=step_s * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "author_id": str(100 + i % 17),
            "lang": "en",
            "public_metrics": {"retweet_count": i % 3, "reply_count": 0, "like_count": i % 5, "quote_count": 0},
        }
        for i in range(n)
    ]


def test_query_from_aliases() -> None:
    query = build_query(search_terms(alias_map(["NIFTY", "SENSEX"])), ["nifty expiry"])
    assert query.startswith("(") and "#nifty50" in query and "$SENSEX".lower() in query.lower()
    assert query.endswith("-is:retweet") and "(nifty expiry)" in query


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_every_post_fetched_once_across_pages_429_503_malformed_and_resume(
    tmp_path: Path, tiny_roberta: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):  # record INFO logs for the check
        monkeypatch.setattr(logging.getLogger(name), "level", logging.INFO)
    older = _tweets(1_000_000, 250, WINDOW_START + timedelta(hours=1), 60)
    with XApiServer(TOKEN, older) as server:
        server.faults = ["429", "503"]
        params = dict(
            run_date=DAY,
            source="x",
            x_base_url=server.url,
            x_max_posts=200,
            model=str(tiny_roberta),
            workers=1,
            chunk_size=100,
            data_root=str(tmp_path),
        )
        state = daily_signals(SignalsParams(**params), return_state=True)
        assert state.is_completed(), state.message
        first = read_json(Storage(tmp_path).manifest(DAY))
        assert first is not None
        x = first["collect"]["x_api"]
        assert x["capped"] and not x["complete"] and x["posts"] == 200
        assert x["rate_limited"] == 1 and x["retries"] == 1 and x["pages"] == 2
        assert first["collect"]["posts"] == 200

        # Later that day: 30 newer posts appear; the rerun fetches the 50 older ones it missed
        # (until_id) and the new ones (since_id), nothing twice, through a malformed page.
        server.tweets += _tweets(2_000_000, 30, WINDOW_START + timedelta(hours=12), 60)
        server.faults = ["malformed"]
        state = daily_signals(SignalsParams(**{**params, "x_max_posts": 10_000, "force": True}), return_state=True)
        assert state.is_completed(), state.message
        second = read_json(Storage(tmp_path).manifest(DAY))
        assert second is not None and second["collect"]["x_api"]["complete"]

    assert len(server.served) == 280 and max(server.served.values()) == 1
    raw = pl.read_parquet(Storage(tmp_path).raw(DAY))
    assert raw.height == 280 and raw["id"].n_unique() == 280
    assert raw["author_followers"].null_count() == 0  # from includes.users
    assert second["collect"]["records_in"] == 280 == second["collect"]["posts"]
    assert all(h == f"Bearer {TOKEN}" for h in server.auth_headers)
    pages = sorted(Storage(tmp_path).raw_pages(DAY).glob("*.jsonl"))
    assert len(pages) == 2 and sum(len(p.read_text().splitlines()) for p in pages) == 4  # 2 + older 50 + newer 30

    # No output, manifest, artifact or log of the run contains the token.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs()
        artifacts = client.read_artifacts()
    assert logs and not any(TOKEN in log.message for log in logs)
    assert not any(TOKEN in str(a.data) for a in artifacts)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_bad_token_fails_clearly_without_leaking(
    tmp_path: Path, tiny_roberta: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", "wrong-token-123")
    with XApiServer(TOKEN, _tweets(1, 10, WINDOW_START + timedelta(hours=1), 60)) as server:
        state = daily_signals(
            SignalsParams(
                run_date=DAY, source="x", x_base_url=server.url, model=str(tiny_roberta), data_root=str(tmp_path)
            ),
            return_state=True,
        )
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "HTTP 401" in message and "wrong-token-123" not in message
    assert len(server.requests) == 1  # refused: not retried


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_token_from_a_prefect_secret_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.system import Secret

    from tweet_signals.sources.x_api import XApiError, resolve_token
    from tweet_signals.tasks.collect import prefect_secret

    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    Secret(value=TOKEN).save("x-bearer-token", overwrite=True)
    assert resolve_token("x-bearer-token", prefect_secret) == TOKEN
    with pytest.raises(XApiError, match="X_BEARER_TOKEN"):
        resolve_token(None, prefect_secret)
    # Without the flow's secret store, a named secret is a clear error, not an import of Prefect.
    with pytest.raises(XApiError, match="no secret store"):
        resolve_token("x-bearer-token")
