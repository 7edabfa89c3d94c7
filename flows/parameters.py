"""Parameters of a run started from a deployment: the run's own settings over the deployment's.

Prefect merges a run's parameters with its deployment's at the top level only, so a run started
with ``params={"run_date": ...}`` (the UI's custom run, ``prefect deployment run --param``) would
replace the deployment's whole ``params`` object and fall back to the model's defaults for every
other field (a ``data_root: s3://...`` set in ``prefect.yaml`` would be lost). The flows lay the
fields a run set explicitly over the deployment's ``params`` instead.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tweet_signals.params import SignalsParams


def deployment_params(name: str = "params") -> dict[str, Any]:
    """The ``name`` parameter as declared on this flow run's deployment ({} outside a deployment)."""
    from prefect import get_client
    from prefect.runtime import deployment

    deployment_id = deployment.id
    if not deployment_id:
        return {}
    with get_client(sync_client=True) as client:
        declared = client.read_deployment(UUID(str(deployment_id))).parameters or {}
    value = declared.get(name)
    return dict(value) if isinstance(value, dict) else {}


def effective_params(params: SignalsParams) -> SignalsParams:
    """``params`` over its deployment's declared ``params`` (unchanged outside a deployment)."""
    return params.over(deployment_params())
