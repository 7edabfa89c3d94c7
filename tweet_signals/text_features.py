"""Vectorised per-post features: keyword boost, engagement weight, TF-IDF market relevance.

The per-post Python rules (``lexicon.keyword_boost``, ``analysis.engagement_weight``,
``TfidfModel.market_relevance``) define the values; this module computes the same numbers with
polars expressions, which run in Rust on all cores and release the GIL, so a GPU worker's host
work per tweet shrinks. Regular expressions differ between Python's ``re`` and Rust's ``regex``
only outside ASCII (what counts as a word character or a word boundary for accented letters,
combining marks, other scripts' digits), so texts with any other non-ASCII character than the
lexicon's three emoji take the Python rule; the tests prove both paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from tweet_signals.lexicon import BEARISH_TERMS, BULLISH_TERMS, KEYWORD_TOKEN_PATTERN, keyword_boost
from tweet_signals.tfidf import TOKEN_PATTERN

if TYPE_CHECKING:
    from tweet_signals.tfidf import TfidfModel

_LEXICON_EMOJI = "[🚀📈📉]"
_BULLISH = pl.Series(sorted(BULLISH_TERMS), dtype=pl.String)
_BEARISH = pl.Series(sorted(BEARISH_TERMS), dtype=pl.String)


def regex_safe(texts: pl.Series) -> pl.Series:
    """True where Rust's and Python's regex engines provably tokenise the text alike."""
    return ~texts.str.replace_all(_LEXICON_EMOJI, "").str.contains(r"[^\x00-\x7F]")


def keyword_boosts(texts: Sequence[str]) -> np.ndarray:
    """``lexicon.keyword_boost`` of every text."""
    series = pl.Series("text", texts, dtype=pl.String)
    safe = regex_safe(series).to_numpy()
    tokens = series.str.to_lowercase().str.extract_all(KEYWORD_TOKEN_PATTERN)
    counts = pl.DataFrame({"tokens": tokens}).select(
        pl.col("tokens").list.eval(pl.element().is_in(_BULLISH)).list.sum().alias("bull"),
        pl.col("tokens").list.eval(pl.element().is_in(_BEARISH)).list.sum().alias("bear"),
    )
    bull = counts["bull"].fill_null(0).to_numpy().astype(np.float64)
    bear = counts["bear"].fill_null(0).to_numpy().astype(np.float64)
    hits = bull + bear
    out = np.divide(bull - bear, hits, out=np.zeros(len(series)), where=hits > 0)
    for i in np.flatnonzero(~safe).tolist():
        out[i] = keyword_boost(texts[i])
    return out


def engagement_weights(likes: pl.Series, retweets: pl.Series, replies: pl.Series, quotes: pl.Series) -> np.ndarray:
    """``analysis.engagement_weight`` of every post (missing counts are 0)."""
    frame = pl.DataFrame({"l": likes, "r": retweets, "p": replies, "q": quotes}).select(
        (
            1.0
            + (
                pl.col("l").fill_null(0).clip(lower_bound=0)
                + 2 * pl.col("r").fill_null(0).clip(lower_bound=0)
                + pl.col("p").fill_null(0).clip(lower_bound=0)
                + 2 * pl.col("q").fill_null(0).clip(lower_bound=0)
            )
            .cast(pl.Float64)
            .log1p()
        ).alias("w")
    )
    return frame["w"].to_numpy().astype(np.float64)


def market_relevances(model: TfidfModel, texts: Sequence[str]) -> np.ndarray:
    """``TfidfModel.market_relevance`` of every text: the share of its l2-normalised TF-IDF
    vector on market terms, ‖w_market‖ / ‖w‖ with w = (1 + ln tf) · idf over vocabulary terms."""
    if not len(texts) or len(model.market_columns) == 0:
        return np.zeros(len(texts))
    series = pl.Series("text", texts, dtype=pl.String)
    safe = regex_safe(series).to_numpy()
    # Tokens in Rust, one row per (post, vocabulary term) occurrence; then counts per pair by
    # one integer sort (post · V + term), which beats grouping by strings.
    found = (
        pl.DataFrame({"term": series.str.to_lowercase().str.extract_all(TOKEN_PATTERN)})
        .with_row_index("row")
        .explode("term")
        .join(model.vocabulary_frame, on="term", how="inner")
    )
    size = len(model.vocabulary)
    pairs, tf = np.unique(found["row"].to_numpy().astype(np.int64) * size + found["col"].to_numpy(), return_counts=True)
    rows, cols = np.divmod(pairs, size)
    w2 = ((1.0 + np.log(tf)) * model.idf[cols]) ** 2
    market = np.zeros(size, dtype=bool)
    market[model.market_columns] = True
    total = np.bincount(rows, weights=w2, minlength=len(texts))
    on_market = np.bincount(rows, weights=w2 * market[cols], minlength=len(texts))
    out = np.sqrt(np.divide(on_market, total, out=np.zeros(len(texts)), where=total > 0))
    unsafe = np.flatnonzero(~safe).tolist()
    if unsafe:
        out[unsafe] = model.market_relevance_reference([texts[i] for i in unsafe])
    return out
