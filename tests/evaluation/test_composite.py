"""The composite signal (``--combine``) on panels with a planted truth: the in-sample ridge fit
recovers a planted linear combination, sees nothing of the out-of-sample part, finds no skill
where none is planted, flows through the panel like any column (``min_posts`` gaps, JSON,
verdict, report), and the parameters model refuses what it cannot judge."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from panel_data import business_days
from pydantic import ValidationError
from typer.testing import CliRunner

from tweet_signals.cli import app
from tweet_signals.evaluation.composite import (
    COMPOSITE_COLUMN,
    CompositeFit,
    evaluate_composite,
    parse_combine,
    standardised,
    with_composite,
)
from tweet_signals.evaluation.judge import evaluate_signal_panel
from tweet_signals.evaluation.panel import PanelSettings, forward_returns, json_ready
from tweet_signals.evaluation.params import EvaluationParams

COLUMNS = ("a", "b", "c")
# Raw scales and offsets of the columns: the fit must see them only through their z-scores.
SCALE = {"a": 3.0, "b": 0.5, "c": 2.0}
OFFSET = {"a": 1.0, "b": -2.0, "c": 0.0}


def _z(values: np.ndarray) -> np.ndarray:
    """Cross-sectional z-scores of one session (population standard deviation)."""
    return (values - values.mean()) / values.std()


def planted_combination(
    seed: int,
    weights: Mapping[str, float],
    late: Mapping[str, float] | None = None,
    n_symbols: int = 30,
    n_sessions: int = 200,
    split_at: int = 140,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, date]:
    """Closes per symbol, signals (``a``, ``b``, ``c`` per (session, symbol), 10 posts each) and the
    split session. The return from close t to t+1 is 1% × (Σ ``weights`` × z_t + unit noise), plus
    Σ ``late`` × z_t from the split session on: the ``late`` columns carry a signal only out of
    sample."""
    rng = np.random.default_rng(seed)
    days = business_days(date(2024, 1, 1), n_sessions + 1)
    raw = {c: rng.normal(size=(n_sessions, n_symbols)) * SCALE[c] + OFFSET[c] for c in COLUMNS}
    returns = np.zeros((n_sessions + 1, n_symbols))
    for t in range(n_sessions):
        planted = sum((w * _z(raw[c][t]) for c, w in weights.items()), np.zeros(n_symbols))
        if late and t >= split_at:
            planted = planted + sum((w * _z(raw[c][t]) for c, w in late.items()), np.zeros(n_symbols))
        returns[t + 1] = 0.01 * (planted + rng.normal(size=n_symbols))
    closes = 100 * np.cumprod(1 + returns, axis=0)
    panel = {f"S{s}": pl.DataFrame({"session": days, "close": closes[:, s]}) for s in range(n_symbols)}
    signals = pl.DataFrame(
        {
            "session": [days[t] for t in range(n_sessions) for _ in range(n_symbols)],
            "symbol": [f"S{s}" for _ in range(n_sessions) for s in range(n_symbols)],
            "n_posts": 10,
            **{c: raw[c].ravel() for c in COLUMNS},
        }
    )
    return panel, signals, days[split_at]


def _settings(**options: object) -> PanelSettings:
    # One horizon, and no per-symbol figures (not under test): fast.
    base: dict[str, object] = {"horizons": (1,), "min_sessions": 10**6}
    return PanelSettings(**{**base, **options})  # type: ignore[arg-type]


def _fit(panel: dict[str, pl.DataFrame], signals: pl.DataFrame, settings: PanelSettings) -> CompositeFit:
    _, _, fit = with_composite(signals, forward_returns(panel, settings.horizons, None), settings)
    assert fit is not None
    return fit


def _evaluate(panel: dict[str, pl.DataFrame], signals: pl.DataFrame, settings: PanelSettings) -> dict:
    return evaluate_composite(signals, forward_returns(panel, settings.horizons, None), settings)


@pytest.mark.slow
def test_the_fit_recovers_a_planted_combination_and_beats_each_column_in_sample() -> None:
    panel, signals, split = planted_combination(seed=1, weights={"a": 0.3, "b": -0.2})
    result = _evaluate(panel, signals, _settings(split=split, combine=("a", "b")))
    weights = result["composite"]["weights"]
    assert weights["a"] > 0 > weights["b"]
    assert weights["a"] / weights["b"] == pytest.approx(-1.5, rel=0.25)
    # In units of the target: 1% × 0.3 per standard deviation of a (ridge barely shrinks it).
    assert weights["a"] == pytest.approx(0.003, rel=0.25)
    composite_ic = result["composite"]["in_sample_ic"]
    assert composite_ic == result["split"]["in_sample"]["horizons"][0]["ic_mean"]
    for column in ("a", "b"):
        alone = _evaluate(panel, signals, _settings(split=split, signal_column=column))
        assert composite_ic > abs(alone["split"]["in_sample"]["horizons"][0]["ic_mean"]) + 0.03, column
    fitted = result["composite"]["fitted_on"]
    # The last in-sample session's return ends after the split: purged, so 139 of the 140 sessions.
    assert fitted["sessions"] == 139 and fitted["rows"] == 139 * 30
    assert fitted["last"] < split and result["composite"]["alpha"] == 1.0


@pytest.mark.slow
def test_no_peeking_a_column_planted_only_out_of_sample_gets_no_weight() -> None:
    panel, signals, split = planted_combination(seed=2, weights={"a": 0.3, "b": -0.2}, late={"c": 0.8})
    settings = _settings(split=split, combine=COLUMNS)
    fit = _fit(panel, signals, settings)
    weights = dict(zip(fit.columns, fit.weights, strict=True))
    # A weight's standard error here is about 0.01 / √4170 ≈ 1.5e-4, some 5% of a's weight: c's is
    # noise around 0 (within three of them on this seed), far from what it earns out of sample.
    assert abs(weights["c"]) < 0.2 * abs(weights["a"])

    # Every column from the split on and every close from the split on replaced by noise: the
    # in-sample fit must not move.
    rng = np.random.default_rng(99)
    after = pl.col("session") >= split
    noisy = signals.with_columns(
        *[
            pl.when(after).then(pl.Series(rng.normal(size=signals.height))).otherwise(pl.col(c)).alias(c)
            for c in COLUMNS
        ]
    )
    noisy_panel = {
        s: p.with_columns(
            pl.when(after).then(pl.Series(rng.uniform(50, 150, p.height))).otherwise("close").alias("close")
        )
        for s, p in panel.items()
    }
    refit = _fit(noisy_panel, noisy, settings)
    np.testing.assert_allclose(refit.weights, fit.weights, rtol=0, atol=1e-12)
    assert (refit.first, refit.last, refit.sessions, refit.rows) == (fit.first, fit.last, fit.sessions, fit.rows)

    # Out of sample, c alone ranks far better than the composite, which kept its in-sample weights.
    result = _evaluate(panel, signals, settings)
    c_alone = _evaluate(panel, signals, _settings(split=split, signal_column="c"))
    c_ic = c_alone["split"]["out_of_sample"]["horizons"][0]["ic_mean"]
    assert c_ic > 0.4 and result["composite"]["out_of_sample_ic"] < c_ic - 0.2


@pytest.mark.slow
def test_nothing_planted_is_rarely_significant_out_of_sample() -> None:
    significant = 0
    for seed in range(20):
        panel, signals, split = planted_combination(seed=200 + seed, weights={}, n_symbols=20, split_at=120)
        result = _evaluate(panel, signals, _settings(split=split, combine=("a", "b")))
        significant += result["composite"]["out_of_sample_ic_p"] < 0.05
    assert significant <= 3  # 5% of 20 is 1; three allows the binomial's spread


@pytest.mark.slow
def test_standardisation_is_per_session_with_min_posts_and_min_symbols() -> None:
    panel, signals, split = planted_combination(seed=3, weights={"a": 0.3}, n_symbols=8, n_sessions=60, split_at=40)
    first, second = signals["session"].unique().sort()[:2]
    signals = signals.with_columns(
        # The first session's a is constant; S0 has too few posts on every session.
        pl.when(pl.col("session") == first).then(7.0).otherwise(pl.col("a")).alias("a"),
        pl.when(pl.col("symbol") == "S0").then(2).otherwise(pl.col("n_posts")).alias("n_posts"),
    ).filter(~((pl.col("session") == second) & pl.col("symbol").is_in(["S1", "S2", "S3"])))
    returns = forward_returns(panel, (1,), None)
    scores = standardised(signals, returns, ("a", "b"), min_posts=5, min_symbols=5)
    assert "S0" not in scores["symbol"].to_list()
    assert second not in scores["session"].to_list()  # four symbols left: under min_symbols
    assert scores.filter(pl.col("session") == first)["z_a"].to_list() == [0.0] * 7
    z_b = scores.group_by("session").agg(pl.col("z_b").mean().alias("mean"), pl.col("z_b").std(ddof=0).alias("sd"))
    np.testing.assert_allclose(z_b["mean"].to_numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z_b["sd"].to_numpy(), 1.0, atol=1e-12)

    # Through the panel: the composite is the judged column, missing where the column had no rows.
    settings = _settings(split=split, combine=("a", "b"), min_posts=5)
    result = _evaluate(panel, signals, settings)
    frame = result["_frame"]
    assert result["signal_column"] == COMPOSITE_COLUMN
    assert frame.filter(pl.col("symbol") == "S0")["signal"].is_null().all()  # too few posts on every session
    assert frame.filter(pl.col("session") == second)["signal"].is_null().all()  # no cross-section there
    assert frame.filter((pl.col("session") == first) & (pl.col("symbol") != "S0"))["signal"].is_not_null().all()


@pytest.mark.slow
def test_the_json_verdict_and_report_carry_the_weights(tmp_path: Path) -> None:
    panel, signals, split = planted_combination(
        seed=4, weights={"a": 0.3, "b": -0.2}, n_symbols=10, n_sessions=80, split_at=50
    )
    settings = _settings(split=split, combine=("a", "b"))
    summary = evaluate_signal_panel(signals, panel, "prices", str(tmp_path / "out"), settings)
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    composite = written["composite"]
    assert composite["columns"] == ["a", "b"] and set(composite["weights"]) == {"a", "b"}
    assert set(composite["fitted_on"]) == {"first", "last", "sessions", "rows"}
    assert composite["fitted_on"]["last"] < split.isoformat() <= written["split"]["split"]
    for key in ("alpha", "in_sample_ic", "out_of_sample_ic"):
        assert isinstance(composite[key], float)
    assert summary["composite"] == composite == json_ready(composite)
    verdict = summary["verdict"]
    assert "fitted in sample" in verdict and "judged out of sample" in verdict
    assert f"a {composite['weights']['a'] * 10_000:+.2f} bps" in verdict
    page = Path(summary["report"]).read_text(encoding="utf-8")
    assert "Composite of a, b" in page and f"{composite['weights']['b']:+.6f}" in page


def test_a_combined_engagement_column_is_warned_about() -> None:
    panel, signals, split = planted_combination(seed=5, weights={"a": 0.3}, n_symbols=8, n_sessions=60, split_at=40)
    signals = signals.rename({"a": "weighted_score"})
    result = _evaluate(panel, signals, _settings(split=split, combine=("weighted_score", "b")))
    assert any("weighted_score weights posts" in w for w in result["warnings"])


def test_the_composite_needs_a_split_and_columns_the_signals_have() -> None:
    panel, signals, _ = planted_combination(seed=6, weights={}, n_symbols=8, n_sessions=40, split_at=20)
    returns = forward_returns(panel, (1,), None)
    with pytest.raises(ValueError, match="--combine needs --split"):
        with_composite(signals, returns, _settings(combine=("a", "b")))
    with pytest.raises(ValueError, match=r"no column d in the signals; available: .*a, b"):
        with_composite(signals, returns, _settings(combine=("a", "d"), split=date(2024, 1, 15)))
    with pytest.raises(ValueError, match="no session before --split 2024-01-01"):
        with_composite(signals, returns, _settings(combine=("a", "b"), split=date(2024, 1, 1)))


PANEL = {"prices_dir": "prices", "input": "posts.csv"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**PANEL, "combine": "mean_score,bullishness"}, "--combine needs --split"),
        ({"prices": "x.csv", "combine": "mean_score,bullishness"}, "--combine does not apply with --prices"),
        ({**PANEL, "combine": "mean_score", "split": "2025-04-15"}, "give at least 2 columns"),
        (
            {**PANEL, "combine": "mean_score,mood", "split": "2025-04-15"},
            r"unknown column mood; available: .*bullishness",
        ),
        ({**PANEL, "combine": "score_z,score_z", "split": "2025-04-15"}, "score_z named more than once"),
    ],
)
def test_the_parameters_refuse_a_composite_they_cannot_judge(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvaluationParams(**fields)


def test_the_parameters_pass_the_columns_to_the_panel() -> None:
    params = EvaluationParams(**PANEL, combine=" mean_score, score_z ,bullishness", split="2025-04-15")
    assert params.combine == "mean_score,score_z,bullishness"
    assert params.panel_settings().combine == ("mean_score", "score_z", "bullishness")
    assert EvaluationParams.model_validate_json(params.model_dump_json()) == params
    assert EvaluationParams(**PANEL).panel_settings().combine == ()
    assert parse_combine("a,b", available=("a", "b")) == ("a", "b")


def test_a_composite_without_split_on_the_command_line_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--prices-dir", "d", "--combine", "mean_score,bullishness"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--combine needs --split" in lines[0], result.stderr
