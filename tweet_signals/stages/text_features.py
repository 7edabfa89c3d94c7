"""Vectorised per-post features: keyword boost and engagement weight (TF-IDF relevance: ``tfidf``).

The per-post Python rules (``lexicon.keyword_boost``, ``engagement_weight``,
``TfidfModel.market_relevance``) define the values; this module computes the same numbers with
polars expressions, which run in Rust on all cores and release the GIL, so a GPU worker's host
work per tweet shrinks. Regular expressions differ between Python's ``re`` and Rust's ``regex``
only outside ASCII (what counts as a word character or a word boundary for accented letters,
combining marks, other scripts' digits), so texts with any other non-ASCII character than the
lexicon's three emoji take the Python rule; the tests prove both paths agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from tweet_signals.market.lexicon import BEARISH_TERMS, BULLISH_TERMS, KEYWORD_TOKEN_PATTERN, keyword_boost

_LEXICON_EMOJI = "[🚀📈📉]"
_BULLISH = sorted(BULLISH_TERMS)
_BEARISH = sorted(BEARISH_TERMS)


def engagement_weight(likes: int, retweets: int, replies: int, quotes: int) -> float:
    """1 + ln(1 + likes + 2·retweets + replies + 2·quotes): one viral post can't dominate a day."""
    return 1.0 + math.log1p(max(0, likes) + 2 * max(0, retweets) + max(0, replies) + 2 * max(0, quotes))


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
    """``engagement_weight`` of every post (missing counts are 0)."""
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
