"""The flow's parameters: deployment settings laid under a run's own fields, worker counts, and which
collect failures are retried (transient I/O) and which are not (bad input, an empty day)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import httpx
import pytest
from prefect.states import Failed
from pydantic import ValidationError

from tweet_signals.market.sessions import NotASessionError
from tweet_signals.model.reference import resolve_model
from tweet_signals.params import SignalsParams, auto_workers, resolve_workers
from tweet_signals.sources.x_api import XApiError
from tweet_signals.stages.collect import EmptyDayError
from tweet_signals.tasks.collect import retry_if_transient

EMBEDDED = resolve_model("embedded")
DEPLOYMENT = {"source": "file", "input": "/desk/posts", "symbols": ["NIFTY50", "RELIANCE"], "workers": 3}


def test_a_run_replaces_only_the_fields_it_sets() -> None:
    run = SignalsParams(run_date=date(2026, 1, 7), symbols=["$tcs"]).over(DEPLOYMENT)
    assert run.run_date == date(2026, 1, 7) and run.symbols == ["TCS"]
    # Fields the run left alone keep the deployment's values, not the model's defaults.
    assert (run.source, run.input, run.workers) == ("file", "/desk/posts", 3)


def test_a_run_that_sets_a_field_to_its_default_still_overrides_the_deployment() -> None:
    run = SignalsParams(workers="auto").over(DEPLOYMENT)
    assert run.workers == "auto"


def test_no_deployment_defaults_leave_the_run_as_it_is() -> None:
    run = SignalsParams(symbols=["nifty50"])
    assert run.over({}) is run


def test_bad_deployment_defaults_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="modle"):
        SignalsParams().over({"modle": "embedded"})
    with pytest.raises(ValidationError, match="chunk_size"):
        SignalsParams().over({"chunk_size": 1})


def test_an_input_alone_means_the_file_source_and_symbols_are_normalised() -> None:
    params = SignalsParams(input="posts.csv", symbols=["#nifty50", "$NIFTY50", " reliance "])
    assert params.source == "file" and params.symbols == ["NIFTY50", "RELIANCE"]
    assert SignalsParams(input="posts.csv", source="synthetic").source == "synthetic"
    with pytest.raises(ValidationError, match="at least one symbol"):
        SignalsParams(symbols=["$", " "])


def test_explicit_worker_counts_are_kept_and_at_least_one() -> None:
    assert resolve_workers(3, EMBEDDED) == 3
    assert resolve_workers(0, EMBEDDED) == 1


def test_auto_workers_leave_a_core_free_and_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    plenty = SimpleNamespace(available=64e9)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: plenty)
    assert resolve_workers("auto", EMBEDDED, "cpu") == auto_workers(EMBEDDED, "cpu") == 15
    # 2 GB free: three embedded workers (0.6 GB each, 70% of free memory), one RoBERTa worker.
    small = SimpleNamespace(available=2e9)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: small)
    assert auto_workers(EMBEDDED, "cpu") == 2
    assert auto_workers(resolve_model("cardiffnlp/twitter-roberta-base-sentiment-latest"), "cpu") == 1
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert auto_workers(EMBEDDED, "cpu") == 1


@pytest.mark.parametrize(
    "error",
    [EmptyDayError("no posts"), ValueError("bad column"), FileNotFoundError("posts.csv"), NotASessionError("sunday")],
    ids=["empty-day", "bad-input", "missing-file", "not-a-session"],
)
def test_failures_that_would_repeat_are_not_retried(error: Exception) -> None:
    assert retry_if_transient(None, None, Failed(data=error)) is False


def test_an_x_api_error_is_not_retried_again() -> None:
    # The client already retried with backoff, or the API refused the token or query.
    assert retry_if_transient(None, None, Failed(data=XApiError("401 Unauthorized"))) is False


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), OSError(30, "Read-only file system"), PermissionError(13, "denied")],
    ids=["disk-full", "read-only", "forbidden"],
)
def test_a_refusing_data_root_is_not_retried(error: Exception) -> None:
    # A full, read-only or forbidden root stays so for the minutes the retries would wait.
    assert retry_if_transient(None, None, Failed(data=error)) is False


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), ConnectionResetError(104, "reset by peer"), TimeoutError("read")],
    ids=["network", "reset", "timeout"],
)
def test_transient_io_failures_are_retried(error: Exception) -> None:
    assert retry_if_transient(None, None, Failed(data=error)) is True
