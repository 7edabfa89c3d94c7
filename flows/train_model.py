"""Train the embedded sentiment model (a fine-tune of all-MiniLM-L6-v2) and write its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from tweet_signals.model.embedded_files import ADAPTER_PATH, adapter_file
from tweet_signals.storage import write_json_atomic
from tweet_signals.training.card import write_model_card
from tweet_signals.training.config import TrainConfig
from tweet_signals.training.labelled_sets import ExtraSpec
from tweet_signals.training.trainer import default_shared_data, train_embedded


@task(name="train-embedded")
def train_task(
    shared_data: str, output: str, config: TrainConfig, extras: list[dict[str, Any]], init: str | None
) -> dict[str, Any]:
    logger = get_run_logger()
    specs = [ExtraSpec(Path(e["path"]), e["text_column"], e["label_column"], e["label_map"]) for e in extras]
    return train_embedded(
        Path(shared_data), Path(output), config, progress=logger.info, extras=specs, init=Path(init) if init else None
    )


@flow(name="train-model")
def train_model(
    shared_data: str = str(default_shared_data()),
    output: str = str(ADAPTER_PATH),
    epochs: int = TrainConfig.epochs,
    seed: int = TrainConfig.seed,
    limit: int | None = None,
    learning_rate: float = TrainConfig.learning_rate,
    epoch_rows: int = TrainConfig.epoch_rows,
    extras: list[dict[str, Any]] | None = None,
    init: str | None = None,
    sets: list[str] | None = None,
) -> dict[str, Any]:
    """Fine-tune on the labelled sets in ``shared_data`` (and a desk's ``extras``: dicts with
    path, text_column, label_column, label_map); keep the best validation epoch. ``output`` is an
    adapter file or a directory (the adapter and its model card are written into it). ``sets``:
    train only on these sets or domains (e.g. ``["sentimix"]``, ``["trader"]``); every validation
    split is still scored."""
    config = TrainConfig(
        epochs=epochs,
        seed=seed,
        limit=limit,
        learning_rate=learning_rate,
        epoch_rows=epoch_rows,
        sets=tuple(sets or ()),
    )
    adapter = adapter_file(Path(output))
    report = train_task(shared_data, str(adapter), config, extras or [], init)
    write_json_atomic(report, adapter.with_name("training-report.json"))
    write_model_card(adapter.with_name("MODEL_CARD.md"), report)
    return report
