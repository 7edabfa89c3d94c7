"""Train the embedded sentiment model (LoRA on all-MiniLM-L6-v2) and write its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from tweet_signals.model.card import write_model_card
from tweet_signals.model.embedded import ADAPTER_PATH
from tweet_signals.model.training import TrainConfig, default_shared_data, train_embedded


@task(name="train-embedded")
def train_task(shared_data: str, output: str, config: TrainConfig) -> dict[str, Any]:
    logger = get_run_logger()
    return train_embedded(Path(shared_data), Path(output), config, progress=logger.info)


@flow(name="train-model")
def train_model(
    shared_data: str = str(default_shared_data()),
    output: str = str(ADAPTER_PATH),
    epochs: int = TrainConfig.epochs,
    seed: int = TrainConfig.seed,
    limit: int | None = None,
    learning_rate: float = TrainConfig.learning_rate,
    class_weighting: str = TrainConfig.class_weighting,
) -> dict[str, Any]:
    """Fine-tune on the labelled sets in ``shared_data``; keep the best held-out epoch."""
    config = TrainConfig(
        epochs=epochs, seed=seed, limit=limit, learning_rate=learning_rate, class_weighting=class_weighting
    )
    report = train_task(shared_data, output, config)
    write_model_card(Path(output).with_name("MODEL_CARD.md"), report)
    return report
