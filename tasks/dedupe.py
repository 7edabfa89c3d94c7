"""dedupe: a deterministic transform (no retries), reused while its input is unchanged."""

from __future__ import annotations

from datetime import date

from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.stages.dedupe import DedupeResult, dedupe_session


@task(name="dedupe")
def dedupe_task(params: SignalsParams, run_date: date) -> DedupeResult:
    return dedupe_session(params, run_date)
