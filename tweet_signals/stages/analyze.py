"""Analyze: per-tweet scoring, the chunk plan, and the chunk unit of work mapped over workers.

``choose_engine`` settles ``engine=auto`` once per run; ``plan_chunks`` cuts the clean posts into
``ChunkDescriptor``s, all that crosses a process boundary (paths, a row range, the
configuration). ``analyze_chunk`` reads its rows, runs the process's cached model, scores,
writes its Parquet atomically and returns a small ``ChunkResult``; a chunk whose output already
exists for the same configuration and rows is reused.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from tweet_signals.hashing import config_digest
from tweet_signals.model import loader
from tweet_signals.model.base import LABELS, BatchedTextClassifier
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.engines.choice import resolve_engine
from tweet_signals.stages.text_features import engagement_weights, keyword_boosts
from tweet_signals.stages.tfidf import TfidfModel, load_tfidf
from tweet_signals.storage import current_parquet, location, write_json_atomic, write_parquet_atomic

ANALYZED_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "p_negative": pl.Float32(),
    "p_neutral": pl.Float32(),
    "p_positive": pl.Float32(),
    "label": pl.String(),
    "model_score": pl.Float64(),
    "keyword_boost": pl.Float64(),
    "score": pl.Float64(),
    "engagement_weight": pl.Float64(),
    "tfidf_relevance": pl.Float64(),
    "model_id": pl.String(),
}


@dataclass(frozen=True)
class ScoringConfig:
    keyword_boost_weight: float = 0.2
    include_engagement: bool = True


@dataclass(frozen=True)
class PostFeatures:
    """The analyzed columns that do not depend on the model, for a run of posts."""

    keyword_boost: np.ndarray
    engagement_weight: np.ndarray
    tfidf_relevance: np.ndarray

    @staticmethod
    def concat(parts: Sequence[PostFeatures]) -> PostFeatures:
        if not parts:
            return PostFeatures(np.zeros(0), np.zeros(0), np.zeros(0))
        return PostFeatures(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PostFeatures)))


def post_features(posts: pl.DataFrame, tfidf: TfidfModel, scoring: ScoringConfig) -> PostFeatures:
    """Keyword boost, engagement weight and TF-IDF market relevance of each post."""
    texts = posts["text"].to_list()
    boost = keyword_boosts(texts)
    if scoring.include_engagement:
        weights = engagement_weights(*(posts[c] for c in ("like_count", "retweet_count", "reply_count", "quote_count")))
    else:
        weights = np.ones(posts.height)
    relevance = tfidf.market_relevance(texts) if texts else np.zeros(0)
    return PostFeatures(boost, weights, np.asarray(relevance, dtype=np.float64))


def score_posts(
    posts: pl.DataFrame,
    probs: np.ndarray,
    model_id: str,
    tfidf: TfidfModel,
    scoring: ScoringConfig,
    features: PostFeatures | None = None,
) -> pl.DataFrame:
    """The analyzed rows for ``posts`` (same order) given the model's probabilities."""
    if features is None:
        features = post_features(posts, tfidf, scoring)
    model_score = probs[:, 2].astype(np.float64) - probs[:, 0].astype(np.float64)
    score = np.clip(model_score + scoring.keyword_boost_weight * features.keyword_boost, -1.0, 1.0)
    return pl.DataFrame(
        {
            "id": posts["id"],
            "p_negative": probs[:, 0],
            "p_neutral": probs[:, 1],
            "p_positive": probs[:, 2],
            "label": [LABELS[i] for i in probs.argmax(axis=1)] if len(probs) else [],
            "model_score": model_score,
            "keyword_boost": features.keyword_boost,
            "score": score,
            "engagement_weight": features.engagement_weight,
            "tfidf_relevance": features.tfidf_relevance,
            "model_id": [model_id] * posts.height,
        },
        schema=ANALYZED_SCHEMA,
    )


# On an accelerator a chunk is tokenised this many texts at a time, the next block on a helper
# thread while the device runs this one (the Rust tokenizer releases the GIL), so the device does
# not wait for the whole chunk's tokenisation before its first batch.
ENCODE_BLOCK = 8_192


def encoded_blocks(
    analyzer: BatchedTextClassifier, texts: Sequence[str], block: int, waits: list[float]
) -> Iterator[list[list[int]]]:
    """Token ids of ``texts``, a block at a time, the next block tokenised on a helper thread while
    the caller works on this one; ``waits`` receives the seconds the caller waited for each block."""
    with ThreadPoolExecutor(1, thread_name_prefix="tokenise") as helper:
        pending = helper.submit(analyzer.encode, texts[:block])
        for start in range(0, len(texts), block):
            t0 = time.perf_counter()
            ids = pending.result()
            waits.append(time.perf_counter() - t0)
            if start + block < len(texts):
                pending = helper.submit(analyzer.encode, texts[start + block : start + 2 * block])
            yield ids


def analyze_frame(
    posts: pl.DataFrame,
    analyzer: BatchedTextClassifier,
    tfidf: TfidfModel,
    scoring: ScoringConfig,
    phases: dict[str, float] | None = None,
    encode_block: int | None = None,
) -> pl.DataFrame:
    """Model probabilities plus the model-independent features, as analyzed rows.

    On an accelerator the features are computed in slices between batch launches: the model
    runs asynchronously, so the host's CPU work hides behind it instead of following it; and the
    texts are tokenised in blocks of ``encode_block`` (default ``ENCODE_BLOCK`` there, the whole
    chunk at once on a CPU, where the cores are busy either way), the next block while the device
    runs this one. ``phases`` (when given) receives the seconds spent encoding (waiting for it,
    when it overlaps the model), in the model and on features.
    """
    phases = phases if phases is not None else {}
    if not posts.height:
        return score_posts(posts, np.zeros((0, 3), np.float32), analyzer.model_id, tfidf, scoring)
    texts = posts["text"].to_list()
    block = encode_block if encode_block is not None else (ENCODE_BLOCK if analyzer.runs_asynchronously else 0)
    parts: list[PostFeatures] = []
    feature_seconds = 0.0
    # On an accelerator, one batch's rows of features per launch (a few ms of host work, less
    # than the batch's GPU time, so the queue never drains); on the CPU, one slice.
    step = max(64, analyzer.max_batch_size) if analyzer.runs_asynchronously else posts.height
    pending = iter(range(0, posts.height, step))

    def next_slice() -> bool:
        """Compute the next slice of features; False once every slice is done."""
        nonlocal feature_seconds
        start = next(pending, None)
        if start is None:
            return False
        t0 = time.perf_counter()
        parts.append(post_features(posts.slice(start, step), tfidf, scoring))
        feature_seconds += time.perf_counter() - t0
        return True

    between = next_slice if analyzer.runs_asynchronously else None
    started = time.perf_counter()
    if 0 < block < len(texts):
        waits: list[float] = []
        blocks = [analyzer.predict_proba_encoded(ids, between) for ids in encoded_blocks(analyzer, texts, block, waits)]
        probs = np.concatenate(blocks)
        encode_seconds = sum(waits)
    else:
        ids = analyzer.encode(texts)
        encode_seconds = time.perf_counter() - started
        probs = analyzer.predict_proba_encoded(ids, between)
    phases["encode"] = encode_seconds
    phases["model"] = time.perf_counter() - started - encode_seconds - feature_seconds
    while next_slice():  # what was not done between batches
        pass
    features = PostFeatures.concat(parts)
    phases["features"] = feature_seconds
    return score_posts(posts, probs, analyzer.model_id, tfidf, scoring, features)


@dataclass(frozen=True)
class ChunkDescriptor:
    run_date: str
    chunk: int
    clean_path: str
    start: int
    stop: int
    tfidf_dir: str
    tfidf_digest: str
    output_path: str
    config_key: str
    analyzer: AnalyzerConfig
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    # A local folder where the worker that takes the chunk says so (pid, memory so far), before
    # it computes: if the worker dies, the coordinator knows which chunk it held. "": no claims.
    claim_dir: str = ""
    force: bool = False  # recompute even when a complete output for the same config exists


def claim_path(claim_dir: str, chunk: int) -> Path:
    return Path(claim_dir) / f"chunk-{chunk:04d}.json"


def read_claim(claim_dir: str, chunk: int) -> dict[str, object] | None:
    try:
        return json.loads(claim_path(claim_dir, chunk).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ChunkResult:
    chunk: int
    rows: int
    status: str  # computed | reused
    seconds: float
    pid: int
    model_loads_in_process: int
    output_path: str
    peak_rss_mb: float = 0.0  # high-water mark of the worker process so far
    # Seconds per phase of a computed chunk: read, load (model and TF-IDF, cached after the
    # worker's first chunk), encode, model, features, write.
    phases: dict[str, float] = field(default_factory=dict)
    # Rows the int8 cascade re-scored with fp32 (``onnx-int8-verified``; None for other engines).
    rescored_rows: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def analyze_chunk(desc: ChunkDescriptor) -> ChunkResult:
    """Compute one chunk unless a complete output for the same config already exists (or ``force``)."""
    started = time.perf_counter()
    output = location(desc.output_path)
    # The row range is part of the identity: with another --chunk-size, chunk k covers other rows.
    identity = {"config_key": desc.config_key, "start": desc.start, "stop": desc.stop}
    if not desc.force and current_parquet(output, identity) is not None:
        return ChunkResult(
            desc.chunk,
            desc.stop - desc.start,
            "reused",
            0.0,
            os.getpid(),
            loader.LOADS_IN_PROCESS,
            desc.output_path,
            peak_rss_mb(),
        )
    if desc.claim_dir:
        claim = {"chunk": desc.chunk, "pid": os.getpid(), "peak_rss_mb": peak_rss_mb(), "rows": desc.stop - desc.start}
        write_json_atomic(claim, claim_path(desc.claim_dir, desc.chunk))
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = round(phases.get(name, 0.0) + now - clock, 4)
        clock = now

    posts = (
        pl.scan_parquet(desc.clean_path)
        .slice(desc.start, desc.stop - desc.start)
        .select("id", "text", "like_count", "retweet_count", "reply_count", "quote_count")
        .collect()
    )
    lap("read")
    analyzer = loader.load_analyzer(desc.analyzer)
    tfidf = load_tfidf(desc.tfidf_dir, desc.tfidf_digest)
    lap("load")
    inner: dict[str, float] = {}
    rescored_before = getattr(analyzer.logits_fn, "rescored", None)
    frame = analyze_frame(posts, analyzer, tfidf, desc.scoring, inner)
    rescored = None if rescored_before is None else analyzer.logits_fn.rescored - rescored_before  # type: ignore[attr-defined]
    phases.update({k: round(v, 4) for k, v in inner.items()})
    clock = time.perf_counter()
    metadata = {"config_key": desc.config_key, "rows": frame.height, "chunk": desc.chunk, "start": desc.start}
    write_parquet_atomic(frame, output, {**metadata, "stop": desc.stop})
    lap("write")
    return ChunkResult(
        desc.chunk,
        frame.height,
        "computed",
        round(time.perf_counter() - started, 3),
        os.getpid(),
        loader.LOADS_IN_PROCESS,
        desc.output_path,
        peak_rss_mb(),
        phases,
        rescored,
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it restarts at exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def calibration_texts(n: int = 1024) -> list[str]:
    """Market posts the engines are checked on (generated: the same texts on every machine).
    A thousand, so that the int8 cascade's margin, chosen on half of them, holds on the rest."""
    from tweet_signals.sources.synthetic import generate_posts

    return [r["text"] for r in generate_posts(date(2026, 1, 7), n, seed=99)]


def choose_engine(config: AnalyzerConfig, defer: Callable[[AnalyzerConfig, str], None] | None = None) -> AnalyzerConfig:
    """``config`` with ``engine=auto`` resolved to the fastest engine that passes the fidelity
    gate on the calibration posts (done once per run, so chunk keys name the engine that ran);
    ``defer`` takes the candidates that must be compiled first (see ``resolve_engine``)."""
    return resolve_engine(config, calibration_texts, defer)


def chunk_key(analyzer: AnalyzerConfig, scoring: ScoringConfig, clean_digest: str, tfidf_digest: str) -> str:
    """What an analyzed chunk depends on, hashed: model, revision, engine, scoring, inputs."""
    return config_digest({**analyzer.output_fields(), **asdict(scoring), "clean": clean_digest, "tfidf": tfidf_digest})


def row_ranges(n_rows: int, chunk_size: int) -> list[tuple[int, int]]:
    """Row ranges of fixed size (the last one shorter); none for an empty day."""
    return [(start, min(start + chunk_size, n_rows)) for start in range(0, n_rows, chunk_size)]


def plan_chunks(
    *,
    run_date: str,
    clean_path: str,
    n_rows: int,
    chunk_size: int,
    tfidf_dir: str,
    tfidf_digest: str,
    output_path: Callable[[int], str],
    config_key: str,
    analyzer: AnalyzerConfig,
    scoring: ScoringConfig,
    claim_dir: str = "",
    force: bool = False,
) -> list[ChunkDescriptor]:
    """The chunks of ``n_rows`` clean posts, ``chunk_size`` each; chunk i writes ``output_path(i)``
    (``force``: even where it already holds this configuration's output)."""
    return [
        ChunkDescriptor(
            run_date=run_date,
            chunk=i,
            clean_path=clean_path,
            start=start,
            stop=stop,
            tfidf_dir=tfidf_dir,
            tfidf_digest=tfidf_digest,
            output_path=output_path(i),
            config_key=config_key,
            analyzer=analyzer,
            scoring=scoring,
            claim_dir=claim_dir,
            force=force,
        )
        for i, (start, stop) in enumerate(row_ranges(n_rows, chunk_size))
    ]
