"""Metrics, label maps and the evaluate-model command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import CLI, SHARED_DATA, newcomer_env
from sklearn.metrics import accuracy_score, f1_score, recall_score
from typer.testing import CliRunner

from tweet_signals.cli import app
from tweet_signals.training.metrics import (
    DROP,
    binary_figures,
    compute_metrics,
    map_labels,
    parse_label_map,
    read_labelled_csv,
)


def test_metrics_match_scikit_learn() -> None:
    true = [0, 0, 1, 1, 1, 2, 2, 2, 2, 0]
    pred = [0, 1, 1, 1, 2, 2, 2, 0, 2, 0]
    m = compute_metrics(true, pred)
    assert m.accuracy == pytest.approx(accuracy_score(true, pred))
    assert m.macro_recall == pytest.approx(recall_score(true, pred, average="macro"))
    assert m.macro_f1 == pytest.approx(f1_score(true, pred, average="macro"))
    assert m.confusion == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]


def test_label_maps_and_synonyms() -> None:
    mapping = parse_label_map("0=bearish,1=bullish,2=neutral")
    assert map_labels(["0", "1", "2", " 2"], mapping) == [0, 2, 1, 1]
    assert map_labels(["positive", "Negative"], parse_label_map(None)) == [2, 0]
    with pytest.raises(ValueError):
        parse_label_map("0=happy")


def test_a_label_value_can_be_dropped_and_an_unknown_one_is_located(tmp_path: Path) -> None:
    mapping = parse_label_map("0=drop,1=positive,2=neutral,3=negative")
    assert map_labels(["1", "0", "3"], mapping) == [2, DROP, 0]
    path = tmp_path / "labels.csv"
    path.write_text('text,label\nup,1\n"two\nlines",3\nodd,7\n', encoding="utf-8")
    rows = read_labelled_csv(path, "text", "label")
    assert rows.origins == [f"{path}:2", f"{path}:4", f"{path}:5"]
    with pytest.raises(ValueError, match=f"{path}:5: label '7' is not in the label map"):
        map_labels(rows.labels, mapping, rows.origins)


def test_csv_that_is_not_utf8_is_read_as_latin1_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nbonne journée,positive\nbaisse générale,negative\n".encode("latin-1"))
    rows = read_labelled_csv(path, "text", "label")
    assert rows.texts == ["bonne journée", "baisse générale"]
    assert rows.notes == [f"{path} is not UTF-8 (first bad byte on line 2): read as Latin-1"]
    with pytest.raises(ValueError, match=f"{path}:1: no column"):
        read_labelled_csv(path, "body", "label")


def test_binary_figures_for_bullish_bearish_gold_labels() -> None:
    import numpy as np

    # negative, neutral, positive probabilities; gold: 0 negative, 2 positive
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.6, 0.1, 0.3], [0.3, 0.6, 0.1]])
    truth = [0, 2, 2, 2, 0]
    figures = binary_figures(truth, probs)
    assert figures == {
        "called_neutral": pytest.approx(2 / 5),
        "directional_accuracy": pytest.approx(2 / 3),  # rows 0, 2 right; row 3 wrong
        "sign_accuracy": pytest.approx(4 / 5),  # row 3: p_pos < p_neg for a positive post
    }
    assert binary_figures([0, 1, 2], probs[:3]) is None  # neutral gold labels: three-class figures only


@pytest.mark.slow
def test_evaluate_model_cli_json_on_tweeteval_lines(tmp_path: Path) -> None:
    src = SHARED_DATA / "tweeteval-sentiment-val"
    texts = (src / "val_text.txt").read_text().split("\n")[:60]
    labels = (src / "val_labels.txt").read_text().split("\n")[:60]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "l.txt").write_text("\n".join(labels) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "evaluate-model",
            "--texts",
            str(tmp_path / "t.txt"),
            "--labels",
            str(tmp_path / "l.txt"),
            "--label-map",
            "0=negative,1=neutral,2=positive",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"n", "accuracy", "macro_recall", "macro_f1", "confusion"}
    assert out["n"] == 60 and sum(map(sum, out["confusion"])) == 60
    # A file has no training pool: the majority baseline is its own, and says so.
    assert out["baselines"]["majority"]["of"] == "evaluated set"
    assert set(out["baselines"]["keyword"]) == {"accuracy", "macro_recall", "macro_f1"}


@pytest.mark.slow
def test_evaluate_model_cli_csv_table() -> None:
    csv = SHARED_DATA / "taborda-stock-market-tweets-labelled" / "tweets_labelled_09042020_16072020.csv"
    result = CliRunner().invoke(
        app, ["evaluate-model", "--csv", str(csv), "--text-column", "text", "--label-column", "sentiment"]
    )
    assert result.exit_code == 0, result.output
    assert "macro recall" in result.stdout and "confusion" in result.stdout
    assert "majority (positive, of the evaluated set)" in result.stdout and "keyword rule" in result.stdout


@pytest.mark.slow
def test_evaluate_model_reports_binary_figures_on_self_tagged_stocktwits(tmp_path: Path) -> None:
    csv = SHARED_DATA / "labelled-posts" / "stocktwits-selftagged-pfaff-2017" / "data.csv"
    result = CliRunner().invoke(
        app, ["evaluate-model", "--csv", str(csv), "--label-map", "Bullish=positive,Bearish=negative", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"n", "accuracy", "macro_recall", "macro_f1", "confusion"} <= set(out)
    assert 0 <= out["called_neutral"] <= 1 and 0 <= out["directional_accuracy"] <= 1
    # The figures are the confusion matrix read another way: no neutral gold rows.
    negative, neutral, positive = out["confusion"]
    assert sum(neutral) == 0
    called = (negative[1] + positive[1]) / out["n"]
    assert out["called_neutral"] == pytest.approx(called)
    right = negative[0] + positive[2]
    assert out["directional_accuracy"] == pytest.approx(right / (out["n"] - negative[1] - positive[1]))


@pytest.mark.slow
def test_evaluate_model_bad_label_names_file_and_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,label\nup,positive\ndown,sideways\n", encoding="utf-8")
    done = subprocess.run(
        [*CLI, "evaluate-model", "--csv", str(path)], capture_output=True, text=True, env=newcomer_env(tmp_path)
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}:3: label 'sideways'" in " ".join(done.stderr.split())
