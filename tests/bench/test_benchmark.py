"""The benchmark's measurements on a tiny model, and the scale benchmark on a small day."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tweet_signals.bench.engines import _measure
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.loader import build_analyzer
from tweet_signals.model.reference import resolve_model

TEXTS = [f"nifty {'up ' * (i % 9)}today {i}" for i in range(120)]


@pytest.mark.slow
def test_bare_stage_and_loop_rows_measure_the_same_model(tiny_roberta: Path) -> None:
    model = str(tiny_roberta)
    bare = _measure("bare", model, TEXTS, "torch-fp32", 1, "cpu")
    stage = _measure("stage", model, TEXTS, "torch-fp32", 2, "cpu")
    loop = _measure("loop", model, TEXTS[:10], "", 1, "cpu")
    assert bare["seconds"] > 0 and stage["seconds"] > 0 and loop["seconds"] > 0
    analyzer = build_analyzer(AnalyzerConfig(resolve_model(model), engine="torch-fp32"))
    # The stage's probabilities are the analyzer's, in input order; the loop's agree one by one.
    np.testing.assert_allclose(stage["probs"], analyzer.predict_proba(TEXTS), atol=1e-5)
    np.testing.assert_allclose(loop["probs"], stage["probs"][:10], atol=1e-4)
    assert bare["batches"] == len(list(analyzer.padded_batches(analyzer.encode(TEXTS))))


@pytest.mark.slow
def test_scale_benchmark_reports_every_stage_for_a_small_day() -> None:
    from tweet_signals.bench.scale import STAGES, run_scale

    (row,) = run_scale([400], model="embedded", device="cpu", engine="torch-fp32", workers=1, chunk_size=150)
    # Every clean post went through analyze, in chunks of 150: the row describes one and the same day.
    assert row.posts == 400 and 300 < row.clean_posts <= 400
    assert row.chunks == -(-row.clean_posts // 150) and row.engine == "torch-fp32" and row.workers == 1
    # The rates are the counts over the times it reports (stage times rounded to 0.1 s each).
    assert abs(row.pipeline_s - sum(getattr(row, f"{stage}_s") for stage in STAGES)) <= 0.3
    assert row.posts_per_s == pytest.approx(400 / row.pipeline_s, rel=0.01)
    assert row.analyze_tweets_per_s == pytest.approx(row.clean_posts / row.analyze_s, rel=0.1)


@pytest.mark.slow
def test_warm_stage_loads_each_model_before_the_clock_and_reports_phases(tiny_roberta: Path) -> None:
    import polars as pl

    from tweet_signals.api import analyze_posts_with_stats

    posts = pl.DataFrame({"id": [str(i) for i in range(len(TEXTS))], "text": TEXTS})
    timings: dict[str, float] = {}
    out, chunks = analyze_posts_with_stats(
        posts,
        model=str(tiny_roberta),
        engine="torch-fp32",
        device="cpu",
        workers=2,
        chunk_size=30,
        timings=timings,
        warm_start=True,
    )
    cold, _ = analyze_posts_with_stats(
        posts, model=str(tiny_roberta), engine="torch-fp32", device="cpu", workers=2, chunk_size=30
    )
    assert out.equals(cold) and len(chunks) == 4
    # The start tasks loaded the model: no chunk loaded it again, in either worker.
    assert all(c.model_loads_in_process == 1 for c in chunks)
    assert {"startup_wait", "prepare", "analyze"} <= set(timings)
    assert all({"read", "load", "encode", "model", "features", "write"} == set(c.phases) for c in chunks)
    warm = _measure("stage-warm", str(tiny_roberta), TEXTS, "torch-fp32", 2, "cpu")
    assert warm["phases"]["startup_wait"] >= 0 and warm["phases"]["model"] > 0


def test_feature_rates_time_both_paths_on_the_same_posts() -> None:
    from tweet_signals.bench.features import feature_rates

    rows = feature_rates(TEXTS * 3, slice_rows=(64, 0), repeats=1)
    assert [r["slice_rows"] for r in rows] == [64, 360]
    half = 0.005  # every figure is rounded to two decimals: the ratio is known within these bounds
    for r in rows:  # the speed-up is the ratio of the two timings of the same posts
        python, vectorised = r["python_us_per_post"], r["vectorised_us_per_post"]
        low, high = (python - half) / (vectorised + half), (python + half) / max(vectorised - half, 1e-9)
        assert low - half <= r["speedup"] <= high + half


@pytest.mark.slow  # six fresh processes
def test_worker_start_rows_report_the_medians_of_their_runs() -> None:
    from tweet_signals.bench.start import worker_start

    row = worker_start("embedded", "torch-fp32", threads=1, repeats=2)
    assert len(row["cold_runs"]) == len(row["warm_runs"]) == 2
    assert row["cold_s"] == pytest.approx(sum(row["cold_runs"]) / 2, abs=0.011)
    assert row["warm_s"] == pytest.approx(sum(row["warm_runs"]) / 2, abs=0.011)
    assert row["cold_over_warm"] == pytest.approx(row["cold_s"] / row["warm_s"], rel=0.02)
    assert 0 < row["runtime_import_s"] < row["warm_s"]  # importing torch alone is the floor


@pytest.mark.slow  # three encoders, each trained a few steps
def test_train_step_rows_time_every_form_against_lora_on_the_same_batches() -> None:
    from tweet_signals.bench.train_step import FORMS, train_step_rates

    rows = train_step_rates(steps=2, batch_size=4, length=8, warmup=1)
    assert [r["form"] for r in rows] == list(FORMS)
    lora = rows[0]["ms_per_step"]
    assert rows[0]["time_vs_lora"] == 1.0
    for r in rows:
        assert r["ms_per_step"] > 0
        assert r["time_vs_lora"] == pytest.approx(r["ms_per_step"] / lora, rel=0.02)
        assert r["rows_per_s"] == pytest.approx(4 / (r["ms_per_step"] / 1000), rel=0.02)


@pytest.mark.slow  # the embedded model built twice
def test_model_rows_price_a_changed_text_preparation_against_the_first_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed model against a copy whose file says its texts are prepared the other way
    (emoji spelled or kept): same weights, so only the tokens per text may differ."""
    import json

    from safetensors.torch import load_file, save_file

    from tweet_signals.bench.models import model_rates
    from tweet_signals.model.embedded_files import ADAPTER_NAME, ADAPTER_PATH, read_adapter_metadata

    monkeypatch.setenv("TWEET_SIGNALS_CACHE", str(tmp_path / "cache"))
    meta = read_adapter_metadata(ADAPTER_PATH)
    other = "kept" if meta.get("symbols") == "spelled" else "spelled"
    copy = tmp_path / "other-preparation"
    copy.mkdir()
    save_file(
        load_file(str(ADAPTER_PATH)),
        str(copy / ADAPTER_NAME),
        metadata={"tweet_signals": json.dumps({**meta, "symbols": other})},
    )
    texts = [f"$TCS {'🚀' * (i % 3)} breakout {i} 📈" for i in range(40)]
    rows = model_rates(texts, ["embedded", str(copy)], engine="torch-fp32", repeats=2)
    assert [r["model"] for r in rows] == ["embedded", str(copy)]
    assert rows[0]["vs_baseline"] == 1.0
    spelled = rows[1] if other == "spelled" else rows[0]
    kept = rows[0] if spelled is rows[1] else rows[1]
    assert spelled["tokens_per_text"] > kept["tokens_per_text"]  # "rocket", "chart with upwards trend"
    for row in rows:
        assert len(row["runs"]) == 2 and row["tweets_per_s"] > 0
        assert row["vs_baseline"] == pytest.approx(row["tweets_per_s"] / rows[0]["tweets_per_s"], rel=0.01)
    with pytest.raises(ValueError, match="at least two"):
        model_rates(texts, ["embedded"])
