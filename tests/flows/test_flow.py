"""The daily flow end to end under one Prefect test server, with real process pools."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import KIRTI_COLUMNS, KIRTI_CSV, X_SAMPLES

from tweet_signals.flows.daily_signals import daily_signals
from tweet_signals.params import SignalsParams
from tweet_signals.storage import Storage, read_json

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def _run(**fields: Any) -> tuple[Any, dict[str, Any] | None]:
    params = SignalsParams(**fields)
    state = daily_signals(params, return_state=True)
    manifest = read_json(Storage.at(params.data_root).manifest(params.run_date))  # type: ignore[arg-type]
    return state, manifest


def _analyzed(root: Path, day: date, key: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted(Storage(root).analyzed_dir(day, key).glob("chunk-*.parquet"))])


def test_indian_csv_with_two_workers_then_rerun_computes_nothing(tmp_path: Path, tiny_roberta: Path) -> None:
    day = date(2026, 1, 7)
    fields = dict(
        run_date=day,
        source="file",
        input=str(KIRTI_CSV),
        columns=KIRTI_COLUMNS,
        model=str(tiny_roberta),
        workers=2,
        chunk_size=50,
        data_root=str(tmp_path),
    )
    state, m = _run(**fields)
    assert state.is_completed(), state.message
    assert m is not None and m["status"] == "complete"
    storage = Storage(tmp_path)
    raw = pl.read_parquet(storage.raw(day))
    clean = pl.read_parquet(storage.clean(day))
    analyzed = _analyzed(tmp_path, day, m["analyze"]["config_key"])
    signals = pl.read_parquet(storage.signals(day))
    # Every record read is in the window, for another session, or quarantined.
    c = m["collect"]
    assert c["records_in"] == 382 == c["posts"] + c["out_of_window"] + c["quarantined"]
    assert raw.height == c["posts"] > 0
    assert clean.height == m["dedupe"]["posts_out"] < raw.height  # copy-paste spam collapsed
    assert analyzed["id"].to_list() == clean["id"].to_list()
    assert signals.height == 3 and signals["symbol"].to_list() == ["NIFTY", "SENSEX", "BANKNIFTY"]
    assert signals["n_posts"].sum() >= clean.height * 0.5
    assert (storage.tfidf_dir(day) / "vocabulary.parquet").exists()

    # The model loads once per worker process, however many chunks that process gets.
    chunks = m["chunks"]
    assert m["analyze"]["chunks"] == len(chunks) >= 4
    by_pid: dict[int, list[int]] = {}
    for chunk in chunks:
        by_pid.setdefault(chunk["pid"], []).append(chunk["model_loads_in_process"])
    # Both workers started (and loaded the model) while collect and dedupe ran.
    assert len(m["analyze"]["worker_pids"]) == 2 and set(by_pid) <= set(m["analyze"]["worker_pids"])
    assert all(loads == [1] * len(loads) for loads in by_pid.values())
    assert max(len(v) for v in by_pid.values()) >= 2
    # Each chunk says where its time went; only a worker's first chunk loads the model.
    assert all(set(c["phases"]) == {"read", "load", "encode", "model", "features", "write"} for c in chunks)

    state, again = _run(**fields)
    assert state.is_completed()
    assert again is not None
    assert again["analyze"]["computed"] == 0 and again["analyze"]["reused"] == len(chunks)
    assert again["analyze"]["worker_pids"] == []  # a completed day starts no workers
    assert again["collect"]["status"] == "reused"
    assert again["dedupe"]["status"] == again["tfidf"]["status"] == again["signals"]["status"] == "reused"

    # --force recomputes every stage and chunk of the same configuration, to the same values.
    state, forced = _run(**fields, force=True)
    assert state.is_completed() and forced is not None
    assert forced["analyze"]["computed"] == len(chunks) and forced["analyze"]["reused"] == 0
    assert len(forced["analyze"]["worker_pids"]) == 2
    assert forced["collect"]["status"] != "reused" and forced["signals"]["status"] != "reused"
    assert _analyzed(tmp_path, day, forced["analyze"]["config_key"]).equals(analyzed)


def test_one_and_two_workers_give_identical_tables(tmp_path: Path, tiny_roberta: Path) -> None:
    day = date(2026, 1, 8)
    tables = []
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        state, m = _run(
            run_date=day,
            source="synthetic",
            synthetic_posts=600,
            model=str(tiny_roberta),
            workers=workers,
            chunk_size=100,
            data_root=str(root),
        )
        assert state.is_completed(), state.message
        tables.append(_analyzed(root, day, m["analyze"]["config_key"]))  # type: ignore[index]
    assert tables[0].height > 300
    assert tables[0].equals(tables[1])


def test_x_api_pages_run(tmp_path: Path, tiny_roberta: Path) -> None:
    state, m = _run(
        run_date=date(2021, 9, 22),
        exchange="NYSE",
        source="file",
        input=str(X_SAMPLES / "brexit.jsonl"),
        symbols=["BREXIT"],
        model=str(tiny_roberta),
        workers=1,
        chunk_size=50,
        data_root=str(tmp_path),
    )
    assert state.is_completed(), state.message
    assert m is not None
    assert m["collect"]["posts"] == 100
    assert m["dedupe"]["retweets"] > 0
    signals = pl.read_parquet(Storage(tmp_path).signals(date(2021, 9, 22)))
    assert signals["n_posts"][0] > 0


def test_unavailable_model_fails_before_writing_anything(tmp_path: Path) -> None:
    state, m = _run(
        run_date=date(2026, 1, 7),
        source="synthetic",
        synthetic_posts=100,
        model="cardiffnlp/twitter-roberta-base-sentiment-latest",
        data_root=str(tmp_path),
    )
    assert state.is_failed()
    assert "--model embedded" in str(state.result(raise_on_failure=False))
    assert m is None and not any(tmp_path.iterdir())


def test_failed_chunk_fails_the_run_and_rerun_recomputes_only_it(tmp_path: Path, tiny_roberta: Path) -> None:
    day = date(2026, 1, 9)
    fields = dict(
        run_date=day,
        source="synthetic",
        synthetic_posts=500,
        model=str(tiny_roberta),
        workers=1,
        chunk_size=100,
        chunk_retries=0,
        data_root=str(tmp_path),
    )
    state, m = _run(**fields)
    assert state.is_completed() and m is not None
    n_chunks = m["analyze"]["chunks"]
    # A real fault: chunk 2's output path is taken by a directory, so its write fails.
    blocked = Storage(tmp_path).analyzed_chunk(day, m["analyze"]["config_key"], 2)
    blocked.unlink()
    blocked.mkdir()
    state, m = _run(**fields)
    assert state.is_failed() and "[2]" in (state.message or "")
    assert m is not None and m["status"] == "failed" and m["analyze"]["failed"] == [2]
    assert m["analyze"]["reused"] == n_chunks - 1
    shutil.rmtree(blocked)
    state, m = _run(**fields)
    assert state.is_completed() and m is not None
    assert m["analyze"]["computed"] == 1 and m["analyze"]["reused"] == n_chunks - 1
    assert m["chunks"][2]["status"] == "computed"


def test_non_session_date_is_skipped(tmp_path: Path) -> None:
    state, m = _run(run_date=date(2026, 1, 26), source="synthetic", model="embedded", data_root=str(tmp_path))
    assert state.is_completed() and "not a trading session" in (state.message or "")
    assert m is None


def test_backfill_continues_past_a_failed_date_and_skips_complete_ones(tmp_path: Path, tiny_roberta: Path) -> None:
    import json

    from tweet_signals.flows.backfill import backfill_signals
    from tweet_signals.sources.synthetic import generate_posts

    posts = tmp_path / "posts.jsonl"
    with posts.open("w") as fh:
        for day in (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 8)):  # nothing for 01-07
            for record in generate_posts(day, 150):
                fh.write(json.dumps(record) + "\n")
    params = SignalsParams(
        source="file",
        input=str(posts),
        model=str(tiny_roberta),
        workers=1,
        chunk_size=100,
        data_root=str(tmp_path / "out"),
    )
    state = backfill_signals(date(2026, 1, 3), date(2026, 1, 8), params, return_state=True)
    assert state.is_failed() and "2026-01-07" in (state.message or "")
    storage = Storage(tmp_path / "out")
    for day, status in ((5, "complete"), (6, "complete"), (7, "failed"), (8, "complete")):
        manifest = read_json(storage.manifest(date(2026, 1, day)))
        assert manifest is not None and manifest["status"] == status
    assert "No usable posts" in read_json(storage.manifest(date(2026, 1, 7)))["error"]  # type: ignore[index]

    state = backfill_signals(date(2026, 1, 3), date(2026, 1, 8), params, return_state=True)
    assert state.is_failed()
    # The failed state carries the report: complete dates were skipped, not recomputed.
    report = state.result(raise_on_failure=False)
    assert report["skipped"] == ["2026-01-05", "2026-01-06", "2026-01-08"]
    assert list(report["failed"]) == ["2026-01-07"]


def test_hostile_file_runs_with_quarantine_and_counts(tmp_path: Path, tiny_roberta: Path) -> None:
    import json

    good = [{"id": str(i), "created_at": f"2026-01-07T0{i % 9}:00:00Z", "text": f"#nifty rally {i}"} for i in range(60)]
    lines = [json.dumps(r) for r in good] + [
        "{broken json",
        json.dumps({"id": "x1", "created_at": "2026-01-07 05:00:00", "text": "naive time"}),
        json.dumps({"id": "x2", "created_at": "2026-01-07T05:00:00Z", "text": "   "}),
        json.dumps({"id": "x3", "created_at": "2026-01-07T05:00:00Z", "text": "#sensex " + "y" * 100_000}),
        json.dumps({"id": "x4", "created_at": "2026-01-09T05:00:00Z", "text": "a later session"}),
        json.dumps({"id": "0", "created_at": "2026-01-07T05:30:00Z", "text": "same id, other text"}),
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(
        "\n".join(lines).encode() + b"\n" + b'{"id": "x5", "created_at": "2026-01-07T05:00:00Z", '
        b'"text": "bad \xff byte #nifty"}\n'
    )
    state, m = _run(
        run_date=date(2026, 1, 7),
        source="file",
        input=str(path),
        model=str(tiny_roberta),
        workers=1,
        chunk_size=50,
        data_root=str(tmp_path / "out"),
    )
    assert state.is_completed(), state.message
    assert m is not None
    c = m["collect"]
    assert c["records_in"] == 67 == c["posts"] + c["out_of_window"] + c["quarantined"]
    assert (c["quarantined"], c["out_of_window"]) == (3, 1)
    assert c["repairs"] == {"R4_text_truncated": 1, "R1_invalid_utf8_replaced": 1}
    quarantine = pl.read_parquet(Storage(tmp_path / "out").quarantine(date(2026, 1, 7)))
    assert sorted(quarantine["reason"].to_list()) == ["empty_text", "malformed_json", "naive_timestamp"]
    assert m["dedupe"]["duplicate_ids_conflicting"] == 1


def test_another_chunk_size_never_reuses_a_chunk_of_other_rows(tmp_path: Path, tiny_roberta: Path) -> None:
    day = date(2026, 1, 8)
    fields: dict[str, Any] = dict(
        run_date=day, source="synthetic", synthetic_posts=330, model=str(tiny_roberta), workers=1
    )
    state, first = _run(**fields, chunk_size=80, data_root=str(tmp_path))
    assert state.is_completed() and first is not None
    n = first["dedupe"]["posts_out"]
    last, rest = (n - 1) // 80, n - 80 * ((n - 1) // 80)
    assert 50 <= rest < 80 and last >= 1, f"pick another size: {n} clean posts"
    # With chunks of `rest` rows, chunk `last` has as many rows as before but covers other rows.
    state, second = _run(**fields, chunk_size=rest, data_root=str(tmp_path))
    assert state.is_completed() and second is not None
    assert second["analyze"]["reused"] == 0
    clean_ids = pl.read_parquet(Storage(tmp_path).clean(day))["id"].to_list()
    assert _analyzed(tmp_path, day, second["analyze"]["config_key"])["id"].to_list() == clean_ids


def test_a_complete_day_keeps_its_engine_when_a_faster_one_passed_since(tmp_path: Path, tiny_roberta: Path) -> None:
    """Chunks are keyed by engine: a complete day rerun after the engine choice changed reuses
    them under the engine its manifest records; a forced run, and a new day, take the new choice."""
    from tweet_signals.model.config import AnalyzerConfig
    from tweet_signals.model.engines import choice
    from tweet_signals.model.reference import resolve_model

    model = tmp_path / "model"  # a copy: its engine verdicts (kept beside it) are this test's own
    shutil.copytree(tiny_roberta, model, ignore=shutil.ignore_patterns(".tweet-signals-*"))
    fields: dict[str, Any] = dict(
        run_date=date(2026, 1, 7),
        source="synthetic",
        synthetic_posts=300,
        model=str(model),
        workers=1,
        chunk_size=100,
        data_root=str(tmp_path / "data"),
    )
    state, first = _run(**fields)
    assert state.is_completed() and first is not None
    assert first["analyze"]["engine"] == "torch-fp32"  # nothing checked yet here: the reference
    # A faster engine has passed its check since.
    config = AnalyzerConfig(resolve_model(str(model)), device="cpu")
    passed = {"label_agreement": 1.0, "max_prob_diff": 0.0, "texts_per_s": 1e6, "n": 8}
    choice.write_json_atomic(choice.verdict_path(config, "onnx-int8", "cpu"), passed)
    state, again = _run(**fields)
    assert state.is_completed() and again is not None
    assert again["analyze"]["engine"] == "torch-fp32"
    assert again["analyze"]["config_key"] == first["analyze"]["config_key"]
    assert again["analyze"]["computed"] == 0 and again["analyze"]["reused"] == first["analyze"]["chunks"]
    state, forced = _run(**fields, force=True)
    assert state.is_completed() and forced is not None
    assert forced["analyze"]["engine"] == "onnx-int8" and forced["analyze"]["computed"] == forced["analyze"]["chunks"]
    state, next_day = _run(**{**fields, "run_date": date(2026, 1, 8)})
    assert state.is_completed() and next_day is not None and next_day["analyze"]["engine"] == "onnx-int8"
