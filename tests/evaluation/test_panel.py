"""Panel evaluation with planted truth: a signal leading returns by k sessions peaks at horizon k
with its sign, pure noise is flagged about as often as the test level says, and the CLI writes
the tear sheet and JSON from a multi-symbol posts file."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from panel_data import business_days, planted_panel, write_panel_files

from tweet_signals.evaluation.panel import (
    PanelSettings,
    evaluate_panel,
    forward_returns,
    holm,
    infer_exchange,
    load_price_panel,
    mean_test,
    panel_frame,
    parse_horizons,
    purged_in_sample,
    session_ic,
    sessions_without_prices,
    turnover,
    with_quantiles,
)

HORIZONS = (1, 5, 10, 20)


def _evaluate(panel: dict[str, pl.DataFrame], signals: pl.DataFrame, **settings: object) -> dict:
    """``evaluate_panel`` with ``settings`` over the panel's forward returns."""
    options = PanelSettings(**settings)  # type: ignore[arg-type]
    return evaluate_panel(signals, forward_returns(panel, options.horizons, options.benchmark), options)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_signal_leading_by_k_sessions_peaks_at_horizon_k_with_its_sign(sign: int) -> None:
    panel, signals = planted_panel(seed=1, lead=5, strength=0.3, sign=sign)
    result = _evaluate(panel, signals, min_sessions=10**6)  # per-symbol figures are not under test here
    by_horizon = {r["horizon"]: r for r in result["horizons"]}
    peak = max(by_horizon.values(), key=lambda r: abs(r["ic_mean"]))
    assert peak["horizon"] == 5
    assert np.sign(peak["ic_mean"]) == sign and peak["p_holm"] < 0.001
    assert abs(by_horizon[1]["ic_mean"]) < abs(peak["ic_mean"]) / 3  # the next session carries nothing planted
    spread = next(q for q in result["quantile_returns"] if q["horizon"] == 5)
    assert np.sign(spread["spread_mean"]) == sign  # top-minus-bottom agrees with the IC
    assert "horizon 5" in result["verdict"]


@pytest.mark.slow
def test_pure_noise_is_flagged_at_about_the_test_level() -> None:
    flagged = 0
    for seed in range(20):
        panel, signals = planted_panel(seed=100 + seed, lead=0, strength=0.0, n_symbols=20, n_sessions=200)
        result = _evaluate(panel, signals, min_sessions=10**6)
        significant = any(r["p_holm"] < 0.05 for r in result["horizons"])
        assert ("No horizon survives" in result["verdict"]) != significant
        flagged += significant
    assert flagged <= 3  # 5% of 20 is 1; three allows the binomial's spread


def test_ic_is_the_spearman_correlation_across_symbols_of_each_session() -> None:
    panel, signals = planted_panel(seed=4, lead=1, strength=0.5, n_symbols=12, n_sessions=40)
    frame = panel_frame(signals, forward_returns(panel, (1,), None), PanelSettings(horizons=(1,)))
    ic = session_ic(frame, 1, 5)
    day = ic["session"][7]
    rows = frame.filter((pl.col("session") == day) & pl.col("fwd_1").is_not_null())
    from scipy import stats

    expected = stats.spearmanr(rows["signal"].to_numpy(), rows["fwd_1"].to_numpy()).statistic
    assert ic.filter(pl.col("session") == day)["ic"][0] == pytest.approx(expected)


def test_market_relative_returns_subtract_the_benchmark_over_the_same_sessions() -> None:
    days = business_days(date(2025, 1, 6), 6)
    panel = {
        "A": pl.DataFrame({"session": days, "close": [10.0, 11, 12, 13, 14, 15]}),
        "IDX": pl.DataFrame({"session": days, "close": [100.0, 100, 110, 110, 110, 121]}),
    }
    out = forward_returns(panel, (1, 2), "IDX").sort("session")
    assert out["symbol"].unique().to_list() == ["A"]
    assert out["fwd_1"][0] == pytest.approx(11 / 10 - 1 - 0.0)
    assert out["fwd_2"][0] == pytest.approx(12 / 10 - 1 - 0.10)
    with pytest.raises(ValueError, match="--benchmark SPY"):
        forward_returns(panel, (1,), "SPY")


def test_quantiles_split_each_session_evenly_and_a_stable_ranking_has_no_turnover() -> None:
    days = business_days(date(2025, 1, 6), 4)
    rows = [(d, f"S{i}", 10, float(i), 0.01) for d in days for i in range(10)]
    frame = pl.DataFrame(rows, schema=["session", "symbol", "n_posts", "signal", "fwd_1"], orient="row")
    q = with_quantiles(frame, 5, 5)
    assert q.group_by("session", "quantile").len()["len"].to_list() == [2] * 20
    assert q.filter(pl.col("symbol") == "S9")["quantile"].unique().to_list() == [5]
    assert set(turnover(frame, 5, 5).values()) == {0.0}
    assert with_quantiles(frame.filter(pl.col("symbol").is_in(["S1", "S2"])), 5, 5).height == 0  # too few symbols


def test_holm_adjusts_one_family() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


@pytest.mark.slow
@pytest.mark.parametrize("horizon", [5, 20])
def test_overlapping_horizons_reject_a_true_null_at_about_the_test_level(horizon: int) -> None:
    """200 seeded null panels (a year of sessions, 20 symbols): the IC test at h sessions rejects
    at 5% within 3 points of 5% (Hansen–Hodrick with h − 1 lags gave 6.5% at h = 5 and 12.2% at
    h = 20 on 600 such panels)."""
    rejected = 0
    n_panels = 200
    for seed in range(n_panels):
        panel, signals = planted_panel(seed=5000 + seed, lead=0, strength=0.0, n_symbols=20, n_sessions=250)
        settings = PanelSettings(horizons=(horizon,))
        frame = panel_frame(signals, forward_returns(panel, settings.horizons, None), settings)
        test = mean_test(session_ic(frame, horizon, 5)["ic"].to_numpy(), horizon)
        assert test["test_n"] == -(-test["n"] // horizon)  # every h-th session is tested
        rejected += test["p"] < 0.05
    assert abs(rejected / n_panels - 0.05) <= 0.03, rejected / n_panels


@pytest.mark.parametrize("levels", [1, 3])
def test_a_constant_or_three_level_signal_has_no_spread_and_no_significance(levels: int) -> None:
    """Ties share a bin: a signal that carries no information about which symbol beats another
    shows no spread, even when returns drift with the symbols' names."""
    days = business_days(date(2024, 1, 1), 130)
    panel = {
        f"S{i:02d}": pl.DataFrame({"session": days, "close": 100 * np.cumprod(np.full(len(days), 1 + 0.0005 * i))})
        for i in range(20)
    }
    rng = np.random.default_rng(3)
    rows = [(d, f"S{i:02d}", 10, float(rng.integers(levels))) for d in days[:120] for i in range(20)]
    signals = pl.DataFrame(rows, schema=["session", "symbol", "n_posts", "mean_score"], orient="row", strict=False)
    if levels == 1:
        result = _evaluate(panel, signals, min_sessions=10**6)
        assert all(q["n_sessions"] == 0 for q in result["quantile_returns"])  # one bin only: no top-minus-bottom
        assert "No cross-sectional figure" in result["verdict"] or "No horizon survives" in result["verdict"]
        return
    result = _evaluate(panel, signals, min_sessions=10**6)
    spread = result["quantile_returns"][0]
    assert abs(spread["spread_t"]) < 2.5 and spread["spread_p"] > 0.01
    assert abs(spread["spread_mean"]) < 2e-4  # drift by name is 5 bps a step; ties no longer sort by it
    assert all(r["p_holm"] > 0.05 for r in result["horizons"])


def test_quantiles_follow_pandas_qcut() -> None:
    import pandas as pd

    rng = np.random.default_rng(11)
    values = np.round(rng.normal(size=40), 1)  # ties on purpose
    frame = pl.DataFrame({"session": [date(2025, 1, 6)] * 40, "symbol": [f"S{i}" for i in range(40)], "signal": values})
    ours = with_quantiles(frame, 5, 5).sort("symbol")["quantile"].to_numpy()
    expected = pd.qcut(pd.Series(values, index=[f"S{i}" for i in range(40)]), 5, labels=False) + 1
    assert ours.tolist() == expected.sort_index().tolist()


def test_split_purges_forward_returns_that_reach_past_it() -> None:
    panel, signals = planted_panel(seed=2, lead=1, n_symbols=6, n_sessions=40)
    settings = PanelSettings(horizons=(1, 5))
    frame = panel_frame(signals, forward_returns(panel, settings.horizons, None), settings)
    split = frame["session"].unique().sort()[30]
    before = purged_in_sample(frame, split, (1, 5)).filter(pl.col("symbol") == "S0").sort("session")
    assert before.height == 30
    assert before["fwd_5"].tail(5).null_count() == 5 and before["fwd_5"].head(25).null_count() == 0
    assert before["fwd_1"].tail(1).null_count() == 1 and before["next_return"].tail(1).null_count() == 1


def test_panel_judges_history_columns_and_adjusts_every_return_for_the_benchmark() -> None:
    panel, signals = planted_panel(seed=8, lead=1, strength=0.5, n_symbols=8, n_sessions=80)
    signals = signals.with_columns(
        pl.lit(6).alias("n_bullish"), pl.lit(4).alias("n_bearish"), pl.lit(0).alias("n_neutral")
    )
    result = _evaluate(panel, signals, signal_column="score_z", min_sessions=10**6)
    assert result["signal_column"] == "score_z" and result["horizons"][0]["n_sessions"] > 40
    days = business_days(date(2025, 1, 6), 4)
    prices = {
        "A": pl.DataFrame({"session": days, "close": [10.0, 11, 12, 13]}),
        "IDX": pl.DataFrame({"session": days, "close": [100.0, 110, 110, 121]}),
    }
    out = forward_returns(prices, (1,), "IDX").sort("session")
    assert out["next_return"][0] == pytest.approx(0.1 - 0.1)
    assert out["same_day_return"][1] == pytest.approx(0.1 - 0.1)


def test_the_exchange_is_inferred_from_price_dates_and_unpriced_sessions_are_counted() -> None:
    from tweet_signals.market.sessions import sessions_between

    us = sessions_between(date(2015, 1, 2), date(2015, 12, 31), "NYSE")
    india = sessions_between(date(2015, 1, 2), date(2015, 12, 31), "NSE")
    assert infer_exchange(us) == "NYSE" and infer_exchange(india) == "NSE"
    with pytest.raises(ValueError, match="give --exchange"):
        infer_exchange(us[:3])
    returns = pl.DataFrame({"session": us[:5], "symbol": ["A"] * 5})
    signals = pl.DataFrame(
        {"session": [us[0], date(2015, 1, 19), us[1]], "symbol": ["A", "A", "B"], "n_posts": [5, 5, 5]}
    )  # 19 January 2015 is Martin Luther King Day: no NYSE session, no price row
    missing = sessions_without_prices(signals, returns, 1)
    assert missing == {"rows": 1, "of": 2, "sessions": ["2015-01-19"]}


@pytest.mark.slow
def test_in_sample_fit_ignores_the_out_of_sample_part() -> None:
    panel, signals = planted_panel(seed=5, lead=1, strength=0.4, n_symbols=10, n_sessions=160)
    split = signals["session"].sort()[100]
    first = _evaluate(panel, signals, split=split)["split"]
    scrambled = signals.with_columns(
        pl.when(pl.col("session") >= split)
        .then(pl.col("mean_score").shuffle(seed=1))
        .otherwise(pl.col("mean_score"))
        .alias("mean_score")
    )
    second = _evaluate(panel, scrambled, split=split)["split"]
    assert (first["fitted_threshold"], first["fitted_window"]) == (second["fitted_threshold"], second["fitted_window"])
    assert first["in_sample"]["horizons"][0]["ic_mean"] == pytest.approx(second["in_sample"]["horizons"][0]["ic_mean"])
    assert (
        first["out_of_sample"]["horizons"][0]["ic_mean"] > 0.1 > abs(second["out_of_sample"]["horizons"][0]["ic_mean"])
    )


def test_bad_panel_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive whole numbers"):
        parse_horizons("1,five")
    with pytest.raises(ValueError, match="positive whole numbers"):
        parse_horizons("0,5")
    with pytest.raises(ValueError, match="need at least 2 groups"):
        PanelSettings(quantiles=1)
    with pytest.raises(ValueError, match="--min-symbols 5 is below --quantiles 10"):
        PanelSettings(quantiles=10, min_symbols=5)
    with pytest.raises(ValueError, match="no such folder"):
        load_price_panel(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no <SYMBOL>\.csv"):
        load_price_panel(tmp_path)
    (tmp_path / "X.csv").write_text("Day,Price\n2025-01-01,3\n")
    with pytest.raises(ValueError, match="no column"):
        load_price_panel(tmp_path)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from conftest import CLI, newcomer_env

    return subprocess.run(
        [*CLI, "evaluate", *args], capture_output=True, text=True, env=newcomer_env(tmp_path), timeout=600
    )


@pytest.mark.slow  # CLI subprocesses scoring 2,880 posts with the embedded model
def test_panel_cli_writes_the_tear_sheet_and_reuses_scored_posts(tmp_path: Path) -> None:
    prices, posts = write_panel_files(tmp_path)
    args = [
        "--prices-dir",
        str(prices),
        "--input",
        str(posts),
        "--naive-tz",
        "UTC",
        "--data-root",
        str(tmp_path / "data"),
    ]
    done = _cli(tmp_path, *args, "--symbol-column", "ticker", "--benchmark", "INDEX", "--split", "2025-04-15", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"n_symbols", "n_sessions", "signal_column", "horizons", "quantile_returns", "per_symbol", "verdict"} <= set(
        out
    )
    assert out["n_symbols"] == 8 and out["returns"] == "in excess of INDEX"
    assert [h["horizon"] for h in out["horizons"]] == [1, 5, 10, 20]
    assert {"horizon", "ic_mean", "ic_t", "ic_ir", "n_sessions"} <= set(out["horizons"][0])
    assert {"symbol", "n_sessions", "spearman", "hit_rate", "hit_rate_base"} <= set(out["per_symbol"][0])
    # The posts' mood is the next session's direction: the model must find it at h = 1.
    assert out["horizons"][0]["ic_mean"] > 0.5 and out["horizons"][0]["p_holm"] < 0.01
    assert out["split"]["out_of_sample"]["horizons"][0]["ic_mean"] > 0.5
    report = Path(out["report"]).read_text(encoding="utf-8")
    assert report.index('class="verdict"') < report.index("rank IC by horizon") < report.index("Per symbol")
    cached = sorted((tmp_path / "data" / "cache" / "scored").glob("scored-*.parquet"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    # Symbols from the text this time ($TK0 ...): the same scored posts are reused, not re-scored.
    again = _cli(tmp_path, *args, "--horizons", "1,3", "--json")
    assert again.returncode == 0, again.stderr
    assert [h["horizon"] for h in json.loads(again.stdout)["horizons"]] == [1, 3]
    assert [p.stat().st_mtime_ns for p in (tmp_path / "data" / "cache" / "scored").glob("scored-*.parquet")] == [stamp]


@pytest.mark.slow  # CLI subprocesses
def test_panel_cli_bad_input_is_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    prices, posts = write_panel_files(tmp_path, n_symbols=5, n_sessions=5, posts_per_session=1)
    cases = [
        (["--prices-dir", str(tmp_path / "nowhere"), "--input", str(posts)], "no such folder"),
        (["--prices-dir", str(prices), "--input", str(posts), "--horizons", "1,x"], "positive whole numbers"),
        (["--prices-dir", str(prices), "--input", str(posts), "--split", "April"], "YYYY-MM-DD"),
        (["--prices-dir", str(prices), "--prices", str(prices / "TK0.csv"), "--input", str(posts)], "not both"),
        (
            ["--prices-dir", str(prices), "--input", str(posts), "--naive-tz", "UTC", "--symbol-column", "desk"],
            "no column",
        ),
    ]
    for args, message in cases:
        done = _cli(tmp_path, *args, "--data-root", str(tmp_path / "data"))
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and message in " ".join(done.stderr.split()), (args, done.stderr)


def test_ticker_column_reads_exports_the_way_the_pipeline_does(tmp_path: Path) -> None:
    from tweet_signals.api import ticker_column

    tsv = tmp_path / "posts.csv"
    tsv.write_text("id\ttext\tticker\n1\tbuying, more\t$aapl\n2\tsell; now\t#KO\n", encoding="utf-8")
    assert sorted(ticker_column(tsv, "ticker").iter_rows()) == [("1", "AAPL"), ("2", "KO")]
    with pytest.raises(ValueError, match=r"no column\(s\) \['desk'\]"):
        ticker_column(tsv, "desk")


@pytest.mark.slow  # scores posts with a model, three times
@pytest.mark.usefixtures("prefect_server")
def test_a_us_panel_without_exchange_is_judged_on_nyse_sessions(tmp_path: Path, tiny_roberta: Path) -> None:
    """Posts at 17:00 UTC fall inside the New York session but after the Mumbai close: on the NSE
    calendar they would count for the next session. Without --exchange the price dates (NYSE
    trading days, Good Friday closed) choose NYSE, and the figures equal those with --exchange NYSE."""
    from tweet_signals.evaluation.params import EvaluationParams
    from tweet_signals.flows.evaluate import evaluate_flow
    from tweet_signals.market.sessions import sessions_between

    nyse = sessions_between(date(2025, 3, 3), date(2025, 6, 30), "NYSE")
    prices, posts = write_panel_files(tmp_path, n_symbols=6, n_sessions=60, posts_per_session=2, hour_utc=17, days=nyse)

    def run(exchange: str | None) -> dict:
        given = {"exchange": exchange} if exchange else {}
        params = EvaluationParams(
            prices_dir=str(prices),
            input=str(posts),
            symbol_column="ticker",
            model=str(tiny_roberta),
            min_posts=1,
            horizons="1,5",
            data_root=str(tmp_path / "data"),
            out=str(tmp_path / f"report-{exchange}"),
            **given,
        )
        return evaluate_flow(params)

    inferred, nyse_run, nse_run = run(None), run("NYSE"), run("NSE")
    assert (inferred["exchange"], inferred["exchange_inferred"]) == ("NYSE", True)
    assert nyse_run["exchange_inferred"] is False
    for key in ("n_sessions", "horizons", "quantile_returns"):
        assert json.dumps(inferred[key], sort_keys=True) == json.dumps(nyse_run[key], sort_keys=True), key
    assert inferred["sessions_without_prices"]["rows"] == 0
    # On the Mumbai calendar the same posts land a session late (and on days New York was shut).
    assert nse_run["sessions_without_prices"]["rows"] > 0
    assert json.dumps(nse_run["horizons"], sort_keys=True) != json.dumps(nyse_run["horizons"], sort_keys=True)


def test_in_sample_direction_calls_use_no_out_of_sample_price() -> None:
    """The last session before the split moves from its close to the first out-of-sample close:
    it is not scored in sample (purged); out of sample every call from the split on is."""
    panel, signals = planted_panel(seed=6, lead=1, strength=0.5, n_symbols=6, n_sessions=60)
    days = signals["session"].unique().sort()
    split = days[40]
    result = _evaluate(panel, signals, split=split, movement=(0.0, 0.0), min_sessions=10**6)["split"]
    assert result["in_sample"]["movement"]["sign"]["n"] == 6 * 39  # sessions 0..38: session 39's move ends at 40
    assert result["out_of_sample"]["movement"]["sign"]["n"] == 6 * 20


def test_indian_price_files_load_whatever_the_column_case_and_exchange_suffix(tmp_path: Path) -> None:
    """Exports other than Yahoo's write ``date,close,volume`` in lower case, and Yahoo names NSE
    listings ``RELIANCE.NS``: posts say RELIANCE, so that is the symbol."""
    days = business_days(date(2025, 1, 6), 6)
    pl.DataFrame({"Date": [d.isoformat() for d in days], "close": [10.0, 11, 12, 11, 13, 12], "volume": 5}).write_csv(
        tmp_path / "RELIANCE.NS.csv"
    )
    pl.DataFrame({"date": [d.isoformat() for d in days], "Close": [5.0, 5, 6, 6, 7, 7]}).write_csv(
        tmp_path / "TCS.BO.csv"
    )
    panel = load_price_panel(tmp_path)
    assert sorted(panel) == ["RELIANCE", "TCS"]
    assert panel["RELIANCE"]["close"].to_list() == [10.0, 11, 12, 11, 13, 12]
    assert panel["TCS"]["session"].to_list() == days
    with pytest.raises(ValueError, match="Volume"):
        load_price_panel(tmp_path, target="volume")  # TCS.BO.csv has no volume column
