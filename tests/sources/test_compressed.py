"""Compressed inputs (.gz, .bz2, .zst) read like plain ones by every reader: posts, prices, labelled
sets; a damaged stream is quarantined or named, never a traceback."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import polars as pl
import pytest
import zstandard

from tweet_signals.evaluation.panel import load_price_panel, price_file_symbol
from tweet_signals.evaluation.statistics import load_prices
from tweet_signals.sources.files import input_files, read_posts
from tweet_signals.storage.compressed import file_format, read_bytes
from tweet_signals.training.metrics import read_labelled_csv

COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    # The streaming writer leaves the content size out of the frame header, as `zstd` piped does.
    ".zst": lambda data: _stream(data),
}


def _stream(data: bytes) -> bytes:
    sink = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(sink, closefd=False) as writer:
        writer.write(data)
    return sink.getvalue()


def _compressed(plain: Path, suffix: str) -> Path:
    target = plain.with_name(plain.name + suffix)
    target.write_bytes(COMPRESSORS[suffix](plain.read_bytes()))
    return target


POSTS_CSV = (
    "id,created_at,text,like_count\n"
    '1,2026-01-07T05:00:00+05:30,"Nifty up, booking profit",3\n'
    '2,2026-01-07T01:00:00Z,"Sensex down\nsecond line",0\n'
)
POSTS_JSONL = (
    '{"id": "1", "created_at": "2026-01-07T05:00:00+05:30", "text": "Nifty up"}\n'
    "not json\n"
    '{"id": "2", "created_at": "2026-01-07T01:00:00Z", "text": "Sensex down"}\n'
)


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_posts_read_as_the_plain_file(tmp_path: Path, suffix: str) -> None:
    for name, content in (("posts.csv", POSTS_CSV), ("posts.jsonl", POSTS_JSONL)):
        plain = tmp_path / name
        plain.write_text(content, encoding="utf-8")
        packed = _compressed(plain, suffix)
        assert file_format(packed) == plain.suffix
        want, got = read_posts(plain), read_posts(packed)
        assert got.posts.equals(want.posts) and got.posts.height == 2
        assert got.quarantine.height == want.quarantine.height == (1 if name.endswith("jsonl") else 0)


def test_a_folder_lists_compressed_files_and_refuses_compressed_parquet(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_text(POSTS_CSV, encoding="utf-8")
    for suffix in COMPRESSORS:
        _compressed(plain, suffix)
    plain.unlink()
    assert [p.name for p in input_files(tmp_path)] == ["a.csv.bz2", "a.csv.gz", "a.csv.zst"]
    assert read_posts(tmp_path).posts.height == 6
    pl.DataFrame({"id": ["1"]}).write_parquet(tmp_path / "p.parquet")
    packed = _compressed(tmp_path / "p.parquet", ".gz")
    with pytest.raises(ValueError, match=r"unsupported input p\.parquet\.gz"):
        read_posts(packed)


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_a_truncated_stream_keeps_what_was_read_and_quarantines_the_file(tmp_path: Path, suffix: str) -> None:
    plain = tmp_path / "posts.jsonl"
    plain.write_text("".join(POSTS_JSONL.splitlines(keepends=True)[:1]) * 2000, encoding="utf-8")
    packed = _compressed(plain, suffix)
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    result = read_posts(packed)
    assert result.quarantine.filter(pl.col("reason") == "unreadable_file").height == 1
    with pytest.raises(ValueError, match=f"not a readable \\{suffix} file"):
        read_bytes(packed)


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_price_files_load_alone_and_as_a_panel(tmp_path: Path, suffix: str) -> None:
    plain = tmp_path / "RELIANCE.NS.csv"
    plain.write_text("Date,Close,Adj Close\n2026-01-05,100,99\n2026-01-06,101,100\n", encoding="utf-8")
    packed = _compressed(plain, suffix)
    assert load_prices(packed).equals(load_prices(plain))
    plain.unlink()
    assert price_file_symbol(packed) == "RELIANCE"
    panel = load_price_panel(tmp_path)
    assert list(panel) == ["RELIANCE"] and panel["RELIANCE"]["close"].to_list() == [99.0, 100.0]


def test_a_compressed_labelled_csv_reads_as_the_plain_one(tmp_path: Path) -> None:
    plain = tmp_path / "labels.csv"
    plain.write_text("text,label\nnifty up,positive\nsensex down,negative\n", encoding="utf-8")
    for suffix in COMPRESSORS:
        rows = read_labelled_csv(_compressed(plain, suffix), "text", "label")
        assert rows.texts == ["nifty up", "sensex down"] and rows.labels == ["positive", "negative"]


def test_concatenated_zstd_frames_read_as_one_file(tmp_path: Path) -> None:
    lines = POSTS_JSONL.splitlines(keepends=True)
    packed = tmp_path / "posts.jsonl.zst"
    packed.write_bytes(_stream(lines[0].encode()) + zstandard.ZstdCompressor().compress(lines[2].encode()))
    assert read_posts(packed).posts["id"].to_list() == ["1", "2"]
