"""evaluate: judge a signal history against prices; the verdict and report link as an artifact."""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact

from tweet_signals.evaluation.judge import EvaluationSettings, evaluate_signal_history, evaluate_signal_panel
from tweet_signals.evaluation.panel import PanelSettings
from tweet_signals.storage import link, location


@task(name="evaluate-signal")
def evaluate_task(signals: pl.DataFrame, symbol: str, settings: EvaluationSettings) -> dict[str, Any]:
    result = evaluate_signal_history(signals, symbol, settings)
    report = location(result["report"])
    create_markdown_artifact(
        f"# Signal evaluation: {symbol}\n\n{result['verdict']}\n\nReport: [{report.name}]({link(report)})",
        key=f"evaluation-{symbol.lower()}",
        description="signal vs prices",
    )
    return result


@task(name="evaluate-panel")
def evaluate_panel_task(
    signals: pl.DataFrame, panel: dict[str, pl.DataFrame], prices_dir: str, out_dir: str, settings: PanelSettings
) -> dict[str, Any]:
    result = evaluate_signal_panel(signals, panel, prices_dir, out_dir, settings)
    report = location(result["report"])
    create_markdown_artifact(
        f"# Panel evaluation: {result['n_symbols']} symbols\n\n{result['verdict']}\n\n"
        f"Report: [{report.name}]({link(report)})",
        key="evaluation-panel",
        description="signal vs prices, many symbols",
    )
    return result
