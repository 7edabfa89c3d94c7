"""Per-symbol, per-session market signals from analyzed posts.

For each symbol of the run and each session (a symbol without posts still gets its row):
post counts by label, the mean and engagement-weighted score, Antweiler & Frank's (2004)
bullishness ``ln((1 + N_bull) / (1 + N_bear))`` and agreement ``1 − sqrt(1 − ((N_bull − N_bear) /
(N_bull + N_bear))²)`` (1: everyone agrees, 0: an even split; null without bullish or bearish
posts), and a signal label from thresholds written into every row.

Beyond tone, the families the literature finds predictive of volatility and volume:
- attention: ``n_posts``, ``n_authors`` (distinct authors) and, against the symbol's previous
  ``HISTORY_WINDOW`` sessions (t excluded), ``attention`` = ln(1 + n_posts) minus its trailing
  mean, ``attention_z`` = that over the trailing standard deviation, ``authors_z`` the same for
  ln(1 + n_authors);
- surprise: ``surprise`` = bullishness minus its trailing mean over the previous sessions with
  posts, ``surprise_z`` = that over the trailing standard deviation;
- disagreement: ``agreement`` and ``score_dispersion``, the standard deviation of the posts'
  scores;
- reach: ``reach_bullishness`` = ln((1 + Σ w·[bullish]) / (1 + Σ w·[bearish])) with w =
  ln(1 + the author's followers when the post was collected), over posts that carry followers.
History columns are null while a symbol has fewer than ``HISTORY_MIN_SESSIONS`` previous
sessions, and a z-score is null where the trailing values never varied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta

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
    "n_authors": pl.Int64(),
    "score_dispersion": pl.Float64(),
    "reach_bullishness": pl.Float64(),
    "attention": pl.Float64(),
    "attention_z": pl.Float64(),
    "authors_z": pl.Float64(),
    "surprise": pl.Float64(),
    "surprise_z": pl.Float64(),
}
# Computed from a symbol's previous sessions (``with_history``), not from the session's posts alone.
HISTORY_COLUMNS = ("attention", "attention_z", "authors_z", "surprise", "surprise_z")
HISTORY_WINDOW = 20  # previous sessions behind attention and surprise
# Fewest previous sessions for a history column: three give a mean and a spread, so a desk sees
# attention from its fourth session on (a noisy figure early on, flagged by its few sessions).
HISTORY_MIN_SESSIONS = 3


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


def _with_author_columns(posts: pl.LazyFrame) -> pl.LazyFrame:
    """``_author`` (id, else user name) and ``_reach`` (ln(1 + followers)), null where a source
    gives neither: analyzed frames from older runs or other callers may lack the columns."""
    names = posts.collect_schema().names()
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in (("author_id", pl.String), ("author_username", pl.String), ("author_followers", pl.Int64))
        if name not in names
    ]
    return posts.with_columns(missing).with_columns(
        pl.coalesce(pl.col("author_id").cast(pl.String), pl.col("author_username").cast(pl.String)).alias("_author"),
        pl.col("author_followers").cast(pl.Float64).clip(lower_bound=0).log1p().alias("_reach"),
    )


def _exploded(posts: pl.LazyFrame, columns: Sequence[str], symbols: Sequence[str]) -> pl.LazyFrame:
    """One row per (post, symbol it names) for the wanted symbols; ``ALL`` gets every post."""
    exploded = posts.select(columns).explode("symbols")
    if ALL in symbols:  # the whole market conversation, whatever symbol a post names
        everything = posts.select(columns).with_columns(pl.lit(ALL).alias("symbols"))
        exploded = pl.concat([exploded, everything])
    return exploded.filter(pl.col("symbols").is_in(list(symbols)))


def _slice_authors(posts: pl.LazyFrame, symbols: Sequence[str]) -> pl.DataFrame:
    """The distinct (symbol, author) pairs of one slice: distinct counts cannot be summed over
    slices, so the pairs are kept and counted once all slices are read."""
    return (
        _exploded(_with_author_columns(posts), ("symbols", "_author"), symbols)
        .drop_nulls("_author")
        .unique()
        .select(pl.col("symbols").alias("symbol"), "_author")
        .collect(engine="in-memory")
    )


def _slice_sums(posts: pl.LazyFrame, symbols: Sequence[str]) -> pl.DataFrame:
    """Counts and sums per symbol over one slice of posts (in-memory engine: reproducible)."""
    columns = ("symbols", "label", "score", "engagement_weight", "tfidf_relevance", "_reach")
    exploded = _exploded(_with_author_columns(posts), columns, symbols)
    reach = pl.col("_reach")
    return (
        exploded.group_by(pl.col("symbols").alias("symbol"))
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
            (pl.col("score") ** 2).sum().alias("score_sq_sum"),
            reach.filter(pl.col("label") == "positive").sum().alias("bull_reach"),
            reach.filter(pl.col("label") == "negative").sum().alias("bear_reach"),
            reach.filter(pl.col("label").is_in(["positive", "negative"])).count().cast(pl.Int64).alias("reach_n"),
        )
        .collect(engine="in-memory")
    )


def _dispersion(total: str, squares: str, count: str) -> pl.Expr:
    """Sample standard deviation from sums (ddof 1); null under two values."""
    n = pl.col(count).cast(pl.Float64)
    variance = (pl.col(squares) - pl.col(total) ** 2 / n) / (n - 1)
    return pl.when(pl.col(count) > 1).then(variance.clip(lower_bound=0).sqrt())


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
    offsets = range(0, n_rows, SLICE_ROWS)
    parts = [_slice_sums(lazy.slice(offset, SLICE_ROWS), symbols) for offset in offsets]
    sums = pl.concat(parts) if parts else _slice_sums(lazy, symbols)
    pairs = [_slice_authors(lazy.slice(offset, SLICE_ROWS), symbols) for offset in offsets]
    authors = (pl.concat(pairs) if pairs else _slice_authors(lazy, symbols)).unique()
    n_authors = authors.group_by("symbol").agg(pl.len().cast(pl.Int64).alias("n_authors"))
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
            _dispersion("score_sum", "score_sq_sum", "score_n").alias("score_dispersion"),
            pl.when(pl.col("reach_n") > 0)
            .then(((1 + pl.col("bull_reach")) / (1 + pl.col("bear_reach"))).log())
            .alias("reach_bullishness"),
        )
        .join(n_authors, on="symbol", how="left")
    )
    model_id = lazy.select(pl.col("model_id").first()).collect().item()
    frame = (
        pl.DataFrame({"symbol": list(symbols)})
        .join(agg, on="symbol", how="left")
        .with_columns(pl.col("n_posts", "n_bullish", "n_bearish", "n_neutral").fill_null(0))
    )
    # Without any author in the session's posts the count is unknown (null), not zero.
    has_authors = authors.height > 0
    frame = frame.with_columns(
        pl.col("n_authors").fill_null(0) if has_authors else pl.lit(None, dtype=pl.Int64).alias("n_authors"),
        *[pl.lit(None, dtype=pl.Float64).alias(c) for c in HISTORY_COLUMNS],
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


def with_history(frame: pl.DataFrame, window: int = HISTORY_WINDOW) -> pl.DataFrame:
    """``frame`` (rows of (symbol, session) with ``n_posts``, ``bullishness`` and ``n_authors``;
    every session of a symbol's history as a row, quiet sessions with zero posts) with the
    history columns filled from each symbol's previous ``window`` rows (t excluded: no
    look-ahead). Surprise is null on sessions without posts, and its trailing values come from
    the sessions with posts among the previous ``window``."""
    min_samples = min(HISTORY_MIN_SESSIONS, window)

    def abnormal(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """(value minus its trailing mean, that over the trailing standard deviation)."""
        past = value.shift(1)
        mean = past.rolling_mean(window, min_samples=min_samples).over("symbol")
        std = past.rolling_std(window, min_samples=min_samples).over("symbol")
        deviation = value - mean
        return deviation, pl.when(std > 0).then(deviation / std)

    if "n_authors" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("n_authors"))
    posts = pl.col("n_posts").cast(pl.Float64)
    attention, attention_z = abnormal(posts.log1p())
    _, authors_z = abnormal(pl.col("n_authors").cast(pl.Float64).log1p())
    bullishness = pl.when(pl.col("n_posts") > 0).then(pl.col("bullishness"))
    surprise, surprise_z = abnormal(bullishness)
    return (
        frame.drop([c for c in HISTORY_COLUMNS if c in frame.columns])
        .sort("symbol", "session")
        .with_columns(
            attention.alias("attention"),
            attention_z.alias("attention_z"),
            authors_z.alias("authors_z"),
            surprise.alias("surprise"),
            surprise_z.alias("surprise_z"),
        )
        .sort("session", "symbol")
    )


def recent_signals(storage: Storage, until: date | None, sessions: int) -> pl.DataFrame:
    """The stored signals of the last ``sessions`` sessions up to ``until`` (every stored one when
    ``until`` is None). Sessions written by older versions may lack the newer columns: the frames
    are aligned by name, missing columns null."""
    keep = storage.partitions("signals", "signals.parquet", until)[-sessions:]
    frames = [pl.read_parquet(uri(path)) for _, path in keep]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=SIGNALS_SCHEMA)


def history_before(storage: Storage, run_date: date, window: int = HISTORY_WINDOW) -> pl.DataFrame:
    """The columns ``with_history`` reads, from the ``window`` stored sessions before ``run_date``
    (sessions written by older versions lack ``n_authors``: null there)."""
    wanted = ("session", "symbol", "n_posts", "bullishness", "n_authors")
    history = recent_signals(storage, run_date - timedelta(days=1), window)
    missing = [pl.lit(None).alias(c) for c in wanted if c not in history.columns]
    return history.with_columns(missing).select(wanted).cast({c: SIGNALS_SCHEMA[c] for c in wanted})  # type: ignore[arg-type]


def analyzed_posts(clean_path: AnyPath, chunk_paths: list[str]) -> pl.LazyFrame:
    """Clean posts with their analysis, in clean order (chunks are contiguous row ranges), as a
    lazy frame: the signals read only the columns they aggregate, never the whole day's rows."""
    clean = pl.scan_parquet(uri(clean_path)).select(
        "id", "created_at", "symbols", "author_id", "author_username", "author_followers"
    )
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
    storage = Storage.at(params.data_root)
    path = storage.signals(run_date)
    history = history_before(storage, run_date)
    # The history columns depend on the stored sessions before this one: a backfill that changes
    # them makes this session's signals stale, so their content is part of the reuse key.
    history_key = hashlib.sha256(history.sort("session", "symbol").write_json().encode()).hexdigest()[:24]
    meta = current_parquet(path, {"key": key, "history": history_key}, params.force)
    if meta is not None:
        return SignalsResult(str(path), "reused", int(meta["rows"]))
    posts = analyzed_posts(location(clean_path), chunk_paths)
    today = compute_signals(posts, run_date, params.symbols, SignalThresholds())
    filled = with_history(pl.concat([history, today.select(history.columns)], how="diagonal_relaxed"))
    frame = today.drop(HISTORY_COLUMNS).join(
        filled.filter(pl.col("session") == run_date).select("symbol", *HISTORY_COLUMNS), on="symbol", how="left"
    )
    frame = frame.select(list(SIGNALS_SCHEMA)).cast(SIGNALS_SCHEMA)  # type: ignore[arg-type]
    write_parquet_atomic(frame, path, {"key": key, "history": history_key, "rows": frame.height})
    return SignalsResult(str(path), "computed", frame.height)
