"""fit TF-IDF: once per session on the whole clean corpus (no retries: deterministic)."""

from __future__ import annotations

from datetime import date

from prefect import task

from tweet_signals.params import SignalsParams
from tweet_signals.stages.tfidf import TfidfResult, fit_session_tfidf


@task(name="fit-tfidf")
def fit_tfidf(params: SignalsParams, run_date: date, clean_digest: str) -> TfidfResult:
    return fit_session_tfidf(params, run_date, clean_digest)
