"""evaluate: judge a signal history against prices; the verdict and report link as an artifact."""

from __future__ import annotations

from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact

from tweet_signals.evaluation.judge import EvaluationSettings, evaluate_signal_history
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
