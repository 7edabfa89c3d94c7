"""Judge a signal across many symbols at once, the way a signals desk judges a factor.

Conventions follow alphalens (factor on session t, forward returns over the next h sessions,
per-session quantiles by value, mean information coefficient and its IR, quantile turnover),
computed in polars; a test checks them against ``alphalens-reloaded`` on the same fixture.

Inference:
- h = 1: a one-sample t-test of the per-session figures (IC, spread);
- h > 1: forward returns over h sessions overlap, so consecutive figures share h − 1 sessions
  of returns. The test uses the non-overlapping sub-sample (every h-th session from the first,
  Student t with its own degrees of freedom). On 600 seeded null panels of 20 symbols and 250
  sessions it rejected at 5% in 5.8% (h = 5) and 3.8% (h = 20) of them; Newey–West (Bartlett, h
  lags) in 4.5% and 8.8%, Hansen–Hodrick (uniform, h − 1 lags) in 6.5% and 12.2%. The reported
  mean is over every session (as alphalens reports it), the test's own mean is ``test_mean``;
- families: the IC by horizon is the primary family (Holm); the top-minus-bottom spreads by
  horizon a second (Holm); the per-symbol correlations a third (Benjamini–Hochberg: with many
  symbols the question is which ones, at a controlled false-discovery rate).

Definitions (sessions are each symbol's own price sessions):
- forward return over h: close_{t+h} / close_t − 1; with a benchmark every return (forward,
  next-session and same-session) is in excess of the benchmark's over the same sessions. Another
  ``target`` (absolute return, range, abnormal volume: ``targets``) takes the return's place in
  the same columns, so every figure below judges it; the strategy, hit rate, per-session rates
  and costs are for returns only;
- the signal of (symbol, t) is the chosen column when the session has at least ``min_posts``
  posts, else missing;
- IC_t(h): Spearman correlation across the symbols with a signal and a forward return at t
  (at least ``min_symbols`` of them);
- quantile q of (symbol, t): by value, as ``pandas.qcut`` (alphalens): the session's signal
  values are cut at their 1/q, 2/q, … quantiles (linear interpolation) into right-closed bins, so
  tied values share a bin and a constant signal puts every symbol in bin 1 (no spread). Where ties
  make edges coincide pandas refuses the session; here the ties stay in their right-closed bin,
  the top or bottom bin may be empty, and such sessions have no spread (they are counted);
  spread = mean return of the top bin minus the bottom bin's;
- per-session rate of an h-session return r: (1 + r)^(1/h) − 1;
- turnover of a quantile at lag k: the share of its symbols at t that were not in it k sessions
  before; a top-minus-bottom book rebalanced every h sessions trades 2 × (turnover of the top +
  turnover of the bottom) of its legs' value, each unit traded at ``cost_bps``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.evaluation.history import quiet_counts
from tweet_signals.evaluation.movement import movement_figures
from tweet_signals.evaluation.statistics import (
    correlation,
    hit_rate_test,
    load_prices,
    long_flat_strategy,
    rolling_features,
    rule_positions,
    trading_costs,
)
from tweet_signals.evaluation.targets import (
    Target,
    check_movement,
    definition,
    extra_columns,
    finished,
    is_return,
    label,
    target_columns,
)
from tweet_signals.stages.signals import HISTORY_COLUMNS as SIGNAL_HISTORY_COLUMNS
from tweet_signals.stages.signals import with_history
from tweet_signals.storage.compressed import compression, file_format, open_binary

MIN_SYMBOLS = 5  # fewer symbols in a session: no cross-sectional figure for it
THRESHOLD_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)  # z-score thresholds the in-sample fit chooses from
WINDOW_GRID = (10, 20, 40)  # z-score windows the in-sample fit chooses from
# The judged column by default: the mean model score of a session's posts uses only what was known
# when each post was written. ``weighted_score`` weights posts by engagement counted when the posts
# were collected, which for a historical file is after the session (look-ahead).
DEFAULT_COLUMN = "mean_score"
ENGAGEMENT_COLUMNS = frozenset({"weighted_score"})


@dataclass(frozen=True)
class PanelSettings:
    """How a panel is judged."""

    horizons: tuple[int, ...] = (1, 5, 10, 20)
    quantiles: int = 5
    min_posts: int = 5
    min_symbols: int = MIN_SYMBOLS
    signal_column: str = DEFAULT_COLUMN
    window: int = 20
    threshold: float = 0.0
    cost_bps: float = 5.0
    min_sessions: int = 20
    benchmark: str | None = None
    split: date | None = None
    seed: int = 7
    pool: int = 1  # sessions of posts behind each session's signal (1: its own session only)
    movement: tuple[float, float] | None = None  # (up, down) thresholds of the next-session move task
    combine: tuple[str, ...] = ()  # columns of a composite fitted before ``split`` (composite.py)
    target: Target = "return"  # what the signal is judged against (``targets``)

    def __post_init__(self) -> None:
        check_movement(self.target, self.movement)
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


# Yahoo's exchange suffixes for Indian listings (RELIANCE.NS on the NSE, RELIANCE.BO on the BSE):
# posts name the bare ticker, so the symbol of ``RELIANCE.NS.csv`` is RELIANCE.
EXCHANGE_SUFFIXES = (".NS", ".BO")


def price_file_symbol(path: Path) -> str:
    """The symbol a ``<SYMBOL>.csv`` price file (maybe compressed: ``<SYMBOL>.csv.gz``) is for: its
    name upper-cased, without a Yahoo exchange suffix."""
    name = path.name[: -len(compression(path) or "")] if compression(path) else path.name
    symbol = Path(name).stem.upper()
    for suffix in EXCHANGE_SUFFIXES:
        if symbol.endswith(suffix):
            return symbol.removesuffix(suffix)
    return symbol


def load_price_panel(
    directory: Path, close_column: str | None = None, target: str = "return"
) -> dict[str, pl.DataFrame]:
    """One Yahoo-style CSV per symbol (``<SYMBOL>.csv`` with ``Date`` and ``Adj Close`` or ``Close``,
    in any case; ``RELIANCE.NS.csv`` is RELIANCE) → symbol → (session, close). ``Adj Close`` is
    preferred: dividends and splits move ``Close``.
    Another ``target`` adds the columns it reads (``High``, ``Low`` and the raw ``Close`` for
    ``range``, ``Volume`` for ``volume``); a file without them is an error naming it."""
    if not directory.is_dir():
        raise ValueError(f"--prices-dir {directory}: no such folder")
    files = sorted(p for p in directory.iterdir() if file_format(p) == ".csv" and p.is_file())
    if not files:
        raise ValueError(f"--prices-dir {directory}: no <SYMBOL>.csv files in it")
    panel = {}
    for path in files:
        with open_binary(path) as fh:
            header = fh.readline().decode("utf-8", errors="replace")
        column = close_column or ("Adj Close" if "adj close" in header.lower() else "Close")
        prices = load_prices(path, "Date", column, extra_columns(target), target)
        if prices.height:
            panel[price_file_symbol(path)] = prices
    if not panel:
        raise ValueError(f"--prices-dir {directory}: none of its {len(files)} CSV files has usable Date/Close rows")
    return panel


def forward_returns(
    panel: dict[str, pl.DataFrame], horizons: Sequence[int], benchmark: str | None, target: str = "return"
) -> pl.DataFrame:
    """(session, symbol, close, fwd_h for each h, same_day_return: close t−1 → t, next_return:
    close t → t+1) for every symbol; with a benchmark, every return is in excess of the
    benchmark's over the same sessions. For another ``target`` the same columns hold its values
    (``targets``: absolute return, range, abnormal volume), so every figure downstream judges it."""
    frames = []
    returns = [*(f"fwd_{h}" for h in horizons), "same_day_return", "next_return"]
    for symbol, prices in panel.items():
        frames.append(
            prices.sort("session").with_columns(pl.lit(symbol).alias("symbol"), *target_columns(target, horizons))
        )
    out = pl.concat(frames)
    if benchmark is None:
        return out.with_columns(finished(target, returns))
    if benchmark not in panel:
        raise ValueError(f"--benchmark {benchmark}: no {benchmark}.csv in the prices folder")
    bench = out.filter(pl.col("symbol") == benchmark).select(
        "session", *[pl.col(c).alias(f"bench_{c}") for c in returns]
    )
    out = out.filter(pl.col("symbol") != benchmark).join(bench, on="session", how="left")
    relative = out.with_columns(*[(pl.col(c) - pl.col(f"bench_{c}")).alias(c) for c in returns]).drop(
        [f"bench_{c}" for c in returns]
    )
    # abs-return: the absolute value of the excess return, not the difference of absolute values.
    return relative.with_columns(finished(target, returns))


# Attention and surprise: computed from a symbol's previous sessions by the signals stage's formulas.
FAMILY_HISTORY_COLUMNS = frozenset(SIGNAL_HISTORY_COLUMNS)
# Columns ``rolling_features`` derives from a symbol's history (trailing windows, no look-ahead).
HISTORY_COLUMNS = frozenset({"volume_z", "score_z", "score_change", "bull_intensity", "bear_intensity"})


def with_quiet_sessions(signals: pl.DataFrame, returns: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's signals on every price session from its first to its last signal, sessions
    without posts as explicit rows with zero posts (a quiet session is not a missing one)."""
    spans = signals.group_by("symbol").agg(
        pl.col("session").min().alias("_first"), pl.col("session").max().alias("_last")
    )
    calendar = (
        returns.select("session", "symbol")
        .join(spans, on="symbol")
        .filter((pl.col("session") >= pl.col("_first")) & (pl.col("session") <= pl.col("_last")))
        .select("session", "symbol")
    )
    full = calendar.join(signals, on=["session", "symbol"], how="full", coalesce=True)
    return quiet_counts(full).sort("symbol", "session")


def with_derived_columns(
    signals: pl.DataFrame, returns: pl.DataFrame, columns: Sequence[str], window: int
) -> pl.DataFrame:
    """``signals`` on every price session of each symbol (quiet sessions as rows with zero posts)
    with the history columns that ``columns`` need: attention and surprise recomputed (stored
    values come from whatever sessions were stored, a posts file's from the sessions with posts),
    ``score_z`` and the like derived where the signals lack them. Unchanged when none is needed."""
    family = any(c in FAMILY_HISTORY_COLUMNS for c in columns)
    rolling = any(c not in signals.columns and c in HISTORY_COLUMNS for c in columns)
    if not (family or rolling):
        return signals
    signals = with_quiet_sessions(signals, returns)
    if family:
        signals = with_history(signals)
    return rolling_features(signals, window) if rolling else signals


def panel_frame(signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings) -> pl.DataFrame:
    """Returns joined with the signal (missing where a session has too few posts or none). The
    history columns (``score_z``, ``volume_z``, …) are derived per symbol when the signals do not
    carry them."""
    column = settings.signal_column
    signals = with_derived_columns(signals, returns, [column], settings.window)
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


def engagement_warnings(column: str) -> list[str]:
    """What to tell the reader when the judged column weights posts by engagement."""
    if column not in ENGAGEMENT_COLUMNS:
        return []
    return [
        f"{column} weights posts by likes, retweets and replies counted when the posts were collected; for posts "
        "collected after their session (a historical file, a backfill) that is look-ahead. "
        f"Judge {DEFAULT_COLUMN} or bullishness for an honest historical figure."
    ]


def sessions_without_prices(signals: pl.DataFrame, returns: pl.DataFrame, min_posts: int) -> dict[str, Any]:
    """Signal rows (with at least ``min_posts`` posts) of symbols with prices whose session has no
    price row: counted and reported, never dropped silently. Many of them usually mean the
    posts were mapped to another exchange's sessions."""
    priced = returns.select("session", "symbol").unique()
    with_posts = signals.filter(
        (pl.col("n_posts") >= max(1, min_posts)) & pl.col("symbol").is_in(priced["symbol"].unique().to_list())
    )
    missing = with_posts.join(priced, on=["session", "symbol"], how="anti")
    return {
        "rows": missing.height,
        "of": with_posts.height,
        "sessions": sorted({d.isoformat() for d in missing["session"].to_list()})[:10],
    }


# Calendars ``infer_exchange`` chooses among (names ``market.sessions.calendar`` accepts).
EXCHANGE_CANDIDATES = ("NYSE", "NSE", "XLON", "XTKS", "XHKG", "XFRA", "XTSE", "XASX")


def infer_exchange(sessions: Iterable[date]) -> str:
    """The exchange whose trading calendar best matches a price file's dates (Jaccard overlap over
    the file's range): US files match NYSE, Indian ones NSE. Raises when nothing matches well."""
    from tweet_signals.market.sessions import sessions_between

    days = set(sessions)
    if len(days) < 5:
        raise ValueError("too few price dates to infer the exchange; give --exchange")
    first, last = min(days), max(days)
    scores = {}
    for exchange in EXCHANGE_CANDIDATES:
        try:
            calendar = set(sessions_between(first, last, exchange))
        except Exception:  # a calendar that does not cover the range is no candidate
            continue
        scores[exchange] = len(days & calendar) / len(days | calendar) if calendar else 0.0
    best = max(scores, key=lambda e: scores[e], default=None)
    if best is None or scores[best] < 0.9:
        closest = f" (closest: {best}, {scores[best]:.0%} of sessions shared)" if best else ""
        raise ValueError(f"the price dates match no known exchange calendar{closest}; give --exchange")
    return best


def mean_test(values: np.ndarray, horizon: int) -> dict[str, float]:
    """Mean of a per-session series of h-session figures and a test that it is zero: t-test on the
    sessions 0, h, 2h, … (non-overlapping, see the module's notes); two-sided p and a 95%
    interval (Student t). ``mean`` is over every session, ``test_mean`` over the tested ones."""
    from scipy import stats

    values = values[~np.isnan(values)]
    n = len(values)
    tested = values[:: max(1, horizon)]
    k = len(tested)
    mean = float(np.mean(values)) if n else float("nan")
    out = {"mean": mean, "n": n, "test_mean": float("nan"), "test_n": k}
    if k < 3 or float(np.std(tested)) == 0.0:
        nan = float("nan")
        return {**out, "se": nan, "t": nan, "p": 1.0, "low": nan, "high": nan}
    test_mean = float(np.mean(tested))
    se = float(np.std(tested, ddof=1) / np.sqrt(k))
    t = test_mean / se
    half = float(stats.t.ppf(0.975, k - 1)) * se
    return {
        **out,
        "test_mean": test_mean,
        "se": se,
        "t": t,
        "p": float(2 * stats.t.sf(abs(t), k - 1)),
        "low": test_mean - half,
        "high": test_mean + half,
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
    """Rows with a signal in sessions with enough symbols, with their quantile by value (1 =
    lowest; ``pandas.qcut`` bins: ties share a bin, so a bin may be empty)."""
    signal = pl.col("signal")
    edges = [signal.quantile(k / quantiles, interpolation="linear").over("session") for k in range(1, quantiles)]
    rows = frame.filter(signal.is_not_null()).with_columns(pl.len().over("session").alias("_n"))
    above = pl.sum_horizontal([(signal > edge).cast(pl.Int32) for edge in edges])
    return (
        rows.filter(pl.col("_n") >= min_symbols).with_columns((above + 1).cast(pl.Int32).alias("quantile")).drop("_n")
    )


def per_session_rate(value: float, horizon: int) -> float:
    """An h-session return as the constant per-session return that compounds to it."""
    if not np.isfinite(value) or value <= -1:
        return float("nan")
    return float((1 + value) ** (1 / horizon) - 1)


def quantile_figures(
    frame: pl.DataFrame, horizon: int, quantiles: int, min_symbols: int, cost_bps: float = 0.0, target: str = "return"
) -> dict[str, Any]:
    """Mean forward return per quantile, the top-minus-bottom spread (an h-session return, and as
    a per-session rate, before and after costs) with its test, and the per-session spread series
    (for the cumulative chart). For another ``target`` the means and the spread are of its values;
    a range or a volume does not compound or pay costs, so the rates and net figures are None."""
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
    test = mean_test(spread["spread"].to_numpy(), horizon)
    # Ties can leave a session's top or bottom bin empty (pandas.qcut would refuse such a session):
    # it then has no spread, and how many such sessions there were is reported.
    without_extremes = int(per_session["session"].n_unique()) - spread.height
    rotation = turnover(frame, quantiles, min_symbols, lag=horizon)
    traded = 2 * (rotation.get(quantiles, float("nan")) + rotation.get(1, float("nan")))
    cost = traded * cost_bps / 10_000  # per rebalance, i.e. per h sessions
    tradable = is_return(target)
    return {
        "horizon": horizon,
        "mean_return": {int(k): float(v) for k, v in means.iter_rows()},
        "spread_mean": test["mean"],
        "spread_per_session": per_session_rate(test["mean"], horizon) if tradable else None,
        "spread_t": test["t"],
        "spread_p": test["p"],
        "cost_bps": cost_bps if tradable else None,
        "traded_per_rebalance": traded,
        "spread_net": test["mean"] - cost if tradable else None,
        "spread_net_per_session": per_session_rate(test["mean"] - cost, horizon) if tradable else None,
        "n_sessions": test["n"],
        "test_sessions": test["test_n"],
        "sessions_without_top_or_bottom": without_extremes,
        "_spread": spread,
    }


def turnover(frame: pl.DataFrame, quantiles: int, min_symbols: int, lag: int = 1) -> dict[int, float]:
    """Mean share of each quantile's symbols at t that were not in it ``lag`` sessions before
    (alphalens' ``quantile_turnover`` with ``period=lag``)."""
    q = with_quantiles(frame, quantiles, min_symbols)
    members = q.group_by("session", "quantile").agg(pl.col("symbol")).sort("quantile", "session")
    out = {}
    for (quantile,), group in members.group_by("quantile", maintain_order=True):
        sets = [set(s) for s in group["symbol"].to_list()]
        changes = [len(now - before) / len(now) for before, now in zip(sets, sets[lag:], strict=False) if now]
        out[int(quantile)] = float(np.mean(changes)) if changes else float("nan")  # type: ignore[arg-type]
    return dict(sorted(out.items()))


# Per-symbol figures that call or trade a return's direction: None for other targets.
TRADING_FIGURES = (
    *("hit_rate", "hit_rate_base", "hit_rate_p_value", "always_long", "hit_rate_test", "strategy_return"),
    *("buy_and_hold_return", "strategy_exposure", "strategy_sharpe", "buy_and_hold_sharpe"),
    *("exposure_matched_return", "random_timing_p"),
)


def symbol_figures(frame: pl.DataFrame, symbol: str, settings: PanelSettings) -> dict[str, Any]:
    """The single-series figures of one symbol: next-session Spearman (block-bootstrap interval),
    hit rate (Pesaran–Timmermann test), long/flat on the centred signal against buy-and-hold at
    equal exposure (Sharpe ratios; random timing with the same exposure). For a target other than
    the return, the Spearman of the next session's target only: the hit rate and the strategy
    call and trade a return's direction (None)."""
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
    figures = {
        **base,
        "enough_data": True,
        "spearman": None if np.isnan(rho.value) else rho.value,  # NaN: a constant series
        "spearman_ci_low": rho.ci_low,
        "spearman_ci_high": rho.ci_high,
        "p_value": rho.p_value,
    }
    if not is_return(settings.target):
        return {**figures, **dict.fromkeys(TRADING_FIGURES)}
    hit = hit_rate_test(x, y)
    calendar = rows.filter(pl.col("next_return").is_not_null())
    strategy = long_flat_strategy(
        calendar["signal"].fill_null(np.nan).to_numpy().astype(float),
        calendar["next_return"].to_numpy().astype(float),
        settings.threshold,
        settings.cost_bps,
        settings.window,
        seed=settings.seed,
    )
    return {
        **figures,
        "hit_rate": hit["hit_rate"],
        "hit_rate_base": hit["base"],
        "hit_rate_p_value": hit["p"],
        "always_long": hit["always_long"],
        "hit_rate_test": hit.get("test"),
        "strategy_return": strategy["total_return"],
        "buy_and_hold_return": strategy["buy_and_hold_return"],
        # At equal exposure: Sharpe against buy-and-hold's, and against random timing with the same exposure.
        "strategy_exposure": strategy["exposure"],
        "strategy_sharpe": strategy["sharpe_annualised"],
        "buy_and_hold_sharpe": strategy.get("buy_and_hold_sharpe"),
        "exposure_matched_return": strategy.get("exposure_matched_return"),
        "random_timing_p": strategy.get("random_timing_p"),
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels)."""
    return adjusted(p_values, "holm")


def adjusted(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values of one family (statsmodels' ``multipletests``: ``holm``, ``fdr_bh``)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method=method)[1]]


def _ic_rows(frame: pl.DataFrame, settings: PanelSettings) -> list[dict[str, Any]]:
    rows = []
    for h in settings.horizons:
        ic = session_ic(frame, h, settings.min_symbols)
        values = ic["ic"].to_numpy().astype(float)
        test = mean_test(values, h)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        rows.append(
            {
                "horizon": h,
                "ic_mean": test["mean"],
                "ic_test_mean": test["test_mean"],
                "test_sessions": test["test_n"],
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
                    n_random=0,  # the grid compares rules by Sharpe; no random-timing benchmark needed
                )
                sharpes.append(st["sharpe_annualised"])
            if sharpes and float(np.mean(sharpes)) > best[2]:
                best = (threshold, window, float(np.mean(sharpes)))
    return best


def _strategy_mean(
    frame: pl.DataFrame,
    symbols: Sequence[str],
    threshold: float,
    window: int,
    cost_bps: float,
    sessions: tuple[date | None, date | None] = (None, None),
) -> dict[str, float]:
    """Mean over symbols of the long/flat rule's total return (and buy-and-hold's) over the
    sessions in ``[sessions[0], sessions[1])``. The z-scores behind the rule are computed on each
    symbol's whole history, so an out-of-sample part starts with the in-sample sessions as its
    trailing window instead of an empty one."""
    start, end = sessions
    totals, holds = [], []
    for symbol in symbols:
        rows = frame.filter(pl.col("symbol") == symbol).filter(pl.col("next_return").is_not_null()).sort("session")
        inside = np.ones(rows.height, dtype=bool)
        day = rows["session"]
        if start is not None:
            inside &= (day >= start).to_numpy()
        if end is not None:
            inside &= (day < end).to_numpy()
        if inside.sum() < 2:
            continue
        position = rule_positions(rows["signal"].fill_null(np.nan).to_numpy().astype(float), threshold, window)
        position[~inside] = 0.0
        _, costs = trading_costs(position, cost_bps)
        next_return = rows["next_return"].to_numpy().astype(float)
        strategy = position * next_return - costs
        totals.append(float(np.prod(1 + strategy[inside]) - 1))
        holds.append(float(np.prod(1 + next_return[inside]) - 1))
    return {
        "strategy_return_mean": float(np.mean(totals)) if totals else float("nan"),
        "buy_and_hold_return_mean": float(np.mean(holds)) if holds else float("nan"),
    }


def purged_in_sample(frame: pl.DataFrame, split: date, horizons: Sequence[int]) -> pl.DataFrame:
    """The sessions before ``split``, with every forward return that ends on or after ``split``
    removed (purged): an in-sample figure must not use a price from the out-of-sample part."""
    before = frame.filter(pl.col("session") < split).sort("symbol", "session")
    # Sessions left before the split, per symbol, counting the session itself as 0.
    left = (pl.len().over("symbol") - pl.int_range(pl.len()).over("symbol") - 1).alias("_left")
    before = before.with_columns(left)
    return (
        before.with_columns(
            *[pl.when(pl.col("_left") >= h).then(pl.col(f"fwd_{h}")).alias(f"fwd_{h}") for h in horizons],
            pl.when(pl.col("_left") >= 1).then(pl.col("next_return")).alias("next_return"),
        )
        .drop("_left")
        .sort("session", "symbol")
    )


def split_figures(frame: pl.DataFrame, symbols: Sequence[str], settings: PanelSettings) -> dict[str, Any]:
    """In-sample (before ``settings.split``, purged of forward returns that reach past it) and
    out-of-sample (from it) figures side by side; the strategy's threshold and z-score window are
    fitted on the in-sample part only, and its z-scores run on from the in-sample history. For a
    target other than the return there is no strategy to fit (its figures are None)."""
    assert settings.split is not None
    before = purged_in_sample(frame, settings.split, settings.horizons)
    after = frame.filter(pl.col("session") >= settings.split)
    tradable = is_return(settings.target)
    threshold, window, sharpe = fit_strategy(before, symbols, settings) if tradable else (None, None, None)
    parts = {}
    ranges: dict[str, tuple[date | None, date | None]] = {
        "in_sample": (None, settings.split),
        "out_of_sample": (settings.split, None),
    }
    for name, part in (("in_sample", before), ("out_of_sample", after)):
        q1 = quantile_figures(
            part, settings.horizons[0], settings.quantiles, settings.min_symbols, settings.cost_bps, settings.target
        )
        strategy_frame = before if name == "in_sample" else frame
        strategy = (
            _strategy_mean(strategy_frame, symbols, threshold, window, settings.cost_bps, ranges[name])
            if threshold is not None and window is not None
            else {"strategy_return_mean": None, "buy_and_hold_return_mean": None}
        )
        parts[name] = {
            "sessions": int(part["session"].n_unique()),
            "horizons": _ic_rows(part, settings),
            "spread_mean": q1["spread_mean"],
            "spread_per_session": q1["spread_per_session"],
            "spread_t": q1["spread_t"],
            **strategy,
        }
        if settings.movement is not None:
            # In sample: the purged part (the last session's move ends out of sample). Out of sample:
            # the whole history, so the trailing-mean call runs on from the in-sample signals.
            up, down = settings.movement
            calls = before if name == "in_sample" else frame
            parts[name]["movement"] = movement_figures(
                calls.select("symbol", "session", "signal", "next_return"), up, down, settings.window, ranges[name]
            )
    return {
        "split": settings.split.isoformat(),
        "purged_sessions": max(settings.horizons),
        "fitted_threshold": threshold,
        "fitted_window": window,
        "in_sample_sharpe_mean": sharpe,
        **parts,
    }


def _attach(rows: list[dict[str, Any]], key: str, p_key: str, method: str, out_key: str) -> int:
    """Adjust the p-values ``p_key`` of ``rows`` as one family; store them as ``out_key``."""
    family = [r for r in rows if r.get(p_key) is not None and r.get("n_sessions", 0) >= 3]
    for row, p in zip(family, adjusted([r[p_key] for r in family], method), strict=True):
        row[out_key] = p
    return len(family)


def evaluate_panel(signals: pl.DataFrame, returns: pl.DataFrame, settings: PanelSettings) -> dict[str, Any]:
    """Every panel figure, the per-symbol table, the multiple-testing account and a verdict (a
    composite of several columns is judged by ``composite.evaluate_composite``, which builds on
    this)."""
    frame = panel_frame(signals, returns, settings)
    symbols = sorted(frame.filter(pl.col("signal").is_not_null())["symbol"].unique().to_list())
    n_sessions = int(frame.filter(pl.col("signal").is_not_null())["session"].n_unique())
    horizons = _ic_rows(frame, settings)
    quantile = [
        quantile_figures(frame, h, settings.quantiles, settings.min_symbols, settings.cost_bps, settings.target)
        for h in settings.horizons
    ]
    per_symbol = [symbol_figures(frame, s, settings) for s in symbols]
    families = {
        "ic": {"size": _attach(horizons, "horizon", "p_value", "holm", "p_holm"), "adjustment": "Holm"},
        "spread": {"size": _attach(quantile, "horizon", "spread_p", "holm", "spread_p_holm"), "adjustment": "Holm"},
        "per_symbol": {
            "size": _attach(per_symbol, "symbol", "p_value", "fdr_bh", "p_bh"),
            "adjustment": "Benjamini–Hochberg",
        },
    }
    spreads = {q["horizon"]: q.pop("_spread") for q in quantile}
    warnings = engagement_warnings(settings.signal_column)
    missing = sessions_without_prices(signals, returns, settings.min_posts)
    if missing["rows"]:
        warnings.append(
            f"{missing['rows']} of {missing['of']} (symbol, session) signals fall on sessions without a price row "
            f"(e.g. {', '.join(missing['sessions'][:3])}) and are not judged; many mean the posts were mapped to "
            "another exchange's sessions (see --exchange)."
        )
    result: dict[str, Any] = {
        "mode": "panel",
        "n_symbols": len(symbols),
        "n_sessions": n_sessions,
        "signal_column": settings.signal_column,
        "target": settings.target,
        "target_definition": definition(settings.target, settings.benchmark),
        "benchmark": settings.benchmark,
        "returns": f"in excess of {settings.benchmark}" if settings.benchmark else "raw",
        "min_posts": settings.min_posts,
        "min_symbols": settings.min_symbols,
        "quantiles": settings.quantiles,
        "pool": settings.pool,
        # Costs are paid on returns; a range or a volume has none to pay them from.
        "cost_bps": settings.cost_bps if is_return(settings.target) else None,
        "horizons": horizons,
        "quantile_returns": quantile,
        "turnover": turnover(frame, settings.quantiles, settings.min_symbols),
        "per_symbol": per_symbol,
        "sessions_without_prices": missing,
        "tests": {
            "families": families,
            "n": families["ic"]["size"],
            "adjustment": "Holm",
            "family": "one IC per horizon (the claim the verdict makes); spreads by horizon and per-symbol "
            "correlations are separate families",
            "inference": "h = 1: t-test over sessions; h > 1: t-test over every h-th session (non-overlapping)",
        },
        "warnings": warnings,
    }
    if settings.movement is not None:
        up, down = settings.movement
        result["movement"] = movement_figures(
            frame.select("symbol", "session", "signal", "next_return"), up, down, settings.window
        )
    if settings.split is not None:
        result["split"] = split_figures(frame, symbols, settings)
    result["verdict"] = panel_verdict(result)
    result["_spreads"] = spreads
    result["_frame"] = frame
    return result


def panel_verdict(result: dict[str, Any]) -> str:
    """Plain words: what the panel shows, counting every test made."""
    n_tests = result["tests"]["n"]
    target = result.get("target", "return")
    tradable = is_return(target)
    excess = ""
    if result["benchmark"]:
        excess = f", returns in excess of {result['benchmark']}" if tradable else f", relative to {result['benchmark']}"
    head = (
        f"Signal: {result['signal_column']}; target: {label(target)}; "
        f"{result['n_symbols']} symbol{'' if result['n_symbols'] == 1 else 's'}, "
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
        f"h={r['horizon']}: mean IC {r['ic_mean']:+.3f} (t {r['ic_t']:+.2f}"
        + (f" on every {r['horizon']}th session, mean there {r['ic_test_mean']:+.3f}" if r["horizon"] > 1 else "")
        + f", Holm p {r.get('p_holm', 1.0):.3f})"
        for r in usable
    )
    parts.append(f"Rank IC by horizon: {ic_text}.")
    significant = [r for r in usable if r.get("p_holm", 1.0) < 0.05]
    if result.get("composite"):
        # The composite's weights were fitted on the in-sample sessions: only the out-of-sample
        # figures can show skill, so the claim rests on them (Holm over the horizons there).
        claims = [r for r in result["split"]["out_of_sample"]["horizons"] if r["n_sessions"] >= 3]
        for row, p_holm in zip(claims, holm([r["p_value"] for r in claims]), strict=True):
            row["p_holm"] = p_holm
        significant = [r for r in claims if r["p_holm"] < 0.05]
        parts.append("The composite was fitted in sample: the figures above include those sessions.")
        n_tests = len(claims)
    if significant:
        best = max(significant, key=lambda r: abs(r["ic_t"]))
        forward = "forward return" if tradable else f"forward {label(target)}"
        direction = (
            f"higher signal, higher {forward}"
            if best["ic_mean"] > 0
            else f"higher signal, lower {forward}" + (" (contrarian)" if tradable else "")
        )
        parts.append(
            f"Evidence of cross-sectional skill at horizon {best['horizon']} after Holm's adjustment "
            f"over the {n_tests} horizons{' out of sample' if result.get('composite') else ''} ({direction})."
        )
    else:
        parts.append(
            f"No horizon survives Holm's adjustment over the {n_tests} horizons: no evidence of cross-sectional skill."
        )
    q = result["quantile_returns"][0]
    if q["n_sessions"] and not tradable:
        parts.append(
            f"Top minus bottom quantile at h={q['horizon']}: {format_value(q['spread_mean'], target)} of "
            f"{label(target)} (t {q['spread_t']:+.2f}); no per-session rate, costs or long/flat strategy: they "
            "apply to returns only."
        )
    elif q["n_sessions"]:
        span = "a session" if q["horizon"] == 1 else f"over {q['horizon']} sessions"
        parts.append(
            f"Top minus bottom quantile at h={q['horizon']}: {q['spread_mean']:+.2%} {span} "
            f"(t {q['spread_t']:+.2f}); after {q['cost_bps']:g} bps on the {q['traded_per_rebalance']:.0%} of a "
            f"leg's value traded per rebalance: {q['spread_net_per_session']:+.2%} a session."
        )
    movement = result.get("movement")
    if movement and movement.get("n"):
        parts.append(
            f"Next-session direction (dead band {movement['down']:+.2%} … {movement['up']:+.2%} dropped): accuracy "
            f"{movement['accuracy']:.1%}, MCC {movement['mcc']:+.3f} over {movement['n']} (symbol, session) calls."
        )
    split = result.get("split")
    if split:
        outside, inside = (split[part]["horizons"][0]["ic_mean"] for part in ("out_of_sample", "in_sample"))
        parts.append(
            f"Out of sample (from {split['split']}): mean IC at h={usable[0]['horizon']} "
            f"{outside:+.3f} against {inside:+.3f} in sample."
        )
    if result.get("composite"):
        parts.append(result["composite"]["verdict"])
    parts.extend(f"Warning: {w}" for w in result.get("warnings", []))
    parts.append(
        "Correlation in one sample is evidence, not a tradable edge: costs, capacity and regime changes weaken it."
    )
    return " ".join(parts)


def format_value(value: float | None, target: str) -> str:
    """A target's value or difference in its own units: a percentage for returns and ranges
    (fractions of a price), log points for volume."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:+.3f} log points" if target == "volume" else f"{value:+.2%}"


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no NaN), dates as ISO strings, and the
    private ``_`` entries (chart frames) left out at every level."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):  # keys starting with "_" hold frames for the charts, not JSON
        return {str(k): json_ready(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
