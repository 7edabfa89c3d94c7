"""``evaluate``: judge a signal against next-session returns and write an HTML report.

Its options are the fields of ``EvaluationParams`` (see ``options``), so defaults and help are the
same as in the Prefect UI's form; ``--json`` and ``--verbose`` are the command's own.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from tweet_signals.cli.common import fail, quiet_prefect, run_flow, write_json
from tweet_signals.cli.options import option, params_command, validation_message
from tweet_signals.evaluation.params import EvaluationParams

OWN_OPTIONS = [
    option("as_json", bool, False, "--json", help="Print one JSON object instead of tables"),
    option("verbose", bool, False, "--verbose/--quiet", help="Show Prefect's own log lines"),
]


def build_params(fields: dict[str, Any]) -> EvaluationParams:
    """Validated evaluation parameters; a refusal is one line naming the flag, exit code 2."""
    try:
        return EvaluationParams(**fields)
    except ValidationError as exc:
        fail(validation_message(exc), 2)
        raise  # fail exits; this keeps the type checker informed


def evaluate(fields: dict[str, Any], own: dict[str, Any]) -> None:
    """Judge a signal against next-session returns (no look-ahead; or, with --target, against the
    absolute return, the high-low range or abnormal volume) and write an HTML report: one symbol
    with --prices, every symbol with a price file with --prices-dir."""
    params = build_params(fields)
    quiet_prefect(own["verbose"])
    from tweet_signals.flows.evaluate import evaluate_flow
    from tweet_signals.storage import Storage

    if (
        params.input is None
        and params.data_root
        and not Storage.at(params.data_root).partitions("signals", "signals.parquet")
    ):
        fail(f"no stored signals under {params.data_root}/signals; run the pipeline first or give --input")
    ok, result, message = run_flow(evaluate_flow, params)
    finish(ok, result, message, own["as_json"])


def headline(result: dict[str, Any]) -> str:
    """What was judged: the symbol, or the number of symbols of a panel."""
    if "n_symbols" in result:
        n = result["n_symbols"]
        return f"{n} symbol{'' if n == 1 else 's'}"
    return str(result["symbol"])


def finish(ok: bool, result: Any, message: str, as_json: bool) -> None:
    """The flow's outcome: exit 2 for bad input (1 otherwise), else the JSON or the verdict."""
    from tweet_signals.flows.evaluate import BAD_INPUT

    if not ok:
        fail(message, 2 if message.startswith(BAD_INPUT) else 1)
    if as_json:
        write_json(result)
        return
    inferred = " (inferred from the price dates)" if result.get("exchange_inferred") else ""
    Console(width=130).print(
        f"[bold]{headline(result)}[/]: {result['verdict']}\n"
        f"exchange: {result.get('exchange', '-')}{inferred}\nreport: {result['report']}"
    )


def register(app: typer.Typer) -> None:
    params_command(app, "evaluate", evaluate, own=OWN_OPTIONS, model=EvaluationParams, help=evaluate.__doc__)
