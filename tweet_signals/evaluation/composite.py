"""A composite signal: a linear combination of several signal columns, fitted in sample and judged
out of sample like any other column (``--combine COL1,COL2,... --split DATE``, panel mode).

How it is built:
- **standardisation**: each named column is z-scored across the symbols of each session
  ((value − session mean) / session population standard deviation), on the (symbol, session)
  rows that have a price row, at least ``min_posts`` posts and a value in every named column. A
  session with fewer than ``min_symbols`` such rows is dropped (no composite there); a column
  constant within a session gives 0 in that session (it ranks no one);
- **target**: the first horizon's forward return, demeaned across the session's symbols (the
  composite is judged on how it ranks symbols, not on the market's move);
- **fit**: a ridge regression (scikit-learn ``Ridge``, no intercept: inputs and target have mean 0
  in every session) on the in-sample sessions only, before ``split``, purged with
  ``purged_in_sample`` so that no forward return ending on or after the split is used. The
  penalty is fixed, ``alpha = 1.0`` on the standardised inputs: against X'X, whose diagonal is of
  the order of the number of rows (thousands), it barely moves the weights from least squares, but
  it keeps the fit defined when two columns are collinear. A fixed penalty needs no choice made on
  the data, so nothing about it can be tuned to the sample;
- **composite** of every (symbol, session) with standardised columns: Σ weight_i × z_i with the
  in-sample weights, for the out-of-sample sessions too. It becomes the judged column
  ``composite`` and goes through ``panel_frame`` and ``evaluate_panel`` like any other column.

Weights are in units of the target: the forward return (in excess of the session's mean) per
cross-sectional standard deviation of the column, other columns held fixed.

No Prefect here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.evaluation.panel import (
    HISTORY_COLUMNS,
    PanelSettings,
    engagement_warnings,
    evaluate_panel,
    panel_verdict,
    purged_in_sample,
    with_derived_columns,
)
from tweet_signals.stages.signals import SIGNALS_SCHEMA

COMPOSITE_COLUMN = "composite"  # the judged column's name
RIDGE_ALPHA = 1.0  # fixed ridge penalty on the standardised columns (see the module's notes)
# Numeric columns of the stored signals that describe the posts (thresholds and min_posts are the
# run's configuration, the same in every row: nothing to rank symbols by), and the history columns
# ``rolling_features`` derives. The parameters model offers these to --combine.
CONFIGURATION_COLUMNS = frozenset({"threshold_bullish", "threshold_bearish", "min_posts"})
COMBINABLE_COLUMNS: tuple[str, ...] = tuple(
    sorted(
        {c for c, t in SIGNALS_SCHEMA.items() if t.is_numeric() and c not in CONFIGURATION_COLUMNS} | HISTORY_COLUMNS
    )
)


@dataclass(frozen=True)
class CompositeFit:
    """The in-sample ridge fit: one weight per column, and what it was fitted on."""

    columns: tuple[str, ...]
    weights: tuple[float, ...]
    alpha: float
    horizon: int  # the forward return fitted (the first horizon)
    split: date
    first: date  # first and last in-sample session used
    last: date
    sessions: int
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON part of the fit (the out-of-sample figures are added by ``composite_figures``)."""
        return {
            "columns": list(self.columns),
            "weights": dict(zip(self.columns, self.weights, strict=True)),
            "alpha": self.alpha,
            "horizon": self.horizon,
            "target": f"fwd_{self.horizon} in excess of the session's mean across symbols",
            "fitted_on": {
                "first": self.first,  # dates; json_ready writes them as ISO strings
                "last": self.last,
                "sessions": self.sessions,
                "rows": self.rows,
            },
        }


def parse_combine(spec: str, available: Sequence[str] = COMBINABLE_COLUMNS) -> tuple[str, ...]:
    """``"mean_score, bullishness"`` → ("mean_score", "bullishness"); fewer than two columns, a
    column named twice or one not in ``available`` is a clear error listing what is available."""
    columns = tuple(part.strip() for part in spec.split(",") if part.strip())
    if len(columns) < 2:
        raise ValueError(
            f"--combine {spec!r}: give at least 2 columns to combine, e.g. mean_score,bullishness "
            f"(available: {', '.join(available)})"
        )
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ValueError(f"--combine {spec!r}: {', '.join(twice)} named more than once")
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ValueError(
            f"--combine {spec!r}: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"available: {', '.join(available)}"
        )
    return columns


def with_history(signals: pl.DataFrame, returns: pl.DataFrame, columns: Sequence[str], window: int) -> pl.DataFrame:
    """``signals`` with the history columns (``score_z``, …) derived when some of ``columns`` need
    them (as ``panel_frame`` does for a single column); a column neither present nor derivable is a
    clear error listing the columns there are."""
    signals = with_derived_columns(signals, returns, columns, window)
    missing = [c for c in columns if c not in signals.columns]
    if missing:
        available = sorted(set(signals.columns) - {"session", "symbol"} | HISTORY_COLUMNS)
        raise ValueError(f"--combine: no column {', '.join(missing)} in the signals; available: {', '.join(available)}")
    return signals


def standardised(
    signals: pl.DataFrame, returns: pl.DataFrame, columns: Sequence[str], min_posts: int, min_symbols: int
) -> pl.DataFrame:
    """(session, symbol, z_<column> for each column): the columns z-scored across each session's
    symbols, on the rows with a price row, at least ``min_posts`` posts and every column; sessions
    with fewer than ``min_symbols`` such rows are dropped; a column constant in a session is 0."""
    priced = returns.select("session", "symbol").unique()
    values = [pl.col(c).cast(pl.Float64).fill_nan(None) for c in columns]
    rows = (
        signals.filter(pl.col("n_posts") >= min_posts)
        .select("session", "symbol", *[v.alias(c) for v, c in zip(values, columns, strict=True)])
        .drop_nulls(list(columns))
        .filter(pl.all_horizontal([pl.col(c).is_finite() for c in columns]))
        .join(priced, on=["session", "symbol"], how="semi")
        .unique(["session", "symbol"], keep="first", maintain_order=True)
    )
    rows = rows.filter(pl.len().over("session") >= min_symbols)

    def z(column: str) -> pl.Expr:
        value = pl.col(column)
        # max == min rather than std == 0: the mean of equal floats can differ from them in the
        # last bit, and dividing that residue by a std of 1e-17 would give a spurious ±1.
        constant = value.max().over("session") == value.min().over("session")
        scaled = (value - value.mean().over("session")) / value.std(ddof=0).over("session")
        return pl.when(constant).then(0.0).otherwise(scaled).alias(f"z_{column}")

    return rows.select("session", "symbol", *[z(c) for c in columns]).sort("session", "symbol")


def fit_composite(
    scores: pl.DataFrame,
    returns: pl.DataFrame,
    columns: Sequence[str],
    split: date,
    horizon: int,
    min_symbols: int,
    alpha: float = RIDGE_ALPHA,
) -> CompositeFit:
    """Ridge weights of the standardised ``columns`` (``scores``, from ``standardised``) for the
    ``horizon``-session forward return demeaned per session, on the sessions before ``split``
    only, every forward return reaching the split or beyond purged."""
    from sklearn.linear_model import Ridge

    fwd = f"fwd_{horizon}"
    z_columns = [f"z_{c}" for c in columns]
    # The purge counts each symbol's price sessions before the split, so it runs on the full
    # returns calendar, the scores joined in afterwards.
    frame = returns.select("session", "symbol", fwd, "next_return").join(scores, on=["session", "symbol"], how="left")
    inside = (
        purged_in_sample(frame, split, (horizon,))
        .drop_nulls([fwd, *z_columns])
        .filter(pl.col(fwd).is_finite())
        .filter(pl.len().over("session") >= min_symbols)
        .with_columns((pl.col(fwd) - pl.col(fwd).mean().over("session")).alias("_target"))
        .sort("session", "symbol")
    )
    if inside.is_empty():
        raise ValueError(
            f"--combine: no session before --split {split.isoformat()} has {min_symbols} symbols with every "
            f"column ({', '.join(columns)}) and a {horizon}-session forward return ending before the split; "
            "move the split later or lower --min-symbols"
        )
    model = Ridge(alpha=alpha, fit_intercept=False)
    model.fit(inside.select(z_columns).to_numpy(), inside["_target"].to_numpy())
    sessions = inside["session"]
    return CompositeFit(
        columns=tuple(columns),
        weights=tuple(float(w) for w in np.asarray(model.coef_).ravel()),
        alpha=alpha,
        horizon=horizon,
        split=split,
        first=sessions.min(),  # type: ignore[arg-type]
        last=sessions.max(),  # type: ignore[arg-type]
        sessions=int(sessions.n_unique()),
        rows=inside.height,
    )


def composite_scores(scores: pl.DataFrame, fit: CompositeFit) -> pl.DataFrame:
    """(session, symbol, composite): Σ weight × z with the in-sample weights, for every session."""
    total = pl.sum_horizontal([pl.col(f"z_{c}") * w for c, w in zip(fit.columns, fit.weights, strict=True)])
    return scores.select("session", "symbol", total.alias(COMPOSITE_COLUMN))


def with_composite(
    signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings
) -> tuple[pl.DataFrame, PanelSettings, CompositeFit | None]:
    """With ``settings.combine``: the signals with the fitted ``composite`` column (null where a
    session has no cross-section of every column), the settings judging it, and the fit. Without
    it: everything unchanged and no fit. Every signal row is kept, so rows without a price row
    are still counted by ``sessions_without_prices``."""
    if not settings.combine:
        return signals, settings, None
    if settings.split is None:
        raise ValueError("--combine needs --split: the weights are fitted before it and judged from it")
    columns = settings.combine
    signals = with_history(signals, returns, columns, settings.window)
    scores = standardised(signals, returns, columns, settings.min_posts, settings.min_symbols)
    fit = fit_composite(scores, returns, columns, settings.split, settings.horizons[0], settings.min_symbols)
    combined = signals.drop(COMPOSITE_COLUMN, strict=False).join(
        composite_scores(scores, fit), on=["session", "symbol"], how="left"
    )
    return combined, dataclasses.replace(settings, signal_column=COMPOSITE_COLUMN), fit


def attach_composite(result: dict[str, Any], fit: CompositeFit) -> None:
    """Put the fit and its in- and out-of-sample IC (first horizon, from the split's figures) into
    ``result["composite"]``, and the engagement warnings of the combined columns into its
    warnings (``evaluate_panel`` calls this before writing the verdict)."""
    split = result["split"]
    inside, outside = (split[part]["horizons"][0] for part in ("in_sample", "out_of_sample"))
    result["composite"] = {
        **fit.as_dict(),
        "in_sample_ic": inside["ic_mean"],
        "out_of_sample_ic": outside["ic_mean"],
        "out_of_sample_ic_t": outside["ic_t"],
        "out_of_sample_ic_p": outside["p_value"],
        "out_of_sample_sessions": outside["n_sessions"],
    }
    for column in fit.columns:
        result["warnings"].extend(w for w in engagement_warnings(column) if w not in result["warnings"])


def bps(weight: float) -> str:
    """A weight (a return per standard deviation) in basis points, signed."""
    return f"{weight * 10_000:+.2f} bps"


def evaluate_composite(signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings) -> dict[str, Any]:
    """``evaluate_panel`` of the composite of ``settings.combine`` fitted before ``settings.split``
    (without ``combine``: of the judged column, unchanged); the verdict's claim of skill then rests
    on the out-of-sample figures."""
    signals, settings, fit = with_composite(signals, returns, settings)
    result = evaluate_panel(signals, returns, settings)
    if fit is not None:
        attach_composite(result, fit)
        result["composite"]["verdict"] = composite_verdict(result["composite"])
        result["verdict"] = panel_verdict(result)
    return result


def composite_verdict(composite: dict[str, Any]) -> str:
    """Plain words: what was combined, how, on which sessions, and how it did out of sample."""
    fitted = composite["fitted_on"]
    h = composite["horizon"]
    weights = ", ".join(f"{c} {bps(w)}" for c, w in composite["weights"].items())
    p = composite.get("out_of_sample_ic_p")
    test = f" (t {composite['out_of_sample_ic_t']:+.2f}, p {p:.3f})" if p is not None and p == p else ""

    def ic(value: float | None) -> str:
        return "–" if value is None or value != value else f"{value:+.3f}"

    return (
        f"Composite of {', '.join(composite['columns'])}: fitted in sample (ridge, alpha {composite['alpha']:g}, on "
        f"columns z-scored across each session's symbols; target the {h}-session forward return in excess of the "
        f"session's mean; {fitted['sessions']} sessions {fitted['first']} … {fitted['last']}, {fitted['rows']:,} rows, "
        f"forward returns reaching the split purged) and judged out of sample with those weights. Weights "
        f"({h}-session return per cross-sectional standard deviation): {weights}. Mean IC at h={h}: "
        f"{ic(composite['in_sample_ic'])} in sample (fitted there, so flattered), "
        f"{ic(composite['out_of_sample_ic'])} out of sample{test}. The whole-sample figures include the sessions "
        "it was fitted on; only the out-of-sample ones test it."
    )
