"""The daily signals flow: collect → dedupe → fit TF-IDF → analyze (chunks on a pool) → signals."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
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

from tweet_signals.evaluation.history import stored_signals
from tweet_signals.evaluation.judge import EvaluationSettings
from tweet_signals.faults import api_line, api_unreachable, storage_cause, storage_line
from tweet_signals.flows.chunks import ChunkPool, ChunkRun, run_chunks
from tweet_signals.flows.parameters import effective_params
from tweet_signals.flows.progress import current_stage, enter_stage, say
from tweet_signals.flows.run_record import StageClock, analyze_summary, chunk_entries, complete_outputs, started_pids
from tweet_signals.market.sessions import calendar, is_session
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.engines.build import ENGINES
from tweet_signals.model.engines.cascade import CASCADE
from tweet_signals.model.engines.choice import build_engine_files, unchecked_engines
from tweet_signals.model.reference import ModelRef, check_model_available, resolve_model
from tweet_signals.params import SignalsParams, resolve_workers
from tweet_signals.quiet import third_party_output_to
from tweet_signals.stages.analyze import (
    ScoringConfig,
    choose_engine,
    chunk_key,
    peak_rss_mb,
    plan_chunks,
)
from tweet_signals.stages.dedupe import DedupeResult
from tweet_signals.stages.engine_check import CHECKS_ENV, check_in_background, check_mode
from tweet_signals.stages.summary import root_tag, signals_rows, summary_markdown, write_chart
from tweet_signals.stages.tfidf import TfidfResult
from tweet_signals.storage import (
    AnyPath,
    Storage,
    glob,
    read_json,
    write_json_atomic,
)
from tweet_signals.storage.lease import Holder, SessionBusyError, SessionLease
from tweet_signals.storage.upkeep import check_data_root, sweep_temporaries
from tweet_signals.tasks.analyze import start_worker_task
from tweet_signals.tasks.collect import collect_task
from tweet_signals.tasks.dedupe import dedupe_task
from tweet_signals.tasks.evaluate import evaluate_task
from tweet_signals.tasks.signals import signals_task
from tweet_signals.tasks.tfidf import tfidf_task


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
    # The model string is resolved here, once; every later step takes the reference. Fail
    # before anything is written when the model cannot be loaded.
    model = resolve_model(params.model)
    check_model_available(model)
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
        return _process_session(params, model, run_date, storage, lease)
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
    params: SignalsParams, model: ModelRef, run_date: date, storage: Storage, lease: SessionLease
) -> dict[str, Any] | State:
    previous = read_json(storage.manifest(run_date)) or {}
    manifest: dict[str, Any] = {
        "run_date": str(run_date),
        "status": "running",
        "run": asdict(lease.holder),
        "lease_wait_s": lease.waited_s,
        "params": params.model_dump(mode="json"),
        "model": {"id": model.name, "revision": model.revision},
    }
    if previous.get("status") == "running":
        # We hold the lease, so the run that wrote "running" is not writing any more: it was killed.
        dead = previous.get("run") or {}
        manifest["previous_run"] = {"status": "killed", **dead}
        say(
            get_run_logger(),
            f"{run_date}: the previous run ({dead.get('run_id', 'unknown')}, pid {dead.get('pid', '?')} on "
            f"{dead.get('host', '?')}, started {dead.get('started_at', '?')}) never finished: it was killed; "
            + ("recomputing everything (--force)" if params.force else "resuming from what it left"),
            logging.WARNING,
        )
    if lease.taken_over is not None:
        manifest["lease_taken_over_from"] = lease.taken_over
    write_json_atomic(manifest, storage.manifest(run_date))

    dask = params.task_runner == "dask"
    workers = params.dask_workers if dask else resolve_workers(params.workers, model, params.device)
    # "auto" is resolved here, once, so the chunk cache key names the engine that really ran.
    requested = AnalyzerConfig(
        model=model, device=params.device, engine=params.engine, threads=max(1, (os.cpu_count() or 1) // workers)
    )
    analyzer = recorded_engine(requested, previous, params.force) or _choose_engine(requested, storage)
    with contextlib.ExitStack() as stack:
        # Only pool processes are started early: in-process (one worker) the model is loaded once
        # and kept across runs anyway. A day that finished before has little or nothing to
        # analyze (unless forced): don't load models for it.
        early = not dask and workers > 1 and (params.force or previous.get("status") != "complete")
        # The rendezvous folder is made before the pool, so it is removed after the pool's workers
        # are stopped: removed first, it failed the start tasks still waiting in it.
        rendezvous = stack.enter_context(tempfile.TemporaryDirectory(prefix="tweet-signals-workers-")) if early else ""
        pool = stack.enter_context(ChunkPool(lambda: chunk_runner(params, workers)))
        started = start_workers(pool.runner, workers, analyzer, rendezvous) if early else []
        # Workers say which chunk they hold, so a dead one can be named (pool workers only: Dask
        # reschedules a lost worker's tasks itself, and its workers may not see this disk).
        claims = "" if dask else _claims_dir(stack, storage, run_date)
        run = SessionRun(params, run_date, storage, manifest, workers, analyzer, pool, started, claims)
        return _run_stages(run)


@dataclass
class SessionRun:
    """One session's run as the stages see it: what to do, where, and the pool that analyzes."""

    params: SignalsParams
    run_date: date
    storage: Storage
    manifest: dict[str, Any]
    workers: int
    analyzer: AnalyzerConfig
    pool: ChunkPool
    started: list[Any]  # futures of the workers started early
    claims: str  # folder where workers name the chunk they hold ("" under Dask)

    def write_manifest(self) -> None:
        write_json_atomic(self.manifest, self.storage.manifest(self.run_date))


def recorded_engine(config: AnalyzerConfig, previous: dict[str, Any], force: bool) -> AnalyzerConfig | None:
    """For ``engine=auto``, the engine a complete run of this session with this model recorded,
    so that its chunks (keyed by engine) are reused: a day is not recomputed because a faster
    engine passed its check since. None (choose now) when forced, or nothing usable is recorded."""
    analyze = previous.get("analyze") or {}
    engine = analyze.get("engine")
    same_model = previous.get("model") == {"id": config.model.name, "revision": config.model.revision}
    if force or config.engine != "auto" or previous.get("status") != "complete" or not same_model:
        return None
    if engine not in ENGINES:
        return None
    margin = analyze.get("cascade_margin")
    if engine == CASCADE and margin is None:
        return None  # recorded before margins were: its chunks' key cannot be rebuilt
    return replace(config, engine=engine, cascade_margin=margin)


# What a model's first run on a machine would spend choosing its engine before analysing, when
# the checks run inline (embedded model, 83 s measured on a shared 2-core CPU: ONNX export, int8
# quantisation, the candidates checked against fp32; the compile on top).
INLINE_CHOICE_COST = "about 1-2 min"
# What the background check takes once the run that started it is done (the same work at low
# priority: 66 s after the first `tweet-signals demo` ended, quiet 2-core CPU; more on a busy one).
BACKGROUND_CHECK_COST = "about 1-3 min at low priority, after this run"
_TOLD: set[tuple[Path, str]] = set()
_NAMED_LOGS: set[Path] = set()


def _choose_engine(config: AnalyzerConfig, storage: Storage) -> AnalyzerConfig:
    """``choose_engine`` (``auto`` resolved; the chosen engine's files built, so workers only
    load them) with the output of compilers, quantizers and libraries kept off the console: it
    goes to a log file under the data root (named in one line) and to the run log at debug level.

    Candidates without a recorded verdict (a model's first run on a machine) are checked in a
    background process at low priority (``stages.engine_check``): this run analyses at once on
    the fastest engine already checked, fp32 on a first run, and says so in one line."""
    logger = get_run_logger()
    local_log = storage.log("engines")
    log_file = local_log if isinstance(local_log, Path) else config.model.cache_dir / "engines.log"
    mode = check_mode()
    if mode == "inline" and unchecked_engines(config):
        say(logger, f"choosing the fastest engine for this CPU, once: {INLINE_CHOICE_COST}")
    deferred: list[str] = []
    on_device = config
    written: list[str] = []

    def defer(resolved: AnalyzerConfig, candidate: str) -> None:
        nonlocal on_device
        on_device = resolved
        deferred.append(candidate)

    def to_run_log(text: str) -> None:
        written.append(text)
        logger.debug("compiler and library output:\n%s", text)

    with third_party_output_to(log_file, to_run_log):
        chosen = choose_engine(config, defer=None if mode == "inline" else defer)
        build_engine_files(chosen, chosen.engine)
    if deferred:
        started = mode == "background" and check_in_background(on_device, deferred, log_file) is not None
        told = (on_device.model.cache_dir, on_device.device)
        if started or told not in _TOLD:  # once per process: a backfill runs many days
            _TOLD.add(told)
            say(logger, _deferred_line(chosen.engine, deferred, mode, started))
    if (written or deferred) and log_file not in _NAMED_LOGS:  # named once per process
        _NAMED_LOGS.add(log_file)
        say(logger, f"compiler and library output: {log_file}")
    return chosen


def _deferred_line(engine: str, deferred: list[str], mode: str, started: bool) -> str:
    """The one line a run says when it analyses before every candidate engine is checked."""
    names = ", ".join(deferred)
    if started:
        return (
            f"first run of this model here: analysing with {engine} now; {names} are checked in the "
            f"background for the next runs ({BACKGROUND_CHECK_COST})"
        )
    if mode == "background":
        return f"analysing with {engine}; the background check of {names} started earlier is still running"
    return f"analysing with {engine}; {names} not checked ({CHECKS_ENV}={mode})"


def _claims_dir(stack: contextlib.ExitStack, storage: Storage, run_date: date) -> str:
    """``runs/date=D/claims`` on a local root (an operator sees who holds what), else a local
    temporary folder; emptied when the run ends."""
    local = storage.claims(run_date)
    folder = local if isinstance(local, Path) else Path(stack.enter_context(tempfile.TemporaryDirectory()))
    stack.callback(shutil.rmtree, folder, True)
    return str(folder)


def _run_stages(run: SessionRun) -> dict[str, Any] | State:
    """The five stages, each reusing what an earlier run finished; the manifest says what ran."""
    params, run_date = run.params, run.run_date
    logger = get_run_logger()
    clock = StageClock(lambda stage: enter_stage(logger, run_date, stage))
    with clock("collect"):
        collected = collect_task(params, run_date)
    with clock("dedupe"):
        clean = dedupe_task(params, run_date)
    with clock("tfidf"):
        tfidf = tfidf_task(params, run_date, clean.digest)
    with clock("analyze"):
        chunk_paths, config_key, chunk_run = _analyze(run, clean, tfidf)
    run.manifest.update(
        collect=collected.as_dict(),
        dedupe=clean.as_dict(),
        tfidf=tfidf.as_dict(),
        analyze=analyze_summary(
            chunk_run,
            len(chunk_paths),
            config_key,
            run.workers,
            run.analyzer,
            started_pids(run.started),
            run.pool,
            clock.seconds["analyze"],
        ),
        chunks=chunk_entries(chunk_run),
        timings=clock.rounded(),
    )
    if chunk_run.failures:
        run.manifest["status"] = "failed"
        run.write_manifest()
        publish_artifacts(run.manifest, None)
        named = "; ".join(f"chunk {c}: {e}" for c, e in sorted(chunk_run.failures.items()))
        return Failed(
            message=f"analyze failed for chunk(s) {sorted(chunk_run.failures)} of {run_date} ({named}); "
            "rerun to retry them"
        )
    with clock("signals"):
        signals = signals_task(params, run_date, clean.path, chunk_paths, config_key)
    chart = write_chart(run.storage, run_date)
    if params.prices:
        run.manifest["evaluation"] = evaluate_history(params, run_date, run.storage)
    run.manifest.update(
        signals={**signals.as_dict(), "chart": str(chart) if chart else None},
        outputs=complete_outputs(collected, clean, tfidf, chunk_run, signals),
        status="complete",
        timings=clock.rounded(),
        coordinator_peak_rss_mb=peak_rss_mb(),  # this process: the flow, never the chunk workers
    )
    run.write_manifest()
    publish_artifacts(run.manifest, chart)
    return run.manifest


def _analyze(run: SessionRun, clean: DedupeResult, tfidf: TfidfResult) -> tuple[list[str], str, ChunkRun]:
    """Score the clean posts in chunks on the pool: (chunk paths, the chunks' cache key, results)."""
    params, run_date, storage = run.params, run.run_date, run.storage
    scoring = ScoringConfig(params.keyword_boost_weight, params.include_engagement)
    config_key = chunk_key(run.analyzer, scoring, clean.digest, tfidf.digest)
    descs = plan_chunks(
        run_date=str(run_date),
        clean_path=clean.path,
        n_rows=clean.posts_out,
        chunk_size=params.chunk_size,
        tfidf_dir=tfidf.dir,
        tfidf_digest=tfidf.digest,
        output_path=lambda i: str(storage.analyzed_chunk(run_date, config_key, i)),
        config_key=config_key,
        analyzer=run.analyzer,
        scoring=scoring,
        claim_dir=run.claims,
        force=params.force,
    )
    if descs:
        say(
            get_run_logger(),
            f"{run_date}: analysing {clean.posts_out} posts in {len(descs)} chunks with {run.analyzer.engine}",
        )
    progress_key = f"analyze-progress-{run_date}-{root_tag(params.data_root)}"
    chunk_run = run_chunks(descs, run.pool, params.chunk_retries, progress_key)
    return [d.output_path for d in descs], config_key, chunk_run


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
