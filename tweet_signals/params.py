"""The one parameters model of the signals flow (the Prefect UI renders it as a validated form)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tweet_signals.market.symbols import DEFAULT_SYMBOLS, alias_map, load_alias_file
from tweet_signals.model.reference import DEFAULT_MODEL, ModelRef


class SignalsParams(BaseModel):
    """What one daily run does. Every field has a default; the run date defaults to the
    flow run's scheduled start (in the exchange's time zone). Unknown names are refused (a
    misspelt ``modle`` must not silently run the default model)."""

    model_config = ConfigDict(extra="forbid")

    run_date: date | None = Field(
        None, description="Trading session to process (YYYY-MM-DD); default: the scheduled date"
    )
    source: Literal["file", "synthetic", "x"] = Field("synthetic", description="Where posts come from")
    input: str | None = Field(None, description="File or directory of posts (source=file)")
    columns: str | None = Field(
        None, description="Column mapping for other flat files, e.g. text=content,created_at=timestamp"
    )
    naive_tz: str | None = Field(
        None, description="Time zone for timestamps without one (e.g. UTC); unset: such records are quarantined"
    )
    queries: list[str] = Field([], description="Extra X search queries (source=x), OR-ed with the symbols")
    x_base_url: str | None = Field(
        None, description="X API base URL (default: TWEET_SIGNALS_X_BASE_URL, else the public API)"
    )
    x_token_secret: str | None = Field(
        None, description="Name of a Prefect Secret block holding the X bearer token (default: X_BEARER_TOKEN)"
    )
    x_endpoint: Literal["recent", "all"] = Field("recent", description="Recent or full-archive search")
    x_max_posts: int = Field(10_000, ge=10, description="Most posts read from the X API per run (billed per post)")
    x_max_requests: int = Field(200, ge=1, description="Most X API requests per run")
    symbols: list[str] = Field(list(DEFAULT_SYMBOLS), description="Symbols to build signals for")
    aliases_file: str | None = Field(None, description="JSON file of extra aliases per symbol")
    exchange: str = Field("NSE", description="Exchange calendar for sessions (NSE, BSE, NYSE or an ISO MIC)")
    model: str = Field(DEFAULT_MODEL, description="Hugging Face hub id, local model directory, or 'embedded'")
    device: str = Field("auto", description="auto, cpu, cuda or mps")
    engine: Literal[
        "auto",
        "torch-fp32",
        "torch-bf16",
        "torch-int8",
        "onnx-fp32",
        "onnx-int8",
        "onnx-int8-verified",
        "torch-bf16-compiled",
    ] = Field("auto", description="Inference engine; auto picks the fastest that agrees with torch fp32")
    workers: int | Literal["auto"] = Field("auto", description="Analyzer worker processes (auto: cores - 1)")
    task_runner: Literal["process", "dask"] = Field(
        "process", description="Where analyze chunks run: a local process pool, or a Dask cluster"
    )
    dask_address: str | None = Field(None, description="Existing Dask scheduler, e.g. tcp://host:8786")
    dask_workers: int = Field(2, ge=1, description="Workers of the local Dask cluster when no address is given")
    chunk_size: int = Field(2000, ge=50, description="Posts per analyze task")
    chunk_retries: int = Field(1, ge=0, le=5, description="Retries of a failed analyze chunk")
    keyword_boost_weight: float = Field(0.2, ge=0.0, le=1.0, description="Weight of the finance-lexicon boost")
    include_engagement: bool = Field(True, description="Weight posts by log-scaled engagement")
    prices: str | None = Field(None, description="Daily closes CSV: each run then writes an evaluation report")
    price_columns: str = Field("date=Date,close=Close", description="Date and close columns of the prices CSV")
    price_symbol: str | None = Field(None, description="Symbol the prices belong to (default: the first symbol)")
    data_root: str = Field("data", description="Root folder of all outputs")
    force: bool = Field(False, description="Recompute every stage even when outputs exist")
    on_busy: Literal["wait", "fail"] = Field(
        "wait", description="When another run is processing this session and data root: wait for it, or fail at once"
    )
    busy_wait_s: int = Field(3600, ge=0, description="Longest wait for another run of the session (on_busy=wait)")
    synthetic_posts: int = Field(2500, ge=1, description="Posts per session for source=synthetic")
    seed: int = Field(2026, description="Seed of the synthetic generator")

    @field_validator("symbols")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        out = []
        for s in value:
            sym = s.strip().lstrip("#$").upper()
            if sym and sym not in out:
                out.append(sym)
        if not out:
            raise ValueError("at least one symbol is needed")
        return out

    @model_validator(mode="after")
    def _input_means_file(self) -> SignalsParams:
        # An input file with the source left at its default can only mean "read this file".
        if self.input and "source" not in self.model_fields_set:
            self.source = "file"
        return self

    def over(self, defaults: Mapping[str, Any]) -> SignalsParams:
        """These parameters laid over ``defaults``: only the fields that were given explicitly
        replace a default (a deployment's settings survive a run that sets one field)."""
        if not defaults:
            return self
        return SignalsParams.model_validate({**defaults, **self.model_dump(include=self.model_fields_set)})

    def aliases(self) -> dict[str, str]:
        """Alias → symbol for this run's symbols, plus those of ``aliases_file``."""
        extra = load_alias_file(Path(self.aliases_file)) if self.aliases_file else None
        return alias_map(self.symbols, extra)


# Worker processes sharing one GPU: while one runs the model, the others tokenise, score and
# write; measured on an H200 with RoBERTa-base bf16 (docs/performance.md, GPU).
GPU_WORKERS_PER_DEVICE = 8


def auto_workers(model: ModelRef, device: str = "auto") -> int:
    """cores − 1 (at least 1), bounded by the memory a worker needs for the model; on a GPU,
    ``GPU_WORKERS_PER_DEVICE`` (the model runs on the GPU, the cores only feed it)."""
    import psutil

    from tweet_signals.model.config import resolve_device

    cores = os.cpu_count() or 1
    if resolve_device(device).startswith("cuda"):
        return max(1, min(cores - 1, GPU_WORKERS_PER_DEVICE))
    per_worker = 0.6e9 if model.kind == "embedded" else 1.6e9
    by_memory = int(psutil.virtual_memory().available * 0.7 // per_worker)
    return max(1, min(cores - 1, by_memory))


def resolve_workers(workers: int | Literal["auto"], model: ModelRef, device: str = "auto") -> int:
    return auto_workers(model, device) if workers == "auto" else max(1, int(workers))
