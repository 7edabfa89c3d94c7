"""dedupe and fit TF-IDF: deterministic transforms (no retries), reused when their input is unchanged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import task

from tweet_signals.dedupe import dedupe_file
from tweet_signals.params import SignalsParams
from tweet_signals.storage import Storage, file_digest, parquet_metadata, read_json
from tweet_signals.symbols import alias_map, load_alias_file
from tweet_signals.tfidf import fit_sample, fit_tfidf, save_tfidf


def run_aliases(params: SignalsParams) -> dict[str, str]:
    extra = load_alias_file(Path(params.aliases_file)) if params.aliases_file else None
    return alias_map(params.symbols, extra)


@task(name="dedupe")
def dedupe(params: SignalsParams, run_date: date) -> dict[str, object]:
    storage = Storage.at(params.data_root)
    raw, path = storage.raw(run_date), storage.clean(run_date)
    raw_digest = file_digest(raw)
    key = {"raw": raw_digest, "symbols": params.symbols, "aliases": params.aliases_file}
    meta = parquet_metadata(path)
    if meta is not None and meta.get("key") == key and not params.force:
        return {"path": str(path), "status": "reused", "digest": file_digest(path), **meta["stats"]}
    _, stats = dedupe_file(raw, path, run_aliases(params), {"key": key})
    return {"path": str(path), "status": "computed", "digest": file_digest(path), **stats.as_dict()}


@task(name="fit-tfidf")
def fit_day_tfidf(params: SignalsParams, run_date: date, clean_digest: str) -> dict[str, object]:
    storage = Storage.at(params.data_root)
    directory = storage.tfidf_dir(run_date)
    vocab = directory / "vocabulary.parquet"
    existing = read_json(directory / "params.json")
    if existing is not None and existing.get("clean") == clean_digest and vocab.exists() and not params.force:
        return {"dir": str(directory), "status": "reused", "digest": file_digest(vocab), "terms": existing["terms"]}
    texts, total = fit_sample(storage.clean(run_date))
    model, top_terms = fit_tfidf(texts, params.symbols)
    save_tfidf(
        model,
        top_terms,
        directory,
        {"clean": clean_digest, "terms": len(model.vocabulary), "docs_fitted": len(texts), "docs_total": total},
    )
    return {"dir": str(directory), "status": "computed", "digest": file_digest(vocab), "terms": len(model.vocabulary)}
