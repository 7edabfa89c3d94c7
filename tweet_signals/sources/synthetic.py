"""A deterministic synthetic post generator for the demo and for scale tests.

Same seed and session → byte-identical posts. Each symbol gets a daily mood that sets the mix
of bullish, bearish and neutral phrasing; timestamps cluster in market hours; engagement is
heavy-tailed (Pareto); a share of posts are retweets or near-duplicate copies, as on real days.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np

from tweet_signals.market.sessions import DEFAULT_EXCHANGE, calendar, session_window

SYMBOL_SPELLINGS: dict[str, tuple[str, ...]] = {
    "NIFTY": ("#Nifty50", "#nifty", "$NIFTY", "Nifty", "NIFTY 50"),
    "SENSEX": ("#Sensex", "$SENSEX", "Sensex", "#sensex"),
    "BANKNIFTY": ("#BankNifty", "$BANKNIFTY", "Bank Nifty", "#banknifty"),
}
LEVELS = {"NIFTY": 26000, "SENSEX": 85000, "BANKNIFTY": 59000}

BULLISH = (
    "{s} looking strong, breakout above {l} 🚀 buying calls",
    "Bullish on {s}, target {l} by expiry",
    "{s} rallies hard, strong buying across the board, very happy with my longs",
    "Great day for {s} bulls, green candles everywhere, new highs coming",
    "{s} bounced off support at {l}, going long, momentum is excellent",
    "Loving this {s} uptrend, added more, profits running",
)
BEARISH = (
    "{s} breaking down below {l}, sell on rise",
    "Bearish on {s}, puts loaded, expecting a crash",
    "{s} is weak, heavy selling pressure, my stop loss got hit, terrible",
    "Awful day for {s}, markets bleeding red, panic everywhere",
    "{s} rejected at {l} resistance, shorting it, downside looks ugly",
    "Lost money on {s} again today, this fall is scary",
)
NEUTRAL = (
    "{s} opens flat at {l}, watching the {m} level",
    "{s} closing update: {l}",
    "What is your view on {s} for tomorrow?",
    "{s} expiry today, volumes normal",
    "{s} trading in a range between {m} and {l}",
    "Sharing my {s} chart for the week, levels {m} and {l}",
)
OPENERS = (
    "",
    "",
    "Update:",
    "My view:",
    "Quick take -",
    "Morning note:",
    "Hmm.",
    "Folks,",
    "Honestly",
    "Note to self:",
    "Team,",
    "Chart check:",
)
EXTRAS = (
    "",
    "",
    "",
    " via @MarketDesk",
    " https://t.co/{u}",
    " #StockMarketIndia",
    " @traderji what do you think?",
    " #trading",
    " #intraday",
    " (not advice)",
    " thoughts?",
    " #StockMarket",
    " stay disciplined",
)


# Retweets and copies pick their original among this many earlier posts (all of them on days
# up to this size), so generating a million posts holds a bounded window, not the whole day.
RECENT_ORIGINALS = 20_000


def signature(index: int) -> str:
    """A letters-only word unique to each post of a day (up to 26⁶ posts). Templates repeat and
    dedupe masks numbers, so without it big synthetic days would mostly be near-duplicates."""
    code = (index * 48_271 + 11) % 26**6
    return "".join(chr(97 + (code // 26**k) % 26) for k in range(6))


def _spelling(symbol: str) -> tuple[str, ...]:
    return SYMBOL_SPELLINGS.get(symbol, (f"#{symbol}", f"${symbol}", symbol))


def daily_mood(seed: int, session: date, symbols: Sequence[str]) -> dict[str, float]:
    """The latent mood (−1…1) per symbol for a session; exposed so tests know the truth."""
    rng = np.random.default_rng([seed, session.toordinal(), 7])
    return {s: float(np.tanh(rng.normal(0.0, 0.8))) for s in symbols}


# A day is generated in shards of this many posts, each from its own random stream, so shards can
# be generated in parallel and the day is the same whatever the number of processes. The first
# shard's stream is the day's own (``[seed, session]``): days up to this size are unchanged by sharding.
SHARD_POSTS = 50_000


def shard_count(n_posts: int, shard_posts: int = SHARD_POSTS) -> int:
    return max(1, -(-n_posts // shard_posts))


def generate_posts(
    session: date,
    n_posts: int,
    symbols: Sequence[str] = ("NIFTY", "SENSEX", "BANKNIFTY"),
    seed: int = 2026,
    exchange: str = DEFAULT_EXCHANGE,
    shard_posts: int = SHARD_POSTS,
) -> Iterator[dict[str, Any]]:
    """Canonical post records for one session's window, deterministically (shard after shard)."""
    for shard in range(shard_count(n_posts, shard_posts)):
        yield from generate_shard(session, n_posts, shard, symbols, seed, exchange, shard_posts)


def generate_shard(
    session: date,
    n_posts: int,
    shard: int,
    symbols: Sequence[str] = ("NIFTY", "SENSEX", "BANKNIFTY"),
    seed: int = 2026,
    exchange: str = DEFAULT_EXCHANGE,
    shard_posts: int = SHARD_POSTS,
) -> Iterator[dict[str, Any]]:
    """Posts ``shard * shard_posts`` up to the next shard (or ``n_posts``) of the session's day.
    Retweets and copies take their originals from earlier posts of the same shard."""
    ordinal = session.toordinal()
    rng = np.random.default_rng([seed, ordinal] if shard == 0 else [seed, ordinal, shard])
    mood = daily_mood(seed, session, symbols)
    start, end = session_window(session, exchange)
    cal = calendar(exchange)
    market_open = cal.session_open(session).to_pydatetime()
    originals: list[dict[str, Any]] = []
    prefix = session.strftime("%Y%m%d")
    for i in range(shard * shard_posts, min(n_posts, (shard + 1) * shard_posts)):
        # 70% of posts in market hours, the rest spread over the evening/night before.
        if rng.random() < 0.7:
            moment = market_open + (end - market_open) * float(rng.random())
        else:
            moment = start + (market_open - start) * float(rng.random())
        moment = min(max(moment, start + timedelta(seconds=1)), end)
        post_id = f"{prefix}{i:07d}"
        author = int(rng.integers(0, max(50, n_posts // 4)))
        roll = rng.random()
        if originals and roll < 0.08:  # a retweet of an earlier post
            original = originals[int(rng.integers(0, len(originals)))]
            text = f"RT @{original['author_username']}: {original['text']}"
            retweet_of = original["id"]
        elif originals and roll < 0.13:  # a near-duplicate copy (bots, copy-paste)
            original = originals[int(rng.integers(0, len(originals)))]
            text = original["text"].upper() if rng.random() < 0.5 else original["text"] + f" https://t.co/{i:x}"
            retweet_of = None
        else:
            symbol = symbols[int(rng.integers(0, len(symbols)))]
            p_bull = 0.15 + 0.35 * (1 + mood[symbol]) / 2 * 1.2
            p_bear = 0.15 + 0.35 * (1 - mood[symbol]) / 2 * 1.2
            u = rng.random()
            templates = BULLISH if u < p_bull else BEARISH if u < p_bull + p_bear else NEUTRAL
            level = LEVELS.get(symbol, 1000) + int(rng.integers(-400, 400))
            opener = OPENERS[int(rng.integers(0, len(OPENERS)))]
            text = (
                opener
                + (" " if opener else "")
                + templates[int(rng.integers(0, len(templates)))].format(
                    s=_spelling(symbol)[int(rng.integers(0, len(_spelling(symbol))))],
                    l=level,
                    m=level - int(rng.integers(50, 300)),
                )
            )
            text += EXTRAS[int(rng.integers(0, len(EXTRAS)))].format(u=f"{post_id[-6:]}x")
            text += f" ~{signature(i)}"
            retweet_of = None
        likes = int(rng.pareto(1.3) * 2)
        record = {
            "id": post_id,
            "created_at": moment.isoformat(),
            "text": text,
            "author_id": f"u{author}",
            "author_username": f"trader_{author}",
            "author_followers": int(rng.lognormal(5.0, 2.0)),
            "like_count": likes,
            "retweet_count": int(rng.pareto(1.6) * likes / 4),
            "reply_count": int(rng.pareto(1.8)),
            "quote_count": int(rng.pareto(2.5) / 3),
            "lang": "en",
            "retweet_of": retweet_of,
        }
        if retweet_of is None and not text.startswith("RT @"):
            if len(originals) < RECENT_ORIGINALS:
                originals.append(record)
            else:  # copies come from a window of recent posts: memory stays flat on huge days
                originals[i % RECENT_ORIGINALS] = record
        yield record
