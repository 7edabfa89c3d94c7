"""The exact-label int8 cascade (``onnx-int8-verified``): int8 scores every post, and the fp32
graph re-scores only the posts int8 is unsure about.

"Unsure" is a top-two probability margin under a threshold chosen on calibration posts: the
smallest margin at which the cascade's labels agree with fp32 on at least ``TARGET_AGREEMENT``
of them and no post left to int8 differs from fp32 by more than ``TARGET_PROB_DIFF`` in any
probability. The threshold is stored per model revision and device beside the ONNX exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tweet_signals.model.base import LogitsFn, softmax

CASCADE = "onnx-int8-verified"
TARGET_AGREEMENT = 0.995
TARGET_PROB_DIFF = 0.05


def top_two_margin(probs: np.ndarray) -> np.ndarray:
    """Highest minus second-highest probability of each row."""
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def choose_margin(fast: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """The smallest margin threshold meeting both targets on these calibration probabilities
    (int8 ``fast``, fp32 ``exact``), with the figures it reaches and the share it re-scores."""
    n = len(fast)
    margin = top_two_margin(fast)
    order = np.argsort(margin, kind="stable")  # re-scoring the k least sure rows, k = 0 … n
    agree = (fast.argmax(1) == exact.argmax(1))[order]
    diff = np.abs(fast - exact).max(axis=1)[order]
    # With the first k rows re-scored: agreement = (k + agreements among the rest) / n, and the
    # largest difference left is the maximum over the rest (suffix maxima).
    agree_rest = np.concatenate([np.cumsum(agree[::-1])[::-1], [0]])
    diff_rest = np.concatenate([np.maximum.accumulate(diff[::-1])[::-1], [0.0]])
    k = np.arange(n + 1)
    ok = ((k + agree_rest) / n >= TARGET_AGREEMENT) & (diff_rest <= TARGET_PROB_DIFF)
    first = int(np.argmax(ok))  # k = n always passes
    threshold = float(margin[order][first]) if first < n else float("inf")
    return {
        "margin": threshold,
        "rescored_share": first / n,
        "label_agreement": float((first + agree_rest[first]) / n),
        "max_prob_diff": float(diff_rest[first]),
        "n": n,
    }


def margin_path(cache: Path, device: str) -> Path:
    return cache / f"cascade-margin-{device}.json"


def read_margin(cache: Path, device: str) -> float | None:
    try:
        return float(json.loads(margin_path(cache, device).read_text())["margin"])
    except (OSError, ValueError, KeyError):
        return None


class CascadeLogits:
    """``logits_fn`` of the cascade; counts the rows it scored and re-scored (per process)."""

    def __init__(self, fast: LogitsFn, exact: LogitsFn, margin: float) -> None:
        self.fast, self.exact, self.margin = fast, exact, margin
        self.rows = 0
        self.rescored = 0

    def __call__(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits = np.array(self.fast(input_ids, mask), dtype=np.float32)
        unsure = top_two_margin(softmax(logits.astype(np.float64))) < self.margin
        if unsure.any():
            sub_mask = mask[unsure]
            width = int(sub_mask.sum(axis=1).max())  # padding is on the right: trim it for the subset
            logits[unsure] = self.exact(np.ascontiguousarray(input_ids[unsure][:, :width]), sub_mask[:, :width].copy())
        self.rows += len(logits)
        self.rescored += int(unsure.sum())
        return logits
