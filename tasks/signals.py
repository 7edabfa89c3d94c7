"""signals: join analyzed chunks back onto the clean posts and aggregate per symbol."""

from __future__ import annotations

from datetime import date

import polars as pl
from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.signals import SignalThresholds, compute_signals
from tweet_signals.storage import AnyPath, Storage, location, parquet_metadata, uri, write_parquet_atomic


def analyzed_posts(clean_path: AnyPath, chunk_paths: list[str]) -> pl.LazyFrame:
    """Clean posts with their analysis, in clean order (chunks are contiguous row ranges), as a
    lazy frame: the signals read only the columns they aggregate, never the whole day's rows."""
    clean = pl.scan_parquet(uri(clean_path)).select("id", "created_at", "symbols")
    if not chunk_paths:
        raise RuntimeError("no analyzed chunks for the clean posts; rerun with force")
    analyzed = pl.scan_parquet(chunk_paths)
    same_length = clean.select(pl.len()).collect().item() == analyzed.select(pl.len()).collect().item()
    ids = pl.concat([clean.select("id"), analyzed.select(pl.col("id").alias("analyzed_id"))], how="horizontal")
    misaligned = ids.filter(pl.col("id") != pl.col("analyzed_id")).select(pl.len())
    if not same_length or misaligned.collect(engine="streaming").item():
        raise RuntimeError("analyzed chunks do not line up with the clean posts; rerun with force")
    return pl.concat([clean, analyzed.drop("id")], how="horizontal")


@task(name="signals")
def build_signals(
    params: SignalsParams, run_date: date, clean_path: str, chunk_paths: list[str], key: str
) -> dict[str, object]:
    storage = Storage.at(params.data_root)
    path = storage.signals(run_date)
    meta = parquet_metadata(path)
    if meta is not None and meta.get("key") == key and not params.force:
        return {"path": str(path), "status": "reused", "rows": meta["rows"]}
    posts = analyzed_posts(location(clean_path), chunk_paths)
    frame = compute_signals(posts, run_date, params.symbols, SignalThresholds())
    write_parquet_atomic(frame, path, {"key": key, "rows": frame.height})
    return {"path": str(path), "status": "computed", "rows": frame.height}
