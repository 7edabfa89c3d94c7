"""A session is complete only while every output its manifest lists is intact."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tweet_signals.storage import incomplete_reasons, output_record, write_parquet_atomic


def _manifest(tmp_path: Path) -> tuple[dict[str, object], Path, Path]:
    chunk = write_parquet_atomic(pl.DataFrame({"id": ["a", "b", "c"]}), tmp_path / "chunk.parquet", {"rows": 3})
    other = write_parquet_atomic(pl.DataFrame({"x": [1]}), tmp_path / "signals.parquet")
    assert isinstance(chunk, Path) and isinstance(other, Path)
    return {"status": "complete", "outputs": [output_record(chunk, 3), output_record(other)]}, chunk, other


def test_intact_outputs_prove_a_complete_session(tmp_path: Path) -> None:
    manifest, _, _ = _manifest(tmp_path)
    assert incomplete_reasons(manifest) == []


def test_a_missing_truncated_or_rewritten_output_makes_it_incomplete(tmp_path: Path) -> None:
    manifest, chunk, other = _manifest(tmp_path)
    other.unlink()
    assert incomplete_reasons(manifest) == [f"{other}: missing"]
    manifest, chunk, other = _manifest(tmp_path)
    chunk.write_bytes(chunk.read_bytes()[:40])
    assert incomplete_reasons(manifest) == [f"{chunk}: 40 bytes, {manifest['outputs'][0]['bytes']} recorded"]  # type: ignore[index]
    # Same size, other rows: the footer's row count gives it away.
    manifest, chunk, other = _manifest(tmp_path)
    manifest["outputs"][0]["rows"] = 4  # type: ignore[index]
    assert incomplete_reasons(manifest) == [f"{chunk}: 3 rows, 4 recorded"]


def test_only_a_complete_status_with_listed_outputs_counts() -> None:
    assert incomplete_reasons(None) == ["no manifest"]
    assert incomplete_reasons({"status": "running", "outputs": []}) == ["status 'running'"]
    assert incomplete_reasons({"status": "complete"}) == ["the manifest lists no outputs"]
