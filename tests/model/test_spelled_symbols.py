"""Emoji written as words for the embedded model, and each model file's texts prepared as it was trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tweet_signals.model.base import (
    ModelUnavailableError,
    preprocess_spelled,
    preprocess_text,
    text_preparation,
)
from tweet_signals.model.embedded_files import ADAPTER_NAME, BASE_SHA256
from tweet_signals.model.parts import load_parts
from tweet_signals.model.reference import resolve_model
from tweet_signals.model.symbols import spell_symbols


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("to the moon 🚀 $RELIANCE", "to the moon rocket $RELIANCE"),
        ("😭😭😭😭 kab karega", "loudly crying face kab karega"),  # a run of one symbol says it once
        ("ok👍🏽", "ok thumbs up sign"),  # the skin tone is the symbol's modifier, not a word
        ("❤️ 1️⃣", "heavy black heart 1️⃣"),  # a symbol's variation selector goes; a keycap digit is no symbol
        ("🇮🇳 jai hind", "flag jai hind"),  # a flag's two letters read as one word
        ("📉📈📉", "chart with downwards trend chart with upwards trend chart with downwards trend"),
        ("NIFTY 50 me profit book kar liya", "NIFTY 50 me profit book kar liya"),
        ("café, ₹500, 10°C, ©", "café, ₹500, 10°C, ©"),  # letters, currency and the vocabulary's symbols stay
        ("SL → 2450 ↑", "SL rightwards arrow 2450 upwards arrow"),  # pictographs and arrows read alike
        ("क्\u200dष ©\ufe0f2024", "क्\u200dष ©\ufe0f2024"),  # a joiner or selector alone is not a symbol
    ],
)
def test_emoji_are_written_as_their_names(text: str, spelled: str) -> None:
    assert " ".join(spell_symbols(text).split()) == spelled


def test_text_without_symbols_is_returned_as_it_is() -> None:
    text = "NIFTY 50  me profit book kar liya\n#nifty @trader"
    assert spell_symbols(text) == text


def test_spelled_emoji_reach_the_embedded_tokenizer_as_known_words() -> None:
    from tokenizers import Tokenizer

    from tweet_signals.model.embedded_files import base_model_dir

    tokenizer = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
    text = "@trader $TCS breakout 🚀🚀 🤑 📈 https://t.co/x"
    assert "[UNK]" in tokenizer.encode(preprocess_text(text)).tokens
    spelled = tokenizer.encode(preprocess_spelled(text)).tokens
    assert "[UNK]" not in spelled and "rocket" in spelled and "@" in spelled and "http" in spelled


def test_a_model_file_names_how_its_texts_are_prepared() -> None:
    assert text_preparation({"symbols": "spelled"}) is preprocess_spelled
    assert text_preparation({"symbols": "kept"}) is preprocess_text
    assert text_preparation({}) is preprocess_text  # files written before the key: trained on masked text
    with pytest.raises(ModelUnavailableError, match="unknown symbol handling"):
        text_preparation({"symbols": "transliterated"})


def _trained_dir(tmp_path: Path, meta: dict[str, object]) -> Path:
    """A ``train-model --output DIR`` directory; the weights are never loaded by ``load_parts``."""
    directory = tmp_path / "desk-model"
    directory.mkdir(parents=True)
    metadata = {"tweet_signals": json.dumps({"base_sha256": BASE_SHA256, "form": "delta", **meta})}
    save_file({"classifier.bias": np.zeros(3, dtype=np.float32)}, str(directory / ADAPTER_NAME), metadata=metadata)
    return directory


@pytest.mark.parametrize("engine", ["torch-fp32", "onnx-fp32"])
def test_every_engine_prepares_texts_as_the_model_file_says(tmp_path: Path, engine: str) -> None:
    spelled = load_parts(resolve_model(str(_trained_dir(tmp_path / "a", {"symbols": "spelled"}))), engine)
    assert spelled.prepare is preprocess_spelled
    older = load_parts(resolve_model(str(_trained_dir(tmp_path / "b", {}))), engine)
    assert older.prepare is preprocess_text


def test_the_committed_model_is_run_the_way_it_was_trained() -> None:
    from tweet_signals.model.embedded_files import ADAPTER_PATH, read_adapter_metadata
    from tweet_signals.training.config import TrainConfig

    symbols = read_adapter_metadata(ADAPTER_PATH).get("symbols", "kept")
    assert symbols == ("spelled" if TrainConfig().spell_symbols else "kept")
    assert load_parts(resolve_model("embedded"), "torch-fp32").prepare is text_preparation({"symbols": symbols})


def test_a_spelled_models_revision_follows_the_unicode_names_and_a_kept_ones_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk cache keys carry the model's revision: outputs computed with one Python's emoji names
    are never reused under another's, and files trained on masked text keep their revision."""
    from tweet_signals.model import symbols

    spelled = _trained_dir(tmp_path / "a", {"symbols": "spelled"})
    kept = _trained_dir(tmp_path / "b", {})
    before = resolve_model(str(spelled)).revision, resolve_model(str(kept)).revision
    monkeypatch.setattr(symbols, "NAMES_VERSION", "99.0.0")
    after = resolve_model(str(spelled)).revision, resolve_model(str(kept)).revision
    assert after[0] != before[0] and after[1] == before[1]
    (kept / ADAPTER_NAME).write_bytes(b"garbage")  # unreadable: resolved all the same, refused at load
    assert resolve_model(str(kept)).kind == "embedded"
