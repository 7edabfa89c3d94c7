"""A first run analyses on the engines already checked; the rest are checked by one background
process per model, whose verdicts are whole files; a complete day keeps the engine it ran on."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from filelock import FileLock

from tweet_signals.flows.daily_signals import recorded_engine
from tweet_signals.model.config import AnalyzerConfig
from tweet_signals.model.engines import choice
from tweet_signals.model.engines.cascade import CASCADE
from tweet_signals.model.reference import resolve_model
from tweet_signals.stages import engine_check


@pytest.fixture
def own_model(tiny_roberta: Path, tmp_path: Path) -> AnalyzerConfig:
    """The tiny model copied, so its verdict cache (beside it) is this test's alone."""
    copy = tmp_path / "model"
    shutil.copytree(tiny_roberta, copy, ignore=shutil.ignore_patterns(".tweet-signals-*"))
    return AnalyzerConfig(resolve_model(str(copy)), device="cpu")


def record(config: AnalyzerConfig, engine: str, agreement: float, speed: float) -> None:
    verdict = {"label_agreement": agreement, "max_prob_diff": 0.01, "texts_per_s": speed, "n": 8}
    choice.write_json_atomic(choice.verdict_path(config, engine, "cpu"), verdict)


def test_deferring_runs_on_fp32_first_then_on_what_is_recorded(own_model: AnalyzerConfig) -> None:
    deferred: list[str] = []

    def defer(resolved: AnalyzerConfig, candidate: str) -> None:
        assert resolved.device == "cpu"
        deferred.append(candidate)

    def no_calibration() -> list[str]:
        raise AssertionError("a deferring run checks nothing itself")

    chosen = choice.resolve_engine(own_model, no_calibration, defer)
    candidates = [c for c in choice.engine_candidates("cpu") if c != "torch-fp32"]
    assert chosen.engine == "torch-fp32" and deferred == candidates
    assert choice.unchecked_engines(own_model) == candidates
    # Verdicts recorded since: the fastest passing one runs, the unrecorded rest is deferred again.
    record(own_model, "onnx-int8", 0.5, 900.0)  # fast but disagrees
    choice.write_json_atomic(own_model.model.cache_dir / "cascade-margin-cpu.json", {"margin": 0.3})
    record(own_model, CASCADE, 0.999, 300.0)
    deferred.clear()
    chosen = choice.resolve_engine(own_model, no_calibration, defer)
    assert (chosen.engine, chosen.cascade_margin) == (CASCADE, 0.3)
    assert deferred == candidates[2:]
    assert not list(own_model.model.cache_dir.glob(".*.tmp"))  # atomic writes leave no partial files


def test_one_checker_per_model_the_lock_decides(own_model: AnalyzerConfig, tmp_path: Path) -> None:
    cache = own_model.model.cache_dir
    cache.mkdir(parents=True)
    assert not engine_check.checking(own_model)
    with FileLock(str(engine_check.lock_path(own_model))):  # another checker holds it
        assert engine_check.checking(own_model)
        assert engine_check.check_in_background(own_model, ["onnx-int8"], tmp_path / "log") is None
        assert engine_check.check_candidates(own_model, ["onnx-int8"], None) == {}
    assert not engine_check.checking(own_model)
    assert engine_check.check_in_background(own_model, [], tmp_path / "log") is None  # nothing to check


def test_check_mode_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engine_check.CHECKS_ENV, " Inline ")
    assert engine_check.check_mode() == "inline"
    monkeypatch.delenv(engine_check.CHECKS_ENV)
    assert engine_check.check_mode() == "background"
    monkeypatch.setenv(engine_check.CHECKS_ENV, "sometimes")
    with pytest.raises(ValueError, match="background, inline or off"):
        engine_check.check_mode()


@pytest.mark.slow
def test_the_background_check_records_every_verdict_once(own_model: AnalyzerConfig, tmp_path: Path) -> None:
    """The real path: a low-priority process builds the ONNX exports, checks each candidate
    against fp32 and records the verdicts; a second start while it runs checks nothing twice;
    the next choice takes the fastest passing engine without checking anything."""
    log = tmp_path / "logs" / "engines.log"
    candidates = ["onnx-int8", CASCADE]
    first = engine_check.check_in_background(own_model, candidates, log, wait_for=0)
    assert first is not None
    second = engine_check.check_in_background(own_model, candidates, log, wait_for=0)
    assert first.wait(timeout=300) == 0
    assert second is None or second.wait(timeout=300) == 0
    text = log.read_text()
    assert [text.count(f"engine check of {c} ") for c in candidates] == [1, 1], text[-3000:]
    assert choice.unchecked_engines(own_model) == [c for c in choice.engine_candidates("cpu")[2:] if c != "torch-fp32"]
    verdicts = {c: choice.read_verdict(own_model, c, "cpu") for c in candidates}
    assert all(v is not None and v["n"] > 0 and "error" not in v for v in verdicts.values()), verdicts
    assert not engine_check.checking(own_model)  # the lock went with the process
    assert not list(own_model.model.cache_dir.glob(".*.tmp"))
    passing = {c: v["texts_per_s"] for c, v in verdicts.items() if v is not None and choice.passes(v)}
    expected = max(passing, key=passing.__getitem__) if passing else "torch-fp32"
    assert choice.resolve_engine(own_model, lambda: [], lambda c, e: None).engine == expected


def test_a_complete_day_keeps_the_engine_its_manifest_records() -> None:
    config = AnalyzerConfig(resolve_model("embedded"))
    model = {"id": config.model.name, "revision": config.model.revision}
    done = {"status": "complete", "model": model, "analyze": {"engine": "torch-fp32", "cascade_margin": None}}
    kept = recorded_engine(config, done, force=False)
    assert kept == replace(config, engine="torch-fp32")
    cascade = {**done, "analyze": {"engine": CASCADE, "cascade_margin": 0.4}}
    assert recorded_engine(config, cascade, force=False) == replace(config, engine=CASCADE, cascade_margin=0.4)
    # Choose again: forced, an explicit engine, another model, an unfinished day, an unknown record.
    assert recorded_engine(config, done, force=True) is None
    assert recorded_engine(replace(config, engine="onnx-int8"), done, force=False) is None
    assert recorded_engine(config, {**done, "model": {**model, "revision": "other"}}, force=False) is None
    assert recorded_engine(config, {**done, "status": "failed"}, force=False) is None
    assert recorded_engine(config, {**cascade, "analyze": {"engine": CASCADE}}, force=False) is None
    assert recorded_engine(config, {"status": "complete", "model": model}, force=False) is None
    assert json.dumps(done)  # what the manifest holds is plain JSON
