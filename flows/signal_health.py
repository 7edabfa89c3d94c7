"""Signal health (Prefect flow): is the live signal still working? The stored signals of a data
root judged against a price folder over a trailing window; the figures go to a table artifact,
the verdict and the report's link to a markdown artifact, and a coverage collapse or an empty
window ends the run Failed."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed, State
from pydantic import BaseModel, ConfigDict, Field

from tweet_signals.evaluation.health import HealthSettings, check_signal_health, health_rows
from tweet_signals.evaluation.panel import DEFAULT_COLUMN, parse_horizons
from tweet_signals.flows.parameters import deployment_params
from tweet_signals.storage import link, location

TABLE_KEY = "signal-health"
SUMMARY_KEY = "signal-health-summary"
BAD_INPUT = "bad input"  # how the message starts when the parameters, not the signal, are at fault


class SignalHealthParams(BaseModel):
    """What one health check judges. Unknown names are refused (a misspelt field must not fall
    back to a default silently)."""

    model_config = ConfigDict(extra="forbid")

    data_root: str = Field("data", description="Root folder (or s3://... URL) of the stored signals")
    prices_dir: str = Field(
        description="Path of a folder of <SYMBOL>.csv daily bars (Date, and Adj Close or Close), one file per symbol"
    )
    window_sessions: int = Field(120, ge=20, description="Stored sessions in the trailing window")
    signal_column: str = Field(DEFAULT_COLUMN, description="Column of the signals that is judged")
    min_posts: int = Field(1, ge=1, description="Posts a symbol needs in a session for its signal to count")
    min_symbols: int = Field(5, ge=2, description="Symbols with a signal a session needs for a cross-sectional IC")
    horizons: str = Field(
        "1,5",
        pattern=r"^\s*\d+\s*(,\s*\d+\s*)*$",
        description="Forward-return horizons in sessions, comma-separated (1 is always judged)",
    )
    benchmark: str | None = Field(
        None, description="Symbol of a <SYMBOL>.csv in prices_dir: returns in excess of it (none: raw returns)"
    )
    min_coverage: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Coverage collapse threshold: the last 5 sessions' mean symbols with a signal over the "
        "window's median; under it the run ends Failed",
    )
    as_of: date | None = Field(None, description="Last session of the window (YYYY-MM-DD); default: the last stored")

    def settings(self) -> HealthSettings:
        """The pure check's settings; a bad horizons list is a ``ValueError`` naming it."""
        return HealthSettings(
            window_sessions=self.window_sessions,
            signal_column=self.signal_column,
            min_posts=self.min_posts,
            min_symbols=self.min_symbols,
            horizons=parse_horizons(self.horizons),
            benchmark=self.benchmark,
            min_coverage=self.min_coverage,
            as_of=self.as_of,
        )

    def over(self, defaults: dict[str, Any]) -> SignalHealthParams:
        """These parameters laid over ``defaults`` (the deployment's): only fields given explicitly
        replace them, so a run that sets ``as_of`` keeps the deployment's data root and prices."""
        if not defaults:
            return self
        return SignalHealthParams.model_validate({**defaults, **self.model_dump(include=self.model_fields_set)})


def summary_markdown(health: dict[str, Any]) -> str:
    """The verdict first, then where the figures and the report are."""
    lines = [f"# Signal health: {health['status']}", "", health["verdict"], ""]
    if health.get("report"):
        report = location(health["report"])
        lines.append(f"Report: [{report.name}]({link(report)}) (the panel tear sheet of the window)")
    lines.append(f"Data root: `{health['data_root']}`; figures in the `{TABLE_KEY}` table artifact.")
    return "\n".join(lines)


def publish_artifacts(health: dict[str, Any]) -> None:
    """The figures as a table, the verdict and report link as markdown (both under fixed keys, so
    the Artifacts page keeps their history run after run)."""
    where = f"signals under {health['data_root']}"
    create_table_artifact(health_rows(health), key=TABLE_KEY, description=f"signal health figures, {where}")
    create_markdown_artifact(summary_markdown(health), key=SUMMARY_KEY, description=f"signal health verdict, {where}")


@flow(name="signal-health")
def signal_health(params: SignalHealthParams) -> dict[str, Any] | State:
    """Judge the trailing window of stored signals against ``params.prices_dir``. Ends Failed when
    the window has no signals or its coverage collapsed (the message says what and by how much),
    and on bad parameters (one message, no traceback); otherwise returns the figures."""
    logger = get_run_logger()
    params = params.over(deployment_params())
    try:
        health = check_signal_health(params.data_root, params.prices_dir, params.settings())
    except (ValueError, OSError) as exc:
        message = f"{BAD_INPUT}: {exc}"
        create_markdown_artifact(
            f"# Signal health: not checked\n\n{message}\n",
            key=SUMMARY_KEY,
            description=f"signal health verdict, signals under {params.data_root}",
        )
        return Failed(message=message)
    publish_artifacts(health)
    if health["failure"]:
        logger.error("%s", health["verdict"])
        return Failed(message=health["failure"], data=health)
    logger.info("%s", health["verdict"])
    return health
