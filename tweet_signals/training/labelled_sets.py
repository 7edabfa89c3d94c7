"""The labelled sets the embedded model trains and is selected on: where each lives, how its labels
map onto ``LABELS``, which domain it stands for, and a desk's own files (``--extra``).

Every label scheme is spelled out here, never guessed: binary sets carry no neutral, score sets
become classes at a stated threshold, and "uncertain" rows are dropped. A set that ships its own
train/dev split (SentiMix) keeps it. Copies of posts across and within sets are handled in
``duplicates`` and ``trainer.prepare_data``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tweet_signals.training.metrics import DROP, map_labels, parse_label_map, read_labelled_csv, read_labelled_lines

# The three domains the product reads, Romanised Hindi mixed with English (which Indian traders
# write), plus a desk's own labelled posts.
GENERAL, TRADER, NEWS, HINGLISH, DESK = "general", "trader", "news", "hinglish", "desk"

# A score in [-1, 1] above this is positive, below its negative is negative, else neutral.
SCORE_THRESHOLD = 0.1
SCORE_RULE = f"score > {SCORE_THRESHOLD} positive, < -{SCORE_THRESHOLD} negative, else neutral"  # as the card says it


@dataclass(frozen=True)
class SetSpec:
    """One labelled set in ``shared/data/labelled-posts`` (or elsewhere under ``shared/data``)."""

    name: str
    path: str  # relative to shared/data
    domain: str
    label_map: str | None  # a ``--label-map`` spec; None for score sets (thresholded)
    licence: str
    text_column: str = "text"
    label_column: str = "label"
    # A set with its own split: rows whose value in this column is ``train`` are the training pool,
    # the rest (``dev``) its validation split; no validation is carved out of its training rows.
    split_column: str | None = None

    @property
    def scored(self) -> bool:
        return self.label_map is None


LP = "labelled-posts"
SENTIMIX = "sentimix"  # SemEval-2020 Task 9 Hinglish: train 13,999, dev 3,000 (its own split)
TRAINING_SETS: tuple[SetSpec, ...] = (
    SetSpec(
        "semeval-2013-2016",
        f"{LP}/semeval-2013-2016-task4a-twitter/data.csv",
        GENERAL,
        "negative=negative,neutral=neutral,positive=positive",
        "CC BY 3.0 annotations; Twitter terms for the texts (no redistribution)",
    ),
    SetSpec(
        "airline",
        f"{LP}/twitter-us-airline-sentiment/data.csv",
        GENERAL,
        "negative=negative,neutral=neutral,positive=positive",
        "CC BY-NC-SA 4.0 (non-commercial)",
    ),
    SetSpec(
        "sanders",
        f"{LP}/sanders-twitter-corpus/data.csv",
        GENERAL,
        "negative=negative,neutral=neutral,positive=positive",
        "none stated; Twitter terms (internal use)",
    ),
    SetSpec(
        "sentistrength",
        f"{LP}/sentistrength-twitter4242/data.csv",
        GENERAL,
        "negative=negative,neutral=neutral,positive=positive",
        "research use (authors' distribution)",
    ),
    SetSpec("sts-gold", f"{LP}/sts-gold/data.csv", GENERAL, "0=negative,4=positive", "none stated; research use"),
    SetSpec(
        "pyfin-cashtags",
        f"{LP}/pyfin-sentiment-tweets-wilksch/data.csv",
        TRADER,
        "1=positive,2=neutral,3=negative,0=drop",
        "none for the data; Twitter terms (internal use)",
    ),
    SetSpec(
        "stocktwits-2020",
        f"{LP}/stocktwits-selftagged-amoooma-2020/data.csv",
        TRADER,
        "Bullish=positive,Bearish=negative",
        "repository MIT (code); StockTwits API terms for the texts (internal use)",
    ),
    SetSpec(
        "stocktwits-2017",
        f"{LP}/stocktwits-selftagged-pfaff-2017/data.csv",
        TRADER,
        "Bullish=positive,Bearish=negative",
        "none stated; StockTwits API terms (internal use)",
    ),
    SetSpec(
        "semeval2017-task5",
        f"{LP}/semeval2017-task5-microblogs/data.csv",
        TRADER,
        None,
        "CC BY-NC-SA 4.0 annotations (non-commercial); Twitter/StockTwits terms for the texts",
    ),
    SetSpec("fiqa2018", f"{LP}/fiqa2018-task1-microblogs/data.csv", TRADER, None, "none stated; research use only"),
    SetSpec(
        "surge-ai-stocks",
        f"{LP}/surge-ai-stock-sentiment/data.csv",
        TRADER,
        "Positive=positive,Negative=negative",
        "MIT; Twitter terms for the texts",
    ),
    SetSpec(
        "crowdflower-apple",
        f"{LP}/crowdflower-apple-twitter-sentiment/data.csv",
        TRADER,
        "1=negative,3=neutral,5=positive,not_relevant=drop",
        "not stated (CrowdFlower Data for Everyone; treat as non-commercial)",
    ),
    SetSpec(
        "financial-news",
        "twitter-financial-news-sentiment-train/sent_train.csv",
        NEWS,
        "0=negative,1=positive,2=neutral",
        "MIT (zeroshot/twitter-financial-news-sentiment)",
    ),
    SetSpec(
        SENTIMIX,
        f"{LP}/sentimix-hinglish-semeval2020/data.csv",
        HINGLISH,
        "negative=negative,neutral=neutral,positive=positive",
        "none stated; research use; Twitter terms for the texts",
        split_column="split",
    ),
)

# Sets used only to judge the model, never trained on.
TWEETEVAL_VAL = "tweeteval-sentiment-val"
CHECK_SETS: tuple[SetSpec, ...] = (
    SetSpec(
        "market-tweets-2020",
        "taborda-stock-market-tweets-labelled/tweets_labelled_09042020_16072020.csv",
        TRADER,
        "negative=negative,neutral=neutral,positive=positive",
        "CC BY 4.0 (Taborda et al.)",
        label_column="sentiment",
    ),
    SetSpec(
        "indian-stocktwits-nse",
        "indian-stocktwits-nse-labelled/tweets.csv",
        TRADER,
        "Bullish=positive,Bearish=negative",
        "none stated, provenance unverified (internal testing only)",
        text_column="tweet",
        label_column="sentiment",
    ),
)


@dataclass(frozen=True)
class LabelledSet:
    """Texts with label indices into ``LABELS``; ``polar`` when the gold labels have no neutral."""

    name: str
    domain: str
    texts: list[str]
    labels: list[int]
    polar: bool = False
    splits: tuple[str, ...] = ()  # per row, for a set with its own split (see ``SetSpec.split_column``)

    def subset(self, indices: Sequence[int], name: str | None = None) -> LabelledSet:
        return LabelledSet(
            name or self.name,
            self.domain,
            [self.texts[i] for i in indices],
            [self.labels[i] for i in indices],
            self.polar,
            tuple(self.splits[i] for i in indices) if self.splits else (),
        )

    def given_split(self) -> tuple[list[int], list[int]] | None:
        """(train, validation) indices of a set with its own split; None for the others."""
        if not self.splits:
            return None
        train = [i for i, s in enumerate(self.splits) if s == "train"]
        return train, [i for i, s in enumerate(self.splits) if s != "train"]


def selected_sets(names: Sequence[str]) -> frozenset[str]:
    """The training sets that ``names`` (set names or domains, as ``train-model --sets`` takes
    them) pick; a name that is neither fails with the list of both."""
    chosen: set[str] = set()
    for name in names:
        picked = {spec.name for spec in TRAINING_SETS if name in (spec.name, spec.domain)}
        if not picked:
            known = sorted({spec.domain for spec in TRAINING_SETS}) + sorted(spec.name for spec in TRAINING_SETS)
            raise ValueError(f"--sets {name!r} is neither a training set nor a domain; choose from {', '.join(known)}")
        chosen |= picked
    return frozenset(chosen)


def score_labels(raw: Sequence[str], origins: Sequence[str]) -> list[int]:
    """Scores in [-1, 1] → classes at ``SCORE_THRESHOLD``; a non-number is an error naming its line."""
    out = []
    for value, where in zip(raw, origins, strict=True):
        try:
            score = float(value)
        except ValueError:
            raise ValueError(f"{where}: label {value!r} is not a score in [-1, 1]") from None
        out.append(2 if score > SCORE_THRESHOLD else 0 if score < -SCORE_THRESHOLD else 1)
    return out


def _first_of_each_text(texts: Sequence[str]) -> list[int]:
    """Indices of the first row of every distinct text (a later copy's label is ignored)."""
    seen: set[str] = set()
    keep = []
    for i, t in enumerate(texts):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return keep


# SentiMix's texts are the task's tokens joined by spaces, so its links read "https // t . co / AbC":
# written back as one link, which ``preprocess_text`` masks as it masks every other set's.
_SPACED_LINK = re.compile(r"https?\s*:?\s*//\s*(?:t\s*\.?\s*co?\b)?\s*(?:/\s*\w*)?\s*…?")


def read_set(spec: SetSpec, root: Path) -> LabelledSet:
    """A set read in place and mapped onto ``LABELS``; dropped values left out."""
    more = [spec.split_column] if spec.split_column else []
    rows = read_labelled_csv(root / spec.path, spec.text_column, spec.label_column, more)
    if spec.scored:
        labels = score_labels(rows.labels, rows.origins)
    else:
        labels = map_labels(rows.labels, parse_label_map(spec.label_map), rows.origins)
    texts = rows.texts
    if spec.name == "indian-stocktwits-nse":
        # Almost every text ends with its own label word: strip it or the check measures nothing.
        texts = [re.sub(r"\s+(Bullish|Bearish)\s*$", "", t) for t in texts]
    if spec.name == SENTIMIX:
        texts = [_SPACED_LINK.sub("https://t.co/x", t) for t in texts]
    splits = rows.columns[spec.split_column] if spec.split_column else []
    kept = [i for i, y in enumerate(labels) if y != DROP]
    if splits:
        # A text in both splits stays in validation: a given dev split is kept whole where it can be.
        kept.sort(key=lambda i: splits[i] == "train")
    kept = sorted(kept[i] for i in _first_of_each_text([texts[i] for i in kept]))
    return LabelledSet(
        spec.name,
        spec.domain,
        [texts[i] for i in kept],
        [labels[i] for i in kept],
        polar=1 not in (labels[i] for i in kept),
        splits=tuple(splits[i] for i in kept) if splits else (),
    )


def tweeteval_validation(root: Path) -> LabelledSet:
    """TweetEval's sentiment validation split (0 negative, 1 neutral, 2 positive): the general
    domain's selection set, never trained on."""
    rows = read_labelled_lines(root / TWEETEVAL_VAL / "val_text.txt", root / TWEETEVAL_VAL / "val_labels.txt")
    labels = map_labels(rows.labels, parse_label_map("0=negative,1=neutral,2=positive"), rows.origins)
    return LabelledSet("tweeteval-val", GENERAL, rows.texts, labels)


def stratified_split(
    labels: Sequence[int], fraction: float, seed: int, cap: int | None = None
) -> tuple[list[int], list[int]]:
    """Indices (train, held out): the same fraction of every class held out (at most ``cap`` rows
    in all, shared in proportion), reproducibly."""
    rng = random.Random(seed)
    total_held = round(len(labels) * fraction)
    scale = min(1.0, cap / total_held) if cap and total_held else 1.0
    train, held = [], []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        k = round(len(idx) * fraction * scale)
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


@dataclass(frozen=True)
class ExtraSpec:
    """A desk's own labelled CSV (``train-model --extra``)."""

    path: Path
    text_column: str = "text"
    label_column: str = "label"
    label_map: str | None = None

    def read(self) -> LabelledSet:
        """Read and map the file; any problem is a ``ValueError`` naming the file and line."""
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such file (--extra)")
        rows = read_labelled_csv(self.path, self.text_column, self.label_column)
        labels = map_labels(rows.labels, parse_label_map(self.label_map), rows.origins)
        kept = [i for i, y in enumerate(labels) if y != DROP]
        kept = [kept[i] for i in _first_of_each_text([rows.texts[i] for i in kept])]
        texts, labels = [rows.texts[i] for i in kept], [labels[i] for i in kept]
        if len(texts) < 2:
            raise ValueError(f"{self.path}: {len(texts)} labelled row(s) left after --label-map; need at least 2")
        return LabelledSet(f"extra:{self.path.name}", DESK, texts, labels, polar=1 not in labels)


def extra_specs(
    files: Sequence[Path], text_columns: Sequence[str], label_columns: Sequence[str], label_maps: Sequence[str]
) -> list[ExtraSpec]:
    """Pair each ``--extra`` with its column and map options: given once, an option applies to
    every file; otherwise it must be given once per file, in the same order."""

    def per_file(values: Sequence[str], option: str, default: str | None) -> list[str | None]:
        if not values:
            return [default] * len(files)
        if len(values) == 1:
            return [values[0]] * len(files)
        if len(values) != len(files):
            raise ValueError(
                f"{option} was given {len(values)} times for {len(files)} --extra files; give it once or once per file"
            )
        return list(values)

    texts = per_file(text_columns, "--text-column", "text")
    labels = per_file(label_columns, "--label-column", "label")
    maps = per_file(label_maps, "--label-map", None)
    return [
        ExtraSpec(Path(f), t or "text", y or "label", m) for f, t, y, m in zip(files, texts, labels, maps, strict=True)
    ]
