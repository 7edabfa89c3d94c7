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
    # Every weight trains, the word-embedding table included: Romanised Hindi and spelled emoji
    # reach the encoder as English word pieces whose vectors need to move. A row no training text
    # uses gets no gradient and stays as it was, so only the rows used are stored (int8 deltas).
    frozen: tuple[str, ...] = ()
    max_length: int = 64
    # Emoji written as words (``model.symbols``): the vocabulary has none, and a fifth of cashtag
    # and Hinglish tweets carry one. Stored in the file's metadata so inference prepares alike.
    spell_symbols: bool = True
    validation_fraction: float = 0.1
    validation_cap: int = 1000  # rows per set at most
    # Per default epoch: general tweets 15,000 rows (SemEval, TweetEval's source, about 1.3 times
    # in six epochs), trader posts 14,000, finance news 10,000 (each headline about once an epoch),
    # Hinglish 11,000 (every SentiMix row about five times).
    domain_shares: dict[str, float] = field(
        default_factory=lambda: {GENERAL: 0.30, TRADER: 0.28, NEWS: 0.20, HINGLISH: 0.22}
    )
    # Train only on these sets or domains (``labelled_sets.selected_sets``); empty: every set. The
    # others are still read and split, so every validation split is scored on the same rows.
    sets: tuple[str, ...] = ()
    desk_share: float = 0.5  # the desk's share of each epoch when --extra files are given
    max_class_weight: float = 4.0
    bf16: bool = True  # bf16 autocast for the forward pass (fp32 master weights): ~1.3x here
    limit: int | None = None  # cap on rows per set (smoke tests)
