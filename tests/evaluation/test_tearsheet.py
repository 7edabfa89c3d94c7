"""The rest of the tear sheet on panels with a planted truth: the IC decay peaks at the planted
delay, a fixed ranking has rank autocorrelation 1 and noise about 0, noise turns a quantile over
at (q − 1)/q, coverage and monthly IC add up by hand, the spread book's statistics are
empyrical's, and the HTML report carries the new charts without failing on a tiny panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from panel_data import planted_panel

from tweet_signals.evaluation.judge import evaluate_signal_panel
from tweet_signals.evaluation.panel import PanelSettings, forward_returns, panel_frame, session_ic, with_quantiles
from tweet_signals.evaluation.tearsheet import ic_decay, rank_autocorrelation, tear_sheet

NEW_CHARTS = ("ic_series.png", "monthly_ic.png", "ic_decay.png", "coverage.png", "quantile_cumulative.png")


def _settings(**options: object) -> PanelSettings:
    # The planted panels carry their signal in ``weighted_score``; per-symbol figures are not under test.
    base: dict[str, object] = {"signal_column": "weighted_score", "min_sessions": 10**6}
    return PanelSettings(**{**base, **options})  # type: ignore[arg-type]


def _frame(panel: dict[str, pl.DataFrame], signals: pl.DataFrame, settings: PanelSettings) -> pl.DataFrame:
    return panel_frame(signals, forward_returns(panel, settings.horizons, settings.benchmark), settings)


def _with_signal(signals: pl.DataFrame, values: np.ndarray) -> pl.DataFrame:
    return signals.with_columns(pl.Series("weighted_score", values))


@pytest.mark.parametrize(("lead", "sign"), [(1, 1), (4, -1)])
def test_ic_decay_peaks_at_the_planted_delay_with_its_sign(lead: int, sign: int) -> None:
    settings = _settings()
    panel, signals = planted_panel(seed=11, lead=lead, strength=0.4, n_symbols=20, n_sessions=150, sign=sign)
    decay = tear_sheet(_frame(panel, signals, settings), settings)["ic_decay"]
    assert [r["delay"] for r in decay] == list(range(11))
    peak = max(decay, key=lambda r: abs(r["ic_mean"]))
    # The planted return runs from close t+lead−1 to close t+lead: a trade delayed by lead − 1.
    assert peak["delay"] == lead - 1
    assert np.sign(peak["ic_mean"]) == sign and abs(peak["ic_t"]) > 10
    others = [abs(r["ic_mean"]) for r in decay if r["delay"] != lead - 1]
    assert max(others) < abs(peak["ic_mean"]) / 3


def test_ic_decay_without_delay_is_the_next_session_ic() -> None:
    settings = _settings(horizons=(1,))
    panel, signals = planted_panel(seed=12, lead=1, strength=0.3, n_symbols=12, n_sessions=60)
    frame = _frame(panel, signals, settings)
    expected = session_ic(frame, 1, settings.min_symbols)
    first = ic_decay(frame, settings.min_symbols, max_delay=0)[0]
    assert first["n_sessions"] == expected.height
    assert first["ic_mean"] == pytest.approx(float(expected["ic"].mean()))  # type: ignore[arg-type]


def test_rank_autocorrelation_of_a_fixed_ranking_is_one_and_of_noise_about_zero() -> None:
    settings = _settings()
    panel, signals = planted_panel(seed=13, lead=0, strength=0.0, n_symbols=25, n_sessions=200)
    fixed = _with_signal(signals, signals["symbol"].str.slice(1).cast(pl.Float64).to_numpy())
    sheet = tear_sheet(_frame(panel, fixed, settings), settings)
    assert sheet["rank_autocorrelation"] == pytest.approx({h: 1.0 for h in settings.horizons})
    noise = tear_sheet(_frame(panel, signals, settings), settings)["rank_autocorrelation"]
    assert set(noise) == set(settings.horizons)
    assert all(abs(value) < 0.05 for value in noise.values())


def test_rank_autocorrelation_agrees_with_alphalens() -> None:
    performance = pytest.importorskip("alphalens.performance")
    settings = _settings()
    panel, signals = planted_panel(seed=14, lead=0, strength=0.0, n_symbols=10, n_sessions=80)
    # A persistent signal (a random walk per symbol), so the autocorrelation is far from 0 and 1.
    walk = signals.sort("symbol", "session").with_columns(pl.col("weighted_score").cum_sum().over("symbol"))
    frame = _frame(panel, walk, settings)
    factor = (
        frame.filter(pl.col("signal").is_not_null())
        .select(pl.col("session").alias("date"), pl.col("symbol").alias("asset"), pl.col("signal").alias("factor"))
        .to_pandas()
        .set_index(["date", "asset"])
    )
    for lag in (1, 5):
        expected = float(performance.factor_rank_autocorrelation(factor, lag).mean())
        assert rank_autocorrelation(frame, lag, settings.min_symbols) == pytest.approx(expected)
        assert 0.2 < expected < 0.99


def test_turnover_of_noise_is_about_q_minus_one_over_q_at_every_horizon() -> None:
    for quantiles in (2, 5):
        settings = _settings(quantiles=quantiles)
        panel, signals = planted_panel(seed=15, lead=0, strength=0.0, n_symbols=30, n_sessions=200)
        by_horizon = tear_sheet(_frame(panel, signals, settings), settings)["turnover_by_horizon"]
        assert set(by_horizon) == set(settings.horizons)
        for shares in by_horizon.values():
            assert set(shares) == set(range(1, quantiles + 1))
            assert all(abs(share - (quantiles - 1) / quantiles) < 0.05 for share in shares.values())


def test_coverage_counts_symbols_with_a_signal_and_all_posts_per_session() -> None:
    settings = _settings(min_posts=5)
    panel, signals = planted_panel(seed=16, lead=0, strength=0.0, n_symbols=7, n_sessions=15)
    rng = np.random.default_rng(0)
    posts = rng.integers(0, 10, signals.height)
    sessions = sorted(signals["session"].unique().to_list())
    # A session in the middle with posts but no symbol above ``min_posts`` still counts, with 0 symbols.
    posts[(signals["session"] == sessions[6]).to_numpy()] = 2
    signals = signals.with_columns(pl.Series("n_posts", posts))
    per_session, summary = _coverage(tear_sheet(_frame(panel, signals, settings), settings))
    with_signal = [s for s, n in zip(signals["session"].to_list(), posts, strict=True) if n >= 5]
    first, last = min(with_signal), max(with_signal)
    expected = {
        day: (
            sum(1 for s, n in zip(signals["session"].to_list(), posts, strict=True) if s == day and n >= 5),
            sum(int(n) for s, n in zip(signals["session"].to_list(), posts, strict=True) if s == day),
        )
        for day in sessions
        if first <= day <= last
    }
    assert per_session == expected
    assert expected[sessions[6]][0] == 0
    assert summary["sessions"] == len(expected)
    assert summary["min_symbols"] == 0
    assert summary["median_symbols"] == pytest.approx(float(np.median([v[0] for v in expected.values()])))
    assert summary["median_posts"] == pytest.approx(float(np.median([v[1] for v in expected.values()])))


def _coverage(sheet: dict) -> tuple[dict, dict]:
    frame = sheet["_coverage"]
    return {s: (int(n), int(p)) for s, n, p in frame.iter_rows()}, sheet["coverage"]


def test_monthly_ic_weighted_by_sessions_is_the_overall_mean_ic() -> None:
    settings = _settings()
    panel, signals = planted_panel(seed=17, lead=1, strength=0.3, n_symbols=15, n_sessions=180)
    frame = _frame(panel, signals, settings)
    sheet = tear_sheet(frame, settings)
    months = sheet["monthly_ic"]
    assert len(months) >= 8 and all(1 <= m["month"] <= 12 for m in months)
    ic = session_ic(frame, settings.horizons[0], settings.min_symbols)
    assert sum(m["n_sessions"] for m in months) == ic.height
    weighted = sum(m["ic_mean"] * m["n_sessions"] for m in months) / ic.height
    assert weighted == pytest.approx(float(ic["ic"].mean()))  # type: ignore[arg-type]
    series = sheet["_ic_series"]
    assert series["ic_rolling"][20] == pytest.approx(float(series["ic"][:21].mean()))  # type: ignore[arg-type]


def test_spread_portfolio_statistics_are_empyricals_on_the_spread_series() -> None:
    import empyrical

    settings = _settings()
    panel, signals = planted_panel(seed=18, lead=1, strength=0.3, n_symbols=20, n_sessions=150)
    frame = _frame(panel, signals, settings)
    sheet = tear_sheet(frame, settings)
    # The spread by hand: top quantile's mean next return minus the bottom's, session by session.
    ranked = with_quantiles(frame.filter(pl.col("next_return").is_not_null()), settings.quantiles, settings.min_symbols)
    spread = []
    for _, rows in sorted(ranked.group_by("session"), key=lambda item: item[0][0]):
        top = rows.filter(pl.col("quantile") == settings.quantiles)["next_return"]
        bottom = rows.filter(pl.col("quantile") == 1)["next_return"]
        if top.len() and bottom.len():
            spread.append(float(top.mean()) - float(bottom.mean()))  # type: ignore[arg-type]
    values = np.array(spread)
    book = sheet["spread_portfolio"]
    assert book["sessions"] == len(values)
    np.testing.assert_allclose(sheet["_spread_portfolio"]["spread"].to_numpy(), values)
    assert book["sharpe"] == pytest.approx(empyrical.sharpe_ratio(values))
    assert book["sharpe"] == pytest.approx(values.mean() / values.std(ddof=1) * np.sqrt(252))
    assert book["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(values)) and book["max_drawdown"] >= 0
    assert book["annual_return"] == pytest.approx(empyrical.annual_return(values))
    assert book["sharpe"] > 0  # the planted next-session signal makes the long-short book pay
    # Each quantile's growth compounds its per-session mean returns.
    means = sheet["quantile_next_return"]
    assert set(means["mean"]) == set(range(1, settings.quantiles + 1))
    growth = sheet["_quantile_cumulative"].filter(pl.col("quantile") == settings.quantiles)["growth"]
    assert float(growth[-1]) == pytest.approx(means["final_growth"][settings.quantiles])


def _write(tmp_path: Path, panel: dict[str, pl.DataFrame], signals: pl.DataFrame, settings: PanelSettings) -> dict:
    return evaluate_signal_panel(signals, panel, "prices", str(tmp_path / "out"), settings)


@pytest.mark.slow
def test_report_embeds_the_tear_sheet_charts_and_the_json_has_its_figures(tmp_path: Path) -> None:
    settings = _settings()
    panel, signals = planted_panel(seed=19, lead=2, strength=0.4, n_symbols=12, n_sessions=80)
    summary = _write(tmp_path, panel, signals, settings)
    page = Path(summary["report"]).read_text(encoding="utf-8")
    for name in NEW_CHARTS:
        assert f'alt="{name}" src="data:image/png;base64,' in page
        assert (tmp_path / "out" / name).stat().st_size > 1000
    for heading in ("Rank IC through time", "IC decay", "Quantile portfolios", "Coverage", "rank autocorrelation"):
        assert heading in page
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))["tear_sheet"]
    assert not [key for key in written if key.startswith("_")]
    assert set(written["turnover_by_horizon"]) == {str(h) for h in settings.horizons}
    assert written["spread_portfolio"]["sessions"] > 0 and len(written["ic_decay"]) == 11


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"quantiles": 2, "min_symbols": 3}])
def test_report_of_a_tiny_panel_does_not_fail(tmp_path: Path, options: dict) -> None:
    settings = _settings(**options)
    panel, signals = planted_panel(seed=20, lead=1, strength=0.3, n_symbols=3, n_sessions=10)
    summary = _write(tmp_path, panel, signals, settings)
    page = Path(summary["report"]).read_text(encoding="utf-8")
    assert "Coverage" in page and "–" in page
    sheet = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))["tear_sheet"]
    assert sheet["coverage"]["sessions"] == 10
    if not options:  # no session has five symbols: no cross-sectional figure, every chart of one skipped
        assert sheet["monthly_ic"] == [] and sheet["spread_portfolio"]["sharpe"] is None
        assert 'alt="ic_series.png"' not in page and 'alt="quantile_cumulative.png"' not in page
