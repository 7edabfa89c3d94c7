"""Judge a signal across many symbols at once, the way a signals desk judges a factor.

Conventions follow alphalens (factor on session t, forward returns over the next h sessions,
per-session quantiles, mean information coefficient and its IR), computed in polars; the
inference uses the field's libraries: Newey–West (HAC) standard errors from statsmodels for
the mean IC and the quantile spread (forward returns over h sessions overlap, so the per-session
figures are autocorrelated), Holm's step-down adjustment from statsmodels over every test the
report makes, and the stationary block bootstrap (``arch``) of ``statistics.correlation`` for the
per-symbol correlations.

Definitions (sessions are each symbol's own price sessions):
- forward return over h: close_{t+h} / close_t − 1; market-relative: minus the benchmark's over
  the same sessions;
- the signal of (symbol, t) is the chosen column when the session has at least ``min_posts``
  posts, else missing;
- IC_t(h): Spearman correlation across the symbols with a signal and a forward return at t
  (at least ``min_symbols`` of them);
- quantile q of (symbol, t): the signal's rank among that session's symbols, cut into
  ``quantiles`` equal groups (1 = lowest signal); spread = mean return of the top group minus
  the bottom group's;
- turnover of a quantile at t: the share of its symbols at t that were not in it at t−1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.evaluation.statistics import correlation, hit_rate_test, load_prices, long_flat_strategy

MIN_SYMBOLS = 5  # fewer symbols in a session: no cross-sectional figure for it
THRESHOLD_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # z-score thresholds the in-sample fit chooses from
WINDOW_GRID = (10, 20, 40)  # z-score windows the in-sample fit chooses from


@dataclass(frozen=True)
class PanelSettings:
    """How a panel is judged."""

    horizons: tuple[int, ...] = (1, 5, 10, 20)
    quantiles: int = 5
    min_posts: int = 5
    min_symbols: int = MIN_SYMBOLS
    signal_column: str = "weighted_score"
    window: int = 20
    threshold: float = 0.0
    cost_bps: float = 5.0
    min_sessions: int = 20
    benchmark: str | None = None
    split: date | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        if self.quantiles < 2:
            raise ValueError(f"--quantiles {self.quantiles}: need at least 2 groups")
        if self.min_symbols < self.quantiles:
            raise ValueError(
                f"--min-symbols {self.min_symbols} is below --quantiles {self.quantiles}: a quantile would be empty"
            )


def parse_horizons(spec: str) -> tuple[int, ...]:
    """``"1,5,10,20"`` → (1, 5, 10, 20); anything but positive integers is a clear error."""
    try:
        values = tuple(sorted({int(part) for part in spec.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"--horizons {spec!r}: give positive whole numbers of sessions, e.g. 1,5,10,20") from None
    if not values or values[0] < 1:
        raise ValueError(f"--horizons {spec!r}: give positive whole numbers of sessions, e.g. 1,5,10,20")
    return values


def load_price_panel(directory: Path, close_column: str | None = None) -> dict[str, pl.DataFrame]:
    """One Yahoo-style CSV per symbol (``<SYMBOL>.csv`` with ``Date`` and ``Adj Close`` or ``Close``)
    → symbol → (session, close). ``Adj Close`` is preferred: dividends and splits move ``Close``."""
    if not directory.is_dir():
        raise ValueError(f"--prices-dir {directory}: no such folder")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if not files:
        raise ValueError(f"--prices-dir {directory}: no <SYMBOL>.csv files in it")
    panel = {}
    for path in files:
        header = path.open(encoding="utf-8", errors="replace").readline()
        column = close_column or ("Adj Close" if "Adj Close" in header else "Close")
        prices = load_prices(path, "Date", column)
        if prices.height:
            panel[path.stem.upper()] = prices
    if not panel:
        raise ValueError(f"--prices-dir {directory}: none of its {len(files)} CSV files has usable Date/Close rows")
    return panel


def forward_returns(panel: dict[str, pl.DataFrame], horizons: Sequence[int], benchmark: str | None) -> pl.DataFrame:
    """(session, symbol, fwd_h for each h, ret_1d: close t−1 → t, next_return) for every symbol; with
    a benchmark, the fwd_h are in excess of the benchmark's over the same sessions."""
    frames = []
    for symbol, prices in panel.items():
        close = pl.col("close")
        frames.append(
            prices.sort("session").with_columns(
                pl.lit(symbol).alias("symbol"),
                *[(close.shift(-h) / close - 1).alias(f"fwd_{h}") for h in horizons],
                (close / close.shift(1) - 1).alias("same_day_return"),
                (close.shift(-1) / close - 1).alias("next_return"),
            )
        )
    out = pl.concat(frames)
    if benchmark is None:
        return out
    if benchmark not in panel:
        raise ValueError(f"--benchmark {benchmark}: no {benchmark}.csv in the prices folder")
    bench = out.filter(pl.col("symbol") == benchmark).select(
        "session", *[pl.col(f"fwd_{h}").alias(f"bench_{h}") for h in horizons]
    )
    out = out.filter(pl.col("symbol") != benchmark).join(bench, on="session", how="left")
    return out.with_columns(*[(pl.col(f"fwd_{h}") - pl.col(f"bench_{h}")).alias(f"fwd_{h}") for h in horizons]).drop(
        [f"bench_{h}" for h in horizons]
    )


def panel_frame(signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings) -> pl.DataFrame:
    """Returns joined with the signal (missing where a session has too few posts or none)."""
    column = settings.signal_column
    if column not in signals.columns:
        raise ValueError(f"no column {column!r} in the signals; they have {sorted(signals.columns)}")
    usable = signals.select(
        "session",
        "symbol",
        pl.when(pl.col("n_posts") >= settings.min_posts).then(pl.col(column).cast(pl.Float64)).alias("signal"),
        pl.col("n_posts"),
    )
    symbols = usable["symbol"].unique().to_list()
    return (
        returns.filter(pl.col("symbol").is_in(symbols))
        .join(usable, on=["session", "symbol"], how="left")
        .sort("session", "symbol")
    )


def hac_mean(values: np.ndarray, lags: int) -> dict[str, float]:
    """Mean of a per-session series with a Newey–West standard error (``lags`` lags): t, two-sided
    p and 95% interval."""
    import statsmodels.api as sm

    values = values[~np.isnan(values)]
    n = len(values)
    if n < 3 or float(np.std(values)) == 0.0:
        mean = float(np.mean(values)) if n else float("nan")
        return {
            "mean": mean,
            "se": float("nan"),
            "t": float("nan"),
            "p": 1.0,
            "low": float("nan"),
            "high": float("nan"),
            "n": n,
        }
    fit = sm.OLS(values, np.ones(n)).fit(cov_type="HAC", cov_kwds={"maxlags": max(1, lags)})
    se = float(fit.bse[0])
    mean = float(fit.params[0])
    return {
        "mean": mean,
        "se": se,
        "t": float(fit.tvalues[0]),
        "p": float(fit.pvalues[0]),
        "low": mean - 1.96 * se,
        "high": mean + 1.96 * se,
        "n": n,
    }


def session_ic(frame: pl.DataFrame, horizon: int, min_symbols: int) -> pl.DataFrame:
    """(session, ic, n_symbols): the cross-sectional Spearman IC of each session with enough symbols."""
    fwd = f"fwd_{horizon}"
    return (
        frame.filter(pl.col("signal").is_not_null() & pl.col(fwd).is_not_null())
        .group_by("session")
        .agg(pl.corr("signal", fwd, method="spearman").alias("ic"), pl.len().alias("n_symbols"))
        .filter((pl.col("n_symbols") >= min_symbols) & pl.col("ic").is_not_nan())
        .sort("session")
    )


def with_quantiles(frame: pl.DataFrame, quantiles: int, min_symbols: int) -> pl.DataFrame:
    """Rows with a signal in sessions with enough symbols, with their quantile (1 = lowest)."""
    ranked = frame.filter(pl.col("signal").is_not_null()).with_columns(
        pl.col("signal").rank("ordinal").over("session").alias("_rank"), pl.len().over("session").alias("_n")
    )
    return (
        ranked.filter(pl.col("_n") >= min_symbols)
        .with_columns(((pl.col("_rank") - 1) * quantiles // pl.col("_n") + 1).cast(pl.Int32).alias("quantile"))
        .drop("_rank", "_n")
    )


def quantile_figures(frame: pl.DataFrame, horizon: int, quantiles: int, min_symbols: int) -> dict[str, Any]:
    """Mean forward return per quantile, the top-minus-bottom spread with a HAC t, and the
    per-session spread series (for the cumulative chart)."""
    fwd = f"fwd_{horizon}"
    q = with_quantiles(frame.filter(pl.col(fwd).is_not_null()), quantiles, min_symbols)
    per_session = q.group_by("session", "quantile").agg(pl.col(fwd).mean().alias("ret")).sort("session", "quantile")
    means = per_session.group_by("quantile").agg(pl.col("ret").mean()).sort("quantile")
    wide = per_session.pivot(on="quantile", index="session", values="ret").sort("session")
    top, bottom = str(quantiles), "1"
    if top in wide.columns and bottom in wide.columns:
        spread = wide.select("session", (pl.col(top) - pl.col(bottom)).alias("spread")).drop_nulls()
    else:
        spread = pl.DataFrame(schema={"session": pl.Date, "spread": pl.Float64})
    test = hac_mean(spread["spread"].to_numpy(), horizon)
    return {
        "horizon": horizon,
        "mean_return": {int(k): float(v) for k, v in means.iter_rows()},
        "spread_mean": test["mean"],
        "spread_t": test["t"],
        "spread_p": test["p"],
        "n_sessions": test["n"],
        "_spread": spread,
    }


def turnover(frame: pl.DataFrame, quantiles: int, min_symbols: int) -> dict[int, float]:
    """Mean share of each quantile's symbols that are new since the previous session."""
    q = with_quantiles(frame, quantiles, min_symbols)
    members = q.group_by("session", "quantile").agg(pl.col("symbol")).sort("quantile", "session")
    out = {}
    for (quantile,), group in members.group_by("quantile", maintain_order=True):
        sets = [set(s) for s in group["symbol"].to_list()]
        changes = [len(now - before) / len(now) for before, now in pairwise(sets) if now]
        out[int(quantile)] = float(np.mean(changes)) if changes else float("nan")  # type: ignore[arg-type]
    return dict(sorted(out.items()))


def symbol_figures(frame: pl.DataFrame, symbol: str, settings: PanelSettings) -> dict[str, Any]:
    """The single-series figures of one symbol: next-session Spearman (block-bootstrap interval),
    hit rate against its base rate, long/flat on the centred signal against buy-and-hold."""
    rows = frame.filter(pl.col("symbol") == symbol).sort("session")
    with_signal = rows.filter(pl.col("signal").is_not_null())
    if with_signal.height:
        first, last = with_signal["session"].min(), with_signal["session"].max()
        rows = rows.filter((pl.col("session") >= first) & (pl.col("session") <= last))
    usable = rows.filter(pl.col("signal").is_not_null() & pl.col("next_return").is_not_null())
    base: dict[str, Any] = {
        "symbol": symbol,
        "n_sessions": usable.height,
        "n_posts": int(rows["n_posts"].fill_null(0).sum()),
    }
    if usable.height < settings.min_sessions:
        return {
            **base,
            "spearman": None,
            "p_value": None,
            "hit_rate": None,
            "hit_rate_base": None,
            "enough_data": False,
        }
    x = usable["signal"].to_numpy().astype(float)
    y = usable["next_return"].to_numpy().astype(float)
    rho = correlation(x, y, "spearman", settings.seed, n_boot=500)  # block-bootstrap interval
    hit = hit_rate_test(x, y)
    calendar = rows.filter(pl.col("next_return").is_not_null())
    strategy = long_flat_strategy(
        calendar["signal"].fill_null(np.nan).to_numpy().astype(float),
        calendar["next_return"].to_numpy().astype(float),
        settings.threshold,
        settings.cost_bps,
        settings.window,
    )
    return {
        **base,
        "enough_data": True,
        "spearman": None if np.isnan(rho.value) else rho.value,  # NaN: a constant series
        "spearman_ci_low": rho.ci_low,
        "spearman_ci_high": rho.ci_high,
        "p_value": rho.p_value,
        "hit_rate": hit["hit_rate"],
        "hit_rate_base": hit["base"],
        "hit_rate_p_value": hit["p"],
        "always_long": hit["always_long"],
        "strategy_return": strategy["total_return"],
        "buy_and_hold_return": strategy["buy_and_hold_return"],
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


def _ic_rows(frame: pl.DataFrame, settings: PanelSettings) -> list[dict[str, Any]]:
    rows = []
    for h in settings.horizons:
        ic = session_ic(frame, h, settings.min_symbols)
        values = ic["ic"].to_numpy().astype(float)
        test = hac_mean(values, h)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        rows.append(
            {
                "horizon": h,
                "ic_mean": test["mean"],
                "ic_t": test["t"],
                "ic_ir": test["mean"] / std if std and std > 0 else float("nan"),
                "ic_ci_low": test["low"],
                "ic_ci_high": test["high"],
                "p_value": test["p"],
                "n_sessions": test["n"],
                "mean_symbols": float(ic["n_symbols"].mean()) if ic.height else 0.0,  # type: ignore[arg-type]
            }
        )
    return rows


def fit_strategy(frame: pl.DataFrame, symbols: Sequence[str], settings: PanelSettings) -> tuple[float, int, float]:
    """The (threshold, window) of the long/flat rule with the best mean Sharpe across symbols on
    ``frame`` (the in-sample part), and that Sharpe."""
    best = (settings.threshold, settings.window, -np.inf)
    for window in WINDOW_GRID:
        for threshold in THRESHOLD_GRID:
            sharpes = []
            for symbol in symbols:
                rows = frame.filter(pl.col("symbol") == symbol).filter(pl.col("next_return").is_not_null())
                if rows["signal"].drop_nulls().len() < settings.min_sessions:
                    continue
                st = long_flat_strategy(
                    rows["signal"].fill_null(np.nan).to_numpy().astype(float),
                    rows["next_return"].to_numpy().astype(float),
                    threshold,
                    settings.cost_bps,
                    window,
                )
                sharpes.append(st["sharpe_annualised"])
            if sharpes and float(np.mean(sharpes)) > best[2]:
                best = (threshold, window, float(np.mean(sharpes)))
    return best


def _strategy_mean(
    frame: pl.DataFrame, symbols: Sequence[str], threshold: float, window: int, cost_bps: float
) -> dict[str, float]:
    totals, holds = [], []
    for symbol in symbols:
        rows = frame.filter(pl.col("symbol") == symbol).filter(pl.col("next_return").is_not_null())
        if rows.height < 2:
            continue
        st = long_flat_strategy(
            rows["signal"].fill_null(np.nan).to_numpy().astype(float),
            rows["next_return"].to_numpy().astype(float),
            threshold,
            cost_bps,
            window,
        )
        totals.append(st["total_return"])
        holds.append(st["buy_and_hold_return"])
    return {
        "strategy_return_mean": float(np.mean(totals)) if totals else float("nan"),
        "buy_and_hold_return_mean": float(np.mean(holds)) if holds else float("nan"),
    }


def split_figures(frame: pl.DataFrame, symbols: Sequence[str], settings: PanelSettings) -> dict[str, Any]:
    """In-sample (before ``settings.split``) and out-of-sample (from it) figures side by side; the
    strategy's threshold and z-score window are fitted on the in-sample part only."""
    assert settings.split is not None
    before = frame.filter(pl.col("session") < settings.split)
    after = frame.filter(pl.col("session") >= settings.split)
    threshold, window, sharpe = fit_strategy(before, symbols, settings)
    parts = {}
    for name, part in (("in_sample", before), ("out_of_sample", after)):
        q1 = quantile_figures(part, settings.horizons[0], settings.quantiles, settings.min_symbols)
        parts[name] = {
            "sessions": int(part["session"].n_unique()),
            "horizons": _ic_rows(part, settings),
            "spread_mean": q1["spread_mean"],
            "spread_t": q1["spread_t"],
            **_strategy_mean(part, symbols, threshold, window, settings.cost_bps),
        }
    return {
        "split": settings.split.isoformat(),
        "fitted_threshold": threshold,
        "fitted_window": window,
        "in_sample_sharpe_mean": sharpe,
        **parts,
    }


def evaluate_panel(signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings) -> dict[str, Any]:
    """Every panel figure, the per-symbol table, the multiple-testing account and a verdict."""
    frame = panel_frame(signals, returns, settings)
    symbols = sorted(frame.filter(pl.col("signal").is_not_null())["symbol"].unique().to_list())
    n_sessions = int(frame.filter(pl.col("signal").is_not_null())["session"].n_unique())
    horizons = _ic_rows(frame, settings)
    quantile = [quantile_figures(frame, h, settings.quantiles, settings.min_symbols) for h in settings.horizons]
    per_symbol = [symbol_figures(frame, s, settings) for s in symbols]
    # The family of tests the report can claim from: one IC per horizon, one correlation per symbol.
    family = [("ic", r["horizon"], r["p_value"]) for r in horizons if r["n_sessions"] >= 3]
    family += [("symbol", r["symbol"], r["p_value"]) for r in per_symbol if r["p_value"] is not None]
    adjusted = holm([p for _, _, p in family])
    for (kind, key, _), p_holm in zip(family, adjusted, strict=True):
        target = next(
            r for r in (horizons if kind == "ic" else per_symbol) if r["horizon" if kind == "ic" else "symbol"] == key
        )
        target["p_holm"] = p_holm
    spreads = {q["horizon"]: q.pop("_spread") for q in quantile}
    result: dict[str, Any] = {
        "mode": "panel",
        "n_symbols": len(symbols),
        "n_sessions": n_sessions,
        "signal_column": settings.signal_column,
        "benchmark": settings.benchmark,
        "returns": f"in excess of {settings.benchmark}" if settings.benchmark else "raw",
        "min_posts": settings.min_posts,
        "min_symbols": settings.min_symbols,
        "quantiles": settings.quantiles,
        "horizons": horizons,
        "quantile_returns": quantile,
        "turnover": turnover(frame, settings.quantiles, settings.min_symbols),
        "per_symbol": per_symbol,
        "tests": {"n": len(family), "adjustment": "Holm", "family": "one IC per horizon + one correlation per symbol"},
    }
    if settings.split is not None:
        result["split"] = split_figures(frame, symbols, settings)
    result["verdict"] = panel_verdict(result)
    result["_spreads"] = spreads
    result["_frame"] = frame
    return result


def panel_verdict(result: dict[str, Any]) -> str:
    """Plain words: what the panel shows, counting every test made."""
    n_tests = result["tests"]["n"]
    excess = f", returns in excess of {result['benchmark']}" if result["benchmark"] else ""
    head = (
        f"Signal: {result['signal_column']}; {result['n_symbols']} symbol{'' if result['n_symbols'] == 1 else 's'}, "
        f"{result['n_sessions']} sessions with a signal{excess}."
    )
    usable = [r for r in result["horizons"] if r["n_sessions"] >= 3]
    if not usable:
        return (
            f"{head} No cross-sectional figure: no session had {result['min_symbols']} or more symbols with a signal "
            "and a forward return, so the panel cannot rank symbols against each other; see the per-symbol table."
        )
    parts = [head]
    ic_text = "; ".join(
        f"h={r['horizon']}: mean IC {r['ic_mean']:+.3f} (t {r['ic_t']:+.2f}, Holm p {r.get('p_holm', 1.0):.3f})"
        for r in usable
    )
    parts.append(f"Rank IC by horizon: {ic_text}.")
    significant = [r for r in usable if r.get("p_holm", 1.0) < 0.05]
    if significant:
        best = max(significant, key=lambda r: abs(r["ic_t"]))
        direction = (
            "higher signal, higher forward return"
            if best["ic_mean"] > 0
            else "higher signal, lower forward return (contrarian)"
        )
        parts.append(
            f"Evidence of cross-sectional skill at horizon {best['horizon']} after Holm's adjustment "
            f"over {n_tests} tests ({direction})."
        )
    else:
        parts.append(
            f"No horizon survives Holm's adjustment over {n_tests} tests: no evidence of cross-sectional skill."
        )
    q = result["quantile_returns"][0]
    if q["n_sessions"]:
        parts.append(
            f"Top minus bottom quantile at h={q['horizon']}: {q['spread_mean']:+.2%} a session "
            f"(t {q['spread_t']:+.2f})."
        )
    split = result.get("split")
    if split:
        outside, inside = (split[part]["horizons"][0]["ic_mean"] for part in ("out_of_sample", "in_sample"))
        parts.append(
            f"Out of sample (from {split['split']}): mean IC at h={usable[0]['horizon']} "
            f"{outside:+.3f} against {inside:+.3f} in sample."
        )
    parts.append(
        "Correlation in one sample is evidence, not a tradable edge: costs, capacity and regime changes weaken it."
    )
    return " ".join(parts)


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no NaN) and dates as ISO strings."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
