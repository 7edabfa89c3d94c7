"""signals: aggregate the analyzed chunks per symbol and session (no retries: deterministic)."""

from __future__ import annotations

from datetime import date

from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.stages.signals import SignalsResult, signals_session


@task(name="signals")
def signals_task(
    params: SignalsParams, run_date: date, clean_path: str, chunk_paths: list[str], key: str
) -> SignalsResult:
    return signals_session(params, run_date, clean_path, chunk_paths, key)
