"""collect: the session's posts into ``raw/``, retried with backoff on I/O errors."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.logging import get_run_logger
from prefect.states import State

from tweet_signals.faults import storage_cause
from tweet_signals.market.sessions import NotASessionError
from tweet_signals.params import SignalsParams
from tweet_signals.sources.x_api import XApiError
from tweet_signals.stages.collect import CollectResult, EmptyDayError, collect_session


def retry_if_transient(task: object, task_run: object, state: State) -> bool:
    """Retry I/O failures (network, a flaky store); not bad input, an empty day or a storage
    refusal (full, read-only, forbidden), which repeat."""
    try:
        state.result()
    except (EmptyDayError, ValueError, FileNotFoundError, NotASessionError, XApiError):
        # XApiError: the client already retried with backoff, or the API refused (token, query).
        return False
    except Exception as exc:
        # A full, read-only or forbidden data root stays so for the minutes retries wait.
        return storage_cause(exc) is None
    return False


def prefect_secret(name: str) -> str:
    """The value of the Prefect Secret block ``name`` (the X token's store in deployments)."""
    from prefect.blocks.system import Secret

    secret = Secret.load(name)  # sync call in a sync context
    return str(secret.get())  # type: ignore[union-attr]


@task(name="collect", retries=3, retry_delay_seconds=[2, 10, 60], retry_condition_fn=retry_if_transient)
def collect_task(params: SignalsParams, run_date: date) -> CollectResult:
    result = collect_session(params, run_date, load_secret=prefect_secret)
    if result.status == "collected" and result.quarantined:
        get_run_logger().warning("%d record(s) quarantined for %s", result.quarantined, run_date)
    return result
