"""Symbol extraction: hashtags, cashtags and index words map to NSE/BSE symbols."""

from __future__ import annotations

import pytest

from tweet_signals.market.symbols import alias_map, extract_symbols, resolve_hashtags

ALIASES = alias_map(["NIFTY", "SENSEX", "BANKNIFTY", "RELIANCE"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#Nifty50 and #SENSEX today", ["NIFTY", "SENSEX"]),
        ("$NIFTY calls, bank nifty puts", ["NIFTY", "BANKNIFTY"]),
        ("#BankNifty #niftybank", ["BANKNIFTY"]),
        ("RELIANCE results", ["RELIANCE"]),
        ("nothing here", []),
    ],
)
def test_symbols_from_hashtags_cashtags_and_words(text: str, expected: list[str]) -> None:
    assert extract_symbols(text, ALIASES) == expected


def test_hashtags_as_the_original_tool_took_them() -> None:
    assert resolve_hashtags(["nifty", "#sensex", "nifty50", "infy"], ALIASES) == ["NIFTY", "SENSEX", "INFY"]
