"""Fine-tuning of the embedded model on every labelled set, selected on what the product reads.

Data: the sets of ``labelled_sets`` (general tweets, trader posts, finance news) plus a desk's own
files. Each set gives a seeded, stratified validation split; every epoch draws a fresh sample in
which each domain has a fixed share; the epoch kept is the one with the best selection score, a
weighted mean of one figure per domain (``SELECTION``). Pure functions; the Prefect flow
(``flows/train_model.py``) adds orchestration and the model card.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from tweet_signals.model.base import (
    LABELS,
    BatchedTextClassifier,
    TextPreparation,
    preprocess_text,
    text_preparation,
)
from tweet_signals.model.embedded import (
    BASE_SHA256,
    DELTA,
    MeanPoolClassifier,
    build_base,
    load_embedded,
    read_adapter_metadata,
    save_fine_tune,
    write_model_file,
)
from tweet_signals.model.embedded_files import BASE_NAME
from tweet_signals.model.symbols import NAMES_VERSION
from tweet_signals.storage import sha256_file
from tweet_signals.training.baselines import baseline_figures, majority_class
from tweet_signals.training.config import TrainConfig
from tweet_signals.training.duplicates import duplicate_groups, is_copy, keep_groups_together, key_index
from tweet_signals.training.labelled_sets import (
    CHECK_SETS,
    DESK,
    GENERAL,
    NEWS,
    SCORE_RULE,
    SENTIMIX,
    TRADER,
    TRAINING_SETS,
    ExtraSpec,
    LabelledSet,
    read_set,
    selected_sets,
    stratified_split,
    tweeteval_validation,
)
from tweet_signals.training.metrics import binary_figures, compute_metrics

log = logging.getLogger(__name__)

# The selection score: (validation set, figure, weight). 0.3 for general tweets, 0.25 for finance
# news; 0.3 for trader posts, split between hand-labelled cashtag tweets (three classes) and
# self-tagged StockTwits posts, where macro recall over the two gold classes counts a neutral call
# as a miss, so it rewards taking the right side and punishes shrugging; 0.15 for Romanised Hindi
# (SentiMix dev, by macro F1, the task's own figure), which Indian traders write.
SELECTION: tuple[tuple[str, str, float], ...] = (
    ("tweeteval-val", "macro_recall", 0.3),
    ("financial-news", "accuracy", 0.25),
    ("pyfin-cashtags", "macro_recall", 0.15),
    ("stocktwits", "macro_recall", 0.15),
    (SENTIMIX, "macro_f1", 0.15),
)
DESK_WEIGHT = 0.5  # with --extra files, the desk's validation macro recall is half the score
STOCKTWITS_SETS = ("stocktwits-2020", "stocktwits-2017")


def default_shared_data() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass(frozen=True)
class TrainingData:
    """Training pools per set, validation splits, checks, and what the model card says about them."""

    train: list[LabelledSet]
    validation: list[LabelledSet]
    checks: list[LabelledSet]
    sources: list[dict[str, object]]

    @property
    def left_out(self) -> frozenset[str]:
        """The sets ``config.sets`` did not pick: read and scored, never trained on."""
        return frozenset(str(s["name"]) for s in self.sources if "left_out_by_sets" in s)

    def trained_pools(self) -> list[LabelledSet]:
        """The pools training draws from: ``train`` with the left-out sets emptied (kept whole in
        ``train``, so their majority baseline still comes from their own pool)."""
        left_out = self.left_out
        return [p.subset([]) if p.name in left_out else p for p in self.train]

    def majority(self, name: str) -> tuple[int, str]:
        """The majority baseline's class for a validation split or check, and where it was counted:
        the set's own training pool (TweetEval validation: SemEval's, which TweetEval was drawn
        from; "stocktwits": both StockTwits pools), else the evaluated set itself."""
        pools = {p.name: p for p in self.train}
        members = {"stocktwits": STOCKTWITS_SETS, TWEETEVAL_NAME: (TWEETEVAL_SOURCE,)}.get(name, (name,))
        labels = [y for m in members if m in pools for y in pools[m].labels]
        if labels:
            return majority_class(labels), "training pool"
        evaluated = {v.name: v for v in self.validation + self.checks}[name]
        return majority_class(evaluated.labels), "evaluated set"


TWEETEVAL_NAME, TWEETEVAL_SOURCE = "tweeteval-val", "semeval-2013-2016"


def _limited(indices: list[int], limit: int | None) -> list[int]:
    return indices if not limit else indices[:limit]


def _digest(texts: Sequence[str]) -> str:
    """A fingerprint of a validation split's rows, so a later re-evaluation can tell whether it
    scores a model on the split that model was selected on."""
    return hashlib.sha256("\n".join(sorted(texts)).encode("utf-8")).hexdigest()


def prepare_data(shared_data: Path, config: TrainConfig, extras: Sequence[ExtraSpec] = ()) -> TrainingData:
    """Read every set (and the desk's files), split each, and keep every copy of a validation or
    check text out of training.

    1. TweetEval validation (the general domain's selection set) is never trained on: its copies
       (near-duplicates included, see ``duplicates``) leave every set before the split.
    2. Each set is split (its own train/dev split, or a seeded stratified draw); near-duplicate
       groups within a set are kept whole, on the training side.
    3. A training row that copies a row of any validation split or check leaves its pool.
    4. With ``config.sets``, the sets it does not pick are named in ``left_out``: read and split
       as always (their validation splits are scored), never trained on. A desk's files always are.
    Every removal is counted per set in ``sources``."""
    chosen = selected_sets(config.sets) if config.sets else None
    desk = [extra.read() for extra in extras]  # bad files fail here, before anything trains
    tweeteval = tweeteval_validation(shared_data)
    tweeteval_keys = key_index(tweeteval.texts)
    sources: list[dict[str, object]] = [
        {
            "name": tweeteval.name,
            "path": "tweeteval-sentiment-val/val_text.txt",
            "domain": GENERAL,
            "rows": len(tweeteval.texts),
            "rows_trained": 0,
            "validation_rows": len(tweeteval.texts),
            "role": "validation only",
            "licence": "Twitter terms for the texts (cardiffnlp/tweeteval)",
            "labels": "0=negative,1=neutral,2=positive",
        }
    ]
    train: list[LabelledSet] = []
    validation: list[LabelledSet] = [tweeteval.subset(_limited(list(range(len(tweeteval.texts))), config.limit))]
    entries: list[tuple[LabelledSet, dict[str, object]]] = []
    for spec in TRAINING_SETS:
        info = {"path": spec.path, "licence": spec.licence, "labels": spec.label_map or SCORE_RULE}
        entries.append((read_set(spec, shared_data), {**info, "sha256": sha256_file(shared_data / spec.path)}))
    for extra, labelled in zip(extras, desk, strict=True):
        own = {"path": str(extra.path), "licence": "the desk's own", "labels": extra.label_map or "as written"}
        entries.append((labelled, {**own, "sha256": sha256_file(extra.path)}))
    details: list[dict[str, object]] = []
    for whole, about in entries:
        keep = [i for i, t in enumerate(whole.texts) if not is_copy(t, tweeteval_keys)]
        removed = len(whole.texts) - len(keep)
        labelled = whole.subset(keep)
        given = labelled.given_split()
        if given is not None:
            tr, va, grouped = given[0], given[1], 0
        else:
            drawn = stratified_split(labelled.labels, config.validation_fraction, config.seed, config.validation_cap)
            tr, va = keep_groups_together(*drawn, duplicate_groups(labelled.texts))
            grouped = len(drawn[1]) - len(va)
        train.append(labelled.subset(_limited(tr, config.limit)))
        validation.append(labelled.subset(_limited(va, config.limit)))
        details.append(
            {"name": labelled.name, "domain": labelled.domain, "rows": len(labelled.texts)}
            | about
            | {"removed_tweeteval_overlap": removed, "validation_groups_kept_in_training": grouped}
        )
    checks = []
    for spec in CHECK_SETS:
        if (shared_data / spec.path).is_file():
            check = read_set(spec, shared_data)
            checks.append(check.subset(_limited(list(range(len(check.texts))), config.limit)))
    # A copy of any validation or check text never trains (sets overlap: FiQA and SemEval-2017
    # share 275 posts; retweets of one post sit in several sets).
    held_keys = key_index(t for v in validation + checks for t in v.texts)
    cleaned = []
    for pool, valid, detail in zip(train, validation[1:], details, strict=True):
        keep = [i for i, t in enumerate(pool.texts) if not is_copy(t, held_keys)]
        unpicked = chosen is not None and pool.domain != DESK and pool.name not in chosen
        cleaned.append(pool.subset(keep))
        sources.append(
            detail
            | ({"left_out_by_sets": len(keep)} if unpicked else {})
            | {
                "removed_validation_copies": len(pool.texts) - len(keep),
                "rows_trained": 0 if unpicked else len(keep),
                "validation_rows": len(valid.texts),
                "validation_sha256": _digest(valid.texts),
            }
        )
    sources[0]["validation_sha256"] = _digest(validation[0].texts)
    stocktwits = [v for v in validation if v.name in STOCKTWITS_SETS]
    if stocktwits:
        validation.append(
            LabelledSet(
                "stocktwits",
                TRADER,
                [t for v in stocktwits for t in v.texts],
                [y for v in stocktwits for y in v.labels],
                polar=True,
            )
        )
    return TrainingData(cleaned, validation, checks, sources)


def class_weights(labels: Sequence[int], cap: float) -> dict[int, float]:
    """Inverse class frequency within one set (capped), so a skewed set teaches every class."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(LABELS))
    present = counts > 0
    return {c: min(cap, float(counts.sum() / (present.sum() * counts[c]))) for c in range(len(LABELS)) if present[c]}


def epoch_shares(domain_shares: dict[str, float], desk_share: float, present: set[str]) -> dict[str, float]:
    """Each present domain's share of an epoch: ``domain_shares`` over the domains that have rows
    (a missing or left-out one's share goes to the others in proportion), and a desk's files
    ``desk_share`` of the whole when present."""
    base = {d: s for d, s in domain_shares.items() if d in present}
    total = sum(base.values())
    desk = desk_share if DESK in present and base else 1.0 if DESK in present else 0.0
    return {d: s / total * (1 - desk) for d, s in base.items()} | ({DESK: desk} if DESK in present else {})


def epoch_sample(pools: Sequence[LabelledSet], config: TrainConfig, rng: random.Random) -> list[tuple[int, int]]:
    """(pool, row) pairs for one epoch: each domain gets its share of ``epoch_rows``
    (``epoch_shares``); within a domain, sets in proportion to their size; rows without
    replacement until a pool runs out."""
    present = {p.domain for p in pools if p.texts}
    shares = epoch_shares(config.domain_shares, config.desk_share, present)
    filled = sum(1 for p in pools if p.texts)
    rows = config.epoch_rows if not config.limit else min(config.epoch_rows, config.limit * filled)
    picked: list[tuple[int, int]] = []
    for domain in sorted(present):
        members = [i for i, p in enumerate(pools) if p.domain == domain and p.texts]
        size = sum(len(pools[i].texts) for i in members)
        quota = round(rows * shares.get(domain, 0.0))
        for i in members:
            want = round(quota * len(pools[i].texts) / size)
            order: list[int] = []
            while len(order) < want:
                batch = list(range(len(pools[i].texts)))
                rng.shuffle(batch)
                order += batch
            picked += [(i, r) for r in order[:want]]
    rng.shuffle(picked)
    return picked


def _batches(
    ids: list[list[int]], labels: list[int], weights: list[float], batch_size: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled batches of similar length (sorted within random pools of 50 batches)."""
    order = list(range(len(ids)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(ids[i]))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    for batch in batches:
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        yield (
            input_ids,
            mask,
            torch.tensor([labels[i] for i in batch]),
            torch.tensor([weights[i] for i in batch], dtype=torch.float32),
        )


def classifier_for(
    model: MeanPoolClassifier, tokenizer: object, max_length: int, prepare: TextPreparation = preprocess_text
) -> BatchedTextClassifier:
    """Wrap a (training-time) model in the same batching engine the pipeline uses."""

    def logits_fn(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(input_ids), torch.from_numpy(mask)).float().numpy()

    return BatchedTextClassifier(
        model_id="embedded:training",
        tokenizer=tokenizer,
        logits_fn=logits_fn,
        permutation=[0, 1, 2],
        max_length=max_length,
        pad_token_id=0,
        prepare=prepare,
    )


def classifier_of_file(adapter: Path, max_length: int) -> BatchedTextClassifier:
    """A saved fine-tune as the pipeline runs it: its texts prepared the way it was trained."""
    tokenizer, model = load_embedded(adapter, cache=False)
    return classifier_for(model, tokenizer, max_length, text_preparation(read_adapter_metadata(adapter)))


def set_figures(labelled: LabelledSet, probs: np.ndarray) -> dict[str, object]:
    """Metrics of one set, plus the polar figures when its gold labels have no neutral."""
    figures = compute_metrics(labelled.labels, probs.argmax(axis=1).tolist()).as_dict()
    if labelled.polar:
        figures.update(binary_figures(labelled.labels, probs) or {})
    return figures


def figures_with_baselines(data: TrainingData, labelled: LabelledSet, probs: np.ndarray) -> dict[str, object]:
    """``set_figures`` plus the majority and keyword baselines on the same rows (``baselines``)."""
    majority, of = data.majority(labelled.name)
    return set_figures(labelled, probs) | {"baselines": baseline_figures(labelled.texts, labelled.labels, majority, of)}


def evaluate_sets(
    data: TrainingData, clf: BatchedTextClassifier
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, object]]]:
    """Figures with baselines of a classifier on every validation split and every check."""
    validation = {
        v.name: figures_with_baselines(data, v, clf.predict_proba(v.texts)) for v in data.validation if v.texts
    }
    checks = {c.name: figures_with_baselines(data, c, clf.predict_proba(c.texts)) for c in data.checks if c.texts}
    return validation, checks


# The training sets behind a selection term's validation split, where they are not the split's own.
TERM_SOURCES = {TWEETEVAL_NAME: (TWEETEVAL_SOURCE,), "stocktwits": STOCKTWITS_SETS}


def selection_terms(
    validation: dict[str, dict[str, object]], left_out: frozenset[str] = frozenset()
) -> list[tuple[str, str, float]]:
    """The terms of the selection score these validation sets can fill, their weights summing to 1.

    ``SELECTION``'s terms, less those whose training sets were all left out (``train-model
    --sets``), reweighted in proportion; when none remains, each trained set's own split by macro
    recall, equally. A desk's files take ``DESK_WEIGHT`` of the whole when present."""

    def trained(name: str) -> bool:
        return not set(TERM_SOURCES.get(name, (name,))) <= left_out

    desk = [name for name in validation if name.startswith("extra:")]
    terms = [(name, figure, weight) for name, figure, weight in SELECTION if name in validation and trained(name)]
    if left_out and not terms:
        own = [name for name in validation if trained(name) and name not in TERM_SOURCES and name not in desk]
        terms = [(name, "macro_recall", 1.0) for name in own]
    total = sum(w for _, _, w in terms)
    scale = (1 - DESK_WEIGHT if desk else 1.0) / total if total else 0.0
    desk_weight = (DESK_WEIGHT if terms else 1.0) / len(desk) if desk else 0.0
    return [(n, f, w * scale) for n, f, w in terms] + [(name, "macro_recall", desk_weight) for name in desk]


def selection_score(validation: dict[str, dict[str, object]], left_out: frozenset[str] = frozenset()) -> float:
    terms = selection_terms(validation, left_out)
    if not terms:
        raise ValueError("no validation split to select an epoch on: every picked set's split is empty")
    return sum(_figure(validation, name, figure) * w for name, figure, w in terms)


def _figure(validation: dict[str, dict[str, object]], name: str, figure: str) -> float:
    value = validation[name][figure]
    assert isinstance(value, int | float), (name, figure, value)
    return float(value)


def _score_logits(
    logits: dict[str, tuple[np.ndarray, np.ndarray]], bias: np.ndarray, left_out: frozenset[str] = frozenset()
) -> float:
    return selection_score(
        {name: compute_metrics(y, (x + bias).argmax(1).tolist()).as_dict() for name, (x, y) in logits.items()},
        left_out,
    )


def _init_model(config: TrainConfig, init: Path | None) -> tuple[object, MeanPoolClassifier, dict[str, torch.Tensor]]:
    """The model to tune (the verified encoder with a fresh head, or the fine-tune ``init``, e.g.
    the committed model for a desk's fine-tune) and the official weights that what is saved is a
    difference from."""
    tokenizer, official = build_base(verify=True)
    official_state = {k: v.detach().clone() for k, v in official.state_dict().items()}
    if init is None:
        model = official
    else:
        if read_adapter_metadata(init).get("base_sha256") != BASE_SHA256:
            raise ValueError(f"{init} was trained on a different encoder")
        model = load_embedded(init, cache=False)[1]
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith(config.frozen)
    return tokenizer, model, official_state


def _parameter_groups(model: MeanPoolClassifier) -> list[dict[str, object]]:
    """AdamW groups: weight decay on the matrices only. Biases, LayerNorms and embedding tables
    get none (decay would also move every embedding row, seen in training or not)."""
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.dim() == 2 and "embeddings." not in name else plain).append(param)
    return [{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}]


def train_embedded(
    shared_data: Path,
    output: Path,
    config: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] = log.info,
    extras: Sequence[ExtraSpec] = (),
    init: Path | None = None,
) -> dict[str, object]:
    """Fine-tune the encoder (every weight not in ``config.frozen``), keep the epoch with the best
    selection score, shift the head's biases if that wins in cross-validation, save it as an int8
    difference from the official encoder; return the report the model card is written from."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    data = prepare_data(shared_data, config, extras)
    pools = data.trained_pools()
    tokenizer, model, official = _init_model(config, init)
    progress(
        f"{sum(len(p.texts) for p in pools)} training rows in {sum(1 for p in pools if p.texts)} sets, "
        f"{sum(len(v.texts) for v in data.validation)} validation rows"
    )
    symbols = "spelled" if config.spell_symbols else "kept"
    prepare = text_preparation({"symbols": symbols})  # as the pipeline will read it from the file
    pool_ids = [
        tokenizer([prepare(t) for t in p.texts], truncation=True, max_length=config.max_length)["input_ids"]  # type: ignore[operator]
        if p.texts
        else []
        for p in pools
    ]
    # Finance news is judged by accuracy, so its rows count once each; every other set teaches all
    # of its classes (macro recall is their figure), however skewed it is.
    pool_weights = [
        ({c: 1.0 for c in set(p.labels)} if p.domain == NEWS else class_weights(p.labels, config.max_class_weight))
        if p.labels
        else {}
        for p in pools
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(_parameter_groups(model), lr=config.learning_rate)
    samples = [epoch_sample(pools, config, rng) for _ in range(config.epochs)]
    steps_per_epoch = -(-len(samples[0]) // config.batch_size)
    total = max(2, steps_per_epoch * config.epochs)
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    clf = classifier_for(model, tokenizer, config.max_length, prepare)

    best_score = -1.0
    report: dict[str, object] = {}
    history = []
    for epoch, sample in enumerate(samples, 1):
        model.train()
        ids = [pool_ids[p][r] for p, r in sample]
        labels = [pools[p].labels[r] for p, r in sample]
        weights = [pool_weights[p][pools[p].labels[r]] for p, r in sample]
        mean_weight = float(np.mean(weights))
        weights = [w / mean_weight for w in weights]
        running = 0.0
        for step, (input_ids, mask, y, w) in enumerate(_batches(ids, labels, weights, config.batch_size, rng), 1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(input_ids, mask)
            loss = (loss_fn(logits.float(), y) * w).sum() / w.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
            if step % 100 == 0:
                progress(f"epoch {epoch} step {step}/{steps_per_epoch} loss {running / step:.4f}")
        model.eval()
        validation = {v.name: set_figures(v, clf.predict_proba(v.texts)) for v in data.validation if v.texts}
        score = selection_score(validation, data.left_out)
        history.append(
            {"epoch": epoch, "score": score, "validation": validation, "seconds": time.perf_counter() - started}
        )
        progress(f"epoch {epoch}: selection score {score:.4f} ({_terms_line(validation, data.left_out)})")
        if score > best_score:
            best_score = score
            report = {
                "base": BASE_NAME,
                "base_sha256": BASE_SHA256,
                "form": DELTA,
                "frozen": list(config.frozen),
                "symbols": symbols,
                "symbol_names_unicode": NAMES_VERSION if config.spell_symbols else None,
                "labels": list(LABELS),
                "max_length": config.max_length,
                "epoch": epoch,
                "config": asdict(config),
                "init": str(init) if init else None,
                "selection": [
                    {"set": n, "figure": f, "weight": w} for n, f, w in selection_terms(validation, data.left_out)
                ],
                "score": score,
                "validation": validation,
                "sources": data.sources,
            }
            save_fine_tune(model, official, output, report)
    calibration = calibrate_head_bias(output, data.validation, config.max_length, data.left_out)
    final = classifier_of_file(output, config.max_length)
    final_validation, checks = evaluate_sets(data, final)
    for name in checks:
        progress(f"check {name} (never trained on): macro recall {_figure(checks, name, 'macro_recall'):.3f}")
    full = {
        **report,
        "weights_mb": round(_tensor_bytes(output) / 1e6, 1),
        "calibration": calibration,
        "final_validation": final_validation,
        "final_score": selection_score(final_validation, data.left_out),
        "checks": checks,
        "history": history,
        "rows_seen": sum(len(s) for s in samples),
        "seconds": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "date": datetime.now(UTC).date().isoformat(),
    }
    _write_metadata(output, full)
    return full


def machine() -> str:
    """The CPU model and core count, for the model card's timing."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def _tensor_bytes(path: Path) -> int:
    """The bytes of the tensors a safetensors file holds (its size less the header)."""
    from safetensors.torch import load_file

    return sum(t.numel() * t.element_size() for t in load_file(str(path)).values())


def _terms_line(validation: dict[str, dict[str, object]], left_out: frozenset[str]) -> str:
    return ", ".join(
        f"{name} {figure} {_figure(validation, name, figure):.3f}"
        for name, figure, _ in selection_terms(validation, left_out)
    )


def _write_metadata(adapter: Path, report: dict[str, object]) -> None:
    """Store the final report (minus the per-epoch history) in the adapter's metadata."""
    from safetensors.torch import load_file

    write_model_file(load_file(str(adapter)), adapter, {k: v for k, v in report.items() if k != "history"})


BIAS_GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)


def _best_bias(logits: dict[str, tuple[np.ndarray, np.ndarray]], left_out: frozenset[str]) -> tuple[np.ndarray, float]:
    """The (negative, 0, positive) logit offsets that maximise the selection score."""
    best_bias, best_score = np.zeros(3), -1.0
    for neg in BIAS_GRID:
        for pos in BIAS_GRID:
            bias = np.array([neg, 0.0, pos])
            score = _score_logits(logits, bias, left_out)
            if score > best_score + 1e-12:
                best_bias, best_score = bias, score
    return best_bias, best_score


def calibrate_head_bias(
    adapter: Path, validation: list[LabelledSet], max_length: int, left_out: frozenset[str] = frozenset()
) -> dict[str, object]:
    """Shift the head's class biases on the validation splits (two parameters), if that helps.

    A head trained with class weights can under- or over-predict a class; a bias shift can fix
    that. Whether it does is estimated by 2-fold cross-validation (fit on one half of every
    split, score the other, against the unshifted head on the same half); only a shift that wins
    there is fitted on all of it and folded into the head."""
    from safetensors.torch import load_file

    clf = classifier_of_file(adapter, max_length)
    logits = {}
    for v in validation:
        if v.texts:
            probs = clf.predict_proba(v.texts)  # softmax of logits: log recovers them up to a constant
            logits[v.name] = (np.log(np.clip(probs, 1e-12, 1.0)), np.asarray(v.labels))
    rng = np.random.default_rng(0)
    folds = {k: rng.permutation(len(y)) % 2 for k, (_, y) in logits.items()}
    cv: dict[str, list[float]] = {"shifted": [], "unshifted": []}
    for fold in (0, 1):
        fit = {k: (x[folds[k] == fold], y[folds[k] == fold]) for k, (x, y) in logits.items()}
        test = {k: (x[folds[k] != fold], y[folds[k] != fold]) for k, (x, y) in logits.items()}
        if any(len(y) == 0 for _, y in [*fit.values(), *test.values()]):
            return {"applied": False, "bias_shift": [0.0, 0.0, 0.0], "reason": "validation splits too small"}
        fitted, _ = _best_bias(fit, left_out)
        cv["shifted"].append(_score_logits(test, fitted, left_out))
        cv["unshifted"].append(_score_logits(test, np.zeros(3), left_out))
    means = {k: float(np.mean(v)) for k, v in cv.items()}
    applied = means["shifted"] > means["unshifted"]
    bias = _best_bias(logits, left_out)[0] if applied else np.zeros(3)
    if applied:
        meta = read_adapter_metadata(adapter)
        state = load_file(str(adapter))
        state["classifier.bias"] = state["classifier.bias"] + torch.tensor(bias, dtype=state["classifier.bias"].dtype)
        write_model_file(state, adapter, meta)
    return {
        "applied": applied,
        "bias_shift": bias.tolist(),
        "cv_shifted": means["shifted"],
        "cv_unshifted": means["unshifted"],
    }


def validation_set(name: str, shared_data: Path | None = None, config: TrainConfig = TrainConfig()) -> LabelledSet:
    """One validation split exactly as training made it (same seed, fraction and cap)."""
    return held_out(name, shared_data, config)[0]


def held_out(
    name: str, shared_data: Path | None = None, config: TrainConfig = TrainConfig()
) -> tuple[LabelledSet, int, str]:
    """A validation split or check as training made it, with its majority baseline's class and
    where that was counted (see ``TrainingData.majority``)."""
    data = prepare_data(shared_data or default_shared_data(), config)
    sets = {v.name: v for v in data.validation + data.checks}
    if name not in sets:
        raise ValueError(f"unknown validation set {name!r}; choose one of {', '.join(sorted(sets))}")
    return (sets[name], *data.majority(name))
