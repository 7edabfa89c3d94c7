"""The benchmark's measurements on a tiny model, and the scale benchmark on a small day."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tweet_signals.analyzers.loader import AnalyzerConfig, build_analyzer
from tweet_signals.benchmark import _measure

TEXTS = [f"nifty {'up ' * (i % 9)}today {i}" for i in range(120)]


def test_bare_stage_and_loop_rows_measure_the_same_model(tiny_roberta: Path) -> None:
    model = str(tiny_roberta)
    bare = _measure("bare", model, TEXTS, "torch-fp32", 1, "cpu")
    stage = _measure("stage", model, TEXTS, "torch-fp32", 2, "cpu")
    loop = _measure("loop", model, TEXTS[:10], "", 1, "cpu")
    assert bare["seconds"] > 0 and stage["seconds"] > 0 and loop["seconds"] > 0
    analyzer = build_analyzer(AnalyzerConfig(model=model, engine="torch-fp32"))
    # The stage's probabilities are the analyzer's, in input order; the loop's agree one by one.
    np.testing.assert_allclose(stage["probs"], analyzer.predict_proba(TEXTS), atol=1e-5)
    np.testing.assert_allclose(loop["probs"], stage["probs"][:10], atol=1e-4)
    assert bare["batches"] == len(list(analyzer.padded_batches(analyzer.encode(TEXTS))))


def test_scale_benchmark_reports_every_stage_for_a_small_day() -> None:
    from tweet_signals.scale import STAGES, run_scale

    (row,) = run_scale([400], model="embedded", device="cpu", engine="torch-fp32", workers=1, chunk_size=150)
    assert row.posts == 400 and 300 < row.clean_posts <= 400 and row.chunks == 3
    assert all(getattr(row, f"{stage}_s") >= 0 for stage in STAGES)
    assert row.pipeline_s >= row.analyze_s > 0 and row.posts_per_s > 0
    assert row.coordinator_peak_rss_mb > 100 and row.engine == "torch-fp32"
