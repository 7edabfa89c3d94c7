"""The training run's settings, torch-free so the CLI can show their defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from tweet_signals.training.labelled_sets import GENERAL, HINGLISH, NEWS, TRADER


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    epochs: int = 6
    epoch_rows: int = 50_000  # rows drawn per epoch, shared between domains by ``domain_shares``
    batch_size: int = 32
    learning_rate: float = 1e-4
    # Every weight of the encoder trains except the word-embedding table: tuning it costs a third
    # more time per step here (a dense 30,522 x 384 Adam update) and would commit up to 12 MB more.
    frozen: tuple[str, ...] = ("encoder.embeddings.word_embeddings.",)
    max_length: int = 64
    validation_fraction: float = 0.1
    validation_cap: int = 1000  # rows per set at most
    # Per default epoch: general tweets 16,000 rows (SemEval, TweetEval's source, about 1.4 times
    # in six epochs), trader posts 14,000, finance news 8,500 (each headline about once an epoch),
    # Hinglish 11,500 (every SentiMix row about five times).
    domain_shares: dict[str, float] = field(
        default_factory=lambda: {GENERAL: 0.32, TRADER: 0.28, NEWS: 0.17, HINGLISH: 0.23}
    )
    desk_share: float = 0.5  # the desk's share of each epoch when --extra files are given
    max_class_weight: float = 4.0
    bf16: bool = True  # bf16 autocast for the forward pass (fp32 master weights): ~1.3x here
    limit: int | None = None  # cap on rows per set (smoke tests)
