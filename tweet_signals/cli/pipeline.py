"""``demo``, ``run`` and ``backfill``: the daily flow for one session, five sample sessions, or a range.

Their options are the fields of ``SignalsParams`` (see ``options``), so defaults and help are the
same as in the Prefect UI's form and in ``prefect.yaml``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import typer
from pydantic import ValidationError

from tweet_signals.cli.common import console, fail, parse_date, quiet_prefect, report, run_flow, split
from tweet_signals.cli.options import option, params_command
from tweet_signals.market.symbols import alias_map, resolve_hashtags
from tweet_signals.model.base import ModelUnavailableError
from tweet_signals.params import SignalsParams
from tweet_signals.storage import Storage, read_json

DEMO_SESSIONS = (date(2026, 1, 5), date(2026, 1, 9))  # five NSE sessions, Mon-Fri
# What the demo fixes: generated posts, the embedded model (offline), small chunks.
DEMO_SETTINGS: dict[str, Any] = {"source": "synthetic", "model": "embedded", "chunk_size": 1000}

JSON_OPTION = option("as_json", bool, False, "--json", help="Print one JSON object instead of tables")
VERBOSE_OPTION = option("verbose", bool, False, "--verbose/--quiet", help="Show Prefect's own log lines")


def build_params(fields: dict[str, Any]) -> SignalsParams:
    """Validated flow parameters; the model is checked here too, so a missing model is one clear
    paragraph before anything starts (the flow checks again for runs started from a deployment)."""
    from tweet_signals.model.reference import check_model_available, resolve_model

    for name in ("symbols", "queries"):
        if name in fields:
            fields[name] = split(fields[name]) if name == "symbols" else list(fields[name])
    try:
        params = SignalsParams(**fields)
        check_model_available(resolve_model(params.model))
    except ValidationError as exc:
        fail(str(exc))
    except ModelUnavailableError as exc:
        fail(str(exc))
    return params


def finish_backfill(ok: bool, outcome: Any, message: str, data_root: str, as_json: bool) -> None:
    outcome = outcome if isinstance(outcome, dict) else {}
    dates = sorted([*outcome.get("completed", []), *outcome.get("skipped", []), *outcome.get("failed", {})])
    manifests = [m for d in dates if (m := read_json(Storage.at(data_root).manifest(date.fromisoformat(d))))]
    extra = {"skipped": outcome.get("skipped", []), "failed": outcome.get("failed", {})}
    report(manifests, as_json, data_root, extra)
    if not ok:
        fail(message, 1)


def demo(fields: dict[str, Any], own: dict[str, Any]) -> None:
    """Full offline run on generated sample data (five sessions) with the embedded model."""
    quiet_prefect(own["verbose"])
    from tweet_signals.flows.backfill import backfill_signals

    params = build_params(fields)
    ok, outcome, message = run_flow(backfill_signals, DEMO_SESSIONS[0], DEMO_SESSIONS[1], params)
    finish_backfill(ok, outcome, message, params.data_root, own["as_json"])


def run(fields: dict[str, Any], own: dict[str, Any]) -> None:
    """Run the pipeline for one session."""
    quiet_prefect(own["verbose"])
    from tweet_signals.flows.daily_signals import daily_signals

    if not fields.get("run_date"):
        fail("give the session to run: --date YYYY-MM-DD")
    day = parse_date(fields.pop("run_date"))
    chosen = split(fields.get("symbols"))
    if own["hashtags"]:
        known = alias_map(chosen or SignalsParams.model_fields["symbols"].get_default(call_default_factory=True))
        chosen += [s for s in resolve_hashtags(split(own["hashtags"]), known) if s not in chosen]
    if chosen:
        fields["symbols"] = chosen
    params = build_params({**fields, "run_date": day})
    ok, result, message = run_flow(daily_signals, params)
    if ok and isinstance(result, dict) and result.get("status") == "complete":
        report([result], own["as_json"], params.data_root)
        return
    if ok:  # not a trading session
        report([], own["as_json"], params.data_root, {"message": message})
        console.print(message)
        return
    manifest = read_json(Storage.at(params.data_root).manifest(day))
    if manifest and manifest.get("status") == "failed":
        report([manifest], own["as_json"], params.data_root)
    fail(message, 1)


def backfill(fields: dict[str, Any], own: dict[str, Any]) -> None:
    """Run every trading session in a date range; complete sessions are skipped."""
    quiet_prefect(own["verbose"])
    from tweet_signals.flows.backfill import backfill_signals

    params = build_params(fields)
    start, end = parse_date(own["start"], "--start"), parse_date(own["end"], "--end")
    ok, outcome, message = run_flow(backfill_signals, start, end, params)
    finish_backfill(ok, outcome, message, params.data_root, own["as_json"])


def register(app: typer.Typer) -> None:
    params_command(
        app,
        "demo",
        lambda fields, own: demo({**fields, "synthetic_posts": own["posts_per_session"]}, own),
        only=("data_root", "workers"),
        defaults={**DEMO_SETTINGS, "data_root": "data/demo"},
        own=[
            option("posts_per_session", int, 2500, "--posts-per-session", help="Synthetic posts per session"),
            JSON_OPTION,
            VERBOSE_OPTION,
        ],
        help=demo.__doc__,
    )
    params_command(
        app,
        "run",
        run,
        own=[
            option("hashtags", list[str] | None, None, "--hashtags", help="Hashtags, as the original tool took them"),
            JSON_OPTION,
            VERBOSE_OPTION,
        ],
    )
    params_command(
        app,
        "backfill",
        backfill,
        exclude=("run_date",),
        own=[
            option("start", str, ..., "--start", help="First date, YYYY-MM-DD"),
            option("end", str, ..., "--end", help="Last date, YYYY-MM-DD"),
            JSON_OPTION,
            VERBOSE_OPTION,
        ],
    )
