"""``tweet-signals benchmark``: our analyze stage against the one-tweet-per-call design, same run.

Rows: (1) the original loop, one tweet per model call, one process; (2) the same loop on a
``multiprocessing.Pool``; (3) each of our engines through the real analyze stage
(``api.analyze_posts``: TF-IDF, chunk descriptors, worker processes, Parquet writes). Each
measurement runs in a fresh spawned process, so peak RSS and thread settings don't leak between
rows. Speedups are against (1) for the same model in the same run.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tweet_signals.model.engines.build import ENGINES
from tweet_signals.model.engines.compiled import COMPILED

ROBERTA = "roberta-base"
EMBEDDED = "embedded"


def build_random_roberta_base(target: Path, tokenizer_dir: Path | None = None) -> Path:
    """RoBERTa-base (12 layers, 768 hidden) with random weights, saved like a hub model.

    Speed only: no pretrained RoBERTa is reachable offline. It uses the packaged MiniLM
    WordPiece tokenizer (30,522 tokens; or the one in ``tokenizer_dir``), whose tweet lengths
    are close to RoBERTa's BPE.
    """
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification

    if (target / "config.json").is_file():
        return target
    if tokenizer_dir is None:
        from tweet_signals.model.embedded import base_model_dir

        tokenizer_dir = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=514,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    model = RobertaForSequenceClassification(config).eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    return target


def _peak_rss_mb() -> float:
    from tweet_signals.stages.analyze import peak_rss_mb

    return peak_rss_mb()


# --- (1) and (2): the original design, one tweet per call -------------------------------------

_LOOP_MODEL: Any = None


def _loop_init(model_path: str, threads: int, device: str = "cpu") -> None:
    global _LOOP_MODEL
    import torch

    from tweet_signals.model.parts import load_parts
    from tweet_signals.model.reference import resolve_model

    torch.set_num_threads(threads)
    parts = load_parts(resolve_model(model_path), "torch-fp32")
    _LOOP_MODEL = (parts.tokenizer, parts.load_module().to(device), parts.hf_output, device, parts.prepare)


def _loop_one(text: str) -> list[float]:
    import torch

    tokenizer, module, hf_output, device, prepare = _LOOP_MODEL
    text = prepare(text)  # masked (and emoji spelled) as the pipeline prepares it: the same tokens
    if callable(tokenizer):  # transformers' tokenizer
        ids = tokenizer(text, truncation=True, max_length=128)["input_ids"]
    else:  # the Rust tokenizer the embedded model loads directly
        tokenizer.enable_truncation(128)
        ids = tokenizer.encode(text).ids
    input_ids = torch.tensor([ids], device=device)
    with torch.no_grad():
        out = module(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
        logits = out.logits if hf_output else out
    return torch.softmax(logits, -1)[0].tolist()


def _run_loop(model_path: str, texts: list[str], workers: int, device: str) -> dict[str, Any]:
    """Time the loop itself; model loading and pool start-up are left out (kind to the baseline)."""
    if workers == 1:
        _loop_init(model_path, os.cpu_count() or 1, device)
        _loop_one(texts[0])
        started = time.perf_counter()
        probs = [_loop_one(t) for t in texts]
        seconds = time.perf_counter() - started
        rss = _peak_rss_mb()
    else:
        with multiprocessing.get_context("spawn").Pool(workers, _loop_init, (model_path, 1, device)) as pool:
            pool.map(_loop_one, texts[:workers], chunksize=1)  # every worker has loaded its model
            started = time.perf_counter()
            probs = pool.map(_loop_one, texts, chunksize=8)
            seconds = time.perf_counter() - started
            rss = max(pool.map(_child_rss, range(workers)))
    return {"seconds": seconds, "peak_rss_mb": rss, "probs": np.asarray(probs)}


def _child_rss(_: int) -> float:
    time.sleep(0.2)  # let every pool process take one
    return _peak_rss_mb()


# --- (3): our analyze stage ---------------------------------------------------------------------


def _run_stage(
    model_path: str, texts: list[str], engine: str, workers: int, device: str, warm: bool = False
) -> dict[str, Any]:
    """The analyze stage; ``warm``: workers started and models loaded before the clock starts."""
    import polars as pl

    from tweet_signals.api import analyze_posts_with_stats

    posts = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts})
    timings: dict[str, float] = {}
    out, chunks = analyze_posts_with_stats(
        posts,
        model=model_path,
        workers=workers,
        engine=engine,
        device=device,
        chunk_size=max(100, len(texts) // (4 * workers)),
        timings=timings,
        warm_start=warm,
    )
    seconds = timings["analyze"]  # the stage as the flow runs it; TF-IDF is fitted before it
    probs = out.select("p_negative", "p_neutral", "p_positive").to_numpy()
    # Where the workers' time went, summed over chunks (worker-seconds), and the wall-clock
    # wait for warm workers that outlasted the preparation.
    phases: dict[str, float] = {"startup_wait": round(timings["startup_wait"], 2)}
    for chunk in chunks:
        for name, value in chunk.phases.items():
            phases[name] = round(phases.get(name, 0.0) + value, 2)
    peak = max(c.peak_rss_mb for c in chunks)
    return {"seconds": seconds, "peak_rss_mb": peak, "probs": probs, "phases": phases}


def _run_bare(model_path: str, texts: list[str], engine: str, device: str) -> dict[str, Any]:
    """The model alone on the stage's batches: texts tokenised, padded and (on a GPU) copied to
    the device before the clock starts; only the forward passes are timed."""
    import torch

    from tweet_signals.model.config import AnalyzerConfig
    from tweet_signals.model.engines.torch_engine import TorchLogits
    from tweet_signals.model.loader import build_analyzer
    from tweet_signals.model.reference import resolve_model

    analyzer = build_analyzer(
        AnalyzerConfig(model=resolve_model(model_path), engine=engine, device=device, threads=os.cpu_count() or 1)
    )
    batches = [(ids, mask) for _, ids, mask in analyzer.padded_batches(analyzer.encode(texts))]
    run = analyzer.logits_fn
    if isinstance(run, TorchLogits) and run.device != "cpu":
        on_device = [(torch.from_numpy(i).to(run.device), torch.from_numpy(m).to(run.device)) for i, m in batches]
        with torch.inference_mode():
            for dev_ids, dev_mask in on_device[:3]:  # warm-up: kernels chosen, memory pools filled
                run.module(dev_ids, dev_mask)
            torch.cuda.synchronize()
            started = time.perf_counter()
            for dev_ids, dev_mask in on_device:
                run.module(dev_ids, dev_mask)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
    else:
        for ids, mask in batches[:3]:
            run(ids, mask)
        started = time.perf_counter()
        for ids, mask in batches:
            run(ids, mask)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "probs": None, "batches": len(batches)}


def _measure(kind: str, model_path: str, texts: list[str], engine: str, workers: int, device: str) -> dict[str, Any]:
    if kind == "loop":
        return _run_loop(model_path, texts, workers, device)
    if kind == "bare":
        return _run_bare(model_path, texts, engine, device)
    if kind == "export":  # an ONNX graph, compiled library or cascade margin: once per model revision
        from tweet_signals.model.config import AnalyzerConfig
        from tweet_signals.model.engines.choice import resolve_engine
        from tweet_signals.model.loader import build_analyzer
        from tweet_signals.model.reference import resolve_model
        from tweet_signals.stages.analyze import calibration_texts

        config = AnalyzerConfig(model=resolve_model(model_path), engine=engine, device=device)
        build_analyzer(resolve_engine(config, calibration_texts))
        return {}
    return _run_stage(model_path, texts, engine, workers, device, warm=kind == "stage-warm")


def _in_fresh_process(*args: Any) -> dict[str, Any]:
    # A ProcessPoolExecutor worker (unlike a Pool's) may start processes of its own.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, *args).result()


@dataclass(frozen=True)
class Row:
    model: str
    engine: str
    workers: int
    tweets_per_s: float
    speedup_vs_baseline: float
    peak_rss_mb_per_worker: float
    label_agreement: float | None = None
    max_prob_diff: float | None = None
    n: int = 0
    # loop: one tweet per call | stage: our analyze stage, pool started with the clock |
    # stage-warm: the same on workers that have loaded their model | bare: the model alone
    kind: str = "stage"
    device: str = "cpu"
    share_of_bare: float | None = None  # stage throughput / bare throughput, same engine and run
    phases: dict[str, float] | None = None  # stage rows: worker-seconds per phase, summed over chunks
    load_s: float | None = None  # stage rows: worker-seconds loading the model (its start-up in the stage)


def run_benchmark(
    texts: Sequence[str],
    models: Sequence[str] = (ROBERTA, EMBEDDED),
    engines: Sequence[str] = ENGINES,
    workers: Sequence[int] = (1, 2),
    loop_n: int = 200,
    progress: Any = print,
    device: str = "cpu",
    bare: bool = False,
    pool_workers: int = 0,
    tokenizer_dir: Path | None = None,
    warm: bool = False,
) -> list[Row]:
    """Measure every row; fidelity of each engine against torch fp32 on the embedded model
    (when it is among ``models``). ``bare`` adds the model alone on the same batches per engine;
    ``warm`` adds each stage again on workers that loaded their model before the clock."""
    texts = list(texts)
    rows: list[Row] = []
    fidelity: dict[str, tuple[float, float]] = {}
    cores = os.cpu_count() or 1

    def add(
        model: str, engine: str, workers: int, n: int, measured: dict[str, Any], base: float, **extra: Any
    ) -> float:
        """Append the row of one measurement (``base``: the one-per-call rate; 0 for that row itself)."""
        rate = n / measured["seconds"]
        speedup = round(rate / base, 2) if base else 1.0
        row = Row(model, engine, workers, round(rate, 1), speedup, round(measured["peak_rss_mb"]), n=n, **extra)
        rows.append(row)
        progress(row)
        return rate

    with tempfile.TemporaryDirectory(prefix="tweet-signals-bench-") as tmp:
        ordered = sorted(models, key=lambda m: m != EMBEDDED)  # embedded first: it measures fidelity
        for model in ordered:
            path = EMBEDDED if model == EMBEDDED else str(build_random_roberta_base(Path(tmp) / model, tokenizer_dir))
            loop_texts = texts[:loop_n]
            loop = {"kind": "loop", "device": device}
            base_measure = _in_fresh_process("loop", path, loop_texts, "", 1, device)
            base_rate = add(model, "one-per-call", 1, len(loop_texts), base_measure, 0.0, **loop)
            pool_size = pool_workers or cores
            pooled = _in_fresh_process("loop", path, loop_texts, "", pool_size, device)
            add(model, "one-per-call-pool", pool_size, len(loop_texts), pooled, base_rate, **loop)
            reference: np.ndarray | None = None
            for engine in engines:
                if engine.startswith("onnx-") or engine == COMPILED:
                    _in_fresh_process("export", path, [], engine, 1, device)
                bare_rate: float | None = None
                if bare:
                    measured = _in_fresh_process("bare", path, texts, engine, 1, device)
                    bare_rate = add(model, engine, 1, len(texts), measured, base_rate, kind="bare", device=device)
                for w, kind in ((w, k) for w in workers for k in ("stage", "stage-warm")[: 1 + warm]):
                    result = _in_fresh_process(kind, path, texts, engine, w, device)
                    if model == EMBEDDED and engine == "torch-fp32" and reference is None:
                        reference = result["probs"]
                    if model == EMBEDDED and engine != "torch-fp32" and reference is not None:
                        probs = result["probs"]
                        fidelity[engine] = (
                            float((probs.argmax(1) == reference.argmax(1)).mean()),
                            float(np.abs(probs - reference).max()),
                        )
                    agree = fidelity.get(engine) if engine != "torch-fp32" else None
                    stage_rate = len(texts) / result["seconds"]
                    add(
                        model,
                        engine,
                        w,
                        len(texts),
                        result,
                        base_rate,
                        label_agreement=round(agree[0], 4) if agree else None,
                        max_prob_diff=round(agree[1], 4) if agree else None,
                        device=device,
                        share_of_bare=round(stage_rate / bare_rate, 3) if bare_rate else None,
                        kind=kind,
                        phases=result["phases"],
                        load_s=result["phases"].get("load"),
                    )
    return rows
