"""Fine-tunes stored as int8 differences from the official encoder, and both file forms loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tweet_signals.model import embedded
from tweet_signals.model.base import ModelUnavailableError
from tweet_signals.model.weight_delta import QUANTISED, ROWS, SCALE, apply_delta, encode_delta


def _states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    official = {
        "layer.weight": torch.randn(8, 5, generator=generator),
        "layer.bias": torch.randn(8, generator=generator),
        "table.weight": torch.randn(10, 4, generator=generator),
        "frozen.weight": torch.randn(3, 3, generator=generator),
    }
    tuned = {k: v.clone() for k, v in official.items()}
    tuned["layer.weight"] += 0.01 * torch.randn(8, 5, generator=generator)
    tuned["layer.bias"] += 0.5
    tuned["table.weight"][[2, 7]] += 0.02 * torch.randn(2, 4, generator=generator)
    tuned["head.weight"] = torch.randn(3, 8, generator=generator)
    return official, tuned


def test_a_difference_round_trips_within_half_a_step_of_each_row() -> None:
    official, tuned = _states()
    stored = encode_delta(tuned, official)
    restored = apply_delta(official, stored)
    assert restored.keys() == tuned.keys()
    for name in ("layer.weight", "table.weight"):
        step = (tuned[name] - official[name]).abs().amax(dim=1, keepdim=True) / 127
        assert ((restored[name] - tuned[name]).abs() <= step / 2 + 1e-7).all(), name
    # Vectors and new tensors are stored whole, so they come back exactly.
    assert torch.equal(restored["layer.bias"], tuned["layer.bias"])
    assert torch.equal(restored["head.weight"], tuned["head.weight"])
    largest_change = max(float((tuned[k] - official[k]).abs().max()) for k in official)
    largest_error = max(float((tuned[k] - restored[k]).abs().max()) for k in tuned)
    assert 0 < largest_error <= largest_change / 254 + 1e-7


def test_unchanged_matrices_and_rows_are_left_out() -> None:
    official, tuned = _states()
    stored = encode_delta(tuned, official)
    assert not any(k.startswith("frozen.") for k in stored)
    assert stored["table.weight" + QUANTISED].shape == (2, 4) and stored["table.weight" + QUANTISED].dtype == torch.int8
    assert stored["table.weight" + ROWS].tolist() == [2, 7]
    assert "layer.weight" + ROWS not in stored  # every row changed: no index needed
    assert stored["layer.weight" + SCALE].shape == (8,)
    restored = apply_delta(official, stored)
    assert torch.equal(restored["frozen.weight"], official["frozen.weight"])
    assert torch.equal(restored["table.weight"][[0, 1, 3]], official["table.weight"][[0, 1, 3]])


def test_a_difference_for_another_encoder_is_refused() -> None:
    official, tuned = _states()
    stored = encode_delta(tuned, official)
    with pytest.raises(ValueError, match="no official weight"):
        apply_delta({k: v for k, v in official.items() if k != "layer.weight"}, stored)
    smaller = {**official, "layer.weight": torch.zeros(4, 5)}
    with pytest.raises(ValueError, match="does not fit"):
        apply_delta(smaller, stored)
    with pytest.raises(ValueError, match="tuned shape"):
        encode_delta({"layer.weight": torch.zeros(2, 2)}, official)


def _probe() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[101, 7592, 2088, 4248, 102], [101, 2307, 102, 0, 0]])
    return ids, (ids > 0).long()


@pytest.mark.slow
def test_a_saved_full_fine_tune_loads_as_the_model_that_was_tuned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWEET_SIGNALS_CACHE", str(tmp_path / "cache"))
    _, official = embedded.build_base()
    official_state = {k: v.clone() for k, v in official.state_dict().items()}
    _, tuned = embedded.build_base()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "word_embeddings" not in name:
                param += 0.002 * torch.randn(param.shape, generator=generator)
    path = tmp_path / "model.safetensors"
    embedded.save_fine_tune(tuned, official_state, path, {"base_sha256": embedded.BASE_SHA256})
    assert embedded.read_adapter_metadata(path)["form"] == "delta"
    assert path.stat().st_mode & 0o777 == 0o644  # readable like the repository's other files
    assert path.stat().st_size < 12_000_000  # the 90 MB encoder's changes, in int8 without the word table
    _, loaded = embedded.load_embedded(path, cache=False)
    ids, mask = _probe()
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids, mask), tuned.eval()(ids, mask), atol=2e-3, rtol=0)
    assert torch.equal(loaded.state_dict()["classifier.weight"], tuned.state_dict()["classifier.weight"])


@pytest.mark.slow
def test_a_lora_fine_tune_still_loads_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fine-tunes written in the LoRA form (factors, LayerNorms, head; no "form" in the metadata)
    load as the encoder with the update folded in."""
    monkeypatch.setenv("TWEET_SIGNALS_CACHE", str(tmp_path / "cache"))
    _, lora = embedded.build_base()
    embedded.add_lora(lora, rank=4, alpha=8.0, dropout=0.0)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.copy_(0.01 * torch.randn(param.shape, generator=generator))
    ids, mask = _probe()
    with torch.inference_mode():
        expected = lora.eval()(ids, mask)
    state = {
        k: v.contiguous()
        for k, v in lora.state_dict().items()
        if "lora_" in k or "LayerNorm" in k or k.startswith("classifier.")
    }
    path = tmp_path / "lora.safetensors"
    meta = {"base_sha256": embedded.BASE_SHA256, "rank": 4, "alpha": 8.0}
    save_file(state, str(path), metadata={"tweet_signals": json.dumps(meta)})
    _, loaded = embedded.load_embedded(path, cache=False)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids, mask), expected, atol=1e-4, rtol=0)
    assert not any(isinstance(m, embedded.LoRALinear) for m in loaded.modules())


def test_a_delta_file_without_its_head_or_of_unknown_form_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "headless.safetensors"
    meta = {"base_sha256": embedded.BASE_SHA256, "form": "delta"}
    save_file({"x": torch.zeros(1)}, str(path), metadata={"tweet_signals": json.dumps(meta)})
    with pytest.raises(ModelUnavailableError, match="no whole classifier head"):
        embedded.load_embedded(path, cache=False)
    with pytest.raises(ModelUnavailableError, match="unknown form"):
        embedded.file_form({"form": "pickle"})
