"""Parity with the reference implementation: the same factor and prices through alphalens-reloaded
and through our panel code give the same IC by horizon, quantile mean returns and turnover."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from panel_data import planted_panel

from tweet_signals.evaluation.panel import (
    PanelSettings,
    evaluate_panel,
    forward_returns,
    panel_frame,
    session_ic,
    turnover,
    with_quantiles,
)

HORIZONS = (1, 5)
QUANTILES = 5


@pytest.fixture(scope="module")
def fixture() -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """12 symbols, 60 sessions of a planted signal, prices running 30 sessions past the last one
    (so every factor row has every forward return, as alphalens keeps only those)."""
    return planted_panel(seed=21, lead=1, strength=0.4, n_symbols=12, n_sessions=60)


@pytest.fixture(scope="module")
def reference(fixture: tuple[dict[str, pl.DataFrame], pl.DataFrame]) -> pd.DataFrame:
    import alphalens.utils

    panel, signals = fixture
    prices = pd.DataFrame(
        {s: p["close"].to_numpy() for s, p in panel.items()},
        index=pd.DatetimeIndex([pd.Timestamp(d) for d in next(iter(panel.values()))["session"].to_list()], name="date"),
    )
    factor = signals.to_pandas().assign(date=lambda f: pd.to_datetime(f["session"])).set_index(["date", "symbol"])
    factor = factor["mean_score"].rename_axis(["date", "asset"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return alphalens.utils.get_clean_factor_and_forward_returns(
            factor, prices, quantiles=QUANTILES, periods=HORIZONS, max_loss=1.0
        )


def _ours(fixture: tuple[dict[str, pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    panel, signals = fixture
    settings = PanelSettings(horizons=HORIZONS, quantiles=QUANTILES, min_posts=0, signal_column="mean_score")
    return panel_frame(signals, forward_returns(panel, HORIZONS, None), settings)


def test_ic_by_horizon_matches_alphalens(fixture, reference: pd.DataFrame) -> None:
    import alphalens.performance

    frame = _ours(fixture)
    theirs = alphalens.performance.factor_information_coefficient(reference)
    for h, column in zip(HORIZONS, theirs.columns, strict=True):
        ours = session_ic(frame, h, QUANTILES)
        assert ours.height == len(theirs)
        np.testing.assert_allclose(ours["ic"].to_numpy(), theirs[column].to_numpy(), atol=1e-9)
        assert float(ours["ic"].mean()) == pytest.approx(float(theirs[column].mean()), abs=1e-9)


def test_quantiles_and_quantile_mean_returns_match_alphalens(fixture, reference: pd.DataFrame) -> None:
    import alphalens.performance

    frame = _ours(fixture)
    ours_q = with_quantiles(frame, QUANTILES, QUANTILES).sort("session", "symbol")["quantile"].to_numpy()
    theirs_q = reference["factor_quantile"].sort_index().to_numpy()
    np.testing.assert_array_equal(ours_q, theirs_q)
    # Mean of each session's quantile mean (alphalens' by_date=True, then averaged over dates).
    by_date, _ = alphalens.performance.mean_return_by_quantile(reference, by_date=True, demeaned=False)
    theirs = by_date.groupby(level="factor_quantile").mean()
    panel, signals = fixture
    settings = PanelSettings(horizons=HORIZONS, quantiles=QUANTILES, min_posts=0, min_sessions=10**6)
    result = evaluate_panel(signals, forward_returns(panel, HORIZONS, None), settings)
    for h, column in zip(HORIZONS, theirs.columns, strict=True):
        ours = next(q for q in result["quantile_returns"] if q["horizon"] == h)["mean_return"]
        np.testing.assert_allclose([ours[q] for q in range(1, QUANTILES + 1)], theirs[column].to_numpy(), atol=1e-9)


@pytest.mark.parametrize("lag", [1, 5])
def test_turnover_matches_alphalens(fixture, reference: pd.DataFrame, lag: int) -> None:
    import alphalens.performance

    ours = turnover(_ours(fixture), QUANTILES, QUANTILES, lag=lag)
    for q in range(1, QUANTILES + 1):
        theirs = alphalens.performance.quantile_turnover(reference["factor_quantile"], q, period=lag)
        assert ours[q] == pytest.approx(float(theirs.mean()), abs=1e-9)
