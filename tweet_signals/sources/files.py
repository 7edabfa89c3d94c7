"""Read posts from files: canonical JSONL/CSV/Parquet, X API v2 response pages, mapped flat files.

Every reader yields ``(origin, record)`` pairs keyed by canonical names; ``read_posts`` runs
them through ``normalise_record`` and splits the result into clean rows and quarantine.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from tweet_signals.sources.schema import (
    NormaliseStats,
    Quarantined,
    normalise_record,
    posts_frame,
    quarantine_frame,
    quarantine_row,
)
from tweet_signals.storage.compressed import compression, file_format, is_damaged_stream, open_binary

RawRecord = tuple[str, dict[str, Any]]


def parse_column_map(spec: str | None) -> dict[str, str]:
    """``"text=content,created_at=timestamp"`` → {canonical name: column in the file}."""
    if not spec:
        return {}
    mapping = {}
    for part in spec.split(","):
        canonical, sep, column = part.partition("=")
        if not sep or not canonical.strip() or not column.strip():
            raise ValueError(f"bad --columns entry {part!r}: write canonical=column_in_file")
        mapping[canonical.strip()] = column.strip()
    return mapping


def apply_column_map(record: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """Rename mapped columns to canonical names; unmapped columns keep their names."""
    if not columns:
        return dict(record)
    out = dict(record)
    for canonical, column in columns.items():
        if column in record:
            out[canonical] = record[column]
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def x_page_records(page: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Canonical records from one X API v2 search response page (``data`` + ``includes.users``).

    Fields of the wrong shape read as missing, so the record is judged by ``normalise_record``.
    """
    users = {str(u.get("id")): u for u in _list(_dict(page.get("includes")).get("users")) if isinstance(u, dict)}
    for tweet in _list(page.get("data")):
        if not isinstance(tweet, dict):
            yield {"_invalid": tweet}
            continue
        metrics = _dict(tweet.get("public_metrics"))
        author = _dict(users.get(str(tweet.get("author_id"))))
        retweet_of = None
        for ref in _list(tweet.get("referenced_tweets")):
            if isinstance(ref, dict) and ref.get("type") == "retweeted":
                retweet_of = ref.get("id")
        yield {
            "id": tweet.get("id"),
            "created_at": tweet.get("created_at"),
            "text": tweet.get("text"),
            "author_id": tweet.get("author_id"),
            "author_username": author.get("username"),
            "author_followers": _dict(author.get("public_metrics")).get("followers_count"),
            "like_count": metrics.get("like_count"),
            "retweet_count": metrics.get("retweet_count"),
            "reply_count": metrics.get("reply_count"),
            "quote_count": metrics.get("quote_count"),
            "lang": tweet.get("lang"),
            "retweet_of": retweet_of,
        }


def is_x_page(obj: Any) -> bool:
    return isinstance(obj, dict) and ("data" in obj or "meta" in obj) and "text" not in obj


@dataclass
class ReadResult:
    posts: pl.DataFrame
    quarantine: pl.DataFrame
    records_in: int
    repairs: dict[str, int] = field(default_factory=dict)


# Rows are handed on (to the caller's writer) this many at a time, so a large input never sits
# in memory as Python records.
ROW_BATCH = 50_000


class _Collector:
    """Normalises records into rows, handed on in batches, and keeps quarantined records with
    their reasons (few, and each already cut to a bounded size)."""

    def __init__(
        self,
        source: str,
        naive_tz: str | None,
        on_rows: Callable[[pl.DataFrame], None],
        date_only_tz: str | None = None,
    ) -> None:
        self.source = source
        self.naive_tz, self.date_only_tz = naive_tz, date_only_tz
        self.on_rows = on_rows
        self.rows: list[dict[str, Any]] = []
        self.bad: list[dict[str, str]] = []
        self.stats = NormaliseStats()
        self.records_in = 0

    def flush(self) -> None:
        if self.rows:
            self.on_rows(posts_frame(self.rows))
            self.rows = []

    def add(self, origin: str, record: Any, columns: Mapping[str, str]) -> None:
        self.records_in += 1
        if not isinstance(record, dict) or "_invalid" in record:
            self.bad.append(quarantine_row("not_an_object", "record is not a JSON object", origin, record))
            return
        try:
            self.rows.append(
                normalise_record(
                    apply_column_map(record, columns), self.source, self.stats, self.naive_tz, self.date_only_tz
                )
            )
        except Quarantined as q:
            self.bad.append(quarantine_row(q.reason, q.detail, origin, record))
        if len(self.rows) >= ROW_BATCH:
            self.flush()

    def reject(self, origin: str, reason: str, detail: str, raw: Any) -> None:
        self.records_in += 1
        self.bad.append(quarantine_row(reason, detail, origin, raw))


def _decode(data: bytes, collector: _Collector, origin: str) -> str:
    """UTF-8 (with BOM), else Latin-1 as Kaggle-style exports are (rule R5: decoded, counted)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        collector.stats.add("R5_decoded_as_latin1")
        return data.decode("latin-1")


def _read_jsonl(path: Path, collector: _Collector, columns: Mapping[str, str]) -> None:
    with open_binary(path) as fh:
        for number, raw in enumerate(fh, 1):
            origin = f"{path.name}:{number}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                collector.stats.add("R1_invalid_utf8_replaced")
                line = raw.decode("utf-8", errors="replace")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                collector.reject(origin, "malformed_json", str(exc)[:200], line)
                continue
            if is_x_page(obj):
                for i, record in enumerate(x_page_records(obj)):
                    collector.add(f"{origin}#{i}", record, {})
            else:
                collector.add(origin, obj, columns)


def csv_delimiter(header: str) -> str:
    """The separator of a CSV export: whichever of comma, semicolon and tab its header holds most."""
    return max((",", ";", "\t"), key=header.count)


def _read_csv(path: Path, collector: _Collector, columns: Mapping[str, str]) -> None:
    """Strict CSV parsing, resynchronised after a broken record.

    A record with broken quoting is quarantined whole (all its physical lines, so nothing is lost
    silently) and parsing restarts on the next line. Quoted fields may span lines, as exports of
    multi-line tweets do.
    """
    with open_binary(path) as fh:
        text = _decode(fh.read(), collector, path.name)
    lines = text.splitlines(keepends=True)
    if not lines:
        return
    delimiter = csv_delimiter(lines[0])
    header = next(csv.reader([lines[0]], delimiter=delimiter))
    position = 1  # index of the next physical line to parse
    while position < len(lines):
        reader = csv.reader(io.StringIO("".join(lines[position:]), newline=""), delimiter=delimiter, strict=True)
        record_start = 0  # lines consumed before the current record, relative to ``position``
        try:
            for row in reader:
                origin = f"{path.name}:{position + record_start + 1}"
                record_start = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    detail = f"{len(row)} fields, header has {len(header)}"
                    collector.reject(origin, "malformed_csv_row", detail, delimiter.join(row))
                    continue
                collector.add(origin, dict(zip(header, row, strict=True)), columns)
            return
        except csv.Error as exc:
            failed_end = max(reader.line_num, record_start + 1)
            raw = "".join(lines[position + record_start : position + failed_end])
            collector.reject(f"{path.name}:{position + record_start + 1}", "malformed_csv", str(exc), raw)
            position += failed_end


def _read_parquet(path: Path, collector: _Collector, columns: Mapping[str, str]) -> None:
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=ROW_BATCH)
        number = 0
        for batch in batches:
            for record in batch.to_pylist():
                collector.add(f"{path.name}:{number}", record, columns)
                number += 1
    except Exception as exc:  # pyarrow raises several types for a corrupt or truncated file
        collector.reject(path.name, "unreadable_file", f"{type(exc).__name__}: {exc}"[:300], str(path))


def input_files(path: Path) -> list[Path]:
    """A file, or every supported file in a directory (sorted, so runs are deterministic)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if file_format(p) in READERS)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    return [path]


READERS = {
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".json": _read_jsonl,
    ".csv": _read_csv,
    ".tsv": _read_csv,
    ".parquet": _read_parquet,
}


def read_posts(
    path: Path,
    columns: Mapping[str, str] | None = None,
    source: str = "file",
    naive_tz: str | None = None,
    date_only_tz: str | None = None,
) -> ReadResult:
    """All posts in ``path`` (file or directory), split into canonical rows and quarantine."""
    parts: list[pl.DataFrame] = []
    result = stream_posts(path, parts.append, columns, source, naive_tz, date_only_tz)
    return ReadResult(pl.concat(parts) if parts else posts_frame([]), *result)


def stream_posts(
    path: Path,
    on_rows: Callable[[pl.DataFrame], None],
    columns: Mapping[str, str] | None = None,
    source: str = "file",
    naive_tz: str | None = None,
    date_only_tz: str | None = None,
) -> tuple[pl.DataFrame, int, dict[str, int]]:
    """Hand the posts in ``path`` to ``on_rows`` in frames of up to ``ROW_BATCH`` canonical rows;
    return the quarantine, the number of records read and the repairs made."""
    collector = _Collector(source, naive_tz, on_rows, date_only_tz)
    for file in input_files(path):
        reader = READERS.get(file_format(file))
        if reader is None or (reader is _read_parquet and compression(file)):
            raise ValueError(
                f"unsupported input {file.name}: use .jsonl, .csv or .parquet "
                "(the first two may be compressed: .gz, .bz2, .zst)"
            )
        try:
            reader(file, collector, columns or {})
        except Exception as exc:
            if not is_damaged_stream(exc, file):
                raise
            # A truncated or corrupt compressed file: what was read before the damage is kept,
            # the file itself is quarantined with the cause, so nothing is lost silently.
            collector.reject(file.name, "unreadable_file", f"{type(exc).__name__}: {exc}"[:300], str(file))
    collector.flush()
    return quarantine_frame(collector.bad), collector.records_in, collector.stats.repairs
