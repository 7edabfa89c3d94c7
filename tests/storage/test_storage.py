"""Atomic writes: a crash never leaves a file under a name a rerun would trust."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tweet_signals.storage import ParquetStreamWriter, location, parquet_metadata, uri, write_parquet_atomic
from tweet_signals.storage import files as storage_files

FRAME = pl.DataFrame({"id": ["a", "b", "c"], "score": [0.1, -0.2, 0.3]})


def test_atomic_parquet_write_round_trips_its_metadata(tmp_path: Path) -> None:
    path = write_parquet_atomic(FRAME, tmp_path / "x" / "out.parquet", {"rows": 3, "key": "k"})
    assert pl.read_parquet(path).equals(FRAME)
    assert parquet_metadata(path) == {"rows": 3, "key": "k"}
    assert [p.name for p in path.parent.iterdir()] == ["out.parquet"]  # no temporary left


def test_a_crash_while_writing_leaves_neither_the_file_nor_a_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = pq.write_table

    def write_half_then_die(table, where, **kwargs) -> None:  # type: ignore[no-untyped-def]
        real_write(table.slice(0, 1), where, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(storage_files.pq, "write_table", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(FRAME, tmp_path / "out.parquet", {"rows": 3})
    assert list(tmp_path.iterdir()) == []


def test_stream_writer_publishes_only_on_close(tmp_path: Path) -> None:
    target = tmp_path / "day.parquet"
    with pytest.raises(RuntimeError), ParquetStreamWriter(target, FRAME.to_arrow().schema) as writer:
        writer.write(FRAME)
        assert not target.exists()
        raise RuntimeError("generator died halfway")
    assert list(tmp_path.iterdir()) == []
    with ParquetStreamWriter(target, FRAME.to_arrow().schema) as writer:
        writer.write(FRAME)
        writer.write(FRAME.head(0))
        writer.write(FRAME)
        writer.close({"rows": 6})
    assert pl.read_parquet(target).height == 6 and parquet_metadata(target) == {"rows": 6}
    assert [p.name for p in tmp_path.iterdir()] == ["day.parquet"]


def test_a_truncated_file_is_not_trusted(tmp_path: Path) -> None:
    path = write_parquet_atomic(FRAME, tmp_path / "out.parquet", {"rows": 3})
    path.write_bytes(path.read_bytes()[:-20])  # e.g. copied by hand and cut short
    assert parquet_metadata(path) is None
    assert parquet_metadata(tmp_path / "missing.parquet") is None


def test_locations_local_paths_and_urls(tmp_path: Path) -> None:
    assert isinstance(location(str(tmp_path)), Path)
    assert location(f"file://{tmp_path}") == tmp_path
    assert not isinstance(location("s3://bucket/prefix"), Path)
    assert uri(location("s3://bucket/prefix") / "raw") == "s3://bucket/prefix/raw"
