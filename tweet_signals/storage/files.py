"""Files on a local disk or an object store: locations, atomic writes, Parquet footers, JSON, hashes.

A root is a local directory or an fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``abfs://...``):
remote roots are ``upath.UPath`` objects with the same path API. Every write goes to a temporary
file first; locally it is renamed into place, remotely it is uploaded in one put, which an
object store publishes only when complete. Either way a crash never leaves a half-written file
under a name a rerun would trust. Credentials and endpoints for remote roots come from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ...), read alike by fsspec and polars.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, TypeAlias

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from tweet_signals.hashing import sha256_file

META_KEY = b"tweet_signals"
# Row groups of this many rows let an analyze chunk read little more than its own rows of a
# day's file, which matters most when the file sits in an object store.
ROW_GROUP_ROWS = 8_192

AnyPath: TypeAlias = Path | UPath
# Temporary files: ``.NAME.<hex>.tmp`` beside a local target, ``tweet-signals-<pid>-<hex>.tmp`` in
# the system's temp directory for a remote one (see ``storage.upkeep``, which removes leftovers).
LOCAL_TMP_GLOB = ".*.tmp"
REMOTE_TMP_PREFIX = "tweet-signals-"


def location(value: str | AnyPath) -> AnyPath:
    """A local ``Path`` for plain paths and ``file://`` URLs, a ``UPath`` for other fsspec URLs."""
    if isinstance(value, Path | UPath):
        return value
    if "://" in value and not value.startswith("file://"):
        return UPath(value)
    return Path(value.removeprefix("file://"))


def is_local(path: AnyPath) -> bool:
    return isinstance(path, Path)


def uri(path: AnyPath) -> str:
    """What polars, pyarrow and other processes are given: a local path or the full URL."""
    return str(path)


def glob(root: AnyPath, pattern: str) -> list[AnyPath]:
    """Files under ``root`` matching ``pattern``, sorted by name (local or remote alike)."""
    return sorted((p if isinstance(p, Path) else location(str(p)) for p in root.glob(pattern)), key=str)


def link(path: AnyPath) -> str:
    """A link for reports and artifacts: ``file://`` for local files, the URL for remote ones."""
    return path.resolve().as_uri() if isinstance(path, Path) else str(path)


def _tmp_name(path: AnyPath) -> Path:
    """A temporary file for ``path``: beside it on a local disk (the rename is then atomic),
    in the system's temp directory for a remote target (it is uploaded from there)."""
    if is_local(path):
        assert isinstance(path, Path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    # The writer's pid is in the name: a later run removes the files of writers that are gone.
    return Path(tempfile.gettempdir()) / f"{REMOTE_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.tmp"


def publish(tmp: Path, path: AnyPath) -> AnyPath:
    """Move a complete temporary file to ``path``: a rename locally, one upload remotely."""
    if isinstance(path, Path):
        os.replace(tmp, path)
    else:
        path.fs.put_file(str(tmp), path.path)
    return path


def write_bytes_atomic(data: bytes, path: AnyPath) -> AnyPath:
    tmp = _tmp_name(path)
    try:
        tmp.write_bytes(data)
        return publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(frame: pl.DataFrame, path: AnyPath, metadata: dict[str, Any] | None = None) -> AnyPath:
    """Write ``frame`` (zstd) with our metadata in the footer; publish it when complete."""
    table = frame.to_arrow()
    if metadata is not None:
        existing = table.schema.metadata or {}
        table = table.replace_schema_metadata({**existing, META_KEY: json.dumps(metadata, default=str).encode()})
    tmp = _tmp_name(path)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        return publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ParquetStreamWriter:
    """Write a Parquet file batch by batch (memory: one batch) and publish it atomically.

    Batches go to a temporary name; ``close`` adds our footer metadata (known only at the end,
    e.g. counts) and renames the file into place. Leaving the ``with`` block on an exception
    deletes the temporary file, so a crash never leaves a file a rerun would trust.
    """

    def __init__(self, path: AnyPath, schema: pa.Schema):
        self.path, self.tmp = path, _tmp_name(path)
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self.writer.write_table(frame.to_arrow().cast(self.writer.schema), row_group_size=ROW_GROUP_ROWS)
            self.rows += frame.height

    def close(self, metadata: dict[str, Any]) -> AnyPath:
        self.writer.add_key_value_metadata({META_KEY: json.dumps(metadata, default=str).encode()})
        self.writer.close()
        try:
            return publish(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ParquetStreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tmp.exists():  # not closed: an exception, or the caller gave up
            self.writer.close()
            self.tmp.unlink(missing_ok=True)


def parquet_metadata(path: AnyPath) -> dict[str, Any] | None:
    """Our footer metadata, or None when the file is missing or not a readable Parquet file."""
    try:
        if is_local(path):
            footer = pq.read_metadata(path)
        else:
            with path.open("rb") as handle:
                footer = pq.read_metadata(handle)
    except (OSError, ValueError, pa.ArrowException):
        return None
    raw = (footer.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def write_json_atomic(obj: Any, path: AnyPath) -> AnyPath:
    return write_bytes_atomic(json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8"), path)


def read_json(path: AnyPath) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def file_digest(path: AnyPath) -> str:
    """Content hash of a stage output: downstream outputs record it to know they are current."""
    return sha256_file(path)[:16]
