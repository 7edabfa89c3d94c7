"""What a signal is judged against: the target of ``evaluate --target``.

Signals of attention or disagreement (how many posts, how split they are) tend to predict how
much a price moves or how much trades, not which way; judged against returns alone, such a signal
looks useless. Every target is built per symbol on its own price sessions, with no look-ahead:
the value of (symbol, t) at horizon h uses sessions t+1 … t+h only, and the volume's baseline
ends at t (what was known at t's close).

- ``return``: close_{t+h} / close_t − 1 (``Adj Close`` preferred in a price folder);
- ``abs-return``: |close_{t+h} / close_t − 1|; with a benchmark, the absolute value of the
  benchmark-relative return;
- ``range``: (high − low) / close of session t+1; for h > 1 the mean of that daily range over
  sessions t+1 … t+h. Raw ``High``, ``Low`` and ``Close``: the three on one adjustment basis;
- ``volume``: log volume of session t+1 minus the mean log volume of the ``VOLUME_BASELINE`` (20)
  sessions ending at t (t included); for h > 1 the mean log volume over t+1 … t+h minus the same
  baseline. Sessions with no volume (0 or missing) have no log volume.

Three columns carry the target through the evaluation, whatever it is: ``fwd_h`` (horizon h),
``next_return`` (h = 1) and ``same_day_return``, session t's own value (close t−1 → t, the range
of t, the volume of t against the 20 sessions before it). ``next_return`` at t is
``same_day_return`` at t+1, so lead-lag, the Granger test and IC decay follow the calendar as they
do for returns. With a benchmark, a symbol's value minus the benchmark's over the same sessions
(for ``abs-return``: the absolute value taken after the subtraction).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import polars as pl

Target = Literal["return", "abs-return", "range", "volume"]
TARGETS: tuple[str, ...] = typing.get_args(Target)
VOLUME_BASELINE = 20  # sessions of the trailing mean log volume that volume is measured against

# How the target is named in titles and verdicts.
LABELS: dict[str, str] = {
    "return": "return",
    "abs-return": "absolute return",
    "range": "high-low range",
    "volume": "abnormal volume",
}
# The target's formula, for the report and the JSON.
DEFINITIONS: dict[str, str] = {
    "return": "close_{t+h} / close_t - 1",
    "abs-return": "|close_{t+h} / close_t - 1|",
    "range": "mean over sessions t+1..t+h of (high - low) / close (raw High, Low, Close)",
    "volume": f"mean log volume over sessions t+1..t+h minus the mean log volume of the {VOLUME_BASELINE} "
    "sessions ending at t",
}
# The Yahoo column each extra frame column is read from, by default.
DEFAULT_COLUMNS = {"high": "High", "low": "Low", "range_close": "Close", "volume": "Volume"}


def label(target: str) -> str:
    """The target's name in plain words (``abs-return`` → "absolute return")."""
    return LABELS[target]


def definition(target: str, benchmark: str | None = None) -> str:
    """The target's formula, with the benchmark's part when there is one."""
    text = DEFINITIONS[target]
    if benchmark is None:
        return text
    if target == "abs-return":
        return f"|close_{{t+h}} / close_t - 1 minus {benchmark}'s| (the absolute excess return)"
    return f"{text}, minus {benchmark}'s"


def is_return(target: str) -> bool:
    """Whether the target is a return one can trade: strategies, hit rates, per-session rates and
    costs only make sense then."""
    return target == "return"


def check_movement(target: str, movement: tuple[float, float] | None) -> None:
    """Refuse ``--movement`` with a target other than the return: the direction task calls the
    next session's return up or down, and an absolute return, a range or a volume has no direction."""
    if movement is not None and not is_return(target):
        raise ValueError(
            f"--movement calls the next session's return up or down; it does not apply with --target {target} "
            "(leave --movement out, or use --target return)"
        )


def extra_columns(target: str, columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """The price columns ``target`` reads beyond the date and the close: frame name → CSV column
    (``columns`` overrides ``DEFAULT_COLUMNS``, e.g. a ``--price-columns`` mapping)."""
    names = {**DEFAULT_COLUMNS, **(columns or {})}
    wanted = {"range": ("high", "low", "range_close"), "volume": ("volume",)}.get(target, ())
    return {name: names[name] for name in wanted}


def missing_columns_message(target: str, missing: Sequence[str], path: Path, present: Sequence[str]) -> str:
    """``--target range needs High and Low columns in AAPL.csv; it has Date, Close``."""
    several = ", ".join(missing[:-1]) + f" and {missing[-1]} columns"
    needed = f"a {missing[0]} column" if len(missing) == 1 else several
    return f"--target {target} needs {needed} in {path.name}; it has {', '.join(present)}"


def _daily_range() -> pl.Expr:
    """(high − low) / close of each session; missing where the bar is not a bar (no close, or a
    high below the low)."""
    high, low, close = pl.col("high"), pl.col("low"), pl.col("range_close")
    return pl.when((close > 0) & (high >= low)).then((high - low) / close)


def _log_volume() -> pl.Expr:
    """Log volume; missing for sessions without volume (log 0 is not a number)."""
    volume = pl.col("volume")
    return pl.when(volume > 0).then(volume.log())


def _forward_mean(values: pl.Expr, horizon: int) -> pl.Expr:
    """Mean of ``values`` over the next ``horizon`` rows (t+1 … t+h), missing unless all are there."""
    return values.rolling_mean(horizon).shift(-horizon)


def target_columns(target: str, horizons: Sequence[int], volume_baseline: int = VOLUME_BASELINE) -> list[pl.Expr]:
    """``fwd_h`` for each h, ``same_day_return`` and ``next_return`` of one symbol's price rows
    (sorted by session; ``close``, plus the ``extra_columns`` of the target). For ``abs-return``
    these are the signed returns: the absolute value is ``finished`` after a benchmark is taken
    out, so that it is the absolute value of the excess return."""
    if target in ("return", "abs-return"):
        close = pl.col("close")
        return [
            *[(close.shift(-h) / close - 1).alias(f"fwd_{h}") for h in horizons],
            (close / close.shift(1) - 1).alias("same_day_return"),
            (close.shift(-1) / close - 1).alias("next_return"),
        ]
    if target == "range":
        daily = _daily_range()
        return [
            *[_forward_mean(daily, h).alias(f"fwd_{h}") for h in horizons],
            daily.alias("same_day_return"),
            daily.shift(-1).alias("next_return"),
        ]
    if target == "volume":
        log_volume = _log_volume()
        # Trailing mean ending at t, t included: only volume known at t's close enters it.
        baseline = log_volume.rolling_mean(volume_baseline)
        return [
            *[(_forward_mean(log_volume, h) - baseline).alias(f"fwd_{h}") for h in horizons],
            (log_volume - baseline.shift(1)).alias("same_day_return"),
            (log_volume.shift(-1) - baseline).alias("next_return"),
        ]
    raise ValueError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")


def finished(target: str, columns: Sequence[str]) -> list[pl.Expr]:
    """The last step of the target on ``columns`` (after a benchmark is subtracted): the absolute
    value for ``abs-return``, nothing otherwise."""
    if target != "abs-return":
        return []
    return [pl.col(c).abs().alias(c) for c in columns]
