"""The analyzer protocol and the batching engine shared by every transformer analyzer.

An analyzer turns texts into class probabilities in the fixed order ``LABELS``
(negative, neutral, positive). Models differ in how they name their classes, so
``label_permutation`` maps a model's ``id2label`` onto that order once, at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tweet_signals.model import symbols
from tweet_signals.model.symbols import spell_symbols

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")

# Longer inputs are cut before tokenisation: max_length tokens never need more than
# ~16 characters each, and tokenising a 100 KB text only to truncate it wastes time.
MAX_CHARS_PER_TOKEN = 16

_MENTION = re.compile(r"(?<!\w)@\w+")
_URL = re.compile(r"https?://\S+|www\.\S+")


def preprocess_text(text: str) -> str:
    """Mask mentions and links the way the Cardiff Twitter models were trained (`@user`, `http`)."""
    return _URL.sub("http", _MENTION.sub("@user", text))


def preprocess_spelled(text: str) -> str:
    """``preprocess_text`` with emoji written as words, for a model whose vocabulary has none
    (the embedded model, trained so; see ``symbols``)."""
    return spell_symbols(preprocess_text(text))


TextPreparation = Callable[[str], str]


def text_preparation(model_metadata: Mapping[str, object]) -> TextPreparation:
    """How a fine-tuned embedded model's texts are prepared: as it was trained (its file's
    metadata says "symbols": "spelled"; files without the key were trained on masked text only)."""
    handling = model_metadata.get("symbols", "kept")
    if handling == "spelled":
        return preprocess_spelled
    if handling == "kept":
        return preprocess_text
    raise ModelUnavailableError(f"unknown symbol handling {handling!r} in a fine-tuned model file")


def preparation_key(model_metadata: Mapping[str, object]) -> str:
    """What besides the weights decides a fine-tuned model's numbers: nothing for masked text; for
    spelled text the Unicode version of the names (``symbols.NAMES_VERSION``), which is this
    Python's."""
    return f"spelled-unicode-{symbols.NAMES_VERSION}" if model_metadata.get("symbols") == "spelled" else ""


class ModelUnavailableError(RuntimeError):
    """The requested model cannot be loaded; the message tells the user what to do."""


class Analyzer(Protocol):
    """Anything that maps texts to (n, 3) probabilities in ``LABELS`` order."""

    model_id: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


_LABEL_SYNONYMS: Mapping[str, str] = {
    "negative": "negative",
    "neg": "negative",
    "bearish": "negative",
    "bear": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
    "bullish": "positive",
    "bull": "positive",
}


def normalise_label(name: str) -> str | None:
    """Map a class name of any common spelling onto one of ``LABELS`` (None if unknown)."""
    return _LABEL_SYNONYMS.get(name.strip().lower())


def label_permutation(id2label: Mapping[int, str]) -> list[int | None]:
    """For each of ``LABELS``, the model output index that holds it (None: the model lacks it).

    Named labels (``negative``, ``Bearish``, ``POS`` ...) are matched by meaning. Models that
    only say ``LABEL_k`` follow the convention of the Cardiff sentiment models: with three
    classes 0/1/2 are negative/neutral/positive, with two classes 0/1 are negative/positive.
    """
    n = len(id2label)
    names = {int(i): normalise_label(str(lbl)) for i, lbl in id2label.items()}
    if all(v is not None for v in names.values()):
        found = {v: k for k, v in names.items()}
        if len(found) != n or "negative" not in found or "positive" not in found:
            raise ValueError(f"cannot map model labels {dict(id2label)} onto {LABELS}")
        return [found.get(label) for label in LABELS]
    if all(re.fullmatch(r"label_\d+", str(v).strip().lower()) for v in id2label.values()):
        if n == 3:
            return [0, 1, 2]
        if n == 2:
            return [0, None, 1]
    raise ValueError(
        f"cannot map model labels {dict(id2label)} onto {LABELS}; "
        "name the classes negative/neutral/positive (or bearish/bullish) in the model's config"
    )


def token_budget_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int) -> Iterator[np.ndarray]:
    """Yield index arrays of length-sorted batches whose padded size fits ``batch_tokens``.

    Sorting by length means each batch pads only to its own longest text; the token budget
    lets short texts form large batches and long texts small ones.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < max_batch_size:
            longest = lengths[order[end]]
            if (end - start + 1) * longest > batch_tokens:
                break
            end += 1
        yield order[start:end]
        start = end


LogitsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Takes padded input ids and attention mask (int64, shape (b, t)); returns float logits (b, c)."""


@dataclass
class BatchedTextClassifier:
    """Tokenise, batch by length under a token budget, run ``logits_fn``, restore input order.

    The engine-specific part (torch eager, bf16, ONNX Runtime ...) is only ``logits_fn``.
    """

    model_id: str
    tokenizer: object
    logits_fn: LogitsFn
    permutation: list[int | None]
    max_length: int = 128
    batch_tokens: int = 4096
    max_batch_size: int = 32
    pad_token_id: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    prepare: TextPreparation = preprocess_text  # what the model was trained on: masked links and mentions

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``max_length`` (no padding)."""
        limit = self.max_length * MAX_CHARS_PER_TOKEN
        prepared = [self.prepare(t[:limit]) for t in texts]
        # transformers' fast tokenizers wrap a Rust ``tokenizers.Tokenizer``; ONNX workers hold one directly.
        backend: Any = getattr(self.tokenizer, "backend_tokenizer", self.tokenizer)
        if hasattr(backend, "encode_batch_fast"):
            # The Rust tokenizer without character offsets: the same ids, a quarter less time.
            backend.enable_truncation(self.max_length)
            backend.no_padding()
            return [e.ids for e in backend.encode_batch_fast(prepared, add_special_tokens=True)]
        encoded = self.tokenizer(  # type: ignore[operator]
            prepared, truncation=True, max_length=self.max_length, padding=False
        )
        return list(encoded["input_ids"])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.encode(texts)
        return self.predict_proba_encoded(ids)

    def padded_batches(self, ids: Sequence[Sequence[int]]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(row indices, padded ids, attention mask) per length-sorted batch under the token budget."""
        lengths = [len(x) for x in ids]
        for batch in token_budget_batches(lengths, self.batch_tokens, self.max_batch_size):
            width = max(lengths[i] for i in batch)
            input_ids = np.full((len(batch), width), self.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : lengths[i]] = ids[i]
                mask[row, : lengths[i]] = 1
            yield batch, input_ids, mask

    @property
    def runs_asynchronously(self) -> bool:
        """True when the engine queues batches on an accelerator and returns before they finish."""
        return getattr(self.logits_fn, "asynchronous", False)

    def predict_proba_encoded(
        self, ids: Sequence[Sequence[int]], between_batches: Callable[[], object] | None = None
    ) -> np.ndarray:
        """Probabilities for already encoded texts. ``between_batches`` runs after each batch is
        handed to the engine: host work placed there overlaps an asynchronous engine's compute."""
        out = np.zeros((len(ids), len(LABELS)), dtype=np.float32)
        order: list[np.ndarray] = []

        def inputs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch, input_ids, mask in self.padded_batches(ids):
                order.append(batch)
                yield input_ids, mask
                if between_batches is not None:
                    between_batches()

        # Engines with a ``stream`` (torch on a GPU) keep several batches in flight.
        stream = getattr(self.logits_fn, "stream", None)
        results = stream(inputs()) if stream is not None else (self.logits_fn(i, m) for i, m in inputs())
        for k, logits in enumerate(results):
            probs = softmax(np.asarray(logits, dtype=np.float64))
            for j, src in enumerate(self.permutation):
                if src is not None:
                    out[order[k], j] = probs[:, src]
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (shifted by the row maximum, so large logits do not overflow)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)
