"""Every path the pipeline reads or writes, and atomic writes.

One module knows the layout (hive-style ``date=YYYY-MM-DD`` partitions under one root); every
write goes to a temporary name in the same directory and is renamed into place, so a crash
never leaves a half-written file under a name a rerun would trust.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

META_KEY = b"tweet_signals"


@dataclass(frozen=True)
class Storage:
    root: Path

    def _part(self, stage: str, day: date) -> Path:
        return self.root / stage / f"date={day.isoformat()}"

    def raw(self, day: date) -> Path:
        return self._part("raw", day) / "posts.parquet"

    def raw_pages(self, day: date) -> Path:
        return self._part("raw", day) / "pages"

    def quarantine(self, day: date) -> Path:
        return self._part("quarantine", day) / "records.parquet"

    def clean(self, day: date) -> Path:
        return self._part("clean", day) / "posts.parquet"

    def tfidf_dir(self, day: date) -> Path:
        return self._part("tfidf", day)

    def analyzed_dir(self, day: date, config_key: str) -> Path:
        return self._part("analyzed", day) / config_key

    def analyzed_chunk(self, day: date, config_key: str, chunk: int) -> Path:
        return self.analyzed_dir(day, config_key) / f"chunk-{chunk:04d}.parquet"

    def signals(self, day: date) -> Path:
        return self._part("signals", day) / "signals.parquet"

    def manifest(self, day: date) -> Path:
        return self._part("runs", day) / "manifest.json"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def write_parquet_atomic(frame: pl.DataFrame, path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``frame`` (zstd) with our metadata in the footer; rename into place when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = frame.to_arrow()
    if metadata is not None:
        existing = table.schema.metadata or {}
        table = table.replace_schema_metadata({**existing, META_KEY: json.dumps(metadata, default=str).encode()})
    tmp = _tmp_name(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parquet_metadata(path: Path) -> dict[str, Any] | None:
    """Our footer metadata, or None when the file is missing or not a readable Parquet file."""
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException):
        return None
    raw = (schema.metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def write_json_atomic(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """Content hash of a stage output: downstream outputs record it to know they are current."""
    return sha256_file(path)[:16]
