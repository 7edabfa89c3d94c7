"""Signal health: a data root of stored signals with a planted next-session skill is judged
working, a collapse of the symbols with a signal ends the flow Failed naming coverage, an empty
data root ends Failed with one clear message; the flow publishes its table and summary artifacts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from panel_data import business_days

from tweet_signals.evaluation.health import (
    COLLAPSED,
    NO_EVIDENCE,
    NO_SIGNALS,
    WORKING,
    HealthSettings,
    check_signal_health,
    coverage_figures,
    health_rows,
    hit_rate,
    session_coverage,
)
from tweet_signals.stages.signals import ALL, SIGNALS_SCHEMA
from tweet_signals.storage import Storage, write_parquet_atomic

if TYPE_CHECKING:
    from prefect.states import State

N_SYMBOLS = 8
N_SESSIONS = 150
FIRST_DAY = date(2025, 1, 6)


def _signal_rows(day: date, symbols: list[str], scores: list[float | None], posts: list[int]) -> pl.DataFrame:
    """One stored session as the signals stage writes it (every column of ``SIGNALS_SCHEMA``)."""
    n = len(symbols)
    return pl.DataFrame(
        {
            "session": [day] * n,
            "symbol": symbols,
            "n_posts": posts,
            "n_bullish": [p // 2 for p in posts],
            "n_bearish": [p // 4 for p in posts],
            "n_neutral": [p - p // 2 - p // 4 for p in posts],
            "mean_score": scores,
            "weighted_score": scores,
            "bullishness": [0.1 if p else 0.0 for p in posts],
            "agreement": [None] * n,
            "mean_relevance": [0.2 if p else None for p in posts],
            "signal": ["neutral" if p >= 5 else "insufficient" for p in posts],
            "threshold_bullish": [0.4] * n,
            "threshold_bearish": [-0.4] * n,
            "min_posts": [5] * n,
            "model_id": ["embedded"] * n,
            "n_authors": posts,
            **{c: [None] * n for c in SIGNALS_SCHEMA if c not in FILLED},
        },
        schema=SIGNALS_SCHEMA,
    )


# The columns ``_signal_rows`` sets; the signals' other columns (reach, history) are left null.
FILLED = (
    *("session", "symbol", "n_posts", "n_bullish", "n_bearish", "n_neutral", "mean_score", "weighted_score"),
    *("bullishness", "agreement", "mean_relevance", "signal", "threshold_bullish", "threshold_bearish"),
    *("min_posts", "model_id", "n_authors"),
)


def write_data_root(
    root: Path, collapse_last: int = 0, strength: float = 1.0, seed: int = 11
) -> tuple[Path, Path, list[date]]:
    """A data root with ``N_SESSIONS`` stored sessions of ``N_SYMBOLS`` symbols (plus an ``ALL``
    row) whose ``mean_score`` on session t leads the return from close t to close t+1, and a
    price folder of ``<SYMBOL>.csv`` (Date, Adj Close, Close) reaching a few sessions further.
    In the last ``collapse_last`` sessions only the first symbol has posts."""
    rng = np.random.default_rng(seed)
    days = business_days(FIRST_DAY, N_SESSIONS + 5)
    symbols = [f"SYM{s}" for s in range(N_SYMBOLS)]
    prices = root / "prices"
    prices.mkdir(parents=True)
    returns = rng.normal(0.0005, 0.01, (N_SYMBOLS, len(days)))
    for s, symbol in enumerate(symbols):
        close = 100 * np.cumprod(1 + returns[s])
        pl.DataFrame(
            {"Date": [d.isoformat() for d in days], "Adj Close": close, "Close": close * 1.01, "Volume": 1000}
        ).write_csv(prices / f"{symbol}.csv")
    storage = Storage.at(root / "data")
    for t, day in enumerate(days[:N_SESSIONS]):
        # The planted truth: the signal of session t carries the standardised return t → t+1.
        planted = strength * returns[:, t + 1] / 0.01 + rng.normal(size=N_SYMBOLS)
        scores: list[float | None] = [float(np.tanh(v / 3)) for v in planted]
        posts = [int(p) for p in rng.integers(3, 30, N_SYMBOLS)]
        if t >= N_SESSIONS - collapse_last:
            scores = [scores[0]] + [None] * (N_SYMBOLS - 1)
            posts = [posts[0]] + [0] * (N_SYMBOLS - 1)
        frame = _signal_rows(day, [*symbols, ALL], [*scores, 0.0], [*posts, sum(posts)])
        write_parquet_atomic(frame, storage.signals(day))
    return root / "data", prices, days[:N_SESSIONS]


@pytest.mark.slow
def test_planted_skill_is_judged_working_over_the_trailing_window(tmp_path: Path) -> None:
    data_root, prices, days = write_data_root(tmp_path)
    health = check_signal_health(str(data_root), str(prices), HealthSettings(window_sessions=120))
    assert health["status"] == WORKING and health["failure"] is None
    assert health["window"] == {"first": days[-120].isoformat(), "last": days[-1].isoformat(), "sessions": 120}
    assert health["as_of"] == days[-1].isoformat() and health["n_symbols"] == N_SYMBOLS  # ALL is not a symbol
    assert health["ic"]["window_mean"] > 0.3 and health["ic"]["recent_mean"] > 0.2
    assert health["ic"]["recent_sessions"] == 20 and health["ic"]["window_sessions"] == 120
    assert health["h1"]["p_holm"] < 0.001
    assert health["hit_rate"]["window"] > 0.6
    assert health["coverage"]["symbols"] == {"last": 8.0, "recent_mean": 8.0, "median": 8.0}
    assert health["coverage"]["ratio"] == 1.0 and not health["coverage"]["collapsed"]
    report = Path(health["report"])
    assert report.exists() and report.parent == data_root / "reports" / "signal-health" / days[-1].isoformat()
    assert {r["horizon"] for r in health["horizons"]} == {1, 5}
    rows = {r["figure"]: r for r in health_rows(health)}
    assert rows["status"]["value"] == WORKING and rows["coverage ratio"]["value"] == "100%"


@pytest.mark.slow
def test_no_planted_skill_is_no_evidence_and_as_of_ends_the_window_there(tmp_path: Path) -> None:
    data_root, prices, days = write_data_root(tmp_path, strength=0.0, seed=5)
    health = check_signal_health(str(data_root), str(prices), HealthSettings(window_sessions=40, as_of=days[99]))
    assert health["window"] == {"first": days[60].isoformat(), "last": days[99].isoformat(), "sessions": 40}
    assert Path(health["report"]).parent.name == days[99].isoformat()
    assert health["status"] == NO_EVIDENCE and health["failure"] is None
    assert abs(health["ic"]["window_mean"]) < 0.1


@pytest.mark.slow
def test_coverage_of_one_symbol_in_eight_has_collapsed(tmp_path: Path) -> None:
    data_root, prices, _ = write_data_root(tmp_path, collapse_last=5)
    health = check_signal_health(str(data_root), str(prices), HealthSettings())
    assert health["status"] == COLLAPSED and health["skill"] == WORKING
    assert health["coverage"]["symbols"] == {"last": 1.0, "recent_mean": 1.0, "median": 8.0}
    assert health["coverage"]["ratio"] == pytest.approx(1 / 8)
    assert "coverage collapsed" in health["failure"] and "1.0 symbols" in health["failure"]
    assert "12% of it" in health["failure"]
    assert health["verdict"].startswith("Coverage collapsed")


def test_coverage_counts_every_session_of_the_window_and_the_median() -> None:
    days = business_days(FIRST_DAY, 7)
    stored = pl.concat(
        [_signal_rows(d, ["A", "B"], [0.1, None], [5, 0]) for d in days[:4]]
        + [_signal_rows(days[4], ["A", "B"], [0.1, 0.2], [1, 2])]
    )
    # days[5] and days[6] are stored sessions without rows: zero symbols, zero posts.
    per_session = session_coverage(days, stored, "mean_score", min_posts=2)
    assert per_session["n_symbols"].to_list() == [1, 1, 1, 1, 1, 0, 0]
    assert per_session["n_posts"].to_list() == [5, 5, 5, 5, 3, 0, 0]
    figures = coverage_figures(per_session, 0.5)
    assert figures["symbols"] == {"last": 0.0, "recent_mean": 0.6, "median": 1.0}
    assert figures["ratio"] == pytest.approx(0.6) and not figures["collapsed"]
    assert figures["posts"]["median"] == 5.0 and figures["recent_sessions"] == [days[2], days[6]]


def test_hit_rate_compares_signs_of_cross_sectional_deviations() -> None:
    day = date(2025, 1, 6)
    frame = pl.DataFrame(
        {
            "session": [day] * 4,
            "symbol": ["A", "B", "C", "D"],
            # Every return is up: only the deviation from the session's mean says who did better.
            "signal": [1.0, 2.0, 3.0, 4.0],
            "fwd_1": [0.01, 0.02, 0.04, 0.03],
        }
    )
    # deviations: signal (−1.5, −0.5, +0.5, +1.5), return (−0.015, −0.005, +0.015, +0.005): all agree
    assert hit_rate(frame, min_symbols=4)["window"] == 1.0
    assert hit_rate(frame.with_columns(-pl.col("signal")), min_symbols=4)["window"] == 0.0
    assert hit_rate(frame, min_symbols=5)["window"] is None  # too few symbols to rank


def test_an_empty_data_root_has_no_signals(tmp_path: Path) -> None:
    _, prices, _ = write_data_root(tmp_path / "priced")
    health = check_signal_health(str(tmp_path / "empty"), str(prices), HealthSettings())
    assert health["status"] == NO_SIGNALS and "no stored signals" in health["failure"]
    assert str(tmp_path / "empty") in health["failure"]


def test_bad_prices_folder_and_column_are_clear_errors(tmp_path: Path) -> None:
    data_root, prices, _ = write_data_root(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        check_signal_health(str(data_root), str(tmp_path / "nowhere"), HealthSettings())
    with pytest.raises(ValueError, match="no column 'score'"):
        check_signal_health(str(data_root), str(prices), HealthSettings(signal_column="score"))


def test_a_run_s_parameters_lay_over_the_deployment_s() -> None:
    from tweet_signals.flows.signal_health import SignalHealthParams

    deployment = {"data_root": "s3://desk/signals", "prices_dir": "/prices", "window_sessions": 250}
    run = SignalHealthParams(prices_dir="/other-prices", as_of=date(2026, 1, 7)).over(deployment)
    assert (run.data_root, run.prices_dir, run.window_sessions) == ("s3://desk/signals", "/other-prices", 250)
    assert run.as_of == date(2026, 1, 7)
    assert SignalHealthParams(prices_dir="p").over({}).data_root == "data"
    with pytest.raises(ValueError, match="horizons"):
        SignalHealthParams(prices_dir="p", horizons="1,a")


def _artifacts(state: State) -> dict[str, Any]:
    """The artifacts the flow run of ``state`` published, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_filter = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        return {a.key: a for a in client.read_artifacts(artifact_filter=run_filter)}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_flow_finds_the_planted_skill_and_publishes_both_artifacts(tmp_path: Path) -> None:
    from tweet_signals.flows.signal_health import SignalHealthParams, signal_health

    data_root, prices, days = write_data_root(tmp_path)
    state = signal_health(SignalHealthParams(data_root=str(data_root), prices_dir=str(prices)), return_state=True)
    assert state.is_completed(), state.message
    health = state.result()
    assert health["status"] == WORKING and health["ic"]["window_mean"] > 0.3
    json.dumps(health)  # JSON-ready
    artifacts = _artifacts(state)
    table = json.loads(artifacts["signal-health"].data)
    figures = {row["figure"]: row["value"] for row in table}
    assert figures["status"] == WORKING and figures["as of"] == days[-1].isoformat()
    assert float(figures["rank IC h=1, window"]) > 0.3
    summary = artifacts["signal-health-summary"].data
    assert summary.startswith("# Signal health: working") and health["verdict"] in summary
    assert Path(health["report"]).resolve().as_uri() in summary


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_flow_ends_failed_naming_coverage_when_it_collapses(tmp_path: Path) -> None:
    from tweet_signals.flows.signal_health import SignalHealthParams, signal_health

    data_root, prices, _ = write_data_root(tmp_path, collapse_last=5)
    state = signal_health(SignalHealthParams(data_root=str(data_root), prices_dir=str(prices)), return_state=True)
    assert state.is_failed()
    assert (state.message or "").startswith("coverage collapsed") and "1.0 symbols" in (state.message or "")
    artifacts = _artifacts(state)
    assert {"signal-health", "signal-health-summary"} <= set(artifacts)
    assert "Coverage collapsed" in artifacts["signal-health-summary"].data


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_flow_on_an_empty_data_root_ends_failed_with_one_message(tmp_path: Path) -> None:
    from tweet_signals.flows.signal_health import SignalHealthParams, signal_health

    _, prices, _ = write_data_root(tmp_path / "priced")
    empty = tmp_path / "empty"
    state = signal_health(SignalHealthParams(data_root=str(empty), prices_dir=str(prices)), return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert message.startswith("no stored signals") and str(empty) in message and "Traceback" not in message
    assert "No signals" in _artifacts(state)["signal-health-summary"].data
    missing = signal_health(
        SignalHealthParams(data_root=str(empty), prices_dir=str(tmp_path / "nowhere")), return_state=True
    )
    assert missing.is_failed() and (missing.message or "").startswith("bad input: prices_dir")
