"""Collect: bring a session's posts into ``raw/date=D/posts.parquet``, streaming, every record accounted for.

Sources are files (JSONL, CSV, Parquet, X API pages), the X API v2 (pages stored first, then read
like files) and the synthetic generator. Records outside the session's window are counted, bad
ones quarantined with a reason; a day with nothing usable is an ``EmptyDayError``. Existing raw
data is reused unless forced: API calls cost money.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from tweet_signals.market.sessions import session_window
from tweet_signals.params import SignalsParams
from tweet_signals.processes import ordered_map
from tweet_signals.sources.files import parse_column_map, stream_posts
from tweet_signals.sources.schema import (
    NormaliseStats,
    Quarantined,
    empty_posts,
    normalise_record,
    posts_frame,
    quarantine_frame,
    quarantine_row,
)
from tweet_signals.sources.synthetic import SHARD_POSTS, generate_shard, shard_count
from tweet_signals.sources.x_api import (
    DEFAULT_BASE_URL,
    FetchReport,
    XApiSettings,
    build_query,
    fetch_window,
    resolve_token,
    search_terms,
)
from tweet_signals.storage import AnyPath, ParquetStreamWriter, Storage, current_parquet, write_parquet_atomic


class EmptyDayError(RuntimeError):
    """Nothing usable was collected for the session."""


@dataclass
class CollectResult:
    path: str
    status: str  # collected | reused
    records_in: int
    posts: int
    out_of_window: int
    quarantined: int
    repairs: dict[str, int] = field(default_factory=dict)
    x_api: dict[str, object] | None = None  # requests, pages, posts, rate limits, retries, capped

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def x_pages_dir(params: SignalsParams, run_date: date) -> Path:
    """Where fetched X pages and the resume state live: ``raw/date=D/pages/`` under a local data
    root; for an object-store root, a local staging folder (the collected Parquet goes remote)."""
    storage = Storage.at(params.data_root)
    pages = storage.raw_pages(run_date)
    if isinstance(pages, Path):
        return pages
    cache = Path(os.environ.get("TWEET_SIGNALS_CACHE", Path.home() / ".cache" / "tweet-signals"))
    root_key = hashlib.sha256(str(storage.root).encode()).hexdigest()[:12]
    return cache / "x-pages" / root_key / f"date={run_date.isoformat()}"


def fetch_x(params: SignalsParams, run_date: date, load_secret: Callable[[str], str] | None = None) -> FetchReport:
    """Fetch the session window from the X API into ``x_pages_dir`` (resuming)."""
    settings = XApiSettings(
        base_url=params.x_base_url or os.environ.get("TWEET_SIGNALS_X_BASE_URL") or DEFAULT_BASE_URL,
        endpoint=params.x_endpoint,
        max_posts=params.x_max_posts,
        max_requests=params.x_max_requests,
    )
    query = build_query(search_terms(params.aliases()), params.queries)
    start, end = session_window(run_date, params.exchange)
    pages = x_pages_dir(params, run_date)
    return fetch_window(resolve_token(params.x_token_secret, load_secret), query, start, end, pages, settings)


def stream_source(
    params: SignalsParams, run_date: date, on_rows: Callable[[pl.DataFrame], None]
) -> tuple[pl.DataFrame, int, dict[str, int]]:
    """Hand the file or X-page posts to ``on_rows`` batch by batch; return the quarantine, the
    records read and the repairs."""
    if params.source == "x":
        pages = x_pages_dir(params, run_date)
        return stream_posts(pages, on_rows, {}, "x") if pages.is_dir() else (quarantine_frame([]), 0, {})
    if params.source == "file":
        if not params.input:
            raise ValueError("source=file needs an input path (--input)")
        return stream_posts(Path(params.input), on_rows, parse_column_map(params.columns), "file", params.naive_tz)
    raise ValueError(f"unknown source {params.source!r}")


# A post dated after the moment it was collected (plus this much clock skew between the source's
# servers and ours) cannot be real: it is quarantined as ``future_timestamp``, not counted for a
# later session.
FUTURE_TOLERANCE = timedelta(minutes=10)


class SessionRows:
    """Writes the rows that fall in the session's window to ``writer``; counts the others, and
    sets aside as quarantine the rows dated after ``collected_at`` + ``FUTURE_TOLERANCE``."""

    def __init__(
        self, writer: ParquetStreamWriter, run_date: date, exchange: str, collected_at: datetime | None = None
    ) -> None:
        self.writer, self.run_date, self.exchange = writer, run_date, exchange
        self.latest = None if collected_at is None else collected_at + FUTURE_TOLERANCE
        self.collected_at = collected_at
        self.posts = self.out_of_window = 0
        self.future: list[dict[str, str]] = []

    def __call__(self, rows: pl.DataFrame) -> None:
        if self.latest is not None:
            future = rows.filter(pl.col("created_at") > self.latest)
            rows = rows.filter(pl.col("created_at") <= self.latest)
            detail = f"dated after the collection time {self.collected_at:%Y-%m-%dT%H:%M:%SZ} + {FUTURE_TOLERANCE}"
            self.future += [
                quarantine_row(
                    "future_timestamp",
                    f"created_at {row['created_at']:%Y-%m-%dT%H:%M:%SZ} {detail}",
                    str(row["source"]),
                    row,
                )
                for row in future.iter_rows(named=True)
            ]
        inside, outside = split_window(rows, self.run_date, self.exchange)
        self.writer.write(inside)
        self.posts += inside.height
        self.out_of_window += outside


@dataclass(frozen=True)
class SyntheticShard:
    """One shard of a synthetic day: what a worker process needs to generate it on its own."""

    session: date
    n_posts: int
    shard: int
    symbols: tuple[str, ...]
    seed: int
    exchange: str
    shard_posts: int = SHARD_POSTS


def synthetic_shard_frame(spec: SyntheticShard) -> tuple[pl.DataFrame, dict[str, int]]:
    """A shard's posts, generated and normalised (in a worker process), and the repairs applied."""
    stats = NormaliseStats()
    records = generate_shard(
        spec.session, spec.n_posts, spec.shard, spec.symbols, spec.seed, spec.exchange, spec.shard_posts
    )
    try:
        rows = [normalise_record(record, "synthetic", stats) for record in records]
    except Quarantined as exc:  # pragma: no cover - the generator writes valid records
        raise AssertionError(f"generator wrote an invalid record: {exc}") from exc
    return posts_frame(rows), stats.repairs


def write_synthetic(
    params: SignalsParams, run_date: date, path: AnyPath, shard_posts: int = SHARD_POSTS, workers: int = 0
) -> dict[str, object]:
    """Generate the session's synthetic posts straight into ``path``, a shard at a time: shards are
    generated in parallel worker processes (the generator is Python per post) and written in order,
    so the file is the same whatever the number of processes (``workers``; 0: every core)."""
    n_shards = shard_count(params.synthetic_posts, shard_posts)
    specs = [
        SyntheticShard(
            run_date, params.synthetic_posts, k, tuple(params.symbols), params.seed, params.exchange, shard_posts
        )
        for k in range(n_shards)
    ]
    records_in = 0
    repairs: dict[str, int] = {}
    with ParquetStreamWriter(path, empty_posts().to_arrow().schema) as writer:
        session = SessionRows(writer, run_date, params.exchange)
        for frame, shard_repairs in ordered_map(synthetic_shard_frame, specs, workers or os.cpu_count() or 1):
            records_in += frame.height
            session(frame)
            for rule, count in shard_repairs.items():
                repairs[rule] = repairs.get(rule, 0) + count
        posts, out_of_window = session.posts, session.out_of_window
        if posts == 0:
            raise EmptyDayError(f"No synthetic posts fall in session {run_date}'s window.")
        counts: dict[str, object] = {
            "records_in": records_in,
            "posts": posts,
            "out_of_window": out_of_window,
            "quarantined": 0,
            "repairs": repairs,
            "x_api": None,
        }
        writer.close({"counts": counts, "source": params.source})
    return counts


def split_window(posts: pl.DataFrame, run_date: date, exchange: str) -> tuple[pl.DataFrame, int]:
    """Posts that count for session ``run_date`` (previous close, close]; and how many don't."""
    start, end = session_window(run_date, exchange)
    inside = posts.filter((pl.col("created_at") > start) & (pl.col("created_at") <= end))
    return inside, posts.height - inside.height


def collect_session(
    params: SignalsParams, run_date: date, load_secret: Callable[[str], str] | None = None
) -> CollectResult:
    """The session's raw posts: reused when present (unless forced), else collected from the source."""
    storage = Storage.at(params.data_root)
    path = storage.raw(run_date)
    meta = current_parquet(path, {}, params.force)
    if meta is not None:
        return CollectResult(str(path), "reused", **meta["counts"])
    if params.source == "synthetic":
        return CollectResult(str(path), "collected", **write_synthetic(params, run_date, path))  # type: ignore[arg-type]
    fetched = fetch_x(params, run_date, load_secret).as_dict() if params.source == "x" else None
    with ParquetStreamWriter(path, empty_posts().to_arrow().schema) as writer:
        session = SessionRows(writer, run_date, params.exchange, collected_at=datetime.now(UTC))
        unreadable, records_in, repairs = stream_source(params, run_date, session)
        quarantine = pl.concat([unreadable, quarantine_frame(session.future)])
        posts, out_of_window = session.posts, session.out_of_window
        counts: dict[str, object] = {
            "records_in": records_in,
            "posts": posts,
            "out_of_window": out_of_window,
            "quarantined": quarantine.height,
            "repairs": repairs,
            "x_api": fetched,
        }
        # Every record is accounted for: in the window, for another session, or quarantined.
        assert records_in == posts + out_of_window + quarantine.height
        if quarantine.height:
            write_parquet_atomic(quarantine, storage.quarantine(run_date), {"counts": counts})
        if posts == 0:  # raised inside the writer: nothing is published
            raise EmptyDayError(
                f"No usable posts for session {run_date}: {records_in} record(s) read, "
                f"{out_of_window} outside the session's window, {quarantine.height} quarantined."
            )
        writer.close({"counts": counts, "source": params.source})
    return CollectResult(str(path), "collected", **counts)  # type: ignore[arg-type]
