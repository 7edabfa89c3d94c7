"""Fine-tuning of the embedded model: labelled data, a seeded held-out split, a LoRA training loop.

Pure functions; the Prefect flow (``flows/train_model.py``) adds orchestration and the model card.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tweet_signals.model.base import LABELS, BatchedTextClassifier, preprocess_text
from tweet_signals.model.embedded import (
    BASE_SHA256,
    MeanPoolClassifier,
    add_lora,
    build_base,
    save_adapter,
)
from tweet_signals.model.embedded_files import BASE_NAME
from tweet_signals.model.metrics import (
    Metrics,
    compute_metrics,
    map_labels,
    parse_label_map,
    read_labelled_csv,
    read_labelled_lines,
)

log = logging.getLogger(__name__)

# Each source's raw label → index in LABELS (negative, neutral, positive). The two sets
# order their classes differently, so this is spelled out rather than assumed.
TFNS_LABELS = {"0": 0, "1": 2, "2": 1}  # 0 Bearish, 1 Bullish, 2 Neutral
TWEETEVAL_LABELS = {"0": 0, "1": 1, "2": 2}  # 0 negative, 1 neutral, 2 positive


@dataclass(frozen=True)
class LabelledSet:
    name: str
    texts: list[str]
    labels: list[int]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 6e-4
    rank: int = 16
    alpha: float = 32.0
    lora_dropout: float = 0.05
    max_length: int = 64
    holdout_fraction: float = 0.2
    general_oversample: int = 2  # TweetEval is 2k rows against 9.5k finance rows
    class_weighting: str = "per-set"  # a key of CLASS_WEIGHTINGS
    limit: int | None = None  # cap on training rows per set (smoke tests)


def default_shared_data() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_labelled_sets(shared_data: Path) -> list[LabelledSet]:
    """The two labelled sets, read in place from ``shared/data`` and mapped onto ``LABELS``."""
    finance = read_labelled_csv(
        shared_data / "twitter-financial-news-sentiment-train" / "sent_train.csv", "text", "label"
    )
    te_dir = shared_data / "tweeteval-sentiment-val"
    general = read_labelled_lines(te_dir / "val_text.txt", te_dir / "val_labels.txt")
    return [
        LabelledSet("finance", finance.texts, [TFNS_LABELS[v.strip()] for v in finance.labels]),
        LabelledSet("general", general.texts, [TWEETEVAL_LABELS[v.strip()] for v in general.labels]),
    ]


# Stock-market tweets labelled by hand (Taborda et al., April-July 2020), never trained on and not
# used to pick the epoch: the closest labelled check of the product's own domain.
MARKET_CHECK_CSV = Path("taborda-stock-market-tweets-labelled") / "tweets_labelled_09042020_16072020.csv"


def market_check_set(shared_data: Path) -> LabelledSet | None:
    """The market-tweet check set, when ``shared_data`` has it."""
    path = shared_data / MARKET_CHECK_CSV
    if not path.is_file():
        return None
    rows = read_labelled_csv(path, "text", "sentiment")
    return LabelledSet("market", rows.texts, map_labels(rows.labels, parse_label_map(None), rows.origins))


def held_out_set(name: str, shared_data: Path | None = None, config: TrainConfig = TrainConfig()) -> LabelledSet:
    """The held-out part of a labelled set exactly as training split it (same seed and fraction)."""
    sets = {s.name: s for s in load_labelled_sets(shared_data or default_shared_data())}
    if name not in sets:
        raise ValueError(f"unknown held-out set {name!r}; choose {sorted(sets)}")
    labelled = sets[name]
    _, held = stratified_split(labelled.labels, config.holdout_fraction, config.seed)
    return LabelledSet(name, [labelled.texts[i] for i in held], [labelled.labels[i] for i in held])


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, held out), the same fraction of every class held out, reproducibly."""
    rng = random.Random(seed)
    train, held = [], []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        k = round(len(idx) * fraction)
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


# How the training loss weighs each row (``TrainConfig.class_weighting``), with the sentence the
# CLI help and the model card use for it.
CLASS_WEIGHTINGS = {
    "per-set": "each set's loss matches its target metric: general tweets are weighted so every class "
    "counts equally (macro recall), finance rows count once each (accuracy)",
    "pooled": "inverse class frequency over both sets pooled",
}


def example_weights(set_names: list[str], labels: list[int], scheme: str) -> list[float]:
    """A loss weight per training row (see ``TrainConfig.class_weighting``), mean 1."""
    if scheme not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {scheme!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}")
    n_classes = len(LABELS)
    if scheme == "pooled":
        counts = np.bincount(labels, minlength=n_classes)
        weights = [len(labels) / (n_classes * counts[y]) for y in labels]
    else:
        per_set: dict[str, np.ndarray] = {}
        for name in set(set_names):
            ys = [y for n, y in zip(set_names, labels, strict=True) if n == name]
            per_set[name] = np.bincount(ys, minlength=n_classes)
        weights = [
            per_set[n].sum() / (n_classes * per_set[n][y]) if n == "general" else 1.0
            for n, y in zip(set_names, labels, strict=True)
        ]
    mean = float(np.mean(weights))
    return [w / mean for w in weights]


def _batches(ids: list[list[int]], labels: list[int], weights: list[float], batch_size: int, rng: random.Random):
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


def classifier_for(model: MeanPoolClassifier, tokenizer: object, max_length: int) -> BatchedTextClassifier:
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
    )


def evaluate_sets(clf: BatchedTextClassifier, sets: list[LabelledSet]) -> dict[str, Metrics]:
    out = {}
    for s in sets:
        pred = clf.predict_proba(s.texts).argmax(axis=1)
        out[s.name] = compute_metrics(s.labels, pred.tolist())
    return out


def selection_score(metrics: dict[str, Metrics]) -> float:
    """Model selection: the mean of the two target metrics on the held-out split."""
    return (metrics["general"].macro_recall + metrics["finance"].accuracy) / 2


def train_embedded(
    shared_data: Path,
    output: Path,
    config: TrainConfig = TrainConfig(),
    progress: Callable[[str], None] = log.info,
) -> dict[str, object]:
    """Train, keep the epoch with the best held-out score, save it; return the report."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    sets = load_labelled_sets(shared_data)
    tokenizer, model = build_base(verify=True)
    add_lora(model, config.rank, config.alpha, config.lora_dropout)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or "LayerNorm" in name or name.startswith("classifier.")

    train_ids: list[list[int]] = []
    train_labels: list[int] = []
    train_sets: list[str] = []
    held_sets = []
    for s in sets:
        tr, ho = stratified_split(s.labels, config.holdout_fraction, config.seed)
        if config.limit:
            tr, ho = tr[: config.limit], ho[: max(30, config.limit // 4)]
        texts = [preprocess_text(s.texts[i]) for i in tr]
        ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]  # type: ignore[operator]
        repeat = config.general_oversample if s.name == "general" else 1
        for _ in range(repeat):
            train_ids += ids
            train_labels += [s.labels[i] for i in tr]
            train_sets += [s.name] * len(tr)
        held_sets.append(LabelledSet(s.name, [s.texts[i] for i in ho], [s.labels[i] for i in ho]))

    weights = example_weights(train_sets, train_labels, config.class_weighting)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = -(-len(train_ids) // config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    clf = classifier_for(model, tokenizer, config.max_length)

    best: tuple[float, int, dict[str, Metrics]] | None = None
    history = []
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        running = 0.0
        batches = _batches(train_ids, train_labels, weights, config.batch_size, rng)
        for step, (input_ids, mask, y, w) in enumerate(batches, 1):
            loss = (loss_fn(model(input_ids, mask), y) * w).sum() / w.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
            if step % 50 == 0:
                progress(f"epoch {epoch} step {step}/{steps_per_epoch} loss {running / step:.4f}")
        model.eval()
        metrics = evaluate_sets(clf, held_sets)
        score = selection_score(metrics)
        history.append({"epoch": epoch, "score": score, **{k: m.as_dict() for k, m in metrics.items()}})
        progress(
            f"epoch {epoch}: held-out general macro recall {metrics['general'].macro_recall:.3f}, "
            f"finance accuracy {metrics['finance'].accuracy:.3f}"
        )
        if best is None or score > best[0]:
            best = (score, epoch, metrics)
            report = {
                "base": BASE_NAME,
                "base_sha256": BASE_SHA256,
                "rank": config.rank,
                "alpha": config.alpha,
                "labels": list(LABELS),
                "max_length": config.max_length,
                "epoch": epoch,
                "config": asdict(config),
                "held_out": {k: m.as_dict() for k, m in metrics.items()},
            }
            save_adapter(model, output, report)
    assert best is not None
    calibration = calibrate_head_bias(output, held_sets, config.max_length)
    market = market_check_set(shared_data)
    if market is not None and not config.limit:
        from tweet_signals.model.embedded import load_embedded

        final_tokenizer, final_model = load_embedded(output)
        final = classifier_for(final_model, final_tokenizer, config.max_length)
        market_metrics = evaluate_sets(final, [market])["market"]
        report["market_check"] = market_metrics.as_dict()
        progress(f"market tweets (never trained on): macro recall {market_metrics.macro_recall:.3f}")
    return {
        **report,
        "calibration": calibration,
        "history": history,
        "train_rows": len(train_ids),
        "seconds": round(time.perf_counter() - started, 1),
    }


BIAS_GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)


def _best_bias(logits: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """The (negative, 0, positive) logit offsets that maximise the selection score."""
    best_bias, best_score = np.zeros(3), -1.0
    for neg in BIAS_GRID:
        for pos in BIAS_GRID:
            bias = np.array([neg, 0.0, pos])
            metrics = {k: compute_metrics(y, (x + bias).argmax(1).tolist()) for k, (x, y) in logits.items()}
            score = selection_score(metrics)
            if score > best_score + 1e-12:
                best_bias, best_score = bias, score
    return best_bias, best_score


def _held_out_logits(clf: BatchedTextClassifier, sets: list[LabelledSet]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for s in sets:
        probs = clf.predict_proba(s.texts)  # softmax of logits: log recovers logits up to a constant
        out[s.name] = (np.log(np.clip(probs, 1e-12, 1.0)), np.asarray(s.labels))
    return out


def calibrate_head_bias(adapter: Path, held_sets: list[LabelledSet], max_length: int) -> dict[str, object]:
    """Shift the head's class biases on the held-out split (two parameters), if that helps.

    A head trained with class weights can under- or over-predict a class on one set; a bias
    shift can fix that. Whether it does is estimated honestly by 2-fold cross-validation on the
    held-out split (fit on one half, score the other, against the unshifted head on the same
    half); only a shift that wins there is fitted on all of it and folded into the head.
    """
    from safetensors.torch import load_file, save_file

    from tweet_signals.model.embedded import load_embedded, read_adapter_metadata

    tokenizer, model = load_embedded(adapter)
    logits = _held_out_logits(classifier_for(model, tokenizer, max_length), held_sets)
    rng = np.random.default_rng(0)
    folds = {k: rng.permutation(len(y)) % 2 for k, (_, y) in logits.items()}
    cv: dict[str, dict[str, list[float]]] = {"shifted": {}, "unshifted": {}}
    for fold in (0, 1):
        fit = {k: (x[folds[k] == fold], y[folds[k] == fold]) for k, (x, y) in logits.items()}
        fitted, _ = _best_bias(fit)
        for variant, bias in (("shifted", fitted), ("unshifted", np.zeros(3))):
            for k, (x, y) in logits.items():
                test = folds[k] != fold
                m = compute_metrics(y[test], (x[test] + bias).argmax(1).tolist())
                cv[variant].setdefault(k, []).append(m.macro_recall if k == "general" else m.accuracy)
    cv_means = {v: {k: float(np.mean(scores)) for k, scores in per.items()} for v, per in cv.items()}
    applied = sum(cv_means["shifted"].values()) > sum(cv_means["unshifted"].values())
    bias = _best_bias(logits)[0] if applied else np.zeros(3)
    chosen = cv_means["shifted" if applied else "unshifted"]
    after = {k: compute_metrics(y, (x + bias).argmax(1).tolist()).as_dict() for k, (x, y) in logits.items()}
    calibration: dict[str, object] = {
        "applied": applied,
        "bias_shift": bias.tolist(),
        "cv_general_macro_recall": chosen["general"],
        "cv_finance_accuracy": chosen["finance"],
        "cv_shifted": cv_means["shifted"],
        "cv_unshifted": cv_means["unshifted"],
        "held_out_after": after,
    }
    meta = {**read_adapter_metadata(adapter), "calibration": calibration}
    state = load_file(str(adapter))
    state["classifier.bias"] = state["classifier.bias"] + torch.tensor(bias, dtype=state["classifier.bias"].dtype)
    tmp = adapter.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"tweet_signals": json.dumps(meta)})
    tmp.replace(adapter)
    return calibration
