"""What a figure has to beat: the majority class, and a keyword rule that reads only the words a
trader uses for a side (bullish/bearish, buy/sell, long/short).

Several sets make these baselines strong: finance news is two-thirds neutral, and self-tagged
StockTwits posts often say "bullish" in the text they were tagged Bullish for. A model's figure
means something only next to them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from tweet_signals.model.base import LABELS
from tweet_signals.training.metrics import compute_metrics

NEGATIVE, NEUTRAL, POSITIVE = (LABELS.index(name) for name in ("negative", "neutral", "positive"))

# The words of the rule, with their inflections; nothing else (no lexicon of moods, no emoji).
BULLISH_WORDS = frozenset({"bullish", "buy", "buys", "buying", "bought", "long", "longs"})
BEARISH_WORDS = frozenset({"bearish", "sell", "sells", "selling", "sold", "short", "shorts", "shorting", "shorted"})
# A negation within this many words before a cue turns it around ("not bullish", "don't buy").
NEGATION_WINDOW = 3
NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "nor",
        "dont",
        "didnt",
        "doesnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "wont",
        "wouldnt",
        "cant",
        "cannot",
        "shouldnt",
        "aint",
        "stop",
    }
)
_WORD = re.compile(r"[a-z]+")


def keyword_label(text: str, default: int = NEUTRAL) -> int:
    """Positive when the text's bullish cues outnumber its bearish ones, negative the other way
    round, ``default`` on a tie or no cue; a negation just before a cue counts it for the other side.

    ``baseline_figures`` passes the majority class as ``default``: a rule that answered neutral
    without a cue would lose every such post of a set with no neutral gold label, and look weaker
    than a rule anyone would actually use."""
    words = _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))
    score = 0
    for i, word in enumerate(words):
        side = 1 if word in BULLISH_WORDS else -1 if word in BEARISH_WORDS else 0
        if side and NEGATIONS.intersection(words[max(0, i - NEGATION_WINDOW) : i]):
            side = -side
        score += side
    return POSITIVE if score > 0 else NEGATIVE if score < 0 else default


def majority_class(labels: Sequence[int]) -> int:
    """The most frequent label (ties go to the first in ``LABELS`` order)."""
    counts = Counter(labels)
    return max(sorted(counts), key=lambda c: counts[c])


def baseline_figures(
    texts: Sequence[str], labels: Sequence[int], majority: int, majority_of: str
) -> dict[str, dict[str, object]]:
    """Accuracy, macro recall and macro F1 of the two baselines on labelled texts.

    ``majority`` is the class the majority baseline always answers and ``majority_of`` where it
    was counted: "training pool" (the honest one: a model could know it before seeing the
    evaluated rows) or "evaluated set" (for sets with no training pool; flatters the baseline)."""

    def figures(pred: list[int]) -> dict[str, object]:
        m = compute_metrics(labels, pred)
        return {"accuracy": m.accuracy, "macro_recall": m.macro_recall, "macro_f1": m.macro_f1}

    return {
        "majority": {**figures([majority] * len(labels)), "class": LABELS[majority], "of": majority_of},
        "keyword": figures([keyword_label(t, majority) for t in texts]),
    }
