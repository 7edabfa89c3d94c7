"""signals: join analyzed chunks back onto the clean posts and aggregate per symbol."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.signals import SignalThresholds, compute_signals
from tweet_signals.storage import Storage, parquet_metadata, write_parquet_atomic


def analyzed_posts(clean_path: Path, chunk_paths: list[str]) -> pl.DataFrame:
    """Clean posts with their analysis, in clean order (chunks are contiguous row ranges)."""
    clean = pl.read_parquet(clean_path, columns=["id", "created_at", "symbols"])
    analyzed = pl.concat([pl.read_parquet(p) for p in chunk_paths]) if chunk_paths else None
    if analyzed is None or analyzed.height != clean.height or not analyzed["id"].equals(clean["id"]):
        raise RuntimeError("analyzed chunks do not line up with the clean posts; rerun with force")
    return pl.concat([clean, analyzed.drop("id")], how="horizontal")


@task(name="signals")
def build_signals(
    params: SignalsParams, run_date: date, clean_path: str, chunk_paths: list[str], key: str
) -> dict[str, object]:
    storage = Storage(Path(params.data_root))
    path = storage.signals(run_date)
    meta = parquet_metadata(path)
    if meta is not None and meta.get("key") == key and not params.force:
        return {"path": str(path), "status": "reused", "rows": meta["rows"]}
    posts = analyzed_posts(Path(clean_path), chunk_paths)
    frame = compute_signals(posts, run_date, params.symbols, SignalThresholds())
    write_parquet_atomic(frame, path, {"key": key, "rows": frame.height})
    return {"path": str(path), "status": "computed", "rows": frame.height}
