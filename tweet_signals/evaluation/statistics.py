"""Judge a signal against prices with no look-ahead.

The only alignment offered pairs the signal of session t (built from posts that count for t,
i.e. up to t's close) with the return from close t to close t+1. Lead-lag correlations are
computed separately and labelled by lag, so "returns drive sentiment" shows up at lag ≤ 0
instead of passing for a prediction.

Formulas (per symbol, sessions in order, sessions without posts kept as rows with 0 posts):
- ``volume_z``: (n_posts_t − mean) / std over the previous ``window`` sessions (t excluded);
- ``score_z``: the same for ``weighted_score`` (sessions without posts excluded from the window);
- ``score_change``: weighted_score_t − weighted_score_{t−1};
- ``bull_intensity`` / ``bear_intensity``: n_bullish / n_posts and n_bearish / n_posts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

MIN_SESSIONS = 20
LAGS = range(-5, 6)


def load_prices(path: Path, date_column: str = "Date", close_column: str = "Close") -> pl.DataFrame:
    """Daily closes as (session, close), sorted, one row per date, non-positive closes dropped."""
    frame = pl.read_csv(path, infer_schema_length=0)
    missing = {date_column, close_column} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} has no column(s) {sorted(missing)}; it has {frame.columns} (see --price-columns)")
    return (
        frame.select(
            pl.col(date_column).str.slice(0, 10).str.to_date(strict=False).alias("session"),
            pl.col(close_column).cast(pl.Float64, strict=False).alias("close"),
        )
        .drop_nulls()
        .filter(pl.col("close") > 0)
        .unique("session", keep="first")
        .sort("session")
    )


def rolling_features(signals: pl.DataFrame, window: int = 20) -> pl.DataFrame:
    """Add the history features above to per-symbol, per-session signals (sorted by session)."""

    def trailing(col: str) -> tuple[pl.Expr, pl.Expr]:
        shifted = pl.col(col).shift(1)
        return (
            shifted.rolling_mean(window, min_samples=max(3, window // 4)).over("symbol"),
            shifted.rolling_std(window, min_samples=max(3, window // 4)).over("symbol"),
        )

    frame = signals.sort("symbol", "session").with_columns(
        pl.when(pl.col("n_posts") > 0).then(pl.col("weighted_score")).otherwise(None).alias("_score")
    )
    vol_mean, vol_std = trailing("n_posts")
    score_mean, score_std = trailing("_score")
    posts = pl.col("n_posts").cast(pl.Float64)
    return (
        frame.with_columns(
            ((posts - vol_mean) / vol_std).alias("volume_z"),
            ((pl.col("_score") - score_mean) / score_std).alias("score_z"),
            (pl.col("_score") - pl.col("_score").shift(1).over("symbol")).alias("score_change"),
            pl.when(posts > 0).then(pl.col("n_bullish") / posts).otherwise(0.0).alias("bull_intensity"),
            pl.when(posts > 0).then(pl.col("n_bearish") / posts).otherwise(0.0).alias("bear_intensity"),
        )
        .drop("_score")
        .sort("session", "symbol")
    )


def align_next_return(signal: pl.DataFrame, prices: pl.DataFrame, column: str = "weighted_score") -> pl.DataFrame:
    """Pair the signal of session t with the return from close t to the next close.

    ``signal``: one symbol's rows with ``session`` and ``column``. Sessions without a close, or
    without a next close, drop out; nothing after close t enters the row of session t.
    """
    returns = prices.sort("session").with_columns(
        (pl.col("close").shift(-1) / pl.col("close") - 1).alias("next_return"),
        (pl.col("close") / pl.col("close").shift(1) - 1).alias("same_day_return"),
    )
    return (
        signal.select("session", pl.col(column).alias("signal"))
        .join(returns, on="session", how="inner")
        .drop_nulls(["signal", "next_return"])
        .sort("session")
    )


@dataclass
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass
class Evaluation:
    n: int
    verdict: str
    enough_data: bool
    pearson: Estimate | None = None
    spearman: Estimate | None = None
    hit_rate: float | None = None
    hit_rate_p_value: float | None = None
    hits: int | None = None
    directional_n: int | None = None
    lead_lag: list[dict[str, float]] = field(default_factory=list)
    granger_p_value: float | None = None
    strategy: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bootstrap_ci(x: np.ndarray, y: np.ndarray, fn: Any, seed: int, n_boot: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.std(x[idx]) > 0 and np.std(y[idx]) > 0:
            values.append(fn(x[idx], y[idx]))
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def correlation(x: np.ndarray, y: np.ndarray, method: str, seed: int = 7, n_boot: int = 2000) -> Estimate:
    if np.std(x) == 0 or np.std(y) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 1.0)
    if method == "pearson":
        result = stats.pearsonr(x, y)

        def fn(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.corrcoef(a, b)[0, 1])
    else:
        result = stats.spearmanr(x, y)

        def fn(a: np.ndarray, b: np.ndarray) -> float:
            return float(stats.spearmanr(a, b).statistic)

    low, high = _bootstrap_ci(x, y, fn, seed, n_boot)
    return Estimate(float(result.statistic), low, high, float(result.pvalue))


def lead_lag(signal: np.ndarray, same_day_returns: np.ndarray, seed: int = 7) -> list[dict[str, float]]:
    """corr(signal_t, return_{t+k}) for k in −5…5, where return_t is close t−1 → close t.

    k = 1 is the predictive lag (the next session's return); k ≤ 0 means returns came first.
    """
    out = []
    n = len(signal)
    for k in LAGS:
        if k >= 0:
            x, y = signal[: n - k] if k else signal, same_day_returns[k:]
        else:
            x, y = signal[-k:], same_day_returns[: n + k]
        mask = ~(np.isnan(x) | np.isnan(y))
        x, y = x[mask], y[mask]
        if len(x) < 8:
            continue
        est = correlation(x, y, "spearman", seed, n_boot=500)
        out.append(
            {
                "lag": k,
                "spearman": est.value,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "p_value": est.p_value,
                "n": len(x),
            }
        )
    return out


def long_flat_strategy(
    signal: np.ndarray, next_return: np.ndarray, threshold: float, cost_bps: float
) -> dict[str, Any]:
    """Long from close t to close t+1 when signal_t > threshold, else flat; cost per position change."""
    position = (signal > threshold).astype(float)
    changes = np.abs(np.diff(np.concatenate([[0.0], position])))
    strategy = position * next_return - changes * cost_bps / 10_000
    equity = np.cumprod(1 + strategy)
    hold = np.cumprod(1 + next_return)
    daily_sd = strategy.std()
    peak = np.maximum.accumulate(equity)
    return {
        "threshold": threshold,
        "cost_bps": cost_bps,
        "trades": int(changes.sum()),
        "exposure": float(position.mean()),
        "total_return": float(equity[-1] - 1),
        "buy_and_hold_return": float(hold[-1] - 1),
        "sharpe_annualised": float(strategy.mean() / daily_sd * np.sqrt(252)) if daily_sd > 0 else 0.0,
        "max_drawdown": float((1 - equity / peak).max()),
        "equity": equity.tolist(),
        "buy_and_hold": hold.tolist(),
    }


def evaluate_signal(
    aligned: pl.DataFrame,
    threshold: float = 0.0,
    cost_bps: float = 5.0,
    min_sessions: int = MIN_SESSIONS,
    seed: int = 7,
) -> Evaluation:
    """All metrics on ``align_next_return`` output; a plain verdict, "not enough data" when short."""
    n = aligned.height
    if n < min_sessions:
        return Evaluation(
            n,
            f"Not enough data: {n} session(s) with a signal and a next-day return; "
            f"at least {min_sessions} are needed before any metric means anything.",
            False,
        )
    x = aligned["signal"].to_numpy().astype(float)
    y = aligned["next_return"].to_numpy().astype(float)
    pearson = correlation(x, y, "pearson", seed)
    spearman = correlation(x, y, "spearman", seed)
    directional = (x != 0) & (y != 0)
    hits = int((np.sign(x[directional]) == np.sign(y[directional])).sum())
    total = int(directional.sum())
    hit_p = float(stats.binomtest(hits, total, 0.5, alternative="greater").pvalue) if total else 1.0
    same_day = aligned["same_day_return"].to_numpy().astype(float)
    lags = lead_lag(x, same_day, seed)
    granger = _granger(x, y) if n >= 30 else None
    strategy = long_flat_strategy(x, y, threshold, cost_bps)
    evaluation = Evaluation(
        n, "", True, pearson, spearman, hits / total if total else None, hit_p, hits, total, lags, granger, strategy
    )
    evaluation.verdict = _verdict(evaluation)
    return evaluation


def _granger(signal: np.ndarray, next_return: np.ndarray, max_lag: int = 3) -> float | None:
    """Smallest p-value (SSR F-test, lags 1…3) that past signals help predict returns."""
    from statsmodels.tsa.stattools import grangercausalitytests

    # Returns series r_t (close t−1 → t) is next_return shifted: r_{t+1} = next_return_t.
    data = np.column_stack([next_return[1:], signal[1:]])
    try:
        result = grangercausalitytests(data, maxlag=max_lag)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return float(min(r[0]["ssr_ftest"][1] for r in result.values()))


def _verdict(e: Evaluation) -> str:
    assert e.spearman is not None
    s = e.spearman
    significant = s.p_value < 0.05 and (s.ci_low > 0 or s.ci_high < 0)
    best = max(e.lead_lag, key=lambda r: abs(r["spearman"]), default=None)
    parts = [
        f"n = {e.n} sessions. Spearman ρ(signal_t, return t→t+1) = {s.value:+.3f} "
        f"(95% bootstrap CI {s.ci_low:+.3f} … {s.ci_high:+.3f}, p = {s.p_value:.3f}); "
        f"hit rate {e.hit_rate:.1%} of {e.directional_n} (binomial p = {e.hit_rate_p_value:.3f})."
        if e.hit_rate is not None
        else f"n = {e.n} sessions; Spearman ρ = {s.value:+.3f} (p = {s.p_value:.3f})."
    ]
    if significant and s.value > 0:
        parts.append("The signal leads next-session returns in this sample.")
    elif significant:
        parts.append("The signal is inversely related to next-session returns in this sample (a contrarian signal).")
    else:
        parts.append("No evidence that the signal predicts next-session returns in this sample.")
    if best is not None and best["lag"] <= 0 and best["p_value"] < 0.05:
        parts.append(
            f"The strongest link is at lag {best['lag']:+d} (ρ = {best['spearman']:+.3f}): "
            "returns move first and sentiment follows."
        )
    parts.append(
        "A correlation in one sample is not a trading edge: costs, regime changes and multiple testing "
        "(11 lags, several symbols) all weaken it."
    )
    return " ".join(parts)
