"""The evaluation's parameters model and the ``evaluate`` options derived from it: an option the
chosen mode does not read is refused by name, never silently ignored; a refusal on the command
line is one line and exit code 2. No servers: the flow is not run here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import SHARED_DATA
from pydantic import ValidationError
from typer.testing import CliRunner

from tweet_signals.cli import app
from tweet_signals.evaluation.panel import DEFAULT_COLUMN, PanelSettings
from tweet_signals.evaluation.params import PANEL_ONLY, SINGLE_ONLY, EvaluationParams

SINGLE = {"prices": "closes.csv"}
PANEL = {"prices_dir": "prices"}
# A value other than the default for every mode-specific field.
GIVEN: dict[str, Any] = {
    "horizons": "1,3",
    "quantiles": 3,
    "benchmark": "INDEX",
    "symbol_column": "ticker",
    "split": "2025-04-15",
    "min_symbols": 6,
    "pool": 3,
    "combine": "mean_score,bullishness",
    "symbol": "TCS",
    "price_columns": "date=Day,close=Last",
}


def _refused(match: str, **fields: Any) -> None:
    with pytest.raises(ValidationError, match=match):
        EvaluationParams(**fields)


@pytest.mark.parametrize("field", PANEL_ONLY)
def test_a_panel_option_with_prices_is_refused_by_its_flag(field: str) -> None:
    flag = "--" + field.replace("_", "-")
    _refused(f"{flag} does not apply with --prices", **SINGLE, input="posts.csv", **{field: GIVEN[field]})


@pytest.mark.parametrize("field", SINGLE_ONLY)
def test_a_single_symbol_option_with_prices_dir_is_refused_by_its_flag(field: str) -> None:
    flag = "--" + field.replace("_", "-")
    _refused(f"{flag} does not apply with --prices-dir", **PANEL, **{field: GIVEN[field]})


def test_defaults_given_explicitly_are_not_refused() -> None:
    params = EvaluationParams(**SINGLE, horizons="20,10, 5,1", pool=1)
    assert not params.panel and params.signal_column == DEFAULT_COLUMN and params.exchange is None
    assert EvaluationParams(**PANEL, symbol="nifty").panel
    # A dumped model (or the UI's form) carries every field, most at their default.
    for fields in (SINGLE, PANEL):
        params = EvaluationParams(**fields, input="posts.csv")
        assert EvaluationParams.model_validate(params.model_dump()) == params


def test_exactly_one_of_prices_and_prices_dir() -> None:
    _refused("give --prices FILE", symbol="NIFTY")
    _refused("not both", **SINGLE, **PANEL)


@pytest.mark.parametrize(
    ("movement", "match"),
    [
        ("0.001,0.002", "UP must be at or above DOWN"),
        ("0.005", "give two numbers"),
        ("up,down", "give two numbers"),
        ("0.1,-0.1,0", "give two numbers"),
        ("inf,-0.1", "give two numbers"),
    ],
)
def test_a_bad_movement_is_a_clear_error(movement: str, match: str) -> None:
    _refused(f"--movement.*{match}", **SINGLE, movement=movement)


def test_movement_parses_to_a_pair_and_survives_a_json_round_trip() -> None:
    params = EvaluationParams(**PANEL, movement="0.0055,-0.005")
    assert params.movement == (0.0055, -0.005)
    assert EvaluationParams.model_validate_json(params.model_dump_json()) == params
    assert EvaluationParams(**SINGLE, movement="0,0").movement == (0.0, 0.0)  # no dead band


def test_bad_horizons_split_and_unknown_fields_are_refused() -> None:
    _refused("positive whole numbers", **PANEL, horizons="1,x")
    _refused("give a date as YYYY-MM-DD", **PANEL, split="April")
    _refused("Extra inputs are not permitted", **SINGLE, modle="embedded")


def test_pool_needs_posts_and_stays_in_range() -> None:
    _refused("--pool needs --input", **PANEL, pool=3)
    _refused("less than or equal to 250", **PANEL, input="posts.csv", pool=251)
    _refused("greater than or equal to 1", **PANEL, input="posts.csv", pool=0)


def test_settings_of_each_mode() -> None:
    params = EvaluationParams(
        **PANEL, input="posts.csv", quantiles=8, pool=3, movement="0.01,-0.01", benchmark="$index", split="2025-04-15"
    )
    panel = params.panel_settings()
    assert isinstance(panel, PanelSettings)
    assert (panel.pool, panel.movement, panel.min_symbols, panel.benchmark) == (3, (0.01, -0.01), 8, "INDEX")
    assert panel.horizons == (1, 5, 10, 20) and panel.split == date(2025, 4, 15)
    single = EvaluationParams(**SINGLE, symbol="$tcs", exchange="NSE", cost_bps=2.5).single_settings("out")
    assert (single.prices_path, single.out_dir, single.exchange, single.cost_bps) == ("closes.csv", "out", "NSE", 2.5)
    assert single.signal_column == DEFAULT_COLUMN
    inferred = EvaluationParams(**SINGLE).single_settings("out", "NYSE")
    assert inferred.exchange == "NYSE"


def test_the_exchange_is_inferred_from_the_price_dates_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import tweet_signals.flows.evaluate as evaluate_flow_module
    from tweet_signals.evaluation.judge import read_single_prices

    spx = str(SHARED_DATA / "sp500-daily-2020" / "^GSPC.csv")
    sessions = read_single_prices(spx)["session"].to_list()
    asked: list[list[date]] = []

    def infer(days: Iterable[date]) -> str:
        asked.append(list(days))
        return "NYSE"

    # The inference itself is tested in test_panel.py; here only that the price dates reach it.
    monkeypatch.setattr(evaluate_flow_module, "infer_exchange", infer)
    assert evaluate_flow_module.exchange_of(EvaluationParams(prices=spx), sessions) == ("NYSE", True)
    assert asked == [sessions]
    assert evaluate_flow_module.exchange_of(EvaluationParams(prices=spx, exchange="NSE"), sessions) == (
        "NSE",
        False,
    )
    assert len(asked) == 1


def test_the_command_options_are_the_model_fields_and_its_own() -> None:
    command = typer.main.get_command(app).commands["evaluate"]  # type: ignore[attr-defined]
    options = {p.name for p in command.params if p.name != "typer_context"}
    assert options == set(EvaluationParams.model_fields) | {"as_json", "verbose"}
    flags = {f for p in command.params for f in p.opts}
    assert {"--prices", "--prices-dir", "--cost-bps", "--pool", "--movement", "--json", "--verbose"} <= flags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prices", "x.csv", "--quantiles", "3"], "--quantiles does not apply with --prices"),
        (["--prices-dir", "d", "--symbol", "TCS"], "--symbol does not apply with --prices-dir"),
        (["--prices", "x.csv", "--movement", "0.001,0.002"], "UP must be at or above DOWN"),
        (["--prices-dir", "d", "--pool", "0", "--input", "p.csv"], "--pool: Input should be greater than"),
        (["--input", "p.csv"], "give --prices FILE"),
    ],
)
def test_a_bad_parameter_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["evaluate", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, result.stderr


def test_the_command_passes_only_what_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tweet_signals.cli.evaluate as command

    seen: list[EvaluationParams] = []

    def fake_run(flow: Any, params: EvaluationParams) -> tuple[bool, dict[str, Any], str]:
        seen.append(params)
        return True, {"symbol": params.symbol, "verdict": "fine", "report": "r.html"}, ""

    monkeypatch.setattr(command, "run_flow", fake_run)
    args = ["evaluate", "--prices", "x.csv", "--input", "p.csv", "--horizons", "1,5,10,20", "--json"]
    result = CliRunner().invoke(app, [*args, "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen[0].model_fields_set == {"prices", "input", "horizons", "data_root"}
    assert seen[0].symbol == "NIFTY" and seen[0].exchange is None
