"""The rest of a factor tear sheet, computed from the panel frame: IC through time, IC decay with
a delayed start, coverage, cumulative returns per quantile, turnover per horizon, factor rank
autocorrelation and the top-minus-bottom portfolio's statistics.

Everything is computed from the frame of ``panel.panel_frame`` (session, symbol, signal, n_posts,
close, fwd_h, same_day_return, next_return). Keys starting with ``_`` hold frames for the charts;
the caller strips them before writing JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from tweet_signals.evaluation.panel import PanelSettings

ROLLING_SESSIONS = 21  # about a trading month: the window of the IC's rolling mean
MAX_DELAY = 10  # the IC decay chart trades 0..MAX_DELAY sessions after the signal


def _nan_float(value: Any) -> float:
    """``value`` as a float; missing (None) as NaN, so JSON writing turns it into null."""
    return float("nan") if value is None else float(value)


def plain_t(values: np.ndarray) -> dict[str, float]:
    """Mean, ordinary t (no overlap correction) and count of a per-session series; NaN where
    fewer than three values or no spread make the t meaningless."""
    values = values[~np.isnan(values)]
    n = len(values)
    mean = float(np.mean(values)) if n else float("nan")
    std = float(np.std(values, ddof=1)) if n > 1 else 0.0
    t = mean / (std / np.sqrt(n)) if n >= 3 and std > 0 else float("nan")
    return {"mean": mean, "t": float(t), "n": n}


def ic_series(frame: pl.DataFrame, horizon: int, min_symbols: int) -> pl.DataFrame:
    """(session, ic, ic_rolling): the per-session rank IC at ``horizon`` and its mean over the last
    ``ROLLING_SESSIONS`` sessions (missing until that many sessions have an IC)."""
    from tweet_signals.evaluation.panel import session_ic

    return session_ic(frame, horizon, min_symbols).select(
        "session", "ic", pl.col("ic").rolling_mean(ROLLING_SESSIONS).alias("ic_rolling")
    )


def monthly_ic(series: pl.DataFrame) -> list[dict[str, Any]]:
    """Mean IC per calendar month: [{year, month, ic_mean, n_sessions}], oldest first."""
    if not series.height:
        return []
    months = (
        series.group_by(pl.col("session").dt.year().alias("year"), pl.col("session").dt.month().alias("month"))
        .agg(pl.col("ic").mean().alias("ic_mean"), pl.len().alias("n_sessions"))
        .sort("year", "month")
    )
    return [
        {"year": int(y), "month": int(m), "ic_mean": float(ic), "n_sessions": int(n)}
        for y, m, ic, n in months.select("year", "month", "ic_mean", "n_sessions").iter_rows()
    ]


def _delayed(d: int, target: str) -> pl.Expr:
    """The one-session value of ``target`` d sessions after the next: session t+d+1's (for the
    return, close t+d → close t+d+1). The frame holds every price session of each symbol, so a
    shift along a symbol's rows moves along its calendar."""
    if target == "return":
        close = pl.col("close")
        return (close.shift(-(d + 1)) / close.shift(-d) - 1).over("symbol")
    # next_return at row t+d is the target of session t+d+1 (its baseline, for volume, ends at t+d).
    return pl.col("next_return").shift(-d).over("symbol")


def ic_decay(
    frame: pl.DataFrame, min_symbols: int, max_delay: int = MAX_DELAY, target: str = "return"
) -> list[dict[str, Any]]:
    """Mean rank IC of the signal at t against the one-session return from close t+d to close t+d+1,
    for d = 0..``max_delay``: how much is left of the signal when the trade starts d sessions late.
    For another ``target``, against its value in session t+d+1 (``next_return`` d rows on).

    The returns come from each symbol's own closes, so they are raw even with a benchmark; that does
    not move a cross-sectional rank IC, because the benchmark's return is the same for every symbol
    of a session. One-session returns do not overlap, so a plain t is used."""
    ordered = frame.sort("symbol", "session")
    delayed = ordered.with_columns(*[_delayed(d, target).alias(f"_delay_{d}") for d in range(max_delay + 1)]).filter(
        pl.col("signal").is_not_null()
    )
    rows = []
    for d in range(max_delay + 1):
        column = f"_delay_{d}"
        ic = (
            delayed.filter(pl.col(column).is_not_null())
            .group_by("session")
            .agg(pl.corr("signal", column, method="spearman").alias("ic"), pl.len().alias("n"))
            .filter((pl.col("n") >= min_symbols) & pl.col("ic").is_not_nan())
        )
        test = plain_t(ic["ic"].to_numpy().astype(float))
        rows.append({"delay": d, "ic_mean": test["mean"], "ic_t": test["t"], "n_sessions": test["n"]})
    return rows


def coverage(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Per session from the first to the last with a signal: the symbols with a signal and the posts
    of all symbols; plus a summary (sessions, median and least symbols, median posts)."""
    empty = pl.DataFrame(schema={"session": pl.Date, "n_symbols": pl.UInt32, "n_posts": pl.Int64})
    with_signal = frame.filter(pl.col("signal").is_not_null())
    if not with_signal.height:
        summary = {"sessions": 0, "median_symbols": float("nan"), "min_symbols": 0, "median_posts": float("nan")}
        return empty, summary
    # Before the first post and after the last there is no coverage to speak of, only price history.
    first, last = with_signal["session"].min(), with_signal["session"].max()
    per_session = (
        frame.filter((pl.col("session") >= first) & (pl.col("session") <= last))
        .group_by("session")
        .agg(
            pl.col("signal").is_not_null().sum().alias("n_symbols"),
            pl.col("n_posts").fill_null(0).sum().cast(pl.Int64).alias("n_posts"),
        )
        .sort("session")
    )
    summary = {
        "sessions": per_session.height,
        "median_symbols": float(per_session["n_symbols"].median()),  # type: ignore[arg-type]
        "min_symbols": int(per_session["n_symbols"].min()),  # type: ignore[arg-type]
        "median_posts": float(per_session["n_posts"].median()),  # type: ignore[arg-type]
    }
    return per_session, summary


def quantile_next_returns(frame: pl.DataFrame, quantiles: int, min_symbols: int) -> pl.DataFrame:
    """(session, quantile, ret): each quantile's mean next-session return per session (on the
    panel's basis: in excess of the benchmark when there is one)."""
    from tweet_signals.evaluation.panel import with_quantiles

    ranked = with_quantiles(frame.filter(pl.col("next_return").is_not_null()), quantiles, min_symbols)
    return (
        ranked.group_by("session", "quantile")
        .agg(pl.col("next_return").mean().alias("ret"))
        .sort("quantile", "session")
    )


def quantile_cumulative(per_session: pl.DataFrame) -> pl.DataFrame:
    """(session, quantile, growth): growth of 1 held in each quantile, rebalanced every session."""
    return per_session.sort("quantile", "session").select(
        "session", "quantile", (1 + pl.col("ret")).cum_prod().over("quantile").alias("growth")
    )


def spread_series(per_session: pl.DataFrame, quantiles: int) -> pl.DataFrame:
    """(session, spread): the top quantile's mean next-session return minus the bottom's, for the
    sessions where both exist."""
    top = per_session.filter(pl.col("quantile") == quantiles).select("session", pl.col("ret").alias("top"))
    bottom = per_session.filter(pl.col("quantile") == 1).select("session", pl.col("ret").alias("bottom"))
    return (
        top.join(bottom, on="session", how="inner")
        .select("session", (pl.col("top") - pl.col("bottom")).alias("spread"))
        .sort("session")
    )


def spread_portfolio(spread: pl.DataFrame) -> dict[str, Any]:
    """Annualised Sharpe, maximum drawdown and annual return (empyrical, daily sessions) of the
    top-minus-bottom spread held one session at a time, before costs."""
    import empyrical

    values = spread["spread"].to_numpy().astype(float)
    if len(values) < 2:  # one session has no volatility and no drawdown to speak of
        return {"sharpe": float("nan"), "max_drawdown": float("nan"), "annual_return": float("nan"), "sessions": 0}
    return {
        "sharpe": float(empyrical.sharpe_ratio(values)),
        # A positive fraction lost from a peak, as the single-symbol report gives it (empyrical's is negative).
        "max_drawdown": float(-empyrical.max_drawdown(values)),
        "annual_return": float(empyrical.annual_return(values)),
        "sessions": len(values),
    }


def rank_autocorrelation(frame: pl.DataFrame, lag: int, min_symbols: int) -> float:
    """alphalens' ``factor_rank_autocorrelation``: per session, the Pearson correlation (pandas'
    ``corrwith``) of the symbols' ranks at t with their ranks ``lag`` sessions before, over the
    symbols ranked at both (each ranked among all symbols of its own session), averaged over
    sessions.

    Sessions are those with a cross-section (``min_symbols`` or more signals), counted in order,
    the way ``turnover`` lags them; 1 means the ranking does not change, 0 that it is new each time.
    """
    ranked = (
        frame.filter(pl.col("signal").is_not_null())
        .with_columns(pl.len().over("session").alias("_n"))
        .filter(pl.col("_n") >= min_symbols)
        .select("session", "symbol", pl.col("signal").rank("average").over("session").alias("rank"))
    )
    if not ranked.height:
        return float("nan")
    order = ranked.select(pl.col("session").unique().sort()).with_row_index("index")
    ranked = ranked.join(order, on="session")
    earlier = ranked.select("symbol", (pl.col("index") + lag).alias("index"), pl.col("rank").alias("rank_before"))
    per_session = (
        ranked.join(earlier, on=["symbol", "index"], how="inner")
        .group_by("session")
        .agg(pl.corr("rank", "rank_before", method="pearson").alias("rho"), pl.len().alias("n"))
        .filter((pl.col("n") >= min_symbols) & pl.col("rho").is_not_nan())
    )
    return _nan_float(per_session["rho"].mean()) if per_session.height else float("nan")


def tear_sheet(frame: pl.DataFrame, settings: PanelSettings) -> dict[str, Any]:
    """Figures of the tear sheet beyond IC by horizon and quantile means. For a target other than
    the return the quantiles' next-session means are of its values, and what only a return has (a
    growth of 1, the spread book's Sharpe, drawdown and annual return) is left out."""
    from tweet_signals.evaluation.panel import turnover
    from tweet_signals.evaluation.targets import is_return

    first = settings.horizons[0]
    series = ic_series(frame, first, settings.min_symbols)
    per_session_coverage, coverage_summary = coverage(frame)
    per_quantile = quantile_next_returns(frame, settings.quantiles, settings.min_symbols)
    tradable = is_return(settings.target)
    # Compounding a volume or a range into a "growth of 1" would be a number without a meaning.
    cumulative = quantile_cumulative(per_quantile if tradable else per_quantile.clear())
    final = cumulative.group_by("quantile").agg(pl.col("growth").last()).sort("quantile")
    means = per_quantile.group_by("quantile").agg(pl.col("ret").mean()).sort("quantile")
    spread = spread_series(per_quantile, settings.quantiles)
    return {
        "ic_horizon": first,
        "monthly_ic": monthly_ic(series),
        "ic_decay": ic_decay(frame, settings.min_symbols, target=settings.target),
        "coverage": coverage_summary,
        "quantile_next_return": {
            "mean": {int(q): float(v) for q, v in means.iter_rows()},
            "final_growth": {int(q): float(v) for q, v in final.iter_rows()},
        },
        "turnover_by_horizon": {
            h: turnover(frame, settings.quantiles, settings.min_symbols, lag=h) for h in settings.horizons
        },
        "rank_autocorrelation": {h: rank_autocorrelation(frame, h, settings.min_symbols) for h in settings.horizons},
        "spread_portfolio": spread_portfolio(spread if tradable else spread.clear()),
        "_ic_series": series,
        "_coverage": per_session_coverage,
        "_quantile_cumulative": cumulative,
        "_spread_portfolio": spread,
    }
