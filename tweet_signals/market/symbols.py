"""Which market symbols a post talks about: hashtags, cashtags and words through an alias map."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

DEFAULT_SYMBOLS: tuple[str, ...] = ("NIFTY", "SENSEX", "BANKNIFTY")

# Extra spellings beyond the automatic "#sym", "$sym" and the bare word "sym".
BUILTIN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "NIFTY": ("#nifty50", "$nifty50", "nifty50", "nifty 50", "#niftyfifty"),
    "SENSEX": ("#bsesensex", "bse sensex"),
    "BANKNIFTY": ("#niftybank", "bank nifty", "nifty bank"),
    "FINNIFTY": ("fin nifty",),
    # Yahoo's name for the S&P 500 (a price file ``^GSPC.csv``), as traders write it.
    "^GSPC": ("$spx", "#spx", "$spy", "#sp500", "sp500", "s&p500", "s&p 500"),
}

_TOKEN = re.compile(r"[#$]?[A-Za-z0-9&_]+")


def alias_map(symbols: Sequence[str], extra: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """Lower-cased alias → symbol for the run's symbols (plus user-supplied aliases)."""
    out: dict[str, str] = {}
    for symbol in symbols:
        sym = symbol.upper()
        names = [f"#{sym}", f"${sym}", sym, *BUILTIN_ALIASES.get(sym, ()), *((extra or {}).get(sym, ()))]
        for name in names:
            out[name.lower()] = sym
    return out


def load_alias_file(path: Path) -> dict[str, list[str]]:
    """A JSON object {"SYMBOL": ["#alias", "$ALIAS", "word", "two words"], ...}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of symbol → list of aliases")
    return {str(k).upper(): [str(a) for a in v] for k, v in data.items()}


def resolve_hashtags(hashtags: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """``--hashtags nifty sensex`` as users of the original tool typed them → symbols."""
    out = []
    for tag in hashtags:
        key = "#" + tag.lstrip("#$").lower()
        symbol = aliases.get(key) or tag.lstrip("#$").upper()
        if symbol not in out:
            out.append(symbol)
    return out


def extract_symbols(text: str, aliases: Mapping[str, str]) -> list[str]:
    """Symbols mentioned in ``text``, in first-mention order, each once."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    found: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        # A two-word alias ("bank nifty") wins over its parts and consumes both words.
        if i + 1 < len(tokens):
            pair = aliases.get(f"{token.lstrip('#$')} {tokens[i + 1].lstrip('#$')}")
            if pair:
                if pair not in found:
                    found.append(pair)
                i += 2
                continue
        # "#Nifty50" also matches the word alias "nifty50".
        symbol = aliases.get(token) or (aliases.get(token[1:]) if token[0] in "#$" else None)
        if symbol and symbol not in found:
            found.append(symbol)
        i += 1
    return found
