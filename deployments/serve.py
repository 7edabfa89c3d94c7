"""Serve the deployments of ``prefect.yaml`` without a work pool (one long-running process).

    prefect server start                 # in one terminal (SQLite under PREFECT_HOME)
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m tweet_signals.deployments.serve

Schedules, parameters and names are read from ``prefect.yaml`` so both ways stay identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.schedules import Cron, Schedule

from tweet_signals.flows.backfill import backfill_signals
from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.flows.signal_health import signal_health

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


def declared_deployments(path: Path = PREFECT_YAML) -> dict[str, dict[str, Any]]:
    """The deployments of ``prefect.yaml`` by name (YAML anchors resolved)."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {d["name"]: d for d in config["deployments"]}


def _schedules(declared: dict[str, Any]) -> list[Schedule]:
    return [
        Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
        for s in declared.get("schedules") or []
    ]


def _concurrency(declared: dict[str, Any]) -> ConcurrencyLimitConfig | None:
    limit = declared.get("concurrency_limit")
    if limit is None:
        return None
    return ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else ConcurrencyLimitConfig(limit=int(limit))


def build_deployments() -> list[Any]:
    declared = declared_deployments()
    flows: dict[str, Flow[..., Any]] = {
        "daily-signals": daily_signals,
        "backfill-signals": backfill_signals,
        "signal-health": signal_health,
    }
    return [
        flows[name].to_deployment(
            name=name,
            description=spec.get("description"),
            tags=spec.get("tags"),
            parameters=spec.get("parameters"),
            schedules=_schedules(spec),
            enforce_parameter_schema=spec.get("enforce_parameter_schema", True),
            concurrency_limit=_concurrency(spec),
        )
        for name, spec in declared.items()
    ]


if __name__ == "__main__":  # pragma: no cover - a long-running server process
    serve(*build_deployments())
