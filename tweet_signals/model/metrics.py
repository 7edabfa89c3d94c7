"""Classification metrics for any analyzer against labelled texts, and the label files that feed them."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tweet_signals.model.base import LABELS, normalise_label


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: float
    macro_recall: float
    macro_f1: float
    confusion: list[list[int]]  # rows: true label, columns: predicted, in LABELS order

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "confusion": self.confusion,
            "labels": list(LABELS),
        }


def compute_metrics(true: Sequence[int] | np.ndarray, pred: Sequence[int] | np.ndarray) -> Metrics:
    """Accuracy, macro recall (TweetEval's official metric), macro F1 and confusion matrix.

    Classes absent from the true labels are left out of the macro averages.
    """
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if len(t) != len(p) or len(t) == 0:
        raise ValueError("need the same, non-zero number of true and predicted labels")
    k = len(LABELS)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (t, p), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    diag = np.diag(confusion)
    present = support > 0
    recall = np.divide(diag, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(diag, predicted, out=np.zeros(k), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    return Metrics(
        n=len(t),
        accuracy=float(diag.sum() / len(t)),
        macro_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        confusion=confusion.tolist(),
    )


def parse_label_map(spec: str | None) -> dict[str, int]:
    """``"0=negative,1=neutral,2=positive"`` → raw label value → index in ``LABELS``."""
    if not spec:
        return {label: i for i, label in enumerate(LABELS)}
    mapping: dict[str, int] = {}
    for part in spec.split(","):
        raw, sep, meaning = part.partition("=")
        label = normalise_label(meaning)
        if not sep or label is None:
            raise ValueError(
                f"bad --label-map entry {part!r}: write VALUE=negative|neutral|positive (bearish/bullish accepted)"
            )
        mapping[raw.strip()] = LABELS.index(label)
    return mapping


def map_labels(raw: Sequence[str], mapping: dict[str, int]) -> list[int]:
    out = []
    for i, value in enumerate(raw):
        key = value.strip()
        if key not in mapping:
            label = normalise_label(key)
            if label is None:
                raise ValueError(f"label {value!r} on line {i + 1} is not in the label map {mapping}")
            out.append(LABELS.index(label))
        else:
            out.append(mapping[key])
    return out


def read_lines(path: Path) -> list[str]:
    """One record per line, as TweetEval ships them (trailing spaces kept off, blank tail dropped)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_labelled_csv(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """Texts and raw labels from a CSV (separator sniffed), skipping rows with an empty label."""
    with path.open(encoding="utf-8", newline="") as fh:
        head = fh.readline()
        fh.seek(0)
        delimiter = ";" if head.count(";") > head.count(",") else ","
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = {text_column, label_column} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} has no column(s) {sorted(missing)}; it has {reader.fieldnames}")
        texts, labels = [], []
        for row in reader:
            label = (row.get(label_column) or "").strip()
            if label:
                texts.append(row.get(text_column) or "")
                labels.append(label)
    return texts, labels
