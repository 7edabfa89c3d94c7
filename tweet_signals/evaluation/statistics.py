"""Judge a signal against prices with no look-ahead.

The only alignment offered pairs the signal of session t (built from posts that count for t,
i.e. up to t's close) with the return from close t to close t+1. The calendar is the price
file's sessions between the first and last signal: a session without a usable signal (no posts,
or fewer than ``min_posts``) is a gap in that calendar, never a reason to shift rows. Lead-lag
correlations are computed on the calendar and labelled by lag, so "returns drive sentiment"
shows up at lag ≤ 0 instead of passing for a prediction.

Baselines are the ones a signal must beat: the hit rate is tested against the rate a signal
with the same share of bullish calls would reach by chance (Pesaran–Timmermann; for an
always-bullish signal, the share of up sessions, and nothing to test), and the long/flat strategy
trades a *centred* signal (its z-score against the previous ``z_window`` signals) and is judged
at equal exposure: its Sharpe against buy-and-hold's (a ratio that does not change with the share
of sessions invested), and its total return against random timing with the same exposure.
The Granger test asks whether past signals add to past returns in explaining today's return.

Formulas (per symbol, sessions in order, sessions without posts kept as rows with 0 posts):
- ``volume_z``: (n_posts_t − mean) / std over the previous ``window`` sessions (t excluded);
- ``score_z``: the same for ``mean_score`` (sessions without posts excluded from the window; the
  mean score, not the engagement-weighted one, so the feature uses only what was known at post
  time);
- ``score_change``: mean_score_t − mean_score_{t−1};
- ``bull_intensity`` / ``bear_intensity``: n_bullish / n_posts and n_bearish / n_posts.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from tweet_signals.evaluation.targets import finished, is_return, label, missing_columns_message, target_columns
from tweet_signals.storage.compressed import read_bytes

MIN_SESSIONS = 20
LAGS = range(-5, 6)
GRANGER_LAGS = 3
GRANGER_MIN_ROWS = 30  # complete rows needed before the F-test's p-value means anything
PERIODS_PER_YEAR = 252


def load_prices(
    path: Path,
    date_column: str = "Date",
    close_column: str = "Close",
    extra: Mapping[str, str] | None = None,
    target: str = "return",
) -> pl.DataFrame:
    """Daily closes as (session, close), sorted, one row per date, non-positive closes dropped
    (column names matched without regard to case).

    ``extra`` (frame name → CSV column, e.g. ``{"volume": "Volume"}``) adds the columns ``target``
    reads, as numbers; a row missing one of them is kept (its target is missing, the calendar
    stays whole). A missing extra column is an error naming it and the target."""
    frame = pl.read_csv(io.BytesIO(read_bytes(path)), infer_schema_length=0)
    # Column names match whatever their case or surrounding spaces (``close``, ``Adj Close ``):
    # exports from other tools than Yahoo write them in lower case.
    named = {c.strip().lower(): c for c in frame.columns}
    date_column, close_column = (named.get(c.strip().lower(), c) for c in (date_column, close_column))
    extra = {k: named.get(c.strip().lower(), c) for k, c in (extra or {}).items()}
    missing = {date_column, close_column} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} has no column(s) {sorted(missing)}; it has {frame.columns} (see --price-columns)")
    absent = list(dict.fromkeys(c for c in extra.values() if c not in frame.columns))
    if absent:
        raise ValueError(missing_columns_message(target, absent, path, frame.columns))
    return (
        frame.select(
            pl.col(date_column).str.slice(0, 10).str.to_date(strict=False).alias("session"),
            pl.col(close_column).cast(pl.Float64, strict=False).alias("close"),
            *[pl.col(column).cast(pl.Float64, strict=False).alias(name) for name, column in extra.items()],
        )
        .drop_nulls(["session", "close"])
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
        pl.when(pl.col("n_posts") > 0).then(pl.col("mean_score")).otherwise(None).alias("_score")
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


def align_next_return(
    signal: pl.DataFrame,
    prices: pl.DataFrame,
    column: str = "mean_score",
    min_posts: int = 0,
    keep_gaps: bool = False,
    target: str = "return",
) -> pl.DataFrame:
    """Pair the signal of session t with the return from close t to the next close (or with
    the next session's value of another ``target``: ``targets``; ``prices`` then carries the
    columns that target reads).

    ``signal``: one symbol's rows with ``session`` and ``column`` (and ``n_posts`` when
    ``min_posts`` > 0: sessions with fewer posts carry no signal). Nothing after close t enters
    the row of session t. Without ``keep_gaps``: only sessions with a signal, a close and a next
    close. With it: every price session from the first to the last signal, ``signal`` null where
    there is none, so lags and strategies move along the exchange's calendar.
    """
    if column not in signal.columns:
        raise ValueError(f"no column {column!r} in the signals; they have {sorted(signal.columns)}")
    # One symbol, no benchmark: the target's own columns (no horizons beyond the next session).
    returns = (
        prices.sort("session")
        .with_columns(target_columns(target, ()))
        .with_columns(finished(target, ["same_day_return", "next_return"]))
    )
    value = pl.col(column).cast(pl.Float64)
    if min_posts > 0:
        value = pl.when(pl.col("n_posts") >= min_posts).then(value).otherwise(None)
    usable = signal.select("session", value.alias("signal")).drop_nulls("signal")
    if not keep_gaps:
        return usable.join(returns, on="session", how="inner").drop_nulls("next_return").sort("session")
    if usable.is_empty():
        return returns.head(0).with_columns(pl.lit(None, dtype=pl.Float64).alias("signal"))
    first, last = usable["session"].min(), usable["session"].max()
    calendar = returns.filter((pl.col("session") >= first) & (pl.col("session") <= last))
    return calendar.join(usable, on="session", how="left").drop_nulls("next_return").sort("session")


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
    hit_rate_p_value: float | None = None  # Pesaran–Timmermann, one-sided, against hit_rate_base
    hit_rate_statistic: float | None = None  # Pesaran–Timmermann S (None: nothing to test)
    hits: int | None = None
    directional_n: int | None = None
    # What a signal with the same share of bullish calls hits by chance, and always-long's rate.
    hit_rate_base: float | None = None
    hit_rate_always_long: float | None = None
    signal_column: str = "mean_score"
    calendar_sessions: int = 0  # price sessions in the window (signal or not)
    lead_lag: list[dict[str, float]] = field(default_factory=list)
    granger_p_value: float | None = None  # signal lags 1…3 → same-session return, joint F-test
    granger_n: int = 0  # calendar rows with the return and all its lags and the signal's present
    strategy: dict[str, float] = field(default_factory=dict)
    # What the signal is judged against (``targets``): the next session's return by default.
    target: str = "return"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bootstrap_ci(x: np.ndarray, y: np.ndarray, fn: Any, seed: int, n_boot: int) -> tuple[float, float]:
    """95% interval of ``fn(x, y)`` from a stationary block bootstrap (``arch``): blocks of about
    n^(1/3) sessions keep the series' autocorrelation, which resampling single sessions ignores."""
    from arch.bootstrap import StationaryBootstrap

    boot = StationaryBootstrap(max(2.0, len(x) ** (1 / 3)), x, y, seed=np.random.default_rng(seed))
    # max > min, not std > 0: the standard deviation of equal floats can round to a tiny positive
    # number, and a correlation of a constant resample is undefined.
    values = [fn(a, b) for (a, b), _ in boot.bootstrap(n_boot) if np.ptp(a) > 0 and np.ptp(b) > 0]
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def correlation(x: np.ndarray, y: np.ndarray, method: str, seed: int = 7, n_boot: int = 2000) -> Estimate:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
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
    if out:  # eleven lags are eleven tests: Holm's adjustment keeps the family's error at 5%
        from statsmodels.stats.multitest import multipletests

        for row, adjusted in zip(out, multipletests([r["p_value"] for r in out], method="holm")[1], strict=True):
            row["p_holm"] = float(adjusted)
    return out


def centred(signal: np.ndarray, window: int, min_samples: int | None = None) -> np.ndarray:
    """z-score of each signal against the previous ``window`` available signals (t excluded, gaps
    skipped); NaN where the signal is missing or the history too short. No look-ahead."""
    min_samples = min_samples or max(3, window // 4)
    out = np.full(len(signal), np.nan)
    history: list[float] = []
    for t, value in enumerate(signal):
        if not np.isnan(value):
            past = history[-window:]
            if len(past) >= min_samples and np.std(past) > 0:
                out[t] = (value - np.mean(past)) / np.std(past, ddof=1)
            history.append(float(value))
    return out


def _sharpe(returns: np.ndarray) -> float:
    """Annualised Sharpe ratio (``empyrical``: mean over the sample standard deviation, ddof 1,
    times √252, no risk-free rate). 0.0 where it is undefined (fewer than two sessions, or returns
    that never vary, as for a rule that is never invested): callers average it over symbols and a
    NaN or an infinity would swallow the average."""
    import empyrical

    value = float(empyrical.sharpe_ratio(returns, period="daily", annualization=PERIODS_PER_YEAR))
    return value if np.isfinite(value) else 0.0


def _compounded(returns: np.ndarray) -> np.ndarray:
    """Total return of each row of daily returns (a 2-D array), compounded."""
    return np.prod(1 + returns, axis=-1) - 1


def random_timing(
    position: np.ndarray, next_return: np.ndarray, costs: np.ndarray, n_draws: int = 1000, seed: int = 7
) -> dict[str, float]:
    """The rule against ``n_draws`` random orderings of ``position`` (the same exposure and number
    of sessions invested; only the timing differs): ``p`` = (draws whose total return is at least
    the rule's + 1) / (n_draws + 1), a permutation p-value that is never exactly 0, and
    ``sharpe_median``, the median Sharpe ratio of the draws. A rule invested a share x of the time
    has a Sharpe ratio near √x times buy-and-hold's with no skill at all, so its Sharpe is judged
    against random timing's, not against buy-and-hold's.

    Every ordering pays the rule's own cost series (``costs``, per session): a shuffled position
    switches far more often than a persistent signal, and charging it for those switches would
    credit the rule with low turnover, not with timing. Seeded, so a report can be reproduced."""
    rule = float(_compounded(position * next_return - costs))
    rng = np.random.default_rng(seed)
    at_least, done = 0, 0
    sharpes: list[np.ndarray] = []
    chunk = max(1, min(n_draws, 2_000_000 // max(1, len(position))))  # bounds memory on long windows
    while done < n_draws:
        size = min(chunk, n_draws - done)
        draws = rng.permuted(np.broadcast_to(position, (size, len(position))), axis=1)
        returns = draws * next_return - costs
        totals = _compounded(returns)
        # Ties (all orderings equal when never or always invested) count as "at least": up to rounding.
        at_least += int((totals >= rule - 1e-12 * max(1.0, abs(rule))).sum())
        spread = returns.std(axis=1, ddof=1) if len(position) > 1 else np.zeros(size)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpe = np.where(spread > 0, returns.mean(axis=1) / spread * np.sqrt(PERIODS_PER_YEAR), 0.0)
        sharpes.append(sharpe)
        done += size
    return {"p": (at_least + 1) / (n_draws + 1), "sharpe_median": float(np.median(np.concatenate(sharpes)))}


def rule_positions(signal: np.ndarray, threshold: float, z_window: int) -> np.ndarray:
    """The long/flat rule's position each session: 1 when the signal's z-score against its
    previous ``z_window`` signals is above ``threshold``, else 0 (and 0 without a signal)."""
    z = centred(signal, z_window)
    return np.where(np.isnan(z), 0.0, (z > threshold).astype(float))


def trading_costs(position: np.ndarray, cost_bps: float) -> tuple[np.ndarray, np.ndarray]:
    """(position changes, their cost as a return) per session, starting flat."""
    changes = np.abs(np.diff(np.concatenate([[0.0], position])))
    return changes, changes * cost_bps / 10_000


def long_flat_strategy(
    signal: np.ndarray,
    next_return: np.ndarray,
    threshold: float,
    cost_bps: float,
    z_window: int = 20,
    seed: int = 7,
    n_random: int = 1000,
) -> dict[str, Any]:
    """Long from close t to close t+1 when the centred signal z_t > ``threshold``, else flat (and
    flat on sessions without a signal); cost per position change. Buy-and-hold holds every
    session of the window, so it is the price ratio from the first close to the last.

    A rule invested part of the time cannot be judged by its total return against a fully
    invested buy-and-hold (in a rising market it loses by construction, in a falling one it wins).
    The equal-exposure comparisons are: its total return against buy-and-hold scaled to its
    exposure, and its total return and Sharpe against ``n_random`` random orderings of its
    positions (``random_timing_p``, ``random_timing_sharpe``; 0 draws: not computed, None).
    Buy-and-hold's Sharpe is reported too, but a part-time rule's Sharpe is near √exposure times
    it without any skill."""
    import empyrical

    position = rule_positions(signal, threshold, z_window)
    changes, costs = trading_costs(position, cost_bps)
    strategy = position * next_return - costs
    equity = np.cumprod(1 + strategy)
    hold = np.cumprod(1 + next_return)
    exposure = float(position.mean())
    timing = random_timing(position, next_return, costs, n_random, seed) if n_random > 0 else None
    return {
        "rule": f"long when the signal's z-score against the previous {z_window} signals is above {threshold:g}",
        "threshold": threshold,
        "z_window": z_window,
        "cost_bps": cost_bps,
        "trades": int(changes.sum()),
        "exposure": exposure,
        "total_return": float(equity[-1] - 1),
        "buy_and_hold_return": float(hold[-1] - 1),
        "exposure_matched_return": float(_compounded(exposure * next_return)),
        "annual_return": float(empyrical.annual_return(strategy, annualization=PERIODS_PER_YEAR)),
        "buy_and_hold_annual_return": float(empyrical.annual_return(next_return, annualization=PERIODS_PER_YEAR)),
        "sharpe_annualised": _sharpe(strategy),
        "buy_and_hold_sharpe": _sharpe(next_return),
        # empyrical's is the (negative) worst fall from a peak, the starting capital included;
        # reported as a positive fraction, as before.
        "max_drawdown": float(-empyrical.max_drawdown(strategy)),
        "random_timing_p": timing["p"] if timing else None,
        "random_timing_sharpe": timing["sharpe_median"] if timing else None,
        "random_timing_draws": n_random,
        "random_timing_seed": seed,
        "equity": equity.tolist(),
        "buy_and_hold": hold.tolist(),
    }


def pesaran_timmermann(calls_up: np.ndarray, went_up: np.ndarray) -> tuple[float | None, float]:
    """Pesaran & Timmermann (1992) test of directional accuracy: (statistic, one-sided p).

    With P the hit rate, p_x the share of up calls and p_y of up outcomes over n pairs,
    P* = p_y·p_x + (1 − p_y)(1 − p_x) is the hit rate of calls independent of outcomes;
    var(P) = P*(1 − P*)/n, var(P*) = (2p_y − 1)² p_x(1 − p_x)/n + (2p_x − 1)² p_y(1 − p_y)/n
    + 4 p_y p_x (1 − p_y)(1 − p_x)/n², and S = (P − P*)/√(var(P) − var(P*)) is standard normal
    under independence. Unlike a binomial test against an estimated P*, it accounts for P* being
    estimated, so it rejects about as often as its level says. Calls or outcomes all one way
    leave nothing to test: (None, 1.0)."""
    n = len(calls_up)
    if n == 0:
        return None, 1.0
    p_x, p_y = float(np.mean(calls_up)), float(np.mean(went_up))
    if not (0 < p_x < 1 and 0 < p_y < 1):
        return None, 1.0
    hit = float(np.mean(calls_up == went_up))
    p_star = p_y * p_x + (1 - p_y) * (1 - p_x)
    var_p = p_star * (1 - p_star) / n
    var_p_star = (
        (2 * p_y - 1) ** 2 * p_x * (1 - p_x) / n
        + (2 * p_x - 1) ** 2 * p_y * (1 - p_y) / n
        + 4 * p_y * p_x * (1 - p_y) * (1 - p_x) / n**2
    )
    if var_p - var_p_star <= 0:
        return None, 1.0
    statistic = (hit - p_star) / np.sqrt(var_p - var_p_star)
    return float(statistic), float(stats.norm.sf(statistic))


def hit_rate_test(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Direction calls against outcomes (zeros on either side left out), tested against the base
    rate with ``pesaran_timmermann``: a signal independent of returns that calls up as often as
    this one hits p_up·p_call + (1 − p_up)·(1 − p_call) of the time."""
    directional = (x != 0) & (y != 0)
    total = int(directional.sum())
    name = "Pesaran–Timmermann"
    if not total:
        return {
            "hit_rate": None,
            "hits": None,
            "directional_n": 0,
            "base": None,
            "always_long": None,
            "p": 1.0,
            "pt_statistic": None,
            "test": name,
        }
    calls_up, went_up = x[directional] > 0, y[directional] > 0
    hits = int((calls_up == went_up).sum())
    p_call, p_up = float(calls_up.mean()), float(went_up.mean())
    statistic, p = pesaran_timmermann(calls_up, went_up)
    return {
        "hit_rate": hits / total,
        "hits": hits,
        "directional_n": total,
        "base": p_up * p_call + (1 - p_up) * (1 - p_call),
        "always_long": p_up,
        "p": p,
        "pt_statistic": statistic,
        "test": name,
    }


def granger_test(
    signal: np.ndarray, same_day_return: np.ndarray, lags: int = GRANGER_LAGS, min_rows: int = GRANGER_MIN_ROWS
) -> dict[str, Any] | None:
    """Do past signals help explain today's return beyond past returns? Both arrays follow the
    price calendar (NaN where missing); r_t is the return close t−1 → close t.

    OLS of r_t on a constant, r_{t−1…t−lags} and signal_{t−1…t−lags} over the rows where all of
    them are present, and one joint F-test that the signal's coefficients are all 0. A signal that
    leads the next session's return by k ≤ ``lags`` sessions shows in the coefficient of lag k.
    None when fewer than ``min_rows`` rows are complete or the regressors are collinear (e.g. a
    constant signal, whose lags repeat the constant)."""
    import statsmodels.api as sm

    n = len(same_day_return)
    if n <= lags:
        return None
    y = same_day_return[lags:]
    own = [same_day_return[lags - k : n - k] for k in range(1, lags + 1)]
    past_signal = [signal[lags - k : n - k] for k in range(1, lags + 1)]
    design = np.column_stack([np.ones(n - lags), *own, *past_signal])
    complete = np.isfinite(y) & np.isfinite(design).all(axis=1)
    rows = int(complete.sum())
    if rows < max(min_rows, design.shape[1] + 1):
        return None
    design, y = design[complete], y[complete]
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return None
    restriction = np.zeros((lags, design.shape[1]))
    restriction[np.arange(lags), 1 + lags + np.arange(lags)] = 1.0
    test = sm.OLS(y, design).fit().f_test(restriction)
    return {"p": float(np.squeeze(test.pvalue)), "f": float(np.squeeze(test.fvalue)), "n": rows, "lags": lags}


# The hit-rate figures of a target without a direction (a range, a volume): none.
NO_HIT_RATE: dict[str, Any] = dict.fromkeys(
    ("hit_rate", "hits", "directional_n", "base", "always_long", "p", "pt_statistic")
)


def evaluate_signal(
    aligned: pl.DataFrame,
    threshold: float = 0.0,
    cost_bps: float = 5.0,
    min_sessions: int = MIN_SESSIONS,
    seed: int = 7,
    z_window: int = 20,
    signal_column: str = "mean_score",
    target: str = "return",
) -> Evaluation:
    """All metrics on ``align_next_return`` output (best with ``keep_gaps``, so that lags, the
    Granger test and the strategy follow the calendar); a plain verdict, "not enough data" when
    short.

    For a ``target`` other than the return, ``next_return`` and ``same_day_return`` hold that
    target's values: correlations, lead-lag and Granger are computed on them as they are, while
    the hit rate and the long/flat strategy are left out (None, empty): they call and trade a
    return's direction, and a range or a volume has none."""
    with_signal = aligned.drop_nulls("signal")
    n = with_signal.height
    if n < min_sessions:
        return Evaluation(
            n,
            f"Not enough data: {n} session(s) with a signal ({signal_column}) and a next-day {label(target)}; "
            f"at least {min_sessions} are needed before any metric means anything.",
            False,
            signal_column=signal_column,
            calendar_sessions=aligned.height,
            target=target,
        )
    x = with_signal["signal"].to_numpy().astype(float)
    y = with_signal["next_return"].to_numpy().astype(float)
    pearson = correlation(x, y, "pearson", seed)
    spearman = correlation(x, y, "spearman", seed)
    tradable = is_return(target)
    hit = hit_rate_test(x, y) if tradable else NO_HIT_RATE
    calendar_signal = aligned["signal"].fill_null(np.nan).to_numpy().astype(float)
    same_day = aligned["same_day_return"].fill_null(np.nan).to_numpy().astype(float)
    lags = lead_lag(calendar_signal, same_day, seed)
    granger = granger_test(calendar_signal, same_day) if n >= GRANGER_MIN_ROWS else None
    calendar_next = aligned["next_return"].to_numpy().astype(float)
    strategy = (
        long_flat_strategy(calendar_signal, calendar_next, threshold, cost_bps, z_window, seed=seed) if tradable else {}
    )
    evaluation = Evaluation(
        n,
        "",
        True,
        pearson=pearson,
        spearman=spearman,
        hit_rate=hit["hit_rate"],
        hit_rate_p_value=hit["p"],
        hit_rate_statistic=hit["pt_statistic"],
        hits=hit["hits"],
        directional_n=hit["directional_n"],
        lead_lag=lags,
        granger_p_value=None if granger is None else granger["p"],
        granger_n=0 if granger is None else granger["n"],
        strategy=strategy,
        hit_rate_base=hit["base"],
        hit_rate_always_long=hit["always_long"],
        signal_column=signal_column,
        calendar_sessions=aligned.height,
        target=target,
    )
    evaluation.verdict = _verdict(evaluation)
    return evaluation


def _strategy_verdict(st: dict[str, Any], sessions: int) -> str:
    """The long/flat rule judged at equal exposure: its return against buy-and-hold scaled to its
    exposure, its Sharpe and return against random timing with the same exposure and costs."""
    text = (
        f"Long/flat ({st['rule']}, {st['cost_bps']:g} bps a trade), invested in {st['exposure']:.0%} of the "
        f"window's {sessions} sessions: total return {st['total_return']:+.1%} against "
        f"{st['exposure_matched_return']:+.1%} for buy-and-hold at the same exposure; Sharpe "
        f"{st['sharpe_annualised']:+.2f}"
    )
    p = st.get("random_timing_p")
    if p is None:
        return text + f" (buy-and-hold, fully invested: {st['buy_and_hold_sharpe']:+.2f})."
    text += (
        f" against {st['random_timing_sharpe']:+.2f} for random timing with the same exposure and costs "
        f"(median of {st['random_timing_draws']:,} draws; buy-and-hold, fully invested: "
        f"{st['buy_and_hold_sharpe']:+.2f}). Random timing returns at least as much with p = {p:.3f}."
    )
    if p < 0.05:
        return text + " Its timing beats random timing at equal exposure in this sample."
    return text + " No evidence that its timing beats random timing at equal exposure."


def _verdict(e: Evaluation) -> str:
    assert e.spearman is not None
    s = e.spearman
    significant = s.p_value < 0.05 and (s.ci_low > 0 or s.ci_high < 0)
    best = max(e.lead_lag, key=lambda r: abs(r["spearman"]), default=None)
    tradable = is_return(e.target)
    # The same words as ever for returns; another target is named wherever "return" would stand.
    what = "next-session returns" if tradable else f"the next session's {label(e.target)}"
    first = "returns move first" if tradable else f"the {label(e.target)} moves first"
    head = f"Signal: {e.signal_column}; target: {label(e.target)}; n = {e.n} sessions with a signal."
    parts = [
        f"{head} Spearman ρ(signal_t, return t→t+1) = "
        f"{s.value:+.3f} (95% bootstrap CI {s.ci_low:+.3f} … {s.ci_high:+.3f}, p = {s.p_value:.3f}); "
        f"hit rate {e.hit_rate:.1%} of {e.directional_n} against {e.hit_rate_base:.1%} by chance "
        f"(always long: {e.hit_rate_always_long:.1%}; Pesaran–Timmermann p = {e.hit_rate_p_value:.3f})."
        if e.hit_rate is not None and e.hit_rate_base is not None
        else f"{head} Spearman ρ(signal_t, {label(e.target)} of session t+1) = {s.value:+.3f} "
        f"(95% bootstrap CI {s.ci_low:+.3f} … {s.ci_high:+.3f}, p = {s.p_value:.3f})."
    ]
    if significant and s.value > 0:
        parts.append(f"The signal leads {what} in this sample.")
    elif significant:
        contrarian = " (a contrarian signal)" if tradable else ""
        parts.append(f"The signal is inversely related to {what} in this sample{contrarian}.")
    else:
        parts.append(f"No evidence that the signal predicts {what} in this sample.")
    if best is not None and best["lag"] <= 0 and best.get("p_holm", best["p_value"]) < 0.05:
        parts.append(
            f"The strongest link is at lag {best['lag']:+d} (ρ = {best['spearman']:+.3f}, p = "
            f"{best.get('p_holm', best['p_value']):.3f} after Holm's adjustment over {len(e.lead_lag)} lags): "
            f"{first} and sentiment follows."
        )
    if e.strategy:
        parts.append(_strategy_verdict(e.strategy, e.calendar_sessions))
    if not tradable:
        parts.append(
            f"No hit rate or long/flat strategy: they call and trade a return's direction, and the target is the "
            f"{label(e.target)}."
        )
    parts.append(
        "A correlation in one sample is not a trading edge: costs, regime changes and multiple testing "
        "(11 lags, several symbols) all weaken it."
    )
    return " ".join(parts)
