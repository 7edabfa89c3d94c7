"""Collapse duplicates so bots and copies don't move the signal.

Three rules, in order: the same id (the earliest copy stays); retweets onto their original
(by API reference, or by the text after ``RT @user:``); near-duplicates, i.e. the same
normalised text (lower-case, links, mentions and numbers masked, punctuation and whitespace
folded), onto the earliest post. The survivor's ``dup_count`` says how many it absorbed.

The decisions need only a narrow view of each post (row, time and 64-bit hashes of its id,
retweet reference, text and normalised text: ~50 bytes), computed by polars expressions in a
lazy scan and resolved with numpy sorts. ``dedupe_file`` then streams the wide rows of the
survivors to the clean file batch by batch, so a million-post day never sits in memory as full rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.market.symbols import extract_symbols
from tweet_signals.params import SignalsParams
from tweet_signals.processes import ordered_map
from tweet_signals.storage import AnyPath, ParquetStreamWriter, Storage, current_parquet, file_digest, uri

_RT_PREFIX = r"^RT @\w+:\s*"
_URL = r"https?://\S+|www\.\S+"
_MENTION = r"@\w+"
_NUMBER = r"\d+(?:[.,]\d+)*"
_NON_WORD = r"[^\w#$]+"
_HASH_SEED = 20260107
WRITE_BATCH = 100_000


def normalise_text(text: str) -> str:
    """The near-duplicate key of a text (the same rules as ``near_duplicate_key``, in Python)."""
    text = re.sub(_RT_PREFIX, "", text).rstrip("…").lower()
    text = re.sub(_URL, " _url_ ", text)
    text = re.sub(_MENTION, " _user_ ", text)
    text = re.sub(_NUMBER, " _num_ ", text)
    return " ".join(re.sub(_NON_WORD, " ", text).split())


def near_duplicate_key(text: pl.Expr) -> pl.Expr:
    """``normalise_text`` as a vectorised polars expression."""
    return (
        text.str.replace(_RT_PREFIX, "")
        .str.strip_chars_end("…")
        .str.to_lowercase()
        .str.replace_all(_URL, " _url_ ")
        .str.replace_all(_MENTION, " _user_ ")
        .str.replace_all(_NUMBER, " _num_ ")
        .str.replace_all(_NON_WORD, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


@dataclass(frozen=True)
class DedupeStats:
    posts_in: int
    duplicate_ids: int
    duplicate_ids_conflicting: int  # same id, different text: the earliest is kept
    retweets: int
    near_duplicates: int
    posts_out: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def narrow_keys(posts: pl.LazyFrame) -> pl.LazyFrame:
    """What the dedupe rules look at, per post, as numbers: its row in ``posts``, time, and 64-bit
    hashes of its id, retweet reference, text and normalised text (~50 bytes a post)."""
    return posts.with_row_index("_row").select(
        "_row",
        pl.col("created_at").dt.epoch("us").alias("_time"),
        pl.col("id").hash(_HASH_SEED).alias("_id"),
        pl.when(pl.col("retweet_of").is_not_null()).then(pl.col("retweet_of").hash(_HASH_SEED)).alias("_rt"),
        near_duplicate_key(pl.col("text")).hash(_HASH_SEED).alias("_key"),
        pl.col("text").hash(_HASH_SEED).alias("_text"),
        (pl.col("retweet_of").is_not_null() | pl.col("text").str.starts_with("RT @")).alias("_is_rt"),
    )


def survivors(keys: pl.DataFrame) -> tuple[pl.DataFrame, DedupeStats]:
    """(``_row``, ``dup_count``) of the posts that stay, in time order; and the stats.

    Plain numpy sorts over the narrow columns: a few arrays of a million 8-byte values, where
    polars' parallel hash tables needed several hundred megabytes for the same day.
    """
    n_in = keys.height
    row = keys["_row"].to_numpy()
    time_us, id_hash, text_hash = keys["_time"].to_numpy(), keys["_id"].to_numpy(), keys["_text"].to_numpy()
    key, is_rt = keys["_key"].to_numpy(), keys["_is_rt"].to_numpy()
    rt_mask = keys["_rt"].is_not_null().to_numpy()
    rt_hash = keys["_rt"].fill_null(0).to_numpy()

    # 1. The same id: the earliest copy (by time, ties by id hash) stays.
    by_time = np.lexsort((id_hash, time_us))
    _, first_at = np.unique(id_hash[by_time], return_index=True)
    firsts = by_time[np.sort(first_at)]  # one post per id, in time order
    by_id = np.lexsort((text_hash, id_hash))  # ids with more than one distinct text conflict
    ids_sorted, texts_sorted = id_hash[by_id], text_hash[by_id]
    new_id = np.r_[True, ids_sorted[1:] != ids_sorted[:-1]]
    new_text = new_id | np.r_[True, texts_sorted[1:] != texts_sorted[:-1]]
    texts_per_id = np.add.reduceat(new_text.astype(np.int64), np.flatnonzero(new_id)) if n_in else np.zeros(0)
    conflicting = int((texts_per_id > 1).sum())

    # 2. An API retweet reference whose original is in the day's data takes the original's key.
    first_ids, first_keys = id_hash[firsts], key[firsts]
    lookup = np.argsort(first_ids)
    found = np.searchsorted(first_ids[lookup], rt_hash[firsts])
    found = np.minimum(found, len(lookup) - 1)
    has_original = rt_mask[firsts] & (first_ids[lookup][found] == rt_hash[firsts])
    group_key = np.where(has_original, first_keys[lookup][found], first_keys)

    # 3. Within each key the earliest non-retweet survives (a retweet only when no original is here).
    order = np.arange(len(firsts))
    ranked = np.lexsort((order, is_rt[firsts], group_key))
    _, starts, sizes = np.unique(group_key[ranked], return_index=True, return_counts=True)
    chosen = np.sort(ranked[starts])  # positions in time order
    rts_per_group = np.add.reduceat(is_rt[firsts][ranked].astype(np.int64), starts) if len(starts) else np.zeros(0)
    retweets = int(rts_per_group.sum() - is_rt[firsts][ranked[starts]].sum())
    near = len(firsts) - len(starts) - retweets
    dup_count = np.empty(len(firsts), dtype=np.int64)
    dup_count[ranked[starts]] = sizes - 1
    stats = DedupeStats(n_in, n_in - len(firsts), conflicting, retweets, near, len(starts))
    kept = pl.DataFrame({"_row": row[firsts][chosen], "dup_count": dup_count[chosen]})
    return kept.with_columns(pl.col("_row").cast(pl.UInt32)), stats


def _with_symbols(frame: pl.DataFrame, aliases: Mapping[str, str]) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("text")
        .map_elements(lambda t: extract_symbols(t, aliases), return_dtype=pl.List(pl.String))
        .alias("symbols")
    )


def dedupe_posts(posts: pl.DataFrame, aliases: Mapping[str, str]) -> tuple[pl.DataFrame, DedupeStats]:
    """Clean posts (sorted by time; ties in an arbitrary but fixed order) with ``dup_count`` and
    ``symbols``; and the stats."""
    kept, stats = survivors(narrow_keys(posts.lazy()).collect())
    rows = posts.with_row_index("_row")
    clean = kept.join(rows, on="_row", how="left", maintain_order="left").select(*posts.columns, "dup_count")
    return _with_symbols(clean, aliases), stats


@dataclass(frozen=True)
class CleanPart:
    """One batch of the clean file: what a worker process needs to write its rows on its own."""

    raw: str  # the raw file's URI
    start: int  # its first row in the raw file
    rows: int  # raw rows it covers
    kept: pl.DataFrame  # (``_row``, ``dup_count``) of this batch's survivors
    aliases: Mapping[str, str]


def clean_part(part: CleanPart) -> pl.DataFrame:
    """The surviving rows of one raw batch, in raw order, with ``dup_count`` and ``symbols`` (the
    symbol lookup is Python per post: the reason batches go to worker processes)."""
    rows = pl.scan_parquet(part.raw).slice(part.start, part.rows).with_row_index("_row", offset=part.start)
    batch = rows.collect().join(part.kept, on="_row", how="inner", maintain_order="left").drop("_row")
    return _with_symbols(batch, part.aliases)


def dedupe_file(
    raw: AnyPath, clean: AnyPath, aliases: Mapping[str, str], metadata: dict[str, Any], workers: int = 0
) -> tuple[int, DedupeStats]:
    """``dedupe_posts`` from Parquet file to Parquet file in bounded memory.

    Survivors keep the raw file's (collection) order: putting a whole day in time order would
    need it in memory at once. Batches of survivors are prepared in parallel worker processes
    (``workers``; 0: every core) and written in order. Returns the rows written and the stats
    (also in the metadata).
    """
    kept, stats = survivors(narrow_keys(pl.scan_parquet(uri(raw))).collect(engine="streaming"))
    keep = kept.sort("_row")
    parts = [
        CleanPart(
            uri(raw),
            start,
            WRITE_BATCH,
            keep.filter(pl.col("_row").is_between(start, start + WRITE_BATCH - 1)),
            aliases,
        )
        for start in range(0, stats.posts_in, WRITE_BATCH)
    ]
    empty = pl.scan_parquet(uri(raw)).head(0).collect().with_columns(pl.lit(None, dtype=pl.Int64).alias("dup_count"))
    with ParquetStreamWriter(clean, _with_symbols(empty, aliases).to_arrow().schema) as writer:
        for part in ordered_map(clean_part, parts, workers or os.cpu_count() or 1):
            writer.write(part)
        writer.close({**metadata, "stats": stats.as_dict()})
        return writer.rows, stats


@dataclass(frozen=True)
class DedupeResult:
    """The clean file of a session, whether it was computed or reused, its content hash (what
    downstream outputs record to know they are current) and the dedupe counts."""

    path: str
    status: str  # computed | reused
    digest: str
    stats: dict[str, int]

    @property
    def posts_out(self) -> int:
        return int(self.stats["posts_out"])

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "status": self.status, "digest": self.digest, **self.stats}


def dedupe_session(params: SignalsParams, run_date: date) -> DedupeResult:
    """``raw/date=D`` → ``clean/date=D``, reused while the raw file and the symbols are unchanged."""
    storage = Storage.at(params.data_root)
    raw, path = storage.raw(run_date), storage.clean(run_date)
    key = {"raw": file_digest(raw), "symbols": params.symbols, "aliases": params.aliases_file}
    meta = current_parquet(path, {"key": key}, params.force)
    if meta is not None:
        return DedupeResult(str(path), "reused", file_digest(path), meta["stats"])
    _, stats = dedupe_file(raw, path, params.aliases(), {"key": key})
    return DedupeResult(str(path), "computed", file_digest(path), stats.as_dict())
