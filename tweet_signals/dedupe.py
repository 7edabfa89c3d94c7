"""Collapse duplicates so bots and copies don't move the signal.

Three rules, in order: the same id (the earliest copy stays); retweets onto their original
(by API reference, or by the text after ``RT @user:``); near-duplicates, i.e. the same
normalised text (lower-case, links, mentions and numbers masked, punctuation and whitespace
folded), onto the earliest post. The survivor's ``dup_count`` says how many it absorbed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import polars as pl

from tweet_signals.symbols import extract_symbols

_RT_PREFIX = re.compile(r"^RT @\w+:\s*")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NON_WORD = re.compile(r"[^\w#$]+")


def normalise_text(text: str) -> str:
    """The near-duplicate key of a text."""
    text = _RT_PREFIX.sub("", text).rstrip("…").lower()
    text = _URL.sub(" _url_ ", text)
    text = _MENTION.sub(" _user_ ", text)
    text = _NUMBER.sub(" _num_ ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


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


def dedupe_posts(posts: pl.DataFrame, aliases: Mapping[str, str]) -> tuple[pl.DataFrame, DedupeStats]:
    """Clean posts (sorted by time, then id) with ``dup_count`` and ``symbols``; and the stats."""
    n_in = posts.height
    ordered = posts.sort(["created_at", "id"])
    first_per_id = ordered.unique(subset="id", keep="first", maintain_order=True)
    conflicting = ordered.group_by("id").agg(pl.col("text").n_unique().alias("n")).filter(pl.col("n") > 1).height
    n_dup_ids = n_in - first_per_id.height

    keyed = first_per_id.with_columns(
        pl.col("text").map_elements(normalise_text, return_dtype=pl.String).alias("_key"),
        (pl.col("retweet_of").is_not_null() | pl.col("text").str.starts_with("RT @")).alias("_is_rt"),
    )
    # An API retweet reference whose original is in the day's data takes the original's key.
    originals = keyed.select(pl.col("id").alias("retweet_of"), pl.col("_key").alias("_orig_key"))
    keyed = keyed.join(originals, on="retweet_of", how="left").with_columns(
        pl.coalesce("_orig_key", "_key").alias("_key")
    )
    # Within each key the earliest non-retweet survives (a retweet only when no original is here).
    survivors = (
        keyed.with_row_index("_order")
        .sort(["_key", "_is_rt", "_order"])
        .group_by("_key", maintain_order=True)
        .agg(pl.all().first(), pl.len().alias("_group"), pl.col("_is_rt").sum().alias("_rts"))
        .sort("_order")
    )
    retweets = int((survivors["_rts"] - survivors["_is_rt"].cast(pl.Int64)).sum())
    near = keyed.height - survivors.height - retweets
    clean = survivors.with_columns(
        (pl.col("_group") - 1).cast(pl.Int64).alias("dup_count"),
        pl.col("text")
        .map_elements(lambda t: extract_symbols(t, aliases), return_dtype=pl.List(pl.String))
        .alias("symbols"),
    ).drop(["_key", "_is_rt", "_orig_key", "_order", "_group", "_rts"])
    stats = DedupeStats(n_in, n_dup_ids, conflicting, retweets, near, clean.height)
    return clean, stats
