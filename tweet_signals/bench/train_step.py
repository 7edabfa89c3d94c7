"""Benchmark of one training step of the embedded model in each way it can be tuned, same batches.

The baseline is LoRA (rank 32 on every attention and feed-forward layer), how the embedded model
was tuned before full fine-tuning; the rows are the full fine-tune with the word-embedding table
frozen and with it trained too (what ``train-model`` does).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


def _step_seconds(form: str, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], warmup: int) -> float:
    from tweet_signals.model.embedded import add_lora, build_base
    from tweet_signals.training.config import TrainConfig

    torch.manual_seed(0)
    _, model = build_base(verify=True)
    if form == "lora":
        add_lora(model, 32, 64.0, 0.05)
    for name, param in model.named_parameters():
        if form == "lora":
            param.requires_grad = "lora_" in name or "LayerNorm" in name or name.startswith("classifier.")
        elif form == "full, word embeddings frozen":
            param.requires_grad = not name.startswith("encoder.embeddings.word_embeddings.")
        else:  # exactly what train-model freezes
            param.requires_grad = not name.startswith(TrainConfig().frozen)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for i, (ids, mask, labels) in enumerate(batches):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids, mask)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


FORMS = ("lora", "full, word embeddings frozen", "full")


def train_step_rates(steps: int = 40, batch_size: int = 32, length: int = 40, warmup: int = 5) -> list[dict[str, Any]]:
    """Median milliseconds per training step (bf16 autocast, AdamW) of each form on the same
    random batches, and each form's time against LoRA's."""
    generator = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randint(1000, 30000, (batch_size, length), generator=generator),
            torch.ones(batch_size, length, dtype=torch.long),
            torch.randint(0, 3, (batch_size,), generator=generator),
        )
        for _ in range(steps + warmup)
    ]
    seconds = {form: _step_seconds(form, batches, warmup) for form in FORMS}
    return [
        {
            "form": form,
            "ms_per_step": round(s * 1000, 1),
            "rows_per_s": round(batch_size / s, 1),
            "time_vs_lora": round(s / seconds["lora"], 3),
        }
        for form, s in seconds.items()
    ]
