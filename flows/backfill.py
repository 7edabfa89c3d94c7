"""Backfill: run the daily flow for every trading session in a date range, as subflows."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed, State

from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.flows.parameters import effective_params
from tweet_signals.market.sessions import sessions_between
from tweet_signals.params import SignalsParams
from tweet_signals.stages.summary import backfill_markdown, root_tag
from tweet_signals.storage import Storage, incomplete_reasons, read_json


@flow(name="backfill-signals", flow_run_name="backfill-{start}-{end}")
def backfill_signals(start: date, end: date, params: SignalsParams = SignalsParams()) -> dict[str, Any] | State:
    """Sessions already complete are skipped (unless ``params.force``); a failed date does not
    stop the others; the final state names the dates that failed."""
    logger = get_run_logger()
    params = effective_params(params)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    storage = Storage.at(params.data_root)
    done, skipped, failed, repaired = [], [], {}, {}
    runs: dict[str, Any] = {}
    for session in sessions_between(start, end, params.exchange):
        manifest = read_json(storage.manifest(session))
        reasons = incomplete_reasons(manifest)
        if not params.force and not reasons:
            skipped.append(str(session))
            continue
        if manifest and manifest.get("status") == "complete" and reasons:
            # Said complete, but an output is gone or changed: the run recomputes just that.
            repaired[str(session)] = "; ".join(reason.rsplit("/", 1)[-1] for reason in reasons)
            logger.warning("session %s was complete but %s: recomputing what is missing", session, "; ".join(reasons))
        state = daily_signals(params.model_copy(update={"run_date": session}), return_state=True)
        if state.is_completed():
            done.append(str(session))
            runs[str(session)] = state.result()
        else:
            failed[str(session)] = state.message or state.name
            logger.error("session %s failed: %s", session, failed[str(session)])
    report = {"completed": done, "skipped": skipped, "repaired": repaired, "failed": failed, "runs": runs}
    create_markdown_artifact(
        backfill_markdown(str(start), str(end), report, params.data_root),
        key=f"backfill-{start}-{end}-{root_tag(params.data_root)}",
        description=f"backfill {start} … {end} under {params.data_root}",
    )
    if failed:
        return Failed(message=f"backfill failed for {sorted(failed)}", data=report)
    return report
