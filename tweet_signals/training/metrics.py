"""Classification metrics for any analyzer against labelled texts, and the label files that feed them."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tweet_signals.model.base import LABELS, normalise_label
from tweet_signals.storage.compressed import read_bytes


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


DROP = -1  # a label value mapped to "drop" (e.g. ``0=drop`` for "uncertain"): the row is left out


def parse_label_map(spec: str | None) -> dict[str, int]:
    """``"0=negative,1=neutral,2=positive"`` → raw label value → index in ``LABELS`` (or ``DROP``)."""
    if not spec:
        return {label: i for i, label in enumerate(LABELS)}
    mapping: dict[str, int] = {}
    for part in spec.split(","):
        raw, sep, meaning = part.partition("=")
        if sep and meaning.strip().lower() == "drop":
            mapping[raw.strip()] = DROP
            continue
        label = normalise_label(meaning)
        if not sep or label is None:
            raise ValueError(
                f"bad --label-map entry {part!r}: write VALUE=negative|neutral|positive (bearish/bullish accepted) "
                "or VALUE=drop"
            )
        mapping[raw.strip()] = LABELS.index(label)
    return mapping


def map_labels(raw: Sequence[str], mapping: dict[str, int], origins: Sequence[str] | None = None) -> list[int]:
    """Label indices (``DROP`` for dropped values); an unknown value is an error naming where it is."""
    out = []
    for i, value in enumerate(raw):
        key = value.strip()
        if key not in mapping:
            label = normalise_label(key)
            if label is None:
                where = origins[i] if origins is not None else f"line {i + 1}"
                known = ", ".join(f"{k}={LABELS[v] if v != DROP else 'drop'}" for k, v in mapping.items())
                raise ValueError(f"{where}: label {value!r} is not in the label map ({known}); see --label-map")
            out.append(LABELS.index(label))
        else:
            out.append(mapping[key])
    return out


@dataclass(frozen=True)
class LabelledRows:
    """Texts with their raw labels and where each came from (``file:line``)."""

    texts: list[str]
    labels: list[str]
    origins: list[str]
    notes: list[str] = field(default_factory=list)  # e.g. how the file was decoded
    columns: dict[str, list[str]] = field(default_factory=dict)  # further columns asked for, row-aligned


def binary_figures(truth: Sequence[int], probs: np.ndarray) -> dict[str, float | None] | None:
    """For gold labels that are only negative/positive (self-tagged Bullish/Bearish sets): the
    share of posts called neutral, the accuracy among the rest (directional accuracy), and the
    accuracy of the sign of p_pos − p_neg. None when the gold labels include neutral."""
    t = np.asarray(truth, dtype=np.int64)
    neg, neu, pos = (LABELS.index(name) for name in ("negative", "neutral", "positive"))
    if len(t) == 0 or (t == neu).any():
        return None
    pred = probs.argmax(axis=1)
    polar = pred != neu
    sign_up = probs[:, pos] > probs[:, neg]
    return {
        "called_neutral": float((~polar).mean()),
        "directional_accuracy": float((pred[polar] == t[polar]).mean()) if polar.any() else None,
        "sign_accuracy": float((sign_up == (t == pos)).mean()),
    }


def read_lines(path: Path) -> list[str]:
    """One record per line, as TweetEval ships them (trailing spaces kept off, blank tail dropped)."""
    lines = read_bytes(path).decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_labelled_lines(texts_path: Path, labels_path: Path) -> LabelledRows:
    """Texts and labels from two aligned files, one record per line (TweetEval's layout)."""
    texts, labels = read_lines(texts_path), read_lines(labels_path)
    if len(texts) != len(labels):
        raise ValueError(f"{texts_path} has {len(texts)} lines but {labels_path} has {len(labels)}")
    return LabelledRows(texts, labels, [f"{labels_path}:{i + 1}" for i in range(len(labels))])


def read_labelled_csv(path: Path, text_column: str, label_column: str, more: Sequence[str] = ()) -> LabelledRows:
    """Texts and raw labels from a CSV (separator sniffed), skipping rows with an empty label, and
    the columns in ``more`` (e.g. a set's own train/dev column). A file that is not UTF-8 is read
    as Latin-1 (as Kaggle-style exports are), with a note."""
    notes = []
    data = read_bytes(path)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        content = data.decode("latin-1")
        line = data[: exc.start].count(b"\n") + 1
        notes.append(f"{path} is not UTF-8 (first bad byte on line {line}): read as Latin-1")
    head = content.split("\n", 1)[0]
    delimiter = ";" if head.count(";") > head.count(",") else ","
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    missing = {text_column, label_column, *more} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{path}:1: no column(s) {sorted(missing)}; the header has {reader.fieldnames}")
    texts, labels, origins = [], [], []
    columns: dict[str, list[str]] = {name: [] for name in more}
    try:
        for row in reader:
            label = (row.get(label_column) or "").strip()
            if label:
                texts.append(row.get(text_column) or "")
                labels.append(label)
                origins.append(f"{path}:{reader.line_num}")
                for name in more:
                    columns[name].append((row.get(name) or "").strip())
    except csv.Error as exc:
        raise ValueError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc
    return LabelledRows(texts, labels, origins, notes, columns)
