"""Per-symbol, per-session market signals from analyzed posts.

For each symbol of the run and each session (a symbol without posts still gets its row):
post counts by label, the mean and engagement-weighted score, Antweiler & Frank's (2004)
bullishness ``ln((1 + N_bull) / (1 + N_bear))`` and agreement ``1 − sqrt(1 − ((N_bull − N_bear) /
(N_bull + N_bear))²)`` (1: everyone agrees, 0: an even split; null without bullish or bearish
posts), and a signal label from thresholds written into every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

import polars as pl

from tweet_signals.params import SignalsParams
from tweet_signals.storage import AnyPath, Storage, current_parquet, location, uri, write_parquet_atomic

ALL = "ALL"  # pseudo-symbol: every post of the session

SIGNALS_SCHEMA: dict[str, pl.DataType] = {
    "session": pl.Date(),
    "symbol": pl.String(),
    "n_posts": pl.Int64(),
    "n_bullish": pl.Int64(),
    "n_bearish": pl.Int64(),
    "n_neutral": pl.Int64(),
    "mean_score": pl.Float64(),
    "weighted_score": pl.Float64(),
    "bullishness": pl.Float64(),
    "agreement": pl.Float64(),
    "mean_relevance": pl.Float64(),
    "signal": pl.String(),
    "threshold_bullish": pl.Float64(),
    "threshold_bearish": pl.Float64(),
    "min_posts": pl.Int64(),
    "model_id": pl.String(),
}


@dataclass(frozen=True)
class SignalThresholds:
    """``signal`` is bullish when bullishness ≥ ``bullish`` and the weighted score agrees in
    sign, bearish symmetrically, neutral otherwise, and ``insufficient`` under ``min_posts``."""

    bullish: float = 0.4
    bearish: float = -0.4
    min_posts: int = 5


# Posts aggregated per slice: each slice is summed in memory, then the slices' sums are added in
# slice order. polars' streaming engine would bound memory as well, but it merges partial float
# sums in whatever order its threads finish, so the same posts gave signals differing in the last
# bits from run to run (a rerun or a Dask run could not reproduce a pool run exactly).
SLICE_ROWS = 200_000


def _slice_sums(posts: pl.LazyFrame, symbols: Sequence[str]) -> pl.DataFrame:
    """Counts and sums per symbol over one slice of posts (in-memory engine: reproducible)."""
    columns = ("symbols", "label", "score", "engagement_weight", "tfidf_relevance")
    exploded = posts.select(columns).explode("symbols")
    if ALL in symbols:  # the whole market conversation, whatever symbol a post names
        everything = posts.select(columns).with_columns(pl.lit(ALL).alias("symbols"))
        exploded = pl.concat([exploded, everything])
    return (
        exploded.filter(pl.col("symbols").is_in(list(symbols)))
        .group_by(pl.col("symbols").alias("symbol"))
        .agg(
            pl.len().cast(pl.Int64).alias("n_posts"),
            (pl.col("label") == "positive").sum().cast(pl.Int64).alias("n_bullish"),
            (pl.col("label") == "negative").sum().cast(pl.Int64).alias("n_bearish"),
            (pl.col("label") == "neutral").sum().cast(pl.Int64).alias("n_neutral"),
            pl.col("score").sum().alias("score_sum"),
            pl.col("score").count().cast(pl.Int64).alias("score_n"),
            (pl.col("score") * pl.col("engagement_weight")).sum().alias("weighted_sum"),
            pl.col("engagement_weight").sum().alias("weight_sum"),
            pl.col("tfidf_relevance").sum().alias("relevance_sum"),
            pl.col("tfidf_relevance").count().cast(pl.Int64).alias("relevance_n"),
        )
        .collect(engine="in-memory")
    )


def _mean(total: str, count: str) -> pl.Expr:
    """As polars' ``mean``: null when there is nothing to average."""
    return pl.when(pl.col(count) > 0).then(pl.col(total) / pl.col(count))


def compute_signals(
    posts: pl.DataFrame | pl.LazyFrame,
    session: date,
    symbols: Sequence[str],
    thresholds: SignalThresholds = SignalThresholds(),
) -> pl.DataFrame:
    """``posts``: analyzed rows with a ``symbols`` list column (one session's posts). Read
    ``SLICE_ROWS`` posts at a time (only the aggregated columns): memory is bounded by the slice,
    and the result is the same to the bit on every run."""
    lazy = posts.lazy()
    n_rows = lazy.select(pl.len()).collect().item()
    parts = [_slice_sums(lazy.slice(offset, SLICE_ROWS), symbols) for offset in range(0, n_rows, SLICE_ROWS)]
    sums = pl.concat(parts) if parts else _slice_sums(lazy, symbols)
    total = [pl.col(c).sum() for c in sums.columns if c != "symbol"]
    agg = (
        sums.group_by("symbol", maintain_order=True)
        .agg(total)
        .select(
            "symbol",
            "n_posts",
            "n_bullish",
            "n_bearish",
            "n_neutral",
            _mean("score_sum", "score_n").alias("mean_score"),
            (pl.col("weighted_sum") / pl.col("weight_sum")).alias("weighted_score"),
            _mean("relevance_sum", "relevance_n").alias("mean_relevance"),
        )
    )
    model_id = lazy.select(pl.col("model_id").first()).collect().item()
    frame = (
        pl.DataFrame({"symbol": list(symbols)})
        .join(agg, on="symbol", how="left")
        .with_columns(pl.col("n_posts", "n_bullish", "n_bearish", "n_neutral").fill_null(0))
    )
    bull, bear = pl.col("n_bullish").cast(pl.Float64), pl.col("n_bearish").cast(pl.Float64)
    polar = bull + bear
    frame = frame.with_columns(
        ((1 + bull) / (1 + bear)).log().alias("bullishness"),
        pl.when(polar > 0).then(1 - (1 - ((bull - bear) / polar) ** 2).sqrt()).otherwise(None).alias("agreement"),
    )
    frame = frame.with_columns(
        pl.when(pl.col("n_posts") < thresholds.min_posts)
        .then(pl.lit("insufficient"))
        .when((pl.col("bullishness") >= thresholds.bullish) & (pl.col("weighted_score") > 0))
        .then(pl.lit("bullish"))
        .when((pl.col("bullishness") <= thresholds.bearish) & (pl.col("weighted_score") < 0))
        .then(pl.lit("bearish"))
        .otherwise(pl.lit("neutral"))
        .alias("signal"),
        pl.lit(session).alias("session"),
        pl.lit(thresholds.bullish).alias("threshold_bullish"),
        pl.lit(thresholds.bearish).alias("threshold_bearish"),
        pl.lit(thresholds.min_posts).cast(pl.Int64).alias("min_posts"),
        pl.lit(model_id, dtype=pl.String).alias("model_id"),
    )
    return frame.select(list(SIGNALS_SCHEMA)).cast(SIGNALS_SCHEMA)  # type: ignore[arg-type]


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


@dataclass(frozen=True)
class SignalsResult:
    path: str
    status: str  # computed | reused
    rows: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def signals_session(
    params: SignalsParams, run_date: date, clean_path: str, chunk_paths: list[str], key: str
) -> SignalsResult:
    """``signals/date=D/signals.parquet`` from the clean posts and their analyzed chunks; reused
    while the analysis (``key``: model, scoring and inputs) is unchanged."""
    path = Storage.at(params.data_root).signals(run_date)
    meta = current_parquet(path, {"key": key}, params.force)
    if meta is not None:
        return SignalsResult(str(path), "reused", int(meta["rows"]))
    posts = analyzed_posts(location(clean_path), chunk_paths)
    frame = compute_signals(posts, run_date, params.symbols, SignalThresholds())
    write_parquet_atomic(frame, path, {"key": key, "rows": frame.height})
    return SignalsResult(str(path), "computed", frame.height)
