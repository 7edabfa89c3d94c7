"""The StockNet movement task (Xu & Cohen, ACL 2018): call the direction of the next session.

A next-session return of at least ``up`` (the paper: +0.55%) is an up move, one of at most
``down`` (the paper: −0.50%) a down move; the moves in between are too small to call and are
dropped, so accuracy and Matthews' correlation (MCC) are comparable with the paper's tables.

Two ways to turn a signal into a call, both using nothing after close t:
- ``sign``: up when the signal is above 0, down when below; a signal of exactly 0 makes no call;
- ``trailing``: up when the signal is above its own mean over the previous ``window`` sessions
  that had a signal (per symbol, t excluded), down when below; no call until at least
  max(3, window // 4) such sessions exist. A sentiment signal that is bullish on most days calls
  "up" every day by sign; against its own recent level it can call both ways.

``majority_accuracy`` is what always calling the more common move would score on the same rows:
an accuracy below it is no skill, however far above 50% it is.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import polars as pl

# The paper's thresholds, for callers that want a default.
STOCKNET_UP = 0.0055
STOCKNET_DOWN = -0.005


def parse_movement(spec: str) -> tuple[float, float]:
    """Thresholds from "UP,DOWN" as fractions: "0.0055,-0.005" → (0.0055, -0.005).

    Raises ValueError unless there are exactly two finite numbers with down ≤ 0 ≤ up: a dead
    band around no move ("0,0": none, every move is called)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"movement thresholds {spec!r}: expected two numbers UP,DOWN as fractions, e.g. 0.0055,-0.005")
    try:
        up, down = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(
            f"movement thresholds {spec!r}: {parts[0]!r} and {parts[1]!r} must be numbers (fractions, "
            "e.g. 0.0055,-0.005 for +0.55% and −0.50%)"
        ) from None
    if not (math.isfinite(up) and math.isfinite(down)):
        raise ValueError(f"movement thresholds {spec!r}: both must be finite numbers")
    if not down <= 0 <= up:
        raise ValueError(
            f"movement thresholds {spec!r}: need DOWN ≤ 0 ≤ UP (got up {up:g}, down {down:g}); "
            "the order is UP,DOWN, e.g. 0.0055,-0.005"
        )
    return up, down


def _scores(predicted_up: pl.Series, went_up: pl.Series) -> dict[str, Any]:
    """Accuracy, MCC, counts and the majority baseline of boolean calls against boolean moves."""
    from sklearn.metrics import matthews_corrcoef

    n = predicted_up.len()
    n_up = int(went_up.sum())
    if n == 0:
        return {"accuracy": None, "mcc": None, "n": 0, "n_up": 0, "n_down": 0, "majority_accuracy": None}
    truth, calls = went_up.to_numpy().astype(int), predicted_up.to_numpy().astype(int)
    return {
        "accuracy": float(np.mean(truth == calls)),
        # One class on either side leaves MCC undefined; sklearn then reports 0 (no skill shown).
        "mcc": float(matthews_corrcoef(truth, calls)),
        "n": n,
        "n_up": n_up,
        "n_down": n - n_up,
        "majority_accuracy": max(n_up, n - n_up) / n,
    }


def _call(value: pl.Expr, reference: pl.Expr) -> pl.Expr:
    """True (up) when ``value`` is above ``reference``, False (down) below, null when equal or
    either is missing (no call)."""
    return pl.when(value > reference).then(True).when(value < reference).then(False).otherwise(None)


def movement_figures(
    frame: pl.DataFrame,
    up: float,
    down: float,
    window: int = 20,
    sessions: tuple[date | None, date | None] = (None, None),
) -> dict[str, Any]:
    """Movement-task figures of a panel's calendar rows.

    ``frame``: ``symbol``, ``session``, ``signal`` (null where a session has no signal) and
    ``next_return`` (close t → close t+1, null at the end), every price session of each symbol.
    Returns ``{"up", "down", "sign", "trailing", "accuracy", "mcc", "n", ...}``, the top-level
    figures being those of ``sign``. ``n_abstained`` counts rows with a scorable move but no call
    (a signal of exactly 0, or equal to its trailing mean); ``n_dead_band`` the rows with a
    signal whose move falls strictly between ``down`` and ``up``. With ``up == down`` there is
    no dead band and a move of exactly that size counts as up. ``sessions`` = (start, end) scores
    only the calls of sessions in [start, end), the trailing means still running on from the
    sessions before ``start``."""
    if down > up:
        raise ValueError(f"movement thresholds: down ({down:g}) must not be above up ({up:g})")
    min_samples = max(3, window // 4)
    with_signal = (
        frame.with_columns(
            # A NaN is a missing value here, as a null is (polars orders NaN above every number).
            pl.col("signal").cast(pl.Float64).fill_nan(None),
            pl.col("next_return").cast(pl.Float64).fill_nan(None),
        )
        .filter(pl.col("signal").is_not_null())
        .sort("symbol", "session")
        .with_columns(
            # The previous ``window`` sessions that had a signal: gaps skipped, t itself excluded.
            pl.col("signal")
            .shift(1)
            .rolling_mean(window, min_samples=min_samples)
            .over("symbol")
            .alias("_trailing_mean")
        )
    )
    ret = pl.col("next_return")
    start, end = sessions
    if start is not None:
        with_signal = with_signal.filter(pl.col("session") >= start)
    if end is not None:
        with_signal = with_signal.filter(pl.col("session") < end)
    rows = with_signal.filter(ret.is_not_null()).with_columns(
        pl.when(ret >= up).then(True).when(ret <= down).then(False).otherwise(None).alias("_went_up"),
        _call(pl.col("signal"), pl.lit(0.0)).alias("_sign"),
        _call(pl.col("signal"), pl.col("_trailing_mean")).alias("_trailing"),
    )
    movable = rows.filter(pl.col("_went_up").is_not_null())
    figures: dict[str, Any] = {"up": up, "down": down}
    for name in ("sign", "trailing"):
        scored = movable.filter(pl.col(f"_{name}").is_not_null())
        figures[name] = _scores(scored[f"_{name}"], scored["_went_up"])
        figures[name]["n_dead_band"] = rows.height - movable.height
    figures["sign"]["n_abstained"] = movable.filter(pl.col("signal") == 0).height
    warm_up = pl.col("_trailing_mean").is_null()
    figures["trailing"]["n_warm_up"] = movable.filter(warm_up).height
    figures["trailing"]["n_abstained"] = movable.filter(~warm_up & pl.col("_trailing").is_null()).height
    figures["trailing"]["window"] = window
    for key in ("accuracy", "mcc", "n", "majority_accuracy"):
        figures[key] = figures["sign"][key]
    return figures
