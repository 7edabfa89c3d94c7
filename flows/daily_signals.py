"""The daily signals flow: collect → dedupe → fit TF-IDF → analyze (chunks on a pool) → signals."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, Failed, State
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.chunks import ChunkPool, run_chunks
from flows.parameters import effective_params
from flows.progress import current_stage, enter_stage, say
from tasks.analyze import start_worker_task
from tasks.collect import collect
from tasks.dedupe import dedupe
from tasks.evaluate import evaluate_task
from tasks.signals import build_signals
from tasks.tfidf import fit_tfidf
from tweet_signals.evaluation.history import stored_signals
from tweet_signals.evaluation.judge import EvaluationSettings
from tweet_signals.faults import api_line, api_unreachable, storage_cause, storage_line
from tweet_signals.market.sessions import calendar, is_session
from tweet_signals.model.loader import AnalyzerConfig, check_model_available, model_revision
from tweet_signals.params import SignalsParams, resolve_workers
from tweet_signals.stages.analyze import (
    ScoringConfig,
    choose_engine,
    chunk_key,
    peak_rss_mb,
    plan_chunks,
)
from tweet_signals.stages.summary import root_tag, signals_rows, summary_markdown, write_chart
from tweet_signals.storage import (
    AnyPath,
    Storage,
    glob,
    location,
    output_record,
    read_json,
    write_json_atomic,
)
from tweet_signals.storage.lease import Holder, SessionBusyError, SessionLease
from tweet_signals.storage.upkeep import check_data_root, sweep_temporaries


def run_name() -> str:
    """Runs are named after their date (the scheduled date when none is given)."""
    params = flow_run.parameters.get("params") or {}
    given = params.get("run_date") if isinstance(params, dict) else getattr(params, "run_date", None)
    exchange = params.get("exchange", "NSE") if isinstance(params, dict) else getattr(params, "exchange", "NSE")
    return f"signals-{given or scheduled_date(exchange)}"


def scheduled_date(exchange: str) -> date:
    """The flow run's scheduled start as a date in the exchange's time zone (never ``now()``)."""
    start = flow_run.scheduled_start_time
    return start.astimezone(calendar(exchange).tz).date()


def chunk_runner(params: SignalsParams, workers: int) -> Any:
    """Where the chunks run. Process pool: one worker runs in-process (no pool start-up, the model
    loads once here), more use Prefect's ProcessPoolTaskRunner (see ``start_workers``). Dask: an
    existing cluster at ``dask_address``, or a LocalCluster of ``dask_workers`` single-threaded
    worker processes."""
    if params.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if params.dask_address:
            return DaskTaskRunner(address=params.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": params.dask_workers, "threads_per_worker": 1, "processes": True}
        )
    if workers <= 1:
        return ThreadPoolTaskRunner(max_workers=1)
    return ProcessPoolTaskRunner(max_workers=workers)


def start_workers(runner: Any, workers: int, analyzer: AnalyzerConfig, rendezvous: str) -> list[Any]:
    """Start the pool's workers now, so their start-up and model loading overlap collect, dedupe
    and the TF-IDF fit: a spawn pool starts one process per task submitted while none is idle,
    and each start task loads the model and waits for the others (``loader.start_worker``). The
    futures give the workers' process ids."""
    return [
        runner.submit(
            start_worker_task,
            parameters={"index": index, "config": analyzer, "rendezvous": rendezvous, "workers": workers},
        )
        for index in range(workers)
    ]


@flow(name="daily-signals", flow_run_name=run_name)
def daily_signals(params: SignalsParams = SignalsParams()) -> dict[str, Any] | State:
    """Process one trading session end to end; rerunning it recomputes only what is missing."""
    logger = get_run_logger()
    params = effective_params(params)
    run_date = params.run_date or scheduled_date(params.exchange)
    if not is_session(run_date, params.exchange):
        message = f"{run_date} is not a trading session on {params.exchange}: nothing to do"
        logger.info(message)
        return Completed(message=message, data={"run_date": str(run_date), "status": "skipped"})
    # Fail before anything is written when the model cannot be loaded.
    check_model_available(params.model)
    storage = Storage.at(params.data_root)
    enter_stage(logger, run_date, "start")
    lease = SessionLease(storage.lease(run_date), Holder.this_process(str(flow_run.id or "") or None))
    try:
        # A missing, read-only, forbidden or full data root: one line before anything starts.
        check_data_root(storage, run_date)
        lease.acquire(
            params.busy_wait_s if params.on_busy == "wait" else 0,
            on_wait=lambda holder: say(
                logger,
                f"{run_date}: waiting for the run already processing it ({holder.get('run_id')} "
                f"on {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started_at')})",
            ),
        )
    except SessionBusyError as exc:
        return Failed(message=f"{run_date} under {storage.root}: {exc}; not started (on_busy={params.on_busy})")
    except OSError as exc:
        if (cause := storage_cause(exc)) is None:
            raise
        logger.error("%s", exc, exc_info=exc)
        return Failed(message=storage_line(storage.root, "start", cause))
    try:
        # Only now, holding the lease, can no live run of this session be writing its files.
        removed = sweep_temporaries(storage, run_date)
        if removed:
            logger.info("%s: removed %d temporary file(s) of killed writes: %s", run_date, len(removed), removed)
        return _process_session(params, run_date, storage, lease)
    except BaseException as exc:  # Ctrl-C, SIGTERM/SIGHUP and cancellation too
        return _ended_early(exc, storage, run_date)
    finally:
        lease.release()


def _ended_early(exc: BaseException, storage: Storage, run_date: date) -> State:
    """Record in the manifest how and where the run stopped, with what it had finished; a storage
    fault ends the run Failed with one line, anything else is raised on."""
    logger = get_run_logger()
    stage = current_stage()
    cause = storage_cause(exc) if isinstance(exc, Exception) else None
    if cause is not None:
        error = storage_line(storage.root, stage, cause)
    elif isinstance(exc, Exception) and api_unreachable(exc):
        error = api_line(str(PREFECT_API_URL.value()), stage)
    else:
        error = f"{type(exc).__name__}: {exc}"
    # This run's workers are stopped by now and it still holds the lease: what its killed writes
    # left goes, which on a full disk also frees the room the manifest needs.
    with contextlib.suppress(OSError):
        sweep_temporaries(storage, run_date)
    # The manifest must never say "running" for a run that died: a backfill trusts it.
    manifest = read_json(storage.manifest(run_date)) or {"run_date": str(run_date)}
    manifest.update(
        status="failed" if isinstance(exc, Exception) else "interrupted",
        stage=stage,
        error=error,
        finished=finished_outputs(storage, run_date),
    )
    try:
        _record_end(manifest, storage.manifest(run_date))
    except OSError as write_error:  # a read-only disk: the run log keeps it
        logger.warning("%s: could not record the run's end in its manifest: %s", run_date, write_error)
    if cause is None:
        raise exc
    logger.error("%s", error, exc_info=exc)  # the detail, for the run log and the log file
    return Failed(message=error)


def _record_end(manifest: dict[str, Any], path: AnyPath) -> None:
    """Write the manifest of a run that stopped early. On a full local disk an atomic write has no
    room for its second copy; the manifest is then rewritten in place (truncating it first frees
    its blocks): a torn manifest reads as none, which is safer than one saying "running"."""
    try:
        write_json_atomic(manifest, path)
    except OSError as exc:
        if not isinstance(path, Path) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")


def finished_outputs(storage: Storage, run_date: date) -> dict[str, Any]:
    """What a run that stopped early leaves for the next one: which stage outputs exist, and how
    many analyzed chunks (of any configuration)."""
    return {
        "raw": storage.raw(run_date).exists(),
        "clean": storage.clean(run_date).exists(),
        "tfidf": (storage.tfidf_dir(run_date) / "vocabulary.parquet").exists(),
        "analyzed_chunks": len(glob(storage.root, f"analyzed/date={run_date.isoformat()}/*/chunk-*.parquet")),
        "signals": storage.signals(run_date).exists(),
    }


def _process_session(
    params: SignalsParams, run_date: date, storage: Storage, lease: SessionLease
) -> dict[str, Any] | State:
    timings: dict[str, float] = {}
    previous = read_json(storage.manifest(run_date)) or {}
    manifest: dict[str, Any] = {
        "run_date": str(run_date),
        "status": "running",
        "run": asdict(lease.holder),
        "lease_wait_s": lease.waited_s,
        "params": params.model_dump(mode="json"),
        "model": {"id": params.model, "revision": model_revision(params.model)},
    }
    if previous.get("status") == "running":
        # We hold the lease, so the run that wrote "running" is not writing any more: it was killed.
        dead = previous.get("run") or {}
        manifest["previous_run"] = {"status": "killed", **dead}
        say(
            get_run_logger(),
            f"{run_date}: the previous run ({dead.get('run_id', 'unknown')}, pid {dead.get('pid', '?')} on "
            f"{dead.get('host', '?')}, started {dead.get('started_at', '?')}) never finished: it was killed; "
            "resuming from what it left",
            logging.WARNING,
        )
    if lease.taken_over is not None:
        manifest["lease_taken_over_from"] = lease.taken_over
    write_json_atomic(manifest, storage.manifest(run_date))

    dask = params.task_runner == "dask"
    workers = params.dask_workers if dask else resolve_workers(params.workers, params.model, params.device)
    # "auto" is resolved here, once, so the chunk cache key names the engine that really ran.
    analyzer = choose_engine(
        AnalyzerConfig(
            model=params.model,
            device=params.device,
            engine=params.engine,
            threads=max(1, (os.cpu_count() or 1) // workers),
        )
    )
    with contextlib.ExitStack() as stack:
        # Only pool processes are started early: in-process (one worker) the model is loaded once
        # and kept across runs anyway. A day that finished before has little or nothing to
        # analyze: don't load models for it.
        early = not dask and workers > 1 and previous.get("status") != "complete"
        # The rendezvous folder is made before the pool, so it is removed after the pool's workers
        # are stopped: removed first, it failed the start tasks still waiting in it.
        rendezvous = stack.enter_context(tempfile.TemporaryDirectory(prefix="tweet-signals-workers-")) if early else ""
        pool = stack.enter_context(ChunkPool(lambda: chunk_runner(params, workers)))
        started = start_workers(pool.runner, workers, analyzer, rendezvous) if early else []
        # Workers say which chunk they hold, so a dead one can be named (pool workers only: Dask
        # reschedules a lost worker's tasks itself, and its workers may not see this disk).
        claims = "" if dask else _claims_dir(stack, storage, run_date)
        return _run_stages(params, run_date, storage, manifest, timings, workers, analyzer, pool, started, claims)


def _claims_dir(stack: contextlib.ExitStack, storage: Storage, run_date: date) -> str:
    """``runs/date=D/claims`` on a local root (an operator sees who holds what), else a local
    temporary folder; emptied when the run ends."""
    local = storage.claims(run_date)
    folder = local if isinstance(local, Path) else Path(stack.enter_context(tempfile.TemporaryDirectory()))
    stack.callback(shutil.rmtree, folder, True)
    return str(folder)


def _run_stages(
    params: SignalsParams,
    run_date: date,
    storage: Storage,
    manifest: dict[str, Any],
    timings: dict[str, float],
    workers: int,
    analyzer: AnalyzerConfig,
    pool: ChunkPool,
    started: list[Any],
    claims: str,
) -> dict[str, Any] | State:
    logger = get_run_logger()
    t0 = time.perf_counter()
    enter_stage(logger, run_date, "collect")
    collected = collect(params, run_date)
    timings["collect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    enter_stage(logger, run_date, "dedupe")
    clean = dedupe(params, run_date)
    timings["dedupe"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    enter_stage(logger, run_date, "tfidf")
    tfidf = fit_tfidf(params, run_date, clean.digest)
    timings["tfidf"] = time.perf_counter() - t0

    scoring = ScoringConfig(params.keyword_boost_weight, params.include_engagement)
    config_key = chunk_key(analyzer, scoring, clean.digest, tfidf.digest)
    clean_path = storage.clean(run_date)
    descs = plan_chunks(
        run_date=str(run_date),
        clean_path=str(clean_path),
        n_rows=clean.posts_out,
        chunk_size=params.chunk_size,
        tfidf_dir=tfidf.dir,
        tfidf_digest=tfidf.digest,
        output_path=lambda i: str(storage.analyzed_chunk(run_date, config_key, i)),
        config_key=config_key,
        analyzer=analyzer,
        scoring=scoring,
        claim_dir=claims,
    )
    t0 = time.perf_counter()
    progress_key = f"analyze-progress-{run_date}-{root_tag(params.data_root)}"
    enter_stage(logger, run_date, "analyze")
    chunk_run = run_chunks(descs, pool, params.chunk_retries, progress_key)
    results, failures = chunk_run.results, chunk_run.failures
    timings["analyze"] = time.perf_counter() - t0
    computed = [r for r in results if r["status"] == "computed"]
    analyze_summary = {
        "config_key": config_key,
        "workers": workers,
        "engine": analyzer.engine,
        "chunks": len(descs),
        "computed": len(computed),
        "reused": len(results) - len(computed),
        "failed": sorted(failures),
        "rows": sum(int(r["rows"]) for r in results),
        # Processes started (model loaded) while collect, dedupe and TF-IDF ran; none for Dask
        # or for a day that had completed before.
        "worker_pids": _started_pids(started),
        # Workers that died (pid, signal or exit code, the chunk they held); their unfinished
        # chunks went to a rebuilt pool.
        "worker_deaths": chunk_run.deaths_as_dicts(),
        "pool_rebuilds": pool.rebuilds,
        "tweets_per_s": round(sum(int(r["rows"]) for r in computed) / timings["analyze"], 1) if computed else None,
        # The int8 cascade: share of each computed chunk's rows that int8 was unsure of and fp32
        # re-scored (the rows are in each chunk's entry under "chunks").
        "rescored_share": {
            str(r["chunk"]): round(int(r["rescored_rows"]) / max(1, int(r["rows"])), 4)
            for r in computed
            if r.get("rescored_rows") is not None
        }
        or None,
    }
    manifest.update(
        collect=collected.as_dict(),
        dedupe=clean.as_dict(),
        tfidf=tfidf.as_dict(),
        analyze=analyze_summary,
        chunks=sorted(results, key=lambda r: r["chunk"])
        + [{"chunk": c, "status": "failed", "error": e} for c, e in sorted(failures.items())],
        timings={k: round(v, 3) for k, v in timings.items()},
    )
    if failures:
        manifest["status"] = "failed"
        write_json_atomic(manifest, storage.manifest(run_date))
        publish_artifacts(manifest, None)
        named = "; ".join(f"chunk {c}: {e}" for c, e in sorted(failures.items()))
        return Failed(
            message=f"analyze failed for chunk(s) {sorted(failures)} of {run_date} ({named}); rerun to retry them"
        )

    t0 = time.perf_counter()
    enter_stage(logger, run_date, "signals")
    signals = build_signals(params, run_date, str(clean_path), [d.output_path for d in descs], config_key)
    timings["signals"] = time.perf_counter() - t0
    chart = write_chart(storage, run_date)
    if params.prices:
        manifest["evaluation"] = evaluate_history(params, run_date, storage)
    manifest.update(
        signals={**signals.as_dict(), "chart": str(chart) if chart else None},
        # What "complete" rests on: a later run or backfill re-checks these before trusting it.
        outputs=[
            output_record(collected.path),
            output_record(clean.path),
            output_record(location(tfidf.dir) / "vocabulary.parquet"),
            *(output_record(r["output_path"], int(r["rows"])) for r in results),
            output_record(signals.path),
        ],
        status="complete",
        timings={k: round(v, 3) for k, v in timings.items()},
        coordinator_peak_rss_mb=peak_rss_mb(),  # this process: the flow, never the chunk workers
    )
    write_json_atomic(manifest, storage.manifest(run_date))
    publish_artifacts(manifest, chart)
    return manifest


def _started_pids(started: list[Any]) -> list[int]:
    """Pids of the workers started early (a pool rebuilt since may have lost some)."""
    pids = set()
    for future in started:
        try:
            pids.add(int(future.result()))
        except Exception:  # its pool broke: the worker is gone
            continue
    return sorted(pids)


def evaluate_history(params: SignalsParams, run_date: date, storage: Storage) -> dict[str, Any]:
    """Judge the stored history of the priced symbol up to this session; report beside the signals."""
    symbol = (params.price_symbol or params.symbols[0]).upper()
    settings = EvaluationSettings(
        prices_path=str(params.prices),
        out_dir=str(storage.signals(run_date).parent / "report"),
        price_columns=params.price_columns,
        exchange=params.exchange,
    )
    result = evaluate_task(stored_signals(storage, symbol, run_date), symbol, settings)
    return {"symbol": symbol, "report": result["report"], "verdict": result["verdict"], "n": result["n"]}


def publish_artifacts(manifest: dict[str, Any], chart: AnyPath | None) -> None:
    """The run summary (verdicts, chart, stages) and the signals table, as Prefect artifacts; keys
    name the session and the data root, so runs against another root never replace these."""
    import polars as pl

    day, root = manifest["run_date"], manifest["params"]["data_root"]
    tag = root_tag(root)
    signals = pl.read_parquet(manifest["signals"]["path"]) if manifest.get("signals") else None
    chart_png = chart.read_bytes() if chart is not None else None
    create_markdown_artifact(
        summary_markdown(manifest, signals, chart_png, root),
        key=f"signals-summary-{day}-{tag}",
        description=f"run summary of {day} under {root}",
    )
    if signals is not None:
        create_table_artifact(
            signals_rows(signals), key=f"signals-table-{day}-{tag}", description=f"signals for {day} under {root}"
        )
