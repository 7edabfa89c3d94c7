"""Targets other than the return (``--target abs-return|range|volume``) with a planted truth: a
signal that leads the next session's volatility, range or abnormal volume is found against that
target and not against the return; each target by hand on six sessions (the volume's baseline
never sees a later session); a price file without the target's columns is one clear refusal;
``--movement`` needs the return; single mode works with the absolute return."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from panel_data import business_days
from pydantic import ValidationError
from typer.testing import CliRunner

from tweet_signals.cli import app
from tweet_signals.evaluation.judge import EvaluationSettings, evaluate_signal_history, read_single_prices
from tweet_signals.evaluation.panel import PanelSettings, evaluate_panel, forward_returns, load_price_panel
from tweet_signals.evaluation.params import EvaluationParams
from tweet_signals.evaluation.statistics import align_next_return
from tweet_signals.evaluation.targets import VOLUME_BASELINE, Target, target_columns
from tweet_signals.stages.signals import SIGNALS_SCHEMA

# Six sessions by hand: closes (Adj Close differs from the raw Close after session 2, as after a
# dividend), raw high and low, volume.
SIX = {
    "Date": [d.isoformat() for d in business_days(date(2025, 1, 6), 6)],
    "High": [10.5, 11.5, 10.2, 10.0, 11.0, 10.5],
    "Low": [9.5, 10.5, 9.5, 9.8, 10.5, 9.6],
    "Close": [10.0, 11.0, 9.9, 9.9, 10.89, 10.0],
    "Adj Close": [9.0, 9.9, 8.91, 9.9, 10.89, 10.0],
    "Volume": [100, 200, 400, 100, 800, 50],
}


def _write_six(folder: Path, name: str = "AAA.csv", drop: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pl.DataFrame({k: v for k, v in SIX.items() if k not in drop}).write_csv(path)
    return path


def _planted_prices(
    seed: int, target: str, n_symbols: int = 30, n_sessions: int = 200, strength: float = 0.6
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """Daily bars per symbol and a signal per (session, symbol) (e.g. post volume, standardised).
    The signal of session t sets the scale of session t+1's ``target`` only: the volatility of its
    return (``abs-return``: returns with a standard deviation proportional to exp(strength ×
    signal), their sign a coin toss), the width of its bar (``range``) or its volume (``volume``)."""
    rng = np.random.default_rng(seed)
    days = business_days(date(2024, 1, 1), n_sessions + 1)
    panel, rows = {}, []
    for s in range(n_symbols):
        signal = rng.normal(size=len(days))
        # Session t+1's scale comes from the signal of session t; session 0 has no signal before it.
        scale = np.exp(strength * np.concatenate([[0.0], signal[:-1]]))
        returns = rng.normal(0.0, 0.01 * (scale if target == "abs-return" else 1.0), len(days))
        close = 100 * np.cumprod(1 + returns)
        width = 0.02 * rng.uniform(0.5, 1.5, len(days)) * (scale if target == "range" else 1.0)
        log_volume = 13 + rng.normal(0, 0.3, len(days)) + (np.log(scale) if target == "volume" else 0.0)
        panel[f"S{s:02d}"] = pl.DataFrame(
            {
                "session": days,
                "close": close,
                "high": close * (1 + width / 2),
                "low": close * (1 - width / 2),
                "range_close": close,
                "volume": np.exp(log_volume),
            }
        )
        rows += [(days[t], f"S{s:02d}", 10, float(signal[t])) for t in range(n_sessions)]
    signals = pl.DataFrame(rows, schema=["session", "symbol", "n_posts", "mean_score"], orient="row")
    return panel, signals


def _evaluate(panel: dict[str, pl.DataFrame], signals: pl.DataFrame, **options: Any) -> dict[str, Any]:
    settings = PanelSettings(**{"horizons": (1, 5), "min_sessions": 10**6, **options})
    returns = forward_returns(panel, settings.horizons, settings.benchmark, settings.target)
    return evaluate_panel(signals, returns, settings)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["abs-return", "range", "volume"])
def test_a_signal_leading_the_next_sessions_target_is_found_against_it_not_against_the_return(target: str) -> None:
    panel, signals = _planted_prices(seed=21, target=target)
    found = _evaluate(panel, signals, target=target)
    h1 = found["horizons"][0]
    assert h1["horizon"] == 1 and h1["ic_mean"] > 0.1 and h1["ic_t"] > 5 and h1["p_holm"] < 0.001
    assert found["target"] == target and "Evidence of cross-sectional skill at horizon 1" in found["verdict"]
    top_minus_bottom = found["quantile_returns"][0]
    assert top_minus_bottom["spread_mean"] > 0 and top_minus_bottom["spread_per_session"] is None
    against_return = _evaluate(panel, signals)["horizons"][0]
    assert abs(against_return["ic_t"]) < 2  # a volatility, a range or a volume has no direction


def test_each_target_by_hand_on_six_sessions(tmp_path: Path) -> None:
    """Returns from Adj Close, the range from the raw High, Low and Close, volume against a trailing
    baseline (three sessions here, to fit six; the default is 20), h = 1 and 2."""
    _write_six(tmp_path / "prices")
    adj, raw = np.array(SIX["Adj Close"]), np.array(SIX["Close"])
    daily_range = (np.array(SIX["High"]) - np.array(SIX["Low"])) / raw
    frames = {
        target: load_price_panel(tmp_path / "prices", target=target)["AAA"].with_columns(
            target_columns(target, (1, 2), volume_baseline=3)
        )
        for target in ("abs-return", "range", "volume")
    }
    absolute = forward_returns(load_price_panel(tmp_path / "prices", target="abs-return"), (1, 2), None, "abs-return")
    assert absolute["fwd_1"].to_list()[:5] == pytest.approx(np.abs(adj[1:] / adj[:-1] - 1))
    assert absolute["fwd_2"].to_list()[:4] == pytest.approx(np.abs(adj[2:] / adj[:-2] - 1))
    assert absolute["same_day_return"][1] == pytest.approx(abs(9.9 / 9.0 - 1))

    ranged = frames["range"]
    assert ranged["fwd_1"].to_list()[:5] == pytest.approx(daily_range[1:])  # (high − low) / close of t+1
    assert ranged["fwd_2"][0] == pytest.approx((daily_range[1] + daily_range[2]) / 2)  # mean over t+1, t+2
    assert ranged["fwd_2"].to_list()[4:] == [None, None] and ranged["next_return"][5] is None

    volume = frames["volume"]
    log_volume = np.log(np.array(SIX["Volume"], dtype=float))
    baseline_2 = log_volume[0:3].mean()  # sessions 0, 1, 2: ends at t = 2, nothing after it
    assert volume["fwd_1"][2] == pytest.approx(log_volume[3] - baseline_2)
    assert volume["fwd_2"][2] == pytest.approx((log_volume[3] + log_volume[4]) / 2 - baseline_2)
    assert volume["fwd_1"][3] == pytest.approx(log_volume[4] - log_volume[1:4].mean())
    assert volume["fwd_1"].to_list()[:2] == [None, None]  # fewer than three sessions of baseline
    assert volume["same_day_return"][3] == pytest.approx(volume["next_return"][2])


def test_volume_at_t_plus_1_never_enters_the_baseline_of_t() -> None:
    """The default 20-session baseline: raising session k's volume e-fold raises the target of
    session k − 1 by exactly 1 (its numerator), leaves every earlier value alone, and lowers the
    next session's by 1/20 (session k is now in its baseline)."""
    n, k = 30, 22
    days = business_days(date(2025, 1, 6), n)
    volume = np.exp(np.random.default_rng(3).normal(12, 0.4, n))
    bumped = volume.copy()
    bumped[k] *= np.e

    def targets(values: np.ndarray) -> pl.DataFrame:
        frame = pl.DataFrame({"session": days, "close": np.full(n, 10.0), "volume": values})
        return frame.with_columns(target_columns("volume", (1,)))

    before, after = targets(volume)["next_return"].to_numpy(), targets(bumped)["next_return"].to_numpy()
    assert VOLUME_BASELINE == 20 and np.isnan(before[:19]).all() and not np.isnan(before[19 : n - 1]).any()
    assert after[k - 1] - before[k - 1] == pytest.approx(1.0)
    assert after[: k - 1][19:] == pytest.approx(before[: k - 1][19:])
    assert after[k] - before[k] == pytest.approx(-1 / VOLUME_BASELINE)


def test_abs_return_with_a_benchmark_is_the_absolute_excess_return() -> None:
    days = business_days(date(2025, 1, 6), 3)
    panel = {
        "A": pl.DataFrame({"session": days, "close": [10.0, 11.0, 12.1]}),
        "IDX": pl.DataFrame({"session": days, "close": [100.0, 120.0, 120.0]}),
    }
    out = forward_returns(panel, (1, 2), "IDX", "abs-return").sort("session")
    assert out["next_return"][0] == pytest.approx(abs(0.1 - 0.2))  # not |0.1| − |0.2|
    assert out["fwd_2"][0] == pytest.approx(abs(0.21 - 0.2))


@pytest.mark.parametrize(
    ("target", "drop", "message"),
    [
        ("range", ("High", "Low", "Adj Close", "Volume"), "--target range needs High and Low columns in AAA.csv"),
        ("volume", ("Volume",), "--target volume needs a Volume column in AAA.csv"),
    ],
)
def test_a_price_file_without_the_targets_columns_is_a_clear_error(
    tmp_path: Path, target: str, drop: tuple[str, ...], message: str
) -> None:
    path = _write_six(tmp_path / "prices", drop=drop)
    present = ", ".join(c for c in SIX if c not in drop)
    for load in (
        lambda: load_price_panel(tmp_path / "prices", target=target),
        lambda: read_single_prices(str(path), target=target),
    ):
        with pytest.raises(ValueError) as refused:
            load()
        assert str(refused.value) == f"{message}; it has {present}"
    # The return and its absolute value need nothing beyond the date and the close.
    assert load_price_panel(tmp_path / "prices", target="abs-return")["AAA"].height == 6


def test_the_range_needs_the_raw_close_beside_the_adjusted_one(tmp_path: Path) -> None:
    _write_six(tmp_path / "prices", drop=("Close",))
    with pytest.raises(ValueError, match=r"--target range needs a Close column in AAA\.csv; it has Date, High"):
        load_price_panel(tmp_path / "prices", target="range")


@pytest.mark.parametrize("mode", ["panel", "single"])
def test_a_missing_column_is_bad_input_exit_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Through the command and the flow's bad-input path (the flow body, without a Prefect server:
    the price file is refused before any post is read)."""
    from prefect.states import State

    import tweet_signals.cli.evaluate as command
    from tweet_signals.flows.evaluate import evaluate_flow

    def run_body(flow: Any, params: EvaluationParams) -> tuple[bool, Any, str]:
        result = evaluate_flow.fn(params)
        return (False, None, str(result.message)) if isinstance(result, State) else (True, result, "")

    monkeypatch.setattr(command, "run_flow", run_body)
    path = _write_six(tmp_path / "prices", drop=("Volume",))
    where = ["--prices-dir", str(tmp_path / "prices")] if mode == "panel" else ["--prices", str(path)]
    args = ["evaluate", *where, "--input", str(tmp_path / "posts.csv"), "--target", "volume", "--exchange", "NYSE"]
    result = CliRunner().invoke(app, [*args, "--data-root", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert "--target volume needs a Volume column in AAA.csv" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_movement_needs_the_return_target() -> None:
    with pytest.raises(ValidationError, match=r"--movement calls the next session's return.*--target volume"):
        EvaluationParams(prices_dir="prices", movement="0.0055,-0.005", target="volume")
    with pytest.raises(ValidationError, match="--target range"):
        EvaluationParams(prices="closes.csv", movement="0.0055,-0.005", target="range")
    params = EvaluationParams(prices_dir="prices", movement="0.0055,-0.005")
    assert params.target == "return" and params.panel_settings().movement == (0.0055, -0.005)
    result = CliRunner().invoke(
        app,
        ["evaluate", "--prices-dir", "p", "--movement", "0.0055,-0.005", "--target", "abs-return"],
    )
    assert result.exit_code == 2 and "--target abs-return" in result.stderr


def test_the_target_reaches_both_modes_settings() -> None:
    panel = EvaluationParams(prices_dir="prices", target="range").panel_settings()
    single = EvaluationParams(prices="closes.csv", exchange="NYSE", target="volume").single_settings("out")
    assert (panel.target, single.target) == ("range", "volume")
    assert EvaluationParams(prices="closes.csv").single_settings("out", "NYSE").target == "return"


@pytest.mark.slow
def test_the_panel_report_json_and_verdict_name_the_target(tmp_path: Path) -> None:
    from tweet_signals.evaluation.judge import evaluate_signal_panel

    panel, signals = _planted_prices(seed=22, target="abs-return", n_symbols=12, n_sessions=90)
    split = signals["session"].unique().sort()[60]
    settings = PanelSettings(horizons=(1, 5), min_sessions=30, target="abs-return", split=split)
    summary = evaluate_signal_panel(signals, panel, "prices", str(tmp_path / "out"), settings)
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    assert written["target"] == "abs-return" and written["cost_bps"] is None
    assert summary["verdict"].startswith("Signal: mean_score; target: absolute return; 12 symbols")
    row = written["per_symbol"][0]
    assert row["spearman"] is not None and row["hit_rate"] is None and row["strategy_sharpe"] is None
    assert (
        written["split"]["fitted_threshold"] is None and written["split"]["in_sample"]["strategy_return_mean"] is None
    )
    assert written["tear_sheet"]["spread_portfolio"]["sharpe"] is None
    assert written["tear_sheet"]["quantile_next_return"]["final_growth"] == {}
    assert len(written["tear_sheet"]["ic_decay"]) == 11 and written["tear_sheet"]["ic_decay"][0]["ic_mean"] > 0.1
    page = Path(summary["report"]).read_text(encoding="utf-8")
    assert "Does the signal rank 12 symbols by their next-session absolute return?" in page
    assert "Per-session rates and costs apply to returns only" in page
    assert 'alt="top_minus_bottom.png"' not in page and 'alt="quantile_cumulative.png"' not in page


def _single_signals(prices: pl.DataFrame, values: np.ndarray) -> pl.DataFrame:
    """One symbol's stored signals (the pipeline's schema) on every price session."""
    n = prices.height
    frame = pl.DataFrame(
        {
            "session": prices["session"],
            "symbol": ["AAA"] * n,
            "n_posts": [10] * n,
            "n_bullish": [5] * n,
            "n_bearish": [3] * n,
            "n_neutral": [2] * n,
            "mean_score": values,
        }
    )
    return frame.with_columns(
        [pl.lit(None, dtype=dtype).alias(name) for name, dtype in SIGNALS_SCHEMA.items() if name not in frame.columns]
    ).select(list(SIGNALS_SCHEMA))


@pytest.mark.slow
def test_single_mode_judges_the_absolute_return(tmp_path: Path) -> None:
    """One symbol on NYSE sessions whose next-session volatility follows the signal: found against
    abs-return, with no hit rate or strategy; against the return, nothing."""
    from tweet_signals.market.sessions import sessions_between

    days = sessions_between(date(2024, 1, 2), date(2024, 12, 31), "NYSE")
    rng = np.random.default_rng(31)
    signal = rng.normal(size=len(days))
    scale = np.exp(0.8 * np.concatenate([[0.0], signal[:-1]]))
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01 * scale))
    path = tmp_path / "AAA.csv"
    pl.DataFrame({"Date": [d.isoformat() for d in days], "Close": close}).write_csv(path)
    signals = _single_signals(read_single_prices(str(path)), signal)

    def judge(target: Target) -> dict[str, Any]:
        settings = EvaluationSettings(str(path), str(tmp_path / target), exchange="NYSE", target=target)
        return evaluate_signal_history(signals, "AAA", settings)

    found, plain = judge("abs-return"), judge("return")
    assert found["target"] == "abs-return" and found["enough_data"]
    assert found["spearman"]["value"] > 0.4 and found["spearman"]["ci_low"] > 0
    assert found["hit_rate"] is None and found["strategy"] == {}
    assert found["verdict"].startswith("Signal: mean_score; target: absolute return;")
    assert "leads the next session's absolute return" in found["verdict"]
    assert "No hit rate or long/flat strategy" in found["verdict"]
    # Against the return the signal has no direction to give: a small correlation (its null spread
    # is wider than scipy's p assumes, since the returns' volatility follows the signal).
    assert plain["target"] == "return" and abs(plain["spearman"]["value"]) < 0.2 and plain["strategy"]
    page = Path(found["report"]).read_text(encoding="utf-8")
    assert "Does the AAA signal predict the next session's absolute return?" in page
    assert not (tmp_path / "abs-return" / "equity.png").exists()
    # The alignment pairs the signal of t with |close_{t+1} / close_t − 1| and nothing later.
    aligned = align_next_return(signals, read_single_prices(str(path)), target="abs-return")
    assert aligned["next_return"].to_list()[:3] == pytest.approx(np.abs(close[1:4] / close[:3] - 1))


@pytest.mark.slow
def test_attention_that_leads_volatility_is_found_against_abs_return_and_not_against_return() -> None:
    """Post counts whose abnormal level at t sets the volatility of session t+1's return: the
    attention column, computed from each symbol's previous sessions by the signals stage's
    formula, ranks symbols by next-session absolute return, and not by return."""
    rng = np.random.default_rng(5)
    days = business_days(date(2024, 1, 1), 221)
    panel, rows = {}, []
    for s in range(30):
        log_posts = 3 + rng.normal(0, 0.5, len(days))
        posts = np.maximum(1, np.round(np.exp(log_posts))).astype(int)
        scale = np.exp(0.8 * np.concatenate([[0.0], (np.log1p(posts[:-1]) - 3) / 0.5]))
        returns = rng.normal(0, 0.01 * scale)
        panel[f"S{s:02d}"] = pl.DataFrame({"session": days, "close": 100 * np.cumprod(1 + returns)})
        rows += [(days[t], f"S{s:02d}", int(posts[t]), 0.0, 0.1) for t in range(220)]
    signals = pl.DataFrame(rows, schema=["session", "symbol", "n_posts", "bullishness", "mean_score"], orient="row")
    found = _evaluate(panel, signals, target="abs-return", signal_column="attention_z", min_posts=0)
    h1 = found["horizons"][0]
    assert h1["ic_mean"] > 0.2 and h1["p_holm"] < 0.001 and h1["n_sessions"] > 200
    against_return = _evaluate(panel, signals, signal_column="attention_z", min_posts=0)["horizons"][0]
    assert abs(against_return["ic_t"]) < 2
