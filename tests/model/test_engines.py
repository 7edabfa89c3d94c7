"""Every engine agrees with the torch fp32 reference, and auto only picks engines that do."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.engines import choice
from tweet_signals.model.engines.build import ENGINES
from tweet_signals.model.engines.cascade import CASCADE, CascadeLogits, choose_margin, margin_path, top_two_margin
from tweet_signals.model.engines.choice import engine_candidates, resolve_engine
from tweet_signals.model.loader import build_analyzer
from tweet_signals.model.parts import local_tokenizer
from tweet_signals.model.reference import resolve_model
from tweet_signals.stages.analyze import calibration_texts, choose_engine

TEXTS = calibration_texts(96)


def cfg(model: str, **options: object) -> AnalyzerConfig:
    """An analyzer configuration of ``model`` resolved as the flow resolves it."""
    return AnalyzerConfig(resolve_model(model), **options)  # type: ignore[arg-type]


# Bounds per engine against fp32 on the trained embedded model (measured: bf16 0.9975 / 0.025,
# ONNX fp32 1.0 / <1e-4, ONNX int8 per-channel 0.97 / 0.34, torch int8 0.91 / 0.82 on 2,000 tweets).
EMBEDDED_BOUNDS = {
    "torch-bf16": (0.97, 0.1),
    "onnx-fp32": (1.0, 1e-4),
    "onnx-int8": (0.9, 0.6),
    "torch-int8": (0.8, 1.0),
    "torch-bf16-compiled": (0.97, 0.1),
}


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return build_analyzer(cfg("embedded", engine="torch-fp32")).predict_proba(TEXTS)


@pytest.mark.slow
@pytest.mark.parametrize("engine", sorted(EMBEDDED_BOUNDS))
def test_engine_fidelity_on_embedded_model(engine: str, reference: np.ndarray) -> None:
    probs = build_analyzer(cfg("embedded", engine=engine)).predict_proba(TEXTS)
    agreement = float((probs.argmax(1) == reference.argmax(1)).mean())
    min_agreement, max_diff = EMBEDDED_BOUNDS[engine]
    assert agreement >= min_agreement
    assert float(np.abs(probs - reference).max()) <= max_diff
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_runs_a_hugging_face_model(engine: str, tiny_roberta: Path) -> None:
    reference = build_analyzer(cfg(str(tiny_roberta), engine="torch-fp32")).predict_proba(TEXTS)
    config = resolve_engine(cfg(str(tiny_roberta), engine=engine), lambda: TEXTS)
    probs = build_analyzer(config).predict_proba(TEXTS)
    tolerance = 1e-4 if engine == "onnx-fp32" else 0.1
    np.testing.assert_allclose(probs, reference, atol=tolerance)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor compiles C++: no C++ compiler here")
def test_the_compiled_engine_is_built_once_and_runs_fused_kernels(
    tiny_roberta: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first build compiles the model into a library in the model's cache; every later worker
    loads that library (no second compile) and agrees with fp32 within bf16's error."""
    from tweet_signals.model.engines import compiled

    config = cfg(str(tiny_roberta), engine=compiled.COMPILED, device="cpu")
    first = build_analyzer(config)
    assert isinstance(first.logits_fn, compiled.CompiledLogits)
    library = first.logits_fn.library
    assert library.parent == config.model.cache_dir and library.suffix == ".so"
    built_at = library.stat().st_mtime_ns

    def no_second_compile(*args: object) -> Path:
        raise AssertionError("compiled again")

    monkeypatch.setattr(compiled, "_build", no_second_compile)
    again = build_analyzer(config)
    assert isinstance(again.logits_fn, compiled.CompiledLogits) and library.stat().st_mtime_ns == built_at
    reference = build_analyzer(replace(config, engine="torch-fp32")).predict_proba(TEXTS)
    probs = again.predict_proba(TEXTS)
    assert float((probs.argmax(1) == reference.argmax(1)).mean()) >= 0.97
    np.testing.assert_allclose(probs, reference, atol=0.05)
    # Batch sizes and lengths other than the export's example, down to one text of two tokens.
    fp32 = build_analyzer(replace(config, engine="torch-fp32"))
    for texts in (TEXTS[:1], [""], TEXTS[:33]):
        np.testing.assert_allclose(again.predict_proba(texts), fp32.predict_proba(texts), atol=0.05)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor compiles C++: no C++ compiler here")
def test_a_fresh_worker_runs_the_compiled_library_it_did_not_build(reference: np.ndarray) -> None:
    """Workers load a library another process compiled. Kernels that use AMX tiles fault in a
    process that never asked the OS for AMX state (compiling asks; loading alone does not)."""
    import subprocess
    import sys

    from tweet_signals.model.engines.compiled import COMPILED, CompiledLogits

    config = cfg("embedded", engine=COMPILED, device="cpu")
    built_here = build_analyzer(config)
    assert isinstance(built_here.logits_fn, CompiledLogits)
    script = (
        "import json, sys; from tweet_signals.model.config import AnalyzerConfig; "
        "from tweet_signals.model.loader import build_analyzer; "
        "from tweet_signals.model.reference import resolve_model; "
        "from tweet_signals.stages.analyze import calibration_texts; "
        f"a = build_analyzer(AnalyzerConfig(resolve_model('embedded'), engine={COMPILED!r}, device='cpu')); "
        "print(type(a.logits_fn).__name__, 'torch._inductor' in sys.modules); "
        "print(json.dumps(a.predict_proba(calibration_texts(96)).tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    kind, probs = out.stdout.strip().splitlines()[-2:]
    assert kind == "CompiledLogits False"  # loaded directly: no compiler stack imported
    np.testing.assert_allclose(np.array(json.loads(probs)), built_here.predict_proba(TEXTS), atol=1e-5)
    assert float((np.array(json.loads(probs)).argmax(1) == reference.argmax(1)).mean()) >= 0.97


@pytest.mark.slow
def test_a_failed_compile_runs_eager_bf16_and_fails_the_fidelity_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where Inductor cannot build (no compiler, an unsupported operator) an explicit request runs
    eager bf16 with a warning, later workers do not try again, and auto never takes the engine."""
    from tweet_signals.model.engines import compiled
    from tweet_signals.model.engines.torch_engine import TorchLogits

    monkeypatch.setenv("TWEET_SIGNALS_CACHE", str(tmp_path / "cache"))
    attempts: list[int] = []

    def broken(*args: object) -> Path:
        attempts.append(1)
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(compiled, "_build", broken)
    config = cfg("embedded", engine=compiled.COMPILED, device="cpu")
    target = config.model.cache_dir
    killed_build = target / "tweet-signals-aoti-killed"  # what a build killed midway leaves
    killed_build.mkdir(parents=True)
    partial = target / f".{compiled.library_path(target, config.max_length).name}.999.tmp"
    partial.write_bytes(b"half a library")
    for _ in range(2):
        analyzer = build_analyzer(config)
        assert isinstance(analyzer.logits_fn, TorchLogits)
    assert attempts == [1]  # the failure is recorded beside the library's place
    assert not killed_build.exists() and not partial.exists()  # cleared before the build
    verdict = choice.check_engine(replace(config, engine="auto"), compiled.COMPILED, TEXTS[:8])
    assert "no C++ compiler" in verdict["error"] and not choice.passes(verdict)


def test_onnx_export_is_cached_next_to_a_local_model(tiny_roberta: Path) -> None:
    build_analyzer(cfg(str(tiny_roberta), engine="onnx-int8"))
    cached = sorted(p.name for p in (tiny_roberta / ".tweet-signals-onnx").rglob("*.onnx"))
    assert any(n.startswith("model-fp32-") for n in cached) and any(n.startswith("model-int8-") for n in cached)


@pytest.mark.slow
def test_auto_picks_only_an_engine_that_agrees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWEET_SIGNALS_CACHE", str(tmp_path))
    chosen = choose_engine(cfg("embedded", device="cpu")).engine
    assert chosen in engine_candidates("cpu")
    verdicts = {p.name: json.loads(p.read_text()) for p in tmp_path.rglob("fidelity-*.json")}
    assert len(verdicts) == len(engine_candidates("cpu")) - 1, "the first auto run records every check"
    passing = {name: v["texts_per_s"] for name, v in verdicts.items() if choice.passes(v)}
    if passing:  # the fastest engine that agrees wins
        assert f"fidelity-{chosen}-cpu.json" == max(passing, key=passing.__getitem__)
    else:
        assert chosen == "torch-fp32"
    # A recorded failing verdict keeps an engine out of auto.
    for path in tmp_path.rglob("fidelity-*.json"):
        path.write_text(json.dumps({"label_agreement": 0.5, "max_prob_diff": 0.9, "n": 1}))
    assert choose_engine(cfg("embedded", device="cpu")).engine == "torch-fp32"


@pytest.mark.slow
def test_features_computed_between_asynchronous_batches_equal_features_computed_after(tiny_roberta: Path) -> None:
    """On a GPU the host computes features while batches run and tokenises the next block while
    this one runs; the rows must not change."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from tweet_signals.stages.analyze import ScoringConfig, analyze_frame, encoded_blocks
    from tweet_signals.stages.tfidf import fit_tfidf_model

    texts = [f"$RELIANCE {'breakout ' * (i % 5)}{'crash ' * (i % 3)}post {i} #nifty" for i in range(300)]
    posts = pl.DataFrame(
        {
            "id": [str(i) for i in range(300)],
            "text": texts,
            **{c: list(range(300)) for c in ("like_count", "retweet_count", "reply_count", "quote_count")},
        }
    )
    tfidf, _ = fit_tfidf_model(texts)
    analyzer = build_analyzer(cfg(str(tiny_roberta), engine="torch-fp32", max_batch_size=8))
    after = analyze_frame(posts, analyzer, tfidf, ScoringConfig())
    analyzer.logits_fn.asynchronous = True  # type: ignore[attr-defined]  # as a CUDA TorchLogits says
    calls: list[int] = []
    assert analyzer.runs_asynchronously
    probs = analyzer.predict_proba_encoded(analyzer.encode(texts), between_batches=lambda: calls.append(1))
    np.testing.assert_allclose(probs, after.select("p_negative", "p_neutral", "p_positive").to_numpy(), atol=1e-6)
    assert len(calls) == len(list(analyzer.padded_batches(analyzer.encode(texts))))  # one call per batch
    phases: dict[str, float] = {}
    between = analyze_frame(posts, analyzer, tfidf, ScoringConfig(), phases)
    assert between.equals(after)
    assert set(phases) == {"encode", "model", "features"} and phases["features"] > 0
    # Tokenised in blocks, the next on a helper thread while this one runs: the same ids in the
    # same order, and the same rows, on the asynchronous path and the synchronous one alike.
    waits: list[float] = []
    blocks = list(encoded_blocks(analyzer, texts, 64, waits))
    assert [len(b) for b in blocks] == [64, 64, 64, 64, 44] and len(waits) == 5
    assert [ids for b in blocks for ids in b] == analyzer.encode(texts)
    # (Batches form within a block, so padding widths differ: equal up to float rounding.)
    blockwise = analyze_frame(posts, analyzer, tfidf, ScoringConfig(), encode_block=64)
    assert_frame_equal(blockwise, after, check_exact=False, abs_tol=1e-5)
    analyzer.logits_fn.asynchronous = False  # type: ignore[attr-defined]
    blockwise = analyze_frame(posts, analyzer, tfidf, ScoringConfig(), encode_block=50)
    assert_frame_equal(blockwise, after, check_exact=False, abs_tol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny", "embedded"])
def test_onnx_workers_tokenise_like_transformers_without_importing_torch(model: str, tiny_roberta: Path) -> None:
    """ONNX workers read tokenizer.json directly (transformers' tokenizers import torch): the
    ids and the pad id must be the ones transformers gives, and torch must stay out."""
    import subprocess
    import sys

    from tweet_signals.model.embedded_files import base_model_dir

    directory = tiny_roberta if model == "tiny" else base_model_dir()
    direct, direct_pad = local_tokenizer(directory, direct=True)
    auto, auto_pad = local_tokenizer(directory, direct=False)
    assert type(direct).__module__.startswith("tokenizers") and type(auto).__module__.startswith("transformers")
    assert direct_pad == auto_pad
    texts = [*TEXTS, "", "@user café ₹2,400 🚀🚀 $TCS #Nifty50 " * 30]
    name = str(tiny_roberta) if model == "tiny" else "embedded"
    via_direct = build_analyzer(cfg(name, engine="onnx-fp32"))
    assert type(via_direct.tokenizer).__module__.startswith("tokenizers")
    via_auto = build_analyzer(cfg(name, engine="torch-fp32"))
    assert via_direct.encode(texts) == via_auto.encode(texts)
    np.testing.assert_allclose(via_direct.predict_proba(texts), via_auto.predict_proba(texts), atol=1e-4)
    # A fresh worker process with the export cached: the analysis module and the engine, no torch.
    script = (
        "import sys, tweet_signals.stages.analyze as a; from tweet_signals.model.config import AnalyzerConfig; "
        "from tweet_signals.model.loader import build_analyzer; "
        "from tweet_signals.model.reference import resolve_model; "
        f"build_analyzer(AnalyzerConfig(resolve_model({name!r}), engine='onnx-int8', device='auto'))"
        ".predict_proba(['nifty up']); print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_auto_picks_the_fastest_passing_engine_from_recorded_verdicts(tiny_roberta: Path) -> None:
    config = cfg(str(tiny_roberta), device="cpu")
    cache = config.model.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    recorded = {  # (agreement, max prob diff, speed): int8 fastest but wrong, the cascade next
        "onnx-int8": (0.97, 0.3, 900.0),
        CASCADE: (0.998, 0.04, 700.0),
        "torch-bf16-compiled": (0.996, 0.03, 600.0),
        "torch-bf16": (0.999, 0.02, 500.0),
    }
    for engine in engine_candidates("cpu")[:-1]:
        agreement, diff, speed = recorded[engine]
        verdict = {"label_agreement": agreement, "max_prob_diff": diff, "texts_per_s": speed, "n": 96}
        (cache / f"fidelity-{engine}-cpu.json").write_text(json.dumps(verdict))
    # The cascade's margin is calibrated once too: with it recorded, nothing is measured again.
    margin_path(cache, "cpu").write_text(json.dumps({"margin": 0.25}))
    chosen = resolve_engine(config, lambda: pytest.fail("verdicts are cached"))
    assert chosen.engine == CASCADE and chosen.cascade_margin == 0.25


def test_choose_margin_meets_both_targets_with_the_fewest_rows_rescored() -> None:
    rng = np.random.default_rng(0)
    exact = rng.dirichlet([1, 1, 1], 1000)
    fast = exact.copy()
    # Ten rows where int8 has no idea (margin 0) and is often wrong; the rest exact.
    unsure = rng.choice(1000, 10, replace=False)
    fast[unsure] = 1 / 3
    assert (fast[unsure].argmax(1) != exact[unsure].argmax(1)).sum() >= 5
    chosen = choose_margin(fast, exact)
    assert chosen["label_agreement"] == 1.0 and chosen["max_prob_diff"] == 0.0
    assert chosen["rescored_share"] == 0.01  # just the ten unsure rows
    assert 0 < chosen["margin"] <= np.sort(top_two_margin(exact))[10]
    far = fast.copy()
    far[:, 0] = np.clip(far[:, 0] + 0.2, 0, 1)  # every row off by more than 0.05: all re-scored
    assert choose_margin(far, exact)["rescored_share"] == 1.0


def test_cascade_rescores_only_unsure_rows_with_their_own_width() -> None:
    calls: list[tuple[int, int]] = []
    fast_logits = np.array([[3.0, 0.0, 0.0], [0.1, 0.0, 0.05], [0.0, 0.0, 4.0]])

    def fast(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return fast_logits

    def exact(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(ids.shape)
        return np.array([[-5.0, 5.0, 0.0]] * len(ids))

    cascade = CascadeLogits(fast, exact, margin=0.2)
    ids = np.array([[5, 6, 7, 8], [5, 6, 0, 0], [5, 6, 7, 0]])
    mask = (ids > 0).astype(np.int64)
    out = cascade(ids, mask)
    assert calls == [(1, 2)]  # the one unsure row, trimmed to its length
    assert out[1].tolist() == [-5.0, 5.0, 0.0] and out[0].tolist() == [3.0, 0.0, 0.0]
    assert (cascade.rows, cascade.rescored) == (3, 1)


def test_cascade_on_a_model_agrees_with_fp32_where_it_was_calibrated(tiny_roberta: Path) -> None:
    config = cfg(str(tiny_roberta), engine=CASCADE, device="cpu")
    chosen = choice.calibrate_cascade(config, TEXTS)
    cache = config.model.cache_dir
    assert json.loads((cache / "cascade-margin-cpu.json").read_text())["margin"] == chosen["margin"]
    analyzer = build_analyzer(config)
    probs = analyzer.predict_proba(TEXTS)
    reference = build_analyzer(cfg(str(tiny_roberta), engine="torch-fp32")).predict_proba(TEXTS)
    assert float((probs.argmax(1) == reference.argmax(1)).mean()) >= 0.995
    assert float(np.abs(probs - reference).max()) <= 0.05 + 1e-4  # ONNX fp32 vs torch fp32: ~1e-6
    cascade = analyzer.logits_fn
    assert isinstance(cascade, CascadeLogits) and cascade.rows == len(TEXTS)
    assert cascade.rescored == pytest.approx(chosen["rescored_share"] * len(TEXTS), abs=1)
    resolved = resolve_engine(config, lambda: pytest.fail("calibrated already"))
    assert resolved.cascade_margin == chosen["margin"]
    (cache / "cascade-margin-cpu.json").unlink()  # a worker elsewhere: the margin travels in the config
    assert isinstance(build_analyzer(resolved).logits_fn, CascadeLogits)
    with pytest.raises(ValueError, match="no calibrated margin"):
        build_analyzer(config)
    # A lost margin file is calibrated again when the run settles its engine.
    again = resolve_engine(config, lambda: TEXTS)
    assert again.cascade_margin == chosen["margin"] and (cache / "cascade-margin-cpu.json").is_file()


def test_every_engine_is_a_choice_of_the_flow_parameters() -> None:
    from typing import get_args

    from tweet_signals.params import SignalsParams

    choices = get_args(SignalsParams.model_fields["engine"].annotation)
    assert set(choices) == {"auto", *ENGINES}
