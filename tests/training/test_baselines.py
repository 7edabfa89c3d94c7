"""The baselines every figure stands next to: the keyword rule's cues and negations, the majority
class, and their figures on the Indian StockTwits check, where the tag words still show."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from tweet_signals.training.baselines import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    baseline_figures,
    keyword_label,
    majority_class,
)
from tweet_signals.training.labelled_sets import CHECK_SETS, read_set


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("$RELIANCE looking bullish, buying more", POSITIVE),
        ("Shorting BANKNIFTY here, bearish below 44k", NEGATIVE),
        ("not bullish on this one", NEGATIVE),
        ("Don't buy this rally", NEGATIVE),
        ("don’t sell your winners", POSITIVE),  # a curly apostrophe, as phones type it
        ("went long yesterday, sold half today", NEUTRAL),  # one cue each way: a tie
        ("Nifty opens flat", NEUTRAL),  # no cue
        ("NIFTY 50 me profit book kar liya, ab buy karo", POSITIVE),  # Hinglish around an English cue
    ],
)
def test_keyword_rule_reads_cues_and_negations(text: str, label: int) -> None:
    assert keyword_label(text) == label


def test_keyword_rule_falls_back_to_the_given_class() -> None:
    assert keyword_label("Nifty opens flat", default=POSITIVE) == POSITIVE
    assert keyword_label("not bullish", default=POSITIVE) == NEGATIVE


def test_majority_class_and_baseline_figures() -> None:
    assert majority_class([2, 2, 0, 1, 2]) == 2
    assert majority_class([0, 1, 1, 0]) == 0  # a tie goes to the first label
    texts = ["bullish", "bearish", "flat", "flat"]
    figures = baseline_figures(texts, [2, 0, 1, 2], majority=2, majority_of="training pool")
    assert figures["majority"] == {
        "accuracy": 0.5,
        "macro_recall": pytest.approx(1 / 3),
        "macro_f1": pytest.approx(2 / 9),
        "class": "positive",
        "of": "training pool",
    }
    assert figures["keyword"]["accuracy"] == 0.75  # the last "flat" falls back to positive


def test_indian_check_still_says_bullish_and_the_rule_reads_it() -> None:
    """About a quarter of the Indian check's posts name their side in the text, so the keyword rule
    beats the majority class there by far: the model's 0.760 macro recall is measured against these."""
    check = read_set(next(s for s in CHECK_SETS if s.name == "indian-stocktwits-nse"), SHARED_DATA)
    said = sum("bullish" in t.lower() or "bearish" in t.lower() for t in check.texts)
    assert 1600 <= said <= 1800
    figures = baseline_figures(check.texts, check.labels, majority_class(check.labels), "evaluated set")
    assert figures["majority"]["accuracy"] == pytest.approx(0.682, abs=0.001)
    assert figures["majority"]["macro_recall"] == 0.5
    assert figures["keyword"]["macro_recall"] == pytest.approx(0.703, abs=0.001)
