"""fit TF-IDF: once per session on the whole clean corpus (no retries: deterministic)."""

from __future__ import annotations

from datetime import date

from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.stages.tfidf import TfidfResult, tfidf_session


@task(name="fit-tfidf")
def tfidf_task(params: SignalsParams, run_date: date, clean_digest: str) -> TfidfResult:
    return tfidf_session(params, run_date, clean_digest)
