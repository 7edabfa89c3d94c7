"""The ``tweet-signals`` command line: thin wrappers that run the Prefect flows for humans.

One module per command group: ``pipeline`` (demo, run, backfill), ``model`` (train-model,
evaluate-model), ``evaluate`` and ``bench`` (benchmark engines|scale|features).
"""

from __future__ import annotations

import typer

from tweet_signals.cli import bench, evaluate, model, pipeline

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Market signals from what traders post.")
for group in (pipeline, model, evaluate, bench):
    group.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
