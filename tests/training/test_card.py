"""The model card from a training report: rows trained and validated, what was removed, every
figure next to its baselines, and the marks a re-evaluated card carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tweet_signals.training.card import write_model_card


def _figures(n: int, accuracy: float, majority_of: str = "training pool") -> dict[str, Any]:
    return {
        "n": n,
        "accuracy": accuracy,
        "macro_recall": accuracy - 0.01,
        "macro_f1": accuracy - 0.02,
        "baselines": {
            "majority": {
                "accuracy": 0.66,
                "macro_recall": 0.333,
                "macro_f1": 0.26,
                "class": "neutral",
                "of": majority_of,
            },
            "keyword": {"accuracy": 0.63, "macro_recall": 0.36, "macro_f1": 0.33},
        },
    }


def _report(**changes: Any) -> dict[str, Any]:
    source = {
        "name": "financial-news",
        "path": "news.csv",
        "domain": "news",
        "rows": 9543,
        "rows_trained": 8618,
        "validation_rows": 925,
        "removed_tweeteval_overlap": 0,
        "removed_validation_copies": 0,
        "validation_groups_kept_in_training": 29,
        "labels": "0=negative,1=positive,2=neutral",
        "licence": "MIT",
        "sha256": "ab" * 32,
    }
    report = {
        "base": "minilm",
        "base_sha256": "0" * 64,
        "rank": 32,
        "alpha": 64.0,
        "init": None,
        "epoch": 1,
        "rows_seen": 100,
        "seconds": 60.0,
        "threads": 2,
        "config": {
            "epochs": 1,
            "epoch_rows": 100,
            "batch_size": 32,
            "learning_rate": 5e-4,
            "max_length": 64,
            "bf16": True,
            "seed": 13,
            "validation_fraction": 0.1,
            "validation_cap": 1000,
            "domain_shares": {"news": 1.0},
            "desk_share": 0.5,
            "max_class_weight": 4.0,
        },
        "selection": [{"set": "financial-news", "figure": "accuracy", "weight": 1.0}],
        "final_score": 0.855,
        "final_validation": {"financial-news": _figures(925, 0.855), "sentimix": _figures(2992, 0.44)},
        "checks": {"indian-stocktwits-nse": _figures(6714, 0.809, "evaluated set")},
        "history": [{"epoch": 1, "score": 0.855, "validation": {"financial-news": {"accuracy": 0.855}}, "seconds": 60}],
        "calibration": {"applied": False, "cv_shifted": 0.8, "cv_unshifted": 0.81},
        "sources": [source],
    }
    return report | changes


def test_card_puts_baselines_next_to_every_figure_and_counts_rows_trained(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, _report())
    text = card.read_text()
    assert "| rows trained | rows validated | removed |" in text
    assert "| news | 8618 | 925 | 29 drawn for validation, kept with their copies in training |" in text
    assert "| financial-news | 925 | **0.855** | 0.660 | 0.630 | **0.845** | 0.333 | 0.360 | **0.835** |" in text
    assert "| indian-stocktwits-nse | 6714 | **0.809** | 0.660* | 0.630 |" in text  # its own majority
    # Scored but never trained on: marked, with its label map.
    assert "| sentimix § | 2992 |" in text
    assert "labels negative=negative,neutral=neutral,positive=positive" in text
    assert "decoding `\\uXXXX` escapes and HTML entities" in text
    assert "| 1 | 0.8550 | 0.855 | 60 |" in text


def test_card_of_an_earlier_report_bounds_rows_trained_and_marks_unverified_splits(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    earlier = {
        k: v for k, v in _report()["sources"][0].items() if k not in ("rows_trained", "removed_validation_copies")
    }
    refreshed = {
        "date": "2026-01-01",
        "machine": "a CPU",
        "command": "tweet-signals model-card",
        "selection": [{"set": "financial-news", "figure": "accuracy", "weight": 1.0}],
        "score": 0.85,
        "unverified_splits": ["financial-news"],
    }
    report = _report(sources=[earlier], refreshed=refreshed, history=[], history_section="| epoch |\n|---:|\n| 4 |")
    write_model_card(card, report)
    text = card.read_text()
    assert "| news | ≤ 8618 | 925 |" in text  # 9,543 less 925 validated: an upper bound
    assert "| financial-news ‡ | 925 |" in text and "re-evaluated on 2026-01-01 on a CPU" in text
    assert "| epoch |\n|---:|\n| 4 |" in text  # the training run's table kept


def test_card_counts_removals_in_words_that_agree_and_says_how_texts_are_prepared(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    one_each = _report()["sources"][0] | {
        "removed_tweeteval_overlap": 1,
        "removed_validation_copies": 1,
        "validation_groups_kept_in_training": 1,
    }
    write_model_card(card, _report(sources=[one_each], symbols="spelled", symbol_names_unicode="14.0.0"))
    text = card.read_text()
    assert (
        "| 1 TweetEval copy; 1 copy of a validation or check row; "
        "1 drawn for validation, kept with its copies in training |" in text
    )
    assert '"🚀" reads "rocket"' in text and "(names of Unicode 14.0.0)" in text and "Ticker-only posts" in text
    write_model_card(card, _report())  # a file without the key was trained on emoji as they came
    assert "emoji reach the tokenizer as they are" in card.read_text()
    assert "Emoji-only or ticker-only posts" in card.read_text()
