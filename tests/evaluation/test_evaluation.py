"""Signal evaluation with planted truth: a leading signal is found, a shuffled one is not,
and a signal built from the same-day return shows at lag 0, not as a prediction."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import SHARED_DATA

from tweet_signals.evaluation.report import write_report
from tweet_signals.evaluation.statistics import align_next_return, evaluate_signal, load_prices, rolling_features

N = 250


def _prices(seed: int = 1) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.01, N)
    close = 100 * np.cumprod(1 + returns)
    sessions = [date(2024, 1, 1) + timedelta(days=i) for i in range(N)]
    return pl.DataFrame({"session": sessions, "close": close}), close


def _signal(values: np.ndarray, prices: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"session": prices["session"], "weighted_score": values})


def test_signal_that_leads_returns_is_detected() -> None:
    prices, close = _prices()
    next_return = np.append(close[1:] / close[:-1] - 1, 0.0)
    noise = np.random.default_rng(2).normal(0, 0.01, N)
    result = evaluate_signal(align_next_return(_signal(next_return + noise, prices), prices))
    assert result.enough_data and result.spearman is not None
    assert result.spearman.p_value < 0.01 and result.spearman.ci_low > 0
    assert result.hit_rate_p_value is not None and result.hit_rate_p_value < 0.05
    best = max(result.lead_lag, key=lambda r: abs(r["spearman"]))
    assert best["lag"] == 1
    assert "leads next-session returns" in result.verdict


def test_shuffled_signal_is_not_detected() -> None:
    prices, close = _prices()
    next_return = np.append(close[1:] / close[:-1] - 1, 0.0)
    noise = np.random.default_rng(2).normal(0, 0.01, N)
    shuffled = np.random.default_rng(3).permutation(next_return + noise)
    result = evaluate_signal(align_next_return(_signal(shuffled, prices), prices))
    assert result.spearman is not None and result.spearman.p_value > 0.05
    assert "No evidence" in result.verdict


def test_same_day_signal_shows_at_lag_zero_not_as_prediction() -> None:
    prices, close = _prices()
    same_day = np.insert(close[1:] / close[:-1] - 1, 0, 0.0)
    noise = np.random.default_rng(4).normal(0, 0.004, N)
    result = evaluate_signal(align_next_return(_signal(same_day + noise, prices), prices))
    by_lag = {r["lag"]: r for r in result.lead_lag}
    assert by_lag[0]["p_value"] < 0.001 and by_lag[0]["spearman"] > 0.5
    # The predictive lag only sees the returns' own (sampling) autocorrelation, far below lag 0.
    assert result.spearman is not None and abs(result.spearman.value) < by_lag[0]["spearman"] / 3
    assert max(result.lead_lag, key=lambda r: abs(r["spearman"]))["lag"] == 0
    assert "returns move first" in result.verdict


def test_too_few_sessions_get_a_verdict_not_a_number() -> None:
    prices, _close = _prices()
    result = evaluate_signal(align_next_return(_signal(np.ones(N), prices).head(10), prices))
    assert not result.enough_data and result.spearman is None and "Not enough data" in result.verdict


def test_alignment_never_uses_a_later_close() -> None:
    prices = pl.DataFrame({"session": [date(2026, 1, d) for d in (5, 6, 7, 8)], "close": [100.0, 110.0, 99.0, 99.0]})
    aligned = align_next_return(_signal(np.array([1.0, 2.0, 3.0, 4.0]), prices), prices)
    assert aligned["next_return"].to_list() == pytest.approx([0.1, -0.1, 0.0])
    assert aligned["session"].to_list() == [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]


def test_rolling_features_use_only_earlier_sessions() -> None:
    sessions = [date(2026, 1, 1) + timedelta(days=i) for i in range(8)]
    signals = pl.DataFrame(
        {
            "session": sessions,
            "symbol": ["NIFTY"] * 8,
            "n_posts": [10, 10, 10, 10, 10, 0, 10, 40],
            "n_bullish": [5] * 8,
            "n_bearish": [2] * 8,
            "weighted_score": [0.1, 0.2, 0.1, 0.2, 0.1, None, 0.2, 0.9],
        }
    )
    out = rolling_features(signals, window=4)
    last = out.row(7, named=True)
    assert last["volume_z"] == pytest.approx((40 - np.mean([10, 10, 0, 10])) / np.std([10, 10, 0, 10], ddof=1))
    assert last["score_change"] == pytest.approx(0.7)
    assert out.row(5, named=True)["bull_intensity"] == 0.0  # a session without posts is a row, not a gap


def test_report_is_self_contained(tmp_path: Path) -> None:
    prices, _close = _prices()
    aligned = align_next_return(_signal(np.random.default_rng(5).normal(size=N), prices), prices)
    path = write_report(tmp_path, "TEST", aligned, evaluate_signal(aligned), {"source": "planted"})
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 3 and "What this shows" in page
    assert {p.name for p in tmp_path.glob("*.png")} == {"signal_price.png", "lead_lag.png", "equity.png"}


def test_price_files_load_with_column_mapping() -> None:
    nifty = load_prices(SHARED_DATA / "nifty50-daily" / "nifty50.csv")
    assert nifty.filter(pl.col("session") == date(2026, 1, 7))["close"][0] == pytest.approx(26140.75)
    spx = load_prices(SHARED_DATA / "sp500-daily-2020" / "^GSPC.csv", "Date", "Close")
    assert spx.height > 200


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_evaluate_taborda_tweets_against_sp500(tmp_path: Path) -> None:
    from conftest import TABORDA_CSV

    from flows.evaluate import evaluate_signals

    result = evaluate_signals(
        prices=str(SHARED_DATA / "sp500-daily-2020" / "^GSPC.csv"),
        symbol="ALL",
        data_root=None,
        input=str(TABORDA_CSV),
        columns="id=id,created_at=created_at,text=text",
        exchange="NYSE",
        out_dir=str(tmp_path),
    )
    assert result["enough_data"] and result["n"] >= 50
    assert result["spearman"]["ci_low"] <= result["spearman"]["value"] <= result["spearman"]["ci_high"]
    history = pl.read_parquet(tmp_path / "signal_history.parquet")
    assert history["n_posts"].sum() > 2500  # the deduplicated 2020 tweets
    assert (tmp_path / "report.html").exists() and (tmp_path / "lead_lag.png").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_evaluate_one_indian_session_says_not_enough_data(tmp_path: Path, tiny_roberta: Path) -> None:
    from conftest import KIRTI_COLUMNS, KIRTI_CSV

    from flows.daily_signals import daily_signals
    from flows.evaluate import evaluate_signals
    from tweet_signals.params import SignalsParams

    nifty = str(SHARED_DATA / "nifty50-daily" / "nifty50.csv")
    state = daily_signals(
        SignalsParams(
            run_date=date(2026, 1, 7),
            source="file",
            input=str(KIRTI_CSV),
            columns=KIRTI_COLUMNS,
            model=str(tiny_roberta),
            workers=1,
            data_root=str(tmp_path),
            prices=nifty,
        ),
        return_state=True,
    )
    assert state.is_completed()
    manifest = state.result()
    assert "Not enough data" in manifest["evaluation"]["verdict"]
    assert (tmp_path / "signals" / "date=2026-01-07" / "report" / "report.html").exists()
    result = evaluate_signals(
        prices=str(SHARED_DATA / "nifty50-daily" / "nifty50.csv"), symbol="NIFTY", data_root=str(tmp_path)
    )
    assert not result["enough_data"] and "Not enough data" in result["verdict"]
    assert Path(result["report"]).exists()
