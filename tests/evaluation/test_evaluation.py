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
    return pl.DataFrame({"session": prices["session"], "mean_score": values})


@pytest.mark.slow
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


@pytest.mark.slow
def test_shuffled_signal_is_not_detected() -> None:
    prices, close = _prices()
    next_return = np.append(close[1:] / close[:-1] - 1, 0.0)
    noise = np.random.default_rng(2).normal(0, 0.01, N)
    shuffled = np.random.default_rng(3).permutation(next_return + noise)
    result = evaluate_signal(align_next_return(_signal(shuffled, prices), prices))
    assert result.spearman is not None and result.spearman.p_value > 0.05
    assert "No evidence" in result.verdict


@pytest.mark.slow
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
            "mean_score": [0.1, 0.2, 0.1, 0.2, 0.1, None, 0.2, 0.9],
        }
    )
    out = rolling_features(signals, window=4)
    last = out.row(7, named=True)
    assert last["volume_z"] == pytest.approx((40 - np.mean([10, 10, 0, 10])) / np.std([10, 10, 0, 10], ddof=1))
    assert last["score_change"] == pytest.approx(0.7)
    assert out.row(5, named=True)["bull_intensity"] == 0.0  # a session without posts is a row, not a gap


@pytest.mark.slow
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
def test_evaluate_taborda_tweets_against_sp500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import TABORDA_CSV

    from tweet_signals.evaluation.params import EvaluationParams
    from tweet_signals.flows.evaluate import evaluate_flow

    monkeypatch.chdir(tmp_path)  # without a data root nothing may land in the working directory
    result = evaluate_flow(
        EvaluationParams(
            prices=str(SHARED_DATA / "sp500-daily-2020" / "^GSPC.csv"),
            symbol="ALL",
            data_root=None,
            input=str(TABORDA_CSV),
            columns="id=id,created_at=created_at,text=text",
            exchange="NYSE",
            out=str(tmp_path),
        )
    )
    assert result["enough_data"] and result["n"] >= 50
    assert result["spearman"]["ci_low"] <= result["spearman"]["value"] <= result["spearman"]["ci_high"]
    history = pl.read_parquet(tmp_path / "signal_history.parquet")
    assert history["n_posts"].sum() > 2500  # the deduplicated 2020 tweets
    assert (tmp_path / "report.html").exists() and (tmp_path / "lead_lag.png").exists()
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_evaluate_one_indian_session_says_not_enough_data(tmp_path: Path, tiny_roberta: Path) -> None:
    from conftest import KIRTI_COLUMNS, KIRTI_CSV

    from tweet_signals.evaluation.params import EvaluationParams
    from tweet_signals.flows.daily_signals import daily_signals
    from tweet_signals.flows.evaluate import evaluate_flow
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
    result = evaluate_flow(EvaluationParams(prices=nifty, symbol="NIFTY", data_root=str(tmp_path)))
    assert result["exchange"] == "NSE" and result["exchange_inferred"]
    assert not result["enough_data"] and "Not enough data" in result["verdict"]
    assert Path(result["report"]).exists()


def _rising_prices(n: int = 120, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.002, 0.01, n)  # drifts up: most sessions are up sessions
    sessions = [date(2024, 1, 1) + timedelta(days=i) for i in range(n)]
    return pl.DataFrame({"session": sessions, "close": 100 * np.cumprod(1 + returns)})


def test_an_always_bullish_signal_hits_only_its_base_rate() -> None:
    prices = _rising_prices()
    always = pl.DataFrame({"session": prices["session"], "mean_score": np.full(prices.height, 0.3)})
    result = evaluate_signal(align_next_return(always, prices, keep_gaps=True))
    ups = align_next_return(always, prices)["next_return"].to_numpy()
    assert result.hit_rate == pytest.approx((ups > 0).mean())
    assert result.hit_rate_base == pytest.approx(result.hit_rate) == pytest.approx(result.hit_rate_always_long)
    assert result.hit_rate_p_value is not None and result.hit_rate_p_value > 0.05
    assert "No evidence" in result.verdict and "by chance" in result.verdict


@pytest.mark.slow
def test_buy_and_hold_is_the_price_ratio_over_every_session_of_the_window() -> None:
    prices = _rising_prices()
    rng = np.random.default_rng(9)
    values = rng.normal(0, 1, prices.height)
    signal = pl.DataFrame({"session": prices["session"], "mean_score": values, "n_posts": np.full(prices.height, 9)})
    gappy = signal.filter(pl.int_range(pl.len()) % 3 != 1)  # a third of the sessions have no posts
    aligned = align_next_return(gappy, prices, keep_gaps=True)
    result = evaluate_signal(aligned)
    sessions = prices["session"].to_list()
    first, last = sessions.index(gappy["session"].min()), sessions.index(aligned["session"].max())
    # From the first session's close to the close after the last session: every session held.
    expected = prices["close"][last + 1] / prices["close"][first] - 1
    assert result.strategy["buy_and_hold_return"] == pytest.approx(expected)
    assert result.calendar_sessions == last - first + 1
    assert (
        result.n == gappy.height - 1 and "previous 20 signals" in result.strategy["rule"]
    )  # the last has no next close


@pytest.mark.slow
def test_the_strategy_trades_a_centred_signal_without_look_ahead() -> None:
    from tweet_signals.evaluation.statistics import centred

    values = np.array([0.5, 0.6, 0.4, 0.5, np.nan, 0.9, 0.3, 0.5])
    z = centred(values, window=4, min_samples=3)
    assert np.isnan(z[:3]).all() and np.isnan(z[4])
    past = values[[0, 1, 2, 3]]
    assert z[5] == pytest.approx((0.9 - past.mean()) / past.std(ddof=1))
    changed = values.copy()
    changed[7] = 5.0  # a later value never moves an earlier z-score
    assert np.allclose(centred(changed, 4, 3)[:7], z[:7], equal_nan=True)
    # A signal that is always positive is not always long once centred.
    prices = _rising_prices()
    level = pl.DataFrame(
        {"session": prices["session"], "mean_score": 0.3 + np.random.default_rng(1).normal(0, 0.05, prices.height)}
    )
    result = evaluate_signal(align_next_return(level, prices, keep_gaps=True))
    assert 0.2 < result.strategy["exposure"] < 0.8


@pytest.mark.slow
def test_lead_lag_moves_along_the_calendar_not_the_rows() -> None:
    from scipy import stats

    prices = _rising_prices(80)
    rng = np.random.default_rng(3)
    signal = pl.DataFrame({"session": prices["session"], "mean_score": rng.normal(0, 1, prices.height)})
    gappy = signal.filter(~pl.col("session").is_in([prices["session"][10], prices["session"][40]]))
    aligned = align_next_return(gappy, prices, keep_gaps=True)
    result = evaluate_signal(aligned)
    lag = {r["lag"]: r for r in result.lead_lag}[-1]
    # By hand on the calendar: signal of session t against the return that ended at t−1.
    x = aligned["signal"].fill_null(np.nan).to_numpy()
    r = aligned["same_day_return"].fill_null(np.nan).to_numpy()
    pairs = [(x[t], r[t - 1]) for t in range(1, len(x)) if not (np.isnan(x[t]) or np.isnan(r[t - 1]))]
    expected = stats.spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    assert lag["spearman"] == pytest.approx(expected) and lag["n"] == len(pairs)


def test_sessions_with_too_few_posts_carry_no_signal_and_unknown_columns_are_named() -> None:
    prices = _rising_prices(40)
    signal = pl.DataFrame({"session": prices["session"], "mean_score": np.linspace(-1, 1, 40), "n_posts": [2, 8] * 20})
    aligned = align_next_return(signal, prices, min_posts=5, keep_gaps=True)
    assert aligned.drop_nulls("signal").height == 20 - 1  # the last session has no next close
    with pytest.raises(ValueError, match="no column 'score_zz'"):
        align_next_return(signal, prices, "score_zz")


def test_date_only_posts_count_for_the_session_after_their_date(tmp_path: Path) -> None:
    import json

    from tweet_signals.market.sessions import session_for
    from tweet_signals.sources.files import read_posts
    from tweet_signals.sources.schema import parse_timestamp

    friday = parse_timestamp("2024-01-05", date_only_tz="Asia/Kolkata")
    assert session_for(friday, "NSE") == date(2024, 1, 8)  # Friday's posts can only inform Monday
    wednesday = parse_timestamp("2024-01-10", date_only_tz="America/New_York")
    assert session_for(wednesday, "NYSE") == date(2024, 1, 11)
    path = tmp_path / "posts.jsonl"
    path.write_text(
        "".join(json.dumps({"id": str(i), "created_at": "2024-01-05", "text": f"t {i}"}) + "\n" for i in range(3))
    )
    refused = read_posts(path, {})
    assert refused.posts.is_empty() and refused.quarantine["reason"].to_list() == ["date_only"] * 3
    assert read_posts(path, {}, date_only_tz="Asia/Kolkata").posts.height == 3


@pytest.mark.slow  # a CLI subprocess
def test_evaluate_on_undated_times_says_what_to_do_and_exits_2(tmp_path: Path) -> None:
    import json
    import subprocess

    from conftest import CLI, newcomer_env

    path = tmp_path / "posts.jsonl"
    path.write_text(
        "".join(json.dumps({"id": str(i), "created_at": "2024-01-05", "text": f"t {i}"}) + "\n" for i in range(5))
    )
    prices = SHARED_DATA / "sp500-daily-2020" / "^GSPC.csv"
    done = subprocess.run(
        [*CLI, "evaluate", "--prices", str(prices), "--symbol", "ALL", "--exchange", "NYSE", "--input", str(path)],
        capture_output=True,
        text=True,
        env=newcomer_env(tmp_path),
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "5 quarantined (date_only 5)" in message and "--date-only next-session" in message
