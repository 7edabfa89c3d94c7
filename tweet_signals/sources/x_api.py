"""X API v2 search client: paginated, resumable, rate-limit aware, pages stored as they came.

Search results come newest first. A fetch walks ``next_token`` pages until the window is done
or a budget cap (posts or requests) stops it. The resume state (newest and oldest id fetched,
whether the window was finished) lives beside the stored pages, so a rerun asks only for what
it lacks: ``until_id`` = oldest for the older part an interrupted fetch missed, ``since_id`` =
newest for anything posted since. The bearer token is only ever put in a request header.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

DEFAULT_BASE_URL = "https://api.x.com"
ENDPOINTS = {"recent": "/2/tweets/search/recent", "all": "/2/tweets/search/all"}
TWEET_FIELDS = "created_at,public_metrics,author_id,lang,referenced_tweets,entities,conversation_id"
USER_FIELDS = "username,public_metrics"
MAX_QUERY_CHARS = 512


class XApiError(RuntimeError):
    """The API refused or kept failing; the message never contains the token."""


@dataclass(frozen=True)
class XApiSettings:
    base_url: str = DEFAULT_BASE_URL
    endpoint: str = "recent"  # recent | all (full-archive, where the account allows)
    max_results: int = 100  # per page (10-100 recent, up to 500 full-archive)
    max_posts: int = 10_000  # per run: the API bills per post read
    max_requests: int = 200  # per run
    max_retries: int = 5  # per request, for 5xx, network errors and malformed bodies
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_rate_limit_wait_s: float = 900.0
    include_retweets: bool = False  # retweets cost money and dedupe collapses them anyway
    timeout_s: float = 30.0


@dataclass
class FetchState:
    """What has been fetched for a window; stored as ``state.json`` beside the pages."""

    newest_id: str | None = None
    oldest_id: str | None = None
    complete: bool = False  # the older end of the window was reached at least once


@dataclass
class FetchReport:
    requests: int = 0
    pages: int = 0
    posts: int = 0
    rate_limited: int = 0
    retries: int = 0
    capped: bool = False
    complete: bool = False
    waited_s: float = 0.0
    page_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_query(terms: list[str], queries: list[str] | None = None, include_retweets: bool = False) -> str:
    """``(#nifty OR $NIFTY OR ...)`` plus free queries, within the API's query length."""
    parts = list(dict.fromkeys(t for t in terms if t))
    clauses = [f"({' OR '.join(parts)})"] if parts else []
    clauses += [f"({q})" for q in queries or []]
    if not clauses:
        raise ValueError("an X search needs at least one symbol alias or --query")
    query = " OR ".join(clauses) if len(clauses) > 1 else clauses[0]
    if not include_retweets:
        query += " -is:retweet"
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the X query is {len(query)} characters (limit {MAX_QUERY_CHARS}); use fewer aliases")
    return query


def search_terms(aliases: dict[str, str]) -> list[str]:
    """Hashtags and cashtags of the alias map (words are too broad for a paid search)."""
    return sorted({a if " " not in a else f'"{a}"' for a in aliases if a.startswith(("#", "$"))})


def resolve_token(secret_block: str | None = None, load_secret: Callable[[str], str] | None = None) -> str:
    """The bearer token from a named secret (``load_secret``: the orchestrator's secret store, a
    Prefect Secret block in the flow) or ``X_BEARER_TOKEN``. This layer knows no orchestrator:
    whoever names a secret block passes the loader that reads it."""
    if secret_block:
        if load_secret is None:
            raise XApiError(
                f"the X token is in the secret {secret_block!r}, but no secret store was given: "
                "run through the flow (Prefect Secret blocks) or set X_BEARER_TOKEN"
            )
        return load_secret(secret_block)
    token = os.environ.get("X_BEARER_TOKEN", "")
    if not token:
        raise XApiError("no X API token: set X_BEARER_TOKEN or name a Prefect Secret block (x_token_secret)")
    return token


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _PageStore:
    """Appends each page body, as received, to a JSONL file (one line per page, fsynced)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path = directory / f"pages-{stamp}.jsonl"

    def append(self, body: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(body.replace("\n", " ") + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def state_path(pages_dir: Path) -> Path:
    """Beside the pages folder, so readers of the folder only ever see API pages."""
    return pages_dir.parent / "x-fetch-state.json"


def load_state(pages_dir: Path) -> FetchState:
    try:
        return FetchState(**json.loads(state_path(pages_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return FetchState()


def save_state(pages_dir: Path, state: FetchState) -> None:
    target = state_path(pages_dir)
    tmp = target.with_name(".x-fetch-state.json.tmp")
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(target)


class XSearchClient:
    def __init__(self, token: str, settings: XApiSettings, sleep: Any = asyncio.sleep) -> None:
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": "tweet-signals"}
        self.settings = settings
        self._sleep = sleep
        self.report = FetchReport()

    async def _get(self, client: httpx.AsyncClient, params: dict[str, str]) -> dict[str, Any] | None:
        """One page, retried; None when the budget is spent."""
        s = self.settings
        attempt = 0
        while True:
            if self.report.requests >= s.max_requests:
                self.report.capped = True
                return None
            self.report.requests += 1
            try:
                response = await client.get(ENDPOINTS[s.endpoint], params=params, headers=self._headers)
            except httpx.TransportError as exc:
                await self._backoff(attempt, f"network error {type(exc).__name__}")
                attempt += 1
                continue
            if response.status_code == 429:
                self.report.rate_limited += 1
                reset = response.headers.get("x-rate-limit-reset")
                wait = max(0.0, float(reset) - time.time()) if reset else s.backoff_cap_s
                if wait > s.max_rate_limit_wait_s:
                    raise XApiError(
                        f"rate limited for {wait:.0f} s, more than the {s.max_rate_limit_wait_s:.0f} s allowed"
                    )
                self.report.waited_s += wait
                await self._sleep(wait + 0.1)
                continue
            if response.status_code >= 500:
                await self._backoff(attempt, f"HTTP {response.status_code}")
                attempt += 1
                continue
            if response.status_code >= 400:
                raise XApiError(f"X API refused the search: HTTP {response.status_code}: {response.text[:300]}")
            try:
                page = response.json()
                if not isinstance(page, dict):
                    raise ValueError("not an object")
            except ValueError:
                await self._backoff(attempt, "malformed page")
                attempt += 1
                continue
            self._raw_body = response.text
            return page

    async def _backoff(self, attempt: int, why: str) -> None:
        s = self.settings
        if attempt >= s.max_retries:
            raise XApiError(f"X API kept failing ({why}) after {s.max_retries} retries")
        self.report.retries += 1
        delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt) * (0.5 + random.random() / 2)
        self.report.waited_s += delay
        await self._sleep(delay)

    async def _walk(
        self, client: httpx.AsyncClient, base: dict[str, str], store: _PageStore, state: FetchState
    ) -> bool:
        """Follow ``next_token`` from ``base``; return True when the pages ran out (not capped)."""
        params = dict(base)
        while True:
            remaining = self.settings.max_posts - self.report.posts
            if remaining <= 0:
                self.report.capped = True
                return False
            params["max_results"] = str(max(10, min(self.settings.max_results, remaining)))
            page = await self._get(client, params)
            if page is None:
                return False
            store.append(self._raw_body)  # as it came, before any parsing
            self.report.pages += 1
            self.report.posts += len(page.get("data") or [])
            meta = page.get("meta") or {}
            if meta.get("newest_id") and (state.newest_id is None or int(meta["newest_id"]) > int(state.newest_id)):
                state.newest_id = meta["newest_id"]
            if meta.get("oldest_id") and (state.oldest_id is None or int(meta["oldest_id"]) < int(state.oldest_id)):
                state.oldest_id = meta["oldest_id"]
            save_state(store.directory, state)
            token = meta.get("next_token")
            if not token:
                return True
            params["next_token"] = token

    async def fetch(self, query: str, start: datetime, end: datetime, pages_dir: Path) -> FetchReport:
        s = self.settings
        # Recent search refuses an end_time less than ~10 s in the past.
        end = min(end, datetime.now(UTC) - timedelta(seconds=15))
        state = load_state(pages_dir)
        store = _PageStore(pages_dir)
        base = {"query": query, "tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
        async with httpx.AsyncClient(base_url=s.base_url, timeout=s.timeout_s) as client:
            if state.newest_id is None:  # nothing yet: the whole window
                state.complete = await self._walk(
                    client, {**base, "start_time": _iso(start), "end_time": _iso(end)}, store, state
                )
            else:
                newest_before = state.newest_id
                if not state.complete:  # the older part an interrupted fetch never reached
                    state.complete = await self._walk(
                        client, {**base, "start_time": _iso(start), "until_id": str(state.oldest_id)}, store, state
                    )
                if not self.report.capped:  # anything posted since the last fetch
                    await self._walk(
                        client, {**base, "since_id": str(newest_before), "end_time": _iso(end)}, store, state
                    )
            save_state(pages_dir, state)
        self.report.complete = state.complete and not self.report.capped
        if store.path.exists():
            self.report.page_files.append(store.path.name)
        return self.report


def fetch_window(
    token: str, query: str, start: datetime, end: datetime, pages_dir: Path, settings: XApiSettings
) -> FetchReport:
    """Synchronous entry point for the collect task."""
    return asyncio.run(XSearchClient(token, settings).fetch(query, start, end, pages_dir))
