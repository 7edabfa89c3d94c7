"""TF-IDF fitted once per run on the day's clean corpus, persisted as data, applied read-only.

The fitted state is just the vocabulary and its idf weights (Parquet) plus the parameters
(JSON): no pickle crosses a process boundary or lands on disk. ``transform`` rebuilds exactly
what scikit-learn's ``TfidfVectorizer`` computes (sublinear tf × idf, l2-normalised rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from functools import cached_property, lru_cache

import numpy as np
import polars as pl
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from tweet_signals.market.lexicon import MARKET_TERMS
from tweet_signals.params import SignalsParams
from tweet_signals.stages.text_features import regex_safe
from tweet_signals.storage import (
    AnyPath,
    Storage,
    current_json,
    file_digest,
    location,
    uri,
    write_json_atomic,
    write_parquet_atomic,
)

TOKEN_PATTERN = r"(?u)[#$]?\b\w\w+\b"
# A cap keeps the fitted state small and the fit bounded on very large days; the rarest terms
# dropped by it carry almost no weight in relevance or top terms.
MAX_FEATURES = 50_000


@dataclass(frozen=True)
class TfidfModel:
    vocabulary: list[str]
    idf: np.ndarray
    market_columns: np.ndarray  # vocabulary indices of market terms

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        counts = CountVectorizer(
            vocabulary={t: i for i, t in enumerate(self.vocabulary)}, token_pattern=TOKEN_PATTERN, lowercase=True
        ).transform(texts)
        tf = counts.astype(np.float64)
        tf.data = 1.0 + np.log(tf.data)
        weighted = tf.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return sparse.diags(1.0 / norms) @ weighted

    def market_relevance(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's (l2-normalised) TF-IDF vector on market terms: 0…1 (vectorised;
        the same numbers as ``market_relevance_reference``)."""
        return market_relevances(self, texts)

    @cached_property
    def vocabulary_frame(self) -> pl.DataFrame:
        """term → vocabulary column: the table the vectorised path joins tokens on."""
        return pl.DataFrame(
            {"term": self.vocabulary, "col": np.arange(len(self.vocabulary), dtype=np.int64)},
            schema={"term": pl.String, "col": pl.Int64},
        )

    def market_relevance_reference(self, texts: Sequence[str]) -> np.ndarray:
        """The defining rule, through scikit-learn's tokeniser and sparse matrices."""
        matrix = self.transform(texts)
        if len(self.market_columns) == 0:
            return np.zeros(len(texts))
        market = matrix[:, self.market_columns]
        return np.sqrt(np.asarray(market.multiply(market).sum(axis=1))).ravel()


def _market_columns(vocabulary: Sequence[str], extra_terms: Iterable[str]) -> np.ndarray:
    terms = set(MARKET_TERMS) | {t.lower() for t in extra_terms}
    return np.array([i for i, t in enumerate(vocabulary) if t.lstrip("#$") in terms], dtype=np.int64)


# Days larger than this are fitted on a uniform sample of this many posts (see ``fit_sample``).
MAX_FIT_DOCS = 200_000


def fit_sample(clean_path: AnyPath, max_docs: int = MAX_FIT_DOCS) -> tuple[list[str], int]:
    """The texts the day's TF-IDF is fitted on, and the day's post count.

    Up to ``max_docs`` posts: all of them (exact). Above: the ``max_docs`` posts with the smallest
    hash of their id, a deterministic uniform sample. idf depends on document *frequencies*
    (df/N), which a 200k-post sample estimates to about ±0.5% for any term in ≥1% of posts, and
    rare terms fall under the vocabulary cap anyway; the fit then needs bounded memory and time
    however large the day. The scan is lazy: only the sample's texts are ever materialised.
    """
    scan = pl.scan_parquet(uri(clean_path))
    total = int(scan.select(pl.len()).collect().item())
    if total > max_docs:
        scan = scan.select("text", pl.col("id").hash(seed=20260107).alias("_h")).bottom_k(max_docs, by="_h")
    return scan.select("text").collect()["text"].to_list(), total


def fit_tfidf_model(texts: Sequence[str], symbols: Iterable[str] = ()) -> tuple[TfidfModel, pl.DataFrame]:
    """Fit on the whole corpus; return the model and the day's top terms (by mean weight)."""
    min_df = 2 if len(texts) >= 1000 else 1
    vectorizer = TfidfVectorizer(
        token_pattern=TOKEN_PATTERN, sublinear_tf=True, max_features=MAX_FEATURES, min_df=min_df, dtype=np.float64
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # an empty vocabulary (no texts, or only one-letter tokens)
        empty = TfidfModel([], np.zeros(0), np.zeros(0, dtype=np.int64))
        return empty, pl.DataFrame(schema={"term": pl.String, "mean_weight": pl.Float64, "doc_freq": pl.Int64})
    vocabulary = vectorizer.get_feature_names_out().tolist()
    model = TfidfModel(vocabulary, vectorizer.idf_.astype(np.float64), _market_columns(vocabulary, symbols))
    mean = np.asarray(matrix.mean(axis=0)).ravel()
    doc_freq = np.asarray((matrix > 0).sum(axis=0)).ravel()
    top = np.argsort(-mean, kind="stable")[:50]
    top_terms = pl.DataFrame(
        {"term": [vocabulary[i] for i in top], "mean_weight": mean[top], "doc_freq": doc_freq[top].astype(np.int64)}
    )
    return model, top_terms


def save_tfidf(model: TfidfModel, top_terms: pl.DataFrame, directory: AnyPath, metadata: dict[str, object]) -> None:
    write_parquet_atomic(
        pl.DataFrame({"term": model.vocabulary, "idf": model.idf}), directory / "vocabulary.parquet", metadata
    )
    write_parquet_atomic(top_terms, directory / "top_terms.parquet", metadata)
    params = {
        "token_pattern": TOKEN_PATTERN,
        "sublinear_tf": True,
        "max_features": MAX_FEATURES,
        "market_columns": model.market_columns.tolist(),
        **metadata,
    }
    write_json_atomic(params, directory / "params.json")


@lru_cache(maxsize=4)
def load_tfidf(directory: str, digest: str = "") -> TfidfModel:
    """Read-only fitted state, cached per process and per fit (``digest`` of the vocabulary file)."""
    path = location(directory)
    vocab = pl.read_parquet(uri(path / "vocabulary.parquet"))
    params = json.loads((path / "params.json").read_text(encoding="utf-8"))
    return TfidfModel(
        vocab["term"].to_list(), vocab["idf"].to_numpy(), np.asarray(params["market_columns"], dtype=np.int64)
    )


@dataclass(frozen=True)
class TfidfResult:
    """The fitted state's folder, whether it was fitted or reused, and its vocabulary's hash."""

    dir: str
    status: str  # computed | reused
    digest: str
    terms: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def tfidf_session(params: SignalsParams, run_date: date, clean_digest: str) -> TfidfResult:
    """Fit the session's TF-IDF once on its clean posts; reused while the clean file is unchanged."""
    storage = Storage.at(params.data_root)
    directory = storage.tfidf_dir(run_date)
    vocab = directory / "vocabulary.parquet"
    existing = (
        current_json(directory / "params.json", {"clean": clean_digest}, params.force) if vocab.exists() else None
    )
    if existing is not None:
        return TfidfResult(str(directory), "reused", file_digest(vocab), int(existing["terms"]))
    texts, total = fit_sample(storage.clean(run_date))
    model, top_terms = fit_tfidf_model(texts, params.symbols)
    save_tfidf(
        model,
        top_terms,
        directory,
        {"clean": clean_digest, "terms": len(model.vocabulary), "docs_fitted": len(texts), "docs_total": total},
    )
    return TfidfResult(str(directory), "computed", file_digest(vocab), len(model.vocabulary))


def market_relevances(model: TfidfModel, texts: Sequence[str]) -> np.ndarray:
    """``TfidfModel.market_relevance`` of every text: the share of its l2-normalised TF-IDF vector
    on market terms, ‖w_market‖ / ‖w‖ with w = (1 + ln tf) · idf over vocabulary terms.

    Vectorised (tokens in polars, counts by integer sorts); texts where Rust's and Python's regex
    engines could disagree take the reference rule."""
    if not len(texts) or len(model.market_columns) == 0:
        return np.zeros(len(texts))
    series = pl.Series("text", texts, dtype=pl.String)
    safe = regex_safe(series).to_numpy()
    # Tokens in Rust, one row per (post, vocabulary term) occurrence; then counts per pair by
    # one integer sort (post · V + term), which beats grouping by strings.
    found = (
        pl.DataFrame({"term": series.str.to_lowercase().str.extract_all(TOKEN_PATTERN)})
        .with_row_index("row")
        .explode("term")
        .join(model.vocabulary_frame, on="term", how="inner")
    )
    size = len(model.vocabulary)
    pairs, tf = np.unique(found["row"].to_numpy().astype(np.int64) * size + found["col"].to_numpy(), return_counts=True)
    rows, cols = np.divmod(pairs, size)
    w2 = ((1.0 + np.log(tf)) * model.idf[cols]) ** 2
    market = np.zeros(size, dtype=bool)
    market[model.market_columns] = True
    total = np.bincount(rows, weights=w2, minlength=len(texts))
    on_market = np.bincount(rows, weights=w2 * market[cols], minlength=len(texts))
    out = np.sqrt(np.divide(on_market, total, out=np.zeros(len(texts)), where=total > 0))
    unsafe = np.flatnonzero(~safe).tolist()
    if unsafe:
        out[unsafe] = model.market_relevance_reference([texts[i] for i in unsafe])
    return out
