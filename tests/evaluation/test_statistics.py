"""Single-series inference with planted truth and hand-computed figures: the Granger test on the
calendar's same-day returns, the Pesaran–Timmermann hit-rate test, the long/flat rule judged at
equal exposure (empyrical Sharpe, random timing), and the StockNet movement task."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tweet_signals.evaluation.movement import movement_figures, parse_movement
from tweet_signals.evaluation.statistics import (
    align_next_return,
    centred,
    evaluate_signal,
    granger_test,
    hit_rate_test,
    long_flat_strategy,
    pesaran_timmermann,
)

N = 250


def _calendar(returns: np.ndarray, signal: np.ndarray) -> pl.DataFrame:
    """``align_next_return`` (with gaps kept) of a signal on prices built from daily ``returns``."""
    sessions = [date(2024, 1, 1) + timedelta(days=i) for i in range(len(returns))]
    prices = pl.DataFrame({"session": sessions, "close": 100 * np.cumprod(1 + returns)})
    return align_next_return(pl.DataFrame({"session": sessions, "mean_score": signal}), prices, keep_gaps=True)


def _lead(k: int, seed: int = 11, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Daily returns r and a signal whose value at t is r_{t+k} plus noise (0 where t+k is past the end)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.01, N)
    ahead = np.append(returns[k:], np.zeros(k))
    return returns, ahead + rng.normal(0, noise, N)


@pytest.mark.slow
def test_granger_finds_a_one_session_lead() -> None:
    returns, signal = _lead(1)
    result = evaluate_signal(_calendar(returns, signal))
    assert result.granger_p_value is not None and result.granger_p_value < 0.01
    # Rows lost at the start only: three for the lags, one more as the first session has no
    # previous close (no r_t), so the fourth session lacks its r_{t−3}.
    assert result.granger_n == result.calendar_sessions - 4


def test_granger_finds_a_three_session_lead() -> None:
    returns, signal = _lead(3)
    aligned = _calendar(returns, signal)
    test = granger_test(aligned["signal"].to_numpy(), aligned["same_day_return"].fill_null(np.nan).to_numpy())
    assert test is not None and test["p"] < 0.01 and test["lags"] == 3


def test_granger_is_the_ssr_f_test_of_statsmodels_on_a_complete_series() -> None:
    from statsmodels.tsa.stattools import grangercausalitytests

    returns, signal = _lead(1, seed=3, noise=0.05)
    ours = granger_test(signal, returns)
    theirs = grangercausalitytests(np.column_stack([returns, signal]), maxlag=[3])
    assert ours is not None and ours["p"] == pytest.approx(theirs[3][0]["ssr_ftest"][1], rel=1e-8)


def test_granger_skips_incomplete_rows_and_refuses_a_constant_signal() -> None:
    rng = np.random.default_rng(4)
    returns, signal = rng.normal(0, 0.01, 120), rng.normal(size=120)
    signal[[50, 80]] = np.nan  # each gap removes the three rows that would use it as a lag
    test = granger_test(signal, returns)
    assert test is not None and test["n"] == 120 - 3 - 2 * 3
    assert granger_test(np.full(120, 0.3), returns) is None


def test_granger_and_pesaran_timmermann_reject_at_their_level_under_the_null() -> None:
    # 300 runs: the rejection rate's standard error is about 1.3 points, so ±3 points is ~2.3 SE.
    runs, granger_rejects, pt_rejects = 300, 0, 0
    for run in range(runs):
        rng = np.random.default_rng(10_000 + run)
        returns, signal = rng.normal(0, 0.01, N), rng.normal(0, 1, N)
        granger = granger_test(signal, returns)
        assert granger is not None
        granger_rejects += granger["p"] < 0.05
        pt_rejects += hit_rate_test(signal, returns)["p"] < 0.05
    assert abs(granger_rejects / runs - 0.05) <= 0.03
    assert abs(pt_rejects / runs - 0.05) <= 0.03


def test_pesaran_timmermann_matches_the_formula_by_hand() -> None:
    x = np.array([0.4, 0.1, 0.3, -0.2, -0.5, 0.2, -0.1, 0.6, 0.3, -0.4])
    y = np.array([0.01, -0.02, 0.03, -0.01, 0.02, 0.01, -0.03, 0.02, -0.01, -0.02])
    # Calls up 6 of 10 (p_x = 0.6), moves up 5 of 10 (p_y = 0.5), 7 hits: P = 0.7, P* = 0.5,
    # var(P) = 0.25/10, var(P*) = 0²·… + 0.2²·0.25/10 + 4·0.5·0.6·0.5·0.4/100 = 0.001 + 0.0024.
    statistic = 0.2 / np.sqrt(0.025 - 0.0034)
    result = hit_rate_test(x, y)
    assert result["hits"] == 7 and result["hit_rate"] == pytest.approx(0.7) and result["base"] == pytest.approx(0.5)
    assert result["pt_statistic"] == pytest.approx(statistic) and statistic == pytest.approx(1.36083, abs=1e-5)
    assert result["p"] == pytest.approx(stats.norm.sf(statistic)) and result["test"] == "Pesaran–Timmermann"
    assert set(result) >= {"hit_rate", "hits", "directional_n", "base", "always_long", "p"}


def test_pesaran_timmermann_has_nothing_to_test_when_calls_or_moves_go_one_way() -> None:
    y = np.array([0.01, -0.02, 0.03, -0.01])
    always_up = hit_rate_test(np.full(4, 0.5), y)
    assert always_up["p"] == 1.0 and always_up["pt_statistic"] is None and always_up["hit_rate"] == 0.5
    rising = hit_rate_test(np.array([0.1, -0.2, 0.3, -0.1]), np.abs(y))
    assert rising["p"] == 1.0 and rising["pt_statistic"] is None
    assert hit_rate_test(np.zeros(4), y)["p"] == 1.0
    assert pesaran_timmermann(np.array([], dtype=bool), np.array([], dtype=bool)) == (None, 1.0)


@pytest.mark.slow
def test_random_timing_p_is_spread_under_the_null_and_small_for_perfect_timing() -> None:
    p_values = []
    for run in range(100):
        rng = np.random.default_rng(20_000 + run)
        returns, signal = rng.normal(0, 0.01, N), rng.normal(0, 1, N)
        p_values.append(long_flat_strategy(signal, returns, 0.0, 5.0)["random_timing_p"])
    p = np.array(p_values)
    assert 0.35 < p.mean() < 0.65 and 0.0 < (p < 0.05).mean() < 0.15 and 0.0 < (p > 0.95).mean() < 0.15
    returns = np.random.default_rng(1).normal(0, 0.01, N)
    perfect = long_flat_strategy(returns, returns, 0.0, 5.0)  # knows the next session's return
    assert perfect["random_timing_p"] < 0.01


def test_a_part_time_rule_is_judged_against_random_timing_not_against_buy_and_hold() -> None:
    """With a rising market and no skill, a rule invested 40% of the time has a Sharpe near
    √0.4 times buy-and-hold's; random timing with the same exposure has the same, so the rule is
    not called skilful (nor unskilful) for being part-time."""
    rng = np.random.default_rng(9)
    returns, signal = rng.normal(0.0008, 0.01, 5000), rng.normal(0, 1, 5000)
    result = long_flat_strategy(signal, returns, 0.25, 0.0, n_random=200)  # z > 0.25: about 40% invested
    assert 0.3 < result["exposure"] < 0.5
    expected = np.sqrt(result["exposure"]) * result["buy_and_hold_sharpe"]
    assert result["random_timing_sharpe"] == pytest.approx(expected, rel=0.15)
    assert result["sharpe_annualised"] < result["buy_and_hold_sharpe"]  # part-time, not worse at timing
    assert result["random_timing_p"] > 0.05


def test_random_timing_is_seeded_and_counts_ties_as_at_least_as_good() -> None:
    rng = np.random.default_rng(2)
    returns, signal = rng.normal(0, 0.01, N), rng.normal(0, 1, N)
    first = long_flat_strategy(signal, returns, 0.0, 5.0, seed=3)["random_timing_p"]
    assert long_flat_strategy(signal, returns, 0.0, 5.0, seed=3)["random_timing_p"] == first
    never = long_flat_strategy(signal, returns, 99.0, 5.0)  # never invested: every ordering is the rule
    assert never["exposure"] == 0.0 and never["random_timing_p"] == 1.0 and never["sharpe_annualised"] == 0.0
    assert 0 < long_flat_strategy(returns, returns, 0.0, 5.0)["random_timing_p"] <= 1 / 1001  # never exactly 0
    assert long_flat_strategy(signal, returns, 0.0, 5.0, n_random=0)["random_timing_p"] is None


def test_strategy_figures_by_hand_at_equal_exposure() -> None:
    rng = np.random.default_rng(6)
    returns, signal = rng.normal(0.0005, 0.01, N), rng.normal(0, 1, N)
    signal[::7] = np.nan  # sessions without a signal: flat
    result = long_flat_strategy(signal, returns, 0.5, 5.0, z_window=10)
    z = centred(signal, 10)
    position = np.where(np.isnan(z), 0.0, (z > 0.5).astype(float))
    daily = position * returns - np.abs(np.diff(np.concatenate([[0.0], position]))) * 5.0 / 10_000
    # empyrical's convention: sample standard deviation (ddof 1), √252, no risk-free rate.
    assert result["sharpe_annualised"] == pytest.approx(daily.mean() / daily.std(ddof=1) * np.sqrt(252))
    assert result["buy_and_hold_sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * np.sqrt(252))
    exposure = position.mean()
    assert result["exposure"] == pytest.approx(exposure)
    assert result["exposure_matched_return"] == pytest.approx(np.prod(1 + exposure * returns) - 1)
    equity = np.concatenate([[1.0], np.cumprod(1 + daily)])  # the starting capital is a peak too
    assert result["max_drawdown"] == pytest.approx((1 - equity / np.maximum.accumulate(equity)).max())
    assert result["total_return"] == pytest.approx(np.prod(1 + daily) - 1)
    assert result["annual_return"] == pytest.approx(np.prod(1 + daily) ** (252 / N) - 1)


@pytest.mark.slow
def test_the_verdict_compares_the_strategy_at_equal_exposure() -> None:
    returns, signal = _lead(1)
    result = evaluate_signal(_calendar(returns, signal))
    assert result.hit_rate_statistic is not None and result.hit_rate_p_value is not None
    assert "Pesaran–Timmermann" in result.verdict and "buy-and-hold at the same exposure" in result.verdict
    assert "for random timing with the same exposure and costs" in result.verdict
    assert "Its timing beats random timing at equal exposure" in result.verdict


def _movement_frame() -> pl.DataFrame:
    """Two symbols × 12 sessions, in scrambled row order: dead-band moves, gaps, zero signals,
    a last session without a next close, and B's move of −0.51% just past the down threshold."""
    a_signal = [0.5, -0.2, None, 0.0, 0.3, -0.4, 0.1, None, 0.6, -0.1, 0.2, 0.4]
    a_return = [0.01, -0.02, 0.03, 0.012, 0.002, -0.007, 0.006, -0.01, 0.02, -0.003, -0.009, None]
    b_signal = [-0.3, -0.1, 0.2, 0.4, None, -0.5, 0.3, 0.15, -0.2, 0.0, 0.5, -0.6]
    b_return = [-0.006, 0.008, 0.004, 0.015, 0.01, -0.02, -0.012, 0.007, -0.0051, 0.01, 0.03, None]
    sessions = [date(2024, 3, 1) + timedelta(days=i) for i in range(12)]
    frame = pl.DataFrame(
        {
            "symbol": ["A"] * 12 + ["B"] * 12,
            "session": sessions * 2,
            "signal": a_signal + b_signal,
            "next_return": a_return + b_return,
        },
        schema={"symbol": pl.String, "session": pl.Date, "signal": pl.Float64, "next_return": pl.Float64},
    )
    return frame.sample(fraction=1.0, shuffle=True, seed=1)


def test_movement_figures_by_hand() -> None:
    from sklearn.metrics import matthews_corrcoef

    figures = movement_figures(_movement_frame(), 0.0055, -0.005, window=4)
    # Sign calls on the rows that count (1 = up), session by session:
    # A: t0 up/up, t1 down/down, t5 down/down, t6 up/up (+0.6%), t8 up/up, t10 up/down;
    #    t2 and t7 no signal, t3 zero signal (abstains), t4 and t9 dead band, t11 no next close.
    # B: t0 down/down, t1 down/up, t3 up/up, t5 down/down, t6 up/down, t7 up/up, t8 down/down,
    #    t10 up/up; t2 dead band, t4 no signal, t9 zero signal, t11 no next close.
    calls = [1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1]
    moves = [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1]
    sign = figures["sign"]
    assert sign["n"] == 14 and sign["accuracy"] == pytest.approx(11 / 14)
    # TP 6, TN 5, FP 2, FN 1: (30 − 2) / √(8·7·7·6) = 1/√3.
    assert sign["mcc"] == pytest.approx(1 / np.sqrt(3)) == pytest.approx(matthews_corrcoef(moves, calls))
    assert (sign["n_up"], sign["n_down"], sign["majority_accuracy"]) == (7, 7, 0.5)
    assert sign["n_abstained"] == 2 and sign["n_dead_band"] == 3
    assert (figures["accuracy"], figures["mcc"], figures["n"]) == (sign["accuracy"], sign["mcc"], sign["n"])
    assert (figures["up"], figures["down"]) == (0.0055, -0.005)

    # Trailing calls (window 4, at least 3 earlier signals; the zero signal counts as a value):
    # A: t0, t1, t3 warm up; t4 (mean 0.1) dead band; t5 down/down (0.15), t6 up/up (−0.075),
    #    t8 up/up (0.0), t9 dead band, t10 up/down (0.05), t11 no next close.
    # B: t0–t2 warm up; t3 up/up (−0.067), t5 down/down (0.05), t6 up/down (0.0), t7 up/up (0.1),
    #    t8 down/down (0.0875), t9 up/up (zero above −0.0625), t10 up/up (0.0625).
    calls = [0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1]
    moves = [0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1]
    trailing = figures["trailing"]
    assert trailing["n"] == 11 and trailing["accuracy"] == pytest.approx(9 / 11)
    # TP 6, TN 3, FP 2, FN 0: 18 / √(8·6·5·3).
    assert trailing["mcc"] == pytest.approx(18 / np.sqrt(720)) == pytest.approx(matthews_corrcoef(moves, calls))
    assert (trailing["n_up"], trailing["n_down"]) == (6, 5)
    assert trailing["majority_accuracy"] == pytest.approx(6 / 11)
    # Warm-up rows with a scorable move: A t0, t1, t3 and B t0, t1 (B t2 is in the dead band).
    assert trailing["n_warm_up"] == 5 and trailing["n_abstained"] == 0


def test_movement_figures_without_scorable_rows_are_empty_not_errors() -> None:
    frame = _movement_frame().with_columns(pl.lit(0.001).alias("next_return"))
    figures = movement_figures(frame, 0.0055, -0.005)
    assert figures["n"] == 0 and figures["accuracy"] is None and figures["mcc"] is None
    everything = movement_figures(_movement_frame(), 0.0, 0.0, window=4)  # no dead band
    assert everything["sign"]["n_dead_band"] == 0 and everything["n"] == 14 + 3


def test_parse_movement() -> None:
    assert parse_movement("0.0055,-0.005") == (0.0055, -0.005)
    assert parse_movement(" 0.01 , -0.01 ") == (0.01, -0.01)
    assert parse_movement("0,0") == (0.0, 0.0)  # no dead band: every move is called
    for bad in ("", "0.0055", "0.0055,-0.005,0.1", "up,down", "-0.005,0.0055", "0.01,0.005", "nan,-0.005", "inf,0"):
        with pytest.raises(ValueError, match="movement thresholds"):
            parse_movement(bad)
