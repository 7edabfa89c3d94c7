"""Training data and the train-model command: every label scheme mapped as stated, TweetEval
validation tweets and near-duplicate copies kept out of training, SentiMix's own split, domain
shares, a desk's own labels end to end, and a floor on the committed model's figures."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from conftest import CLI, SHARED_DATA, newcomer_env
from typer.testing import CliRunner

from tweet_signals.cli import app
from tweet_signals.training.config import TrainConfig
from tweet_signals.training.duplicates import (
    duplicate_groups,
    is_copy,
    keep_groups_together,
    key_index,
    near_duplicate_keys,
    overlap_key,
)
from tweet_signals.training.labelled_sets import (
    CHECK_SETS,
    DESK,
    GENERAL,
    HINGLISH,
    NEWS,
    SENTIMIX,
    TRADER,
    TRAINING_SETS,
    ExtraSpec,
    LabelledSet,
    extra_specs,
    read_set,
    score_labels,
    selected_sets,
    stratified_split,
    tweeteval_validation,
)
from tweet_signals.training.trainer import (
    SELECTION,
    class_weights,
    epoch_sample,
    prepare_data,
    selection_score,
    selection_terms,
)

SPECS = {spec.name: spec for spec in TRAINING_SETS + CHECK_SETS}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # (rows kept, negative, neutral, positive) after the stated map; drops and duplicates removed
        ("pyfin-cashtags", (6036, 1516, 1924, 2596)),  # 1 positive, 2 neutral, 3 negative, 0 uncertain dropped
        ("stocktwits-2017", (1183, 209, 0, 974)),  # Bullish/Bearish: no neutral
        ("sts-gold", (2025, 1393, 0, 632)),  # 0 negative, 4 positive
        ("crowdflower-apple", (2936, 1073, 1514, 349)),  # 1 negative, 3 neutral, 5 positive
        ("semeval2017-task5", (1028, 334, 71, 623)),  # scores at ±0.1
        ("financial-news", (9543, 1442, 6178, 1923)),  # 0 Bearish, 1 Bullish, 2 Neutral
        # 16,999 rows; 187 are the same text once SentiMix's tokenised links are joined again
        (SENTIMIX, (16812, 4937, 6332, 5543)),
    ],
)
def test_every_label_scheme_maps_as_stated(name: str, expected: tuple[int, int, int, int]) -> None:
    labelled = read_set(SPECS[name], SHARED_DATA)
    counts = tuple(labelled.labels.count(c) for c in range(3))
    assert (len(labelled.texts), *counts) == expected
    assert labelled.polar == (counts[1] == 0)


def test_every_training_and_check_set_reads() -> None:
    for spec in TRAINING_SETS + CHECK_SETS:
        labelled = read_set(spec, SHARED_DATA)
        assert len(labelled.texts) == len(labelled.labels) > 400, spec.name
        assert len(set(labelled.texts)) == len(labelled.texts), spec.name  # de-duplicated by text


def test_score_thresholds_and_a_bad_score_names_its_line() -> None:
    assert score_labels(["0.5", "0.1", "0.05", "-0.1", "-0.11"], ["f:2"] * 5) == [2, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="f:7: label 'high'"):
        score_labels(["high"], ["f:7"])


def test_indian_check_set_loses_the_label_word_its_texts_end_with() -> None:
    check = read_set(SPECS["indian-stocktwits-nse"], SHARED_DATA)
    assert "$ICICIBANK.NSE Trade in action & Very close to to the targets" in check.texts
    # Only posts whose own last word is the tag word ("MACD- Bullish" + tag) still end with it.
    assert sum(t.endswith((" Bullish", " Bearish")) for t in check.texts) < len(check.texts) / 100
    assert any(t.endswith("highly bullish.") for t in check.texts)


def test_overlap_key_sees_through_masking_escapes_and_entities() -> None:
    # TweetEval masks mentions, drops quotes and links, and keeps "\u2019" escapes and "&amp;"
    # where the SemEval copy has the characters themselves.
    assert overlap_key('"@jack Dark Souls 3: launch date http://t.co/x"') == overlap_key(
        "@user dark souls 3 launch date"
    )
    assert overlap_key("Rui En\\u2019s ex boyfriend was framed for murder probably\\u002c by the rich guy.") == (
        overlap_key("Rui En’s ex boyfriend was framed for murder probably, by the rich guy.")
    )
    assert overlap_key("in Raleigh on October 17 &amp; 18 and I may") == overlap_key(
        "in Raleigh on October 17 & 18 and I may"
    )
    assert overlap_key("RT @x: Don't stop") == overlap_key("dont stop!") == "dont stop"
    assert near_duplicate_keys("😂😂 http://t.co/x") == set()  # nothing to match on: never matched


def test_tweeteval_copies_with_escapes_and_entities_are_found_in_semeval() -> None:
    """The two published cases: TweetEval validation tweets whose SemEval copy has the decoded
    ``\u2019`` or ``&`` were missed by an exact key; every set's TweetEval copies leave it."""
    tweeteval = tweeteval_validation(SHARED_DATA)
    semeval = key_index(read_set(SPECS["semeval-2013-2016"], SHARED_DATA).texts)
    apostrophe = next(t for t in tweeteval.texts if t.startswith("Omg this show is so predictable"))
    ampersand = next(t for t in tweeteval.texts if t.startswith("Eric Church is headlining"))
    assert "\\u2019" in apostrophe and "&amp;" in ampersand
    assert is_copy(apostrophe, semeval) and is_copy(ampersand, semeval)
    found = sum(is_copy(t, semeval) for t in tweeteval.texts)
    assert found >= 1990  # of 2,000; the exact key matched 1,699


def test_a_straddling_retweet_pair_stays_together_in_training() -> None:
    texts = [f"post number {i} about the market today and tomorrow" for i in range(40)]
    texts[7] = "Nifty breaks out above the range, targets 20k next week for sure"
    texts[8] = "RT @trader: Nifty breaks out above the range, targets 20k next week for sure http://t.co/a"
    texts[9] = "Nifty breaks out above the range, targets 20k next week for su…"  # a truncated copy
    groups = duplicate_groups(texts)
    assert groups[7] == groups[8] == groups[9] and len(set(groups)) == 38
    labels = [i % 2 * 2 for i in range(40)]
    for seed in range(30):
        train, held = stratified_split(labels, 0.25, seed)
        kept_train, kept_held = keep_groups_together(train, held, groups)
        assert set(kept_held) <= set(held)  # a subset of the seeded draw
        assert sorted(kept_train + kept_held) == list(range(40))
        sides = {7 in kept_held, 8 in kept_held, 9 in kept_held}
        assert len(sides) == 1, (seed, kept_held)  # never straddles


@pytest.mark.slow
def test_prepared_data_keeps_every_validation_copy_out_of_training() -> None:
    data = prepare_data(SHARED_DATA, TrainConfig())
    held = key_index(t for v in data.validation + data.checks for t in v.texts)
    assert not any(is_copy(t, held) for pool in data.train for t in pool.texts)
    names = {v.name for v in data.validation}
    assert {"tweeteval-val", "financial-news", "pyfin-cashtags", "stocktwits", SENTIMIX} <= names
    assert {name for name, _, _ in SELECTION} <= names
    assert {pool.domain for pool in data.train} == {GENERAL, TRADER, NEWS, HINGLISH}
    assert all(len(v.texts) <= 1000 for v in data.validation if v.name not in ("stocktwits", SENTIMIX, "tweeteval-val"))
    sources = {str(s["name"]): s for s in data.sources}
    semeval = sources["semeval-2013-2016"]
    assert int(str(semeval["removed_tweeteval_overlap"])) > 2000 and len(str(semeval["sha256"])) == 64
    # Retweets straddled sanders' plain draw; whole groups now stay in training.
    assert int(str(sources["sanders"]["validation_groups_kept_in_training"])) > 50
    for s in data.sources[1:]:
        assert int(str(s["rows_trained"])) + int(str(s["validation_rows"])) + int(
            str(s["removed_validation_copies"])
        ) == int(str(s["rows"])), s["name"]
    # SentiMix keeps its own split: dev is the validation split, nothing carved out of train.
    sentimix = next(v for v in data.validation if v.name == SENTIMIX)
    assert len(sentimix.texts) == 2992 and set(sentimix.splits) == {"dev"}
    assert all(s == "train" for s in next(p for p in data.train if p.name == SENTIMIX).splits)
    assert not any("https //" in t for t in sentimix.texts)  # its tokenised links joined again


def test_stratified_split_holds_out_each_class_in_proportion_up_to_the_cap() -> None:
    labels = [0] * 300 + [1] * 600 + [2] * 100
    train, held = stratified_split(labels, 0.1, 13)
    assert sorted(train + held) == list(range(1000))
    assert [sum(1 for i in held if labels[i] == c) for c in range(3)] == [30, 60, 10]
    _, capped = stratified_split(labels, 0.1, 13, cap=50)
    assert [sum(1 for i in capped if labels[i] == c) for c in range(3)] == [15, 30, 5]
    assert stratified_split(labels, 0.1, 13) == (train, held)  # reproducible


def test_class_weights_teach_every_class_of_a_skewed_set() -> None:
    weights = class_weights([2] * 84 + [0] * 16, cap=4.0)
    assert set(weights) == {0, 2}  # a binary set has no neutral to weigh
    assert 84 * weights[2] == pytest.approx(16 * weights[0])  # each class weighs the same in total
    assert class_weights([2] * 99 + [0], cap=4.0)[0] == 4.0  # capped: one row cannot dominate a batch


def _pool(name: str, domain: str, n: int) -> LabelledSet:
    return LabelledSet(name, domain, [f"{name} {i}" for i in range(n)], [i % 3 for i in range(n)])


def test_epoch_sample_gives_each_domain_its_share() -> None:
    pools = [_pool("a", GENERAL, 5000), _pool("b", GENERAL, 1000), _pool("c", TRADER, 300), _pool("d", NEWS, 2000)]
    config = TrainConfig(epoch_rows=10_000, domain_shares={GENERAL: 0.35, TRADER: 0.45, NEWS: 0.2})
    sample = epoch_sample(pools, config, random.Random(0))
    counts = [sum(1 for p, _ in sample if p == i) for i in range(len(pools))]
    assert counts[0] + counts[1] == pytest.approx(3500, abs=2) and counts[0] == pytest.approx(5 * counts[1], abs=2)
    assert counts[2] == pytest.approx(4500, abs=2)  # a small pool is repeated to fill its share
    assert len({r for p, r in sample if p == 2}) == 300  # every row of it, not a few many times
    assert counts[3] == pytest.approx(2000, abs=2)
    with_desk = epoch_sample([*pools, _pool("e", DESK, 50)], config, random.Random(0))
    assert sum(1 for p, _ in with_desk if p == 4) == pytest.approx(5000, abs=2)
    # Sets left out (empty pools): the others share the epoch in proportion; the desk keeps half.
    traders_only = [_pool("a", GENERAL, 0), _pool("c", TRADER, 300), _pool("e", DESK, 50)]
    sample = epoch_sample(traders_only, config, random.Random(0))
    assert [sum(1 for p, _ in sample if p == i) for i in range(3)] == [0, 5000, 5000]
    # --limit caps an epoch at limit rows per pool that has rows, not per set read.
    limited = epoch_sample(traders_only, TrainConfig(epoch_rows=10_000, limit=40), random.Random(0))
    assert len(limited) == 80


def test_sets_pick_training_sets_by_name_or_domain() -> None:
    traders = {spec.name for spec in TRAINING_SETS if spec.domain == TRADER}
    assert len(traders) > 3 and selected_sets([TRADER]) == traders
    assert selected_sets([SENTIMIX, "financial-news"]) == {SENTIMIX, "financial-news"}
    with pytest.raises(ValueError, match=r"'crypto' is neither a training set nor a domain; choose from .*sentimix"):
        selected_sets(["crypto"])


def test_selection_counts_only_the_terms_the_trained_sets_feed() -> None:
    names = [spec.name for spec in TRAINING_SETS]
    even: dict[str, object] = {"macro_recall": 0.5, "macro_f1": 0.5, "accuracy": 0.5}
    validation: dict[str, dict[str, object]] = {name: even for name in [*names, "tweeteval-val", "stocktwits"]}
    validation[SENTIMIX] = {"macro_recall": 0.7, "macro_f1": 0.6, "accuracy": 0.65}

    def but(*kept: str) -> frozenset[str]:
        return frozenset(names) - set(kept)

    full = selection_terms(validation)  # every set trained: the full score
    assert [t[:2] for t in full] == [t[:2] for t in SELECTION]
    assert [t[2] for t in full] == pytest.approx([t[2] for t in SELECTION])
    assert selection_terms(validation, but(SENTIMIX)) == [(SENTIMIX, "macro_f1", 1.0)]
    assert selection_score(validation, but(SENTIMIX)) == pytest.approx(0.6)
    # TweetEval validation counts while its source (SemEval) trains; "stocktwits" while either set does.
    assert [t[0] for t in selection_terms(validation, but("semeval-2013-2016", "stocktwits-2017"))] == [
        "tweeteval-val",
        "stocktwits",
    ]
    # No term of the score left: each trained set's own split, by macro recall.
    assert selection_terms(validation, but("airline", "sanders")) == [
        ("airline", "macro_recall", 0.5),
        ("sanders", "macro_recall", 0.5),
    ]
    with_desk = validation | {"extra:desk.csv": {"macro_recall": 0.9}}
    traders = frozenset(names) - selected_sets([TRADER])
    # The desk's files are half of the score, whatever else is trained.
    assert selection_terms(with_desk, traders) == [
        ("pyfin-cashtags", "macro_recall", 0.25),
        ("stocktwits", "macro_recall", 0.25),
        ("extra:desk.csv", "macro_recall", 0.5),
    ]
    assert selection_terms(with_desk, frozenset(names)) == [("extra:desk.csv", "macro_recall", 1.0)]
    with pytest.raises(ValueError, match="no validation split to select an epoch on"):
        selection_score({"tweeteval-val": even}, frozenset(names))


def test_extra_files_pair_with_their_options_and_bad_ones_are_located(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    specs = extra_specs([a, b], ["post"], ["call", "tag"], [])
    assert [(s.text_column, s.label_column, s.label_map) for s in specs] == [
        ("post", "call", None),
        ("post", "tag", None),
    ]
    with pytest.raises(ValueError, match="given 3 times for 2"):
        extra_specs([a, b], ["x", "y", "z"], [], [])
    a.write_bytes("text,label\ncafé up,UP\nflat,9\ndown,DOWN\n".encode("latin-1"))
    desk = ExtraSpec(a, label_map="UP=positive,DOWN=negative,9=drop").read()  # Latin-1 read, 9 dropped
    assert desk.texts == ["café up", "down"] and desk.labels == [2, 0] and desk.domain == DESK and desk.polar
    one = tmp_path / "one.csv"
    one.write_text("text,label\nup,UP\n", encoding="utf-8")
    with pytest.raises(ValueError, match="need at least 2"):
        ExtraSpec(one, label_map="UP=positive").read()
    with pytest.raises(ValueError, match=f"{b}: no such file"):
        ExtraSpec(b).read()


@pytest.mark.slow
def test_train_model_with_a_desks_own_labels_end_to_end(tmp_path: Path) -> None:
    """The real command on a few rows plus an ``--extra`` file, as a newcomer runs it (no
    Prefect server configured, so it starts a temporary one): the adapter and its model card land
    in the output directory, every log record reaches the server before it stops, and
    ``--model DIR`` runs the result."""
    from tweet_signals.model.embedded import read_adapter_metadata

    desk = tmp_path / "desk.csv"
    rows = [("NIFTY gap up, buying the dip", "B"), ("BANKNIFTY breakdown, shorting", "S"), ("flat open, waiting", "N")]
    desk.write_text("post;call\n" + "".join(f"{t} {i};{y}\n" for i in range(20) for t, y in rows), encoding="utf-8")
    output = tmp_path / "desk-model"
    cache = tmp_path / "cache"
    env = {**newcomer_env(tmp_path), "PREFECT_LOGGING_LEVEL": "INFO", "TWEET_SIGNALS_CACHE": str(cache)}
    args = [*CLI, "train-model", "--output", str(output), "--epochs", "1", "--limit", "40", "--epoch-rows", "400"]
    args += ["--extra", str(desk), "--text-column", "post", "--label-column", "call"]
    args += ["--label-map", "B=positive,S=negative,N=neutral", "--init", "embedded", "--sets", "trader"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 1" in done.stderr and "Error logging to API" not in done.stderr
    report = json.loads(done.stdout)
    assert "extra:desk.csv" in report["validation"] and "tweeteval-val" in report["validation"]
    meta = read_adapter_metadata(output / "embedded-sentiment.safetensors")
    desk_source = next(s for s in meta["sources"] if s["name"] == "extra:desk.csv")
    assert desk_source["rows"] == 60 and len(desk_source["sha256"]) == 64
    assert meta["init"].endswith("embedded-sentiment.safetensors")
    assert meta["symbols"] == "spelled"  # trained on emoji written as words, so it is run that way
    # --sets trader: the trader sets and the desk's file train; every other set is read, split and
    # scored, never trained on.
    sources = {s["name"]: s for s in meta["sources"]}
    assert sources["pyfin-cashtags"]["rows_trained"] > 0 and "left_out_by_sets" not in sources["pyfin-cashtags"]
    assert sources["semeval-2013-2016"]["rows_trained"] == 0 and sources["semeval-2013-2016"]["left_out_by_sets"] > 0
    assert meta["config"]["sets"] == ["trader"] and set(report["validation"]) >= {"tweeteval-val", SENTIMIX}
    assert [t["set"] for t in meta["selection"]] == ["pyfin-cashtags", "stocktwits", "extra:desk.csv"]
    card = (output / "MODEL_CARD.md").read_text()
    assert "extra:desk.csv" in card and "| desk |" in card and "Limits" in card
    assert "left out by `--sets`" in card and "| tweeteval-val § |" in card and "| pyfin-cashtags |" in card
    assert "not trained on in this run (§); the starting model" in card and "--sets trader" in card
    assert not list(cache.rglob("merged-*")), "training keeps no merged copy of an adapter it rewrites"
    scored = subprocess.run(
        [
            *CLI,
            *("evaluate-model", "--csv", str(desk), "--text-column", "post", "--label-column", "call"),
            *("--label-map", "B=positive,S=negative,N=neutral", "--model", str(output), "--json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert json.loads(scored.stdout)["model"].endswith(":desk-model")
    assert len(list(cache.rglob("merged-*"))) == 1  # running it caches the merged weights once


@pytest.mark.slow
def test_train_model_refuses_bad_extra_files_before_training(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nup,UP\ndown,sideways\n", encoding="utf-8")
    cases = [
        (["--extra", str(bad), "--label-map", "UP=positive"], f"{bad}:3: label 'sideways'"),
        (["--extra", str(tmp_path / "none.csv")], "no such file"),
        (["--extra", str(bad), "--text-column", "post"], "no column(s) ['post']"),
        (
            [
                "--extra",
                str(bad),
                "--extra",
                str(bad),
                "--text-column",
                "a",
                "--text-column",
                "b",
                "--text-column",
                "c",
            ],
            "given 3 times for 2",
        ),
        (["--sets", "crypto"], "--sets 'crypto' is neither a training set nor a domain; choose from general, hinglish"),
    ]
    for extra, message in cases:
        done = subprocess.run(
            [*CLI, "train-model", "--output", str(tmp_path / "out"), *extra],
            capture_output=True,
            text=True,
            env=newcomer_env(tmp_path),
            timeout=300,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert message in " ".join(done.stderr.split()), done.stderr
    assert not (tmp_path / "out").exists()  # refused before anything trained


@pytest.mark.slow
def test_evaluate_model_on_a_training_validation_split() -> None:
    result = CliRunner().invoke(app, ["evaluate-model", "--held-out", "stocktwits-2017", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n"] == 116  # 10% of the 1,183 posts as drawn, less 2 kept with their copies in training
    assert "called_neutral" in out and "directional_accuracy" in out  # Bullish/Bearish gold labels
    majority, keyword = out["baselines"]["majority"], out["baselines"]["keyword"]
    assert (majority["class"], majority["of"], majority["macro_recall"]) == ("positive", "training pool", 0.5)
    assert 0 < keyword["accuracy"] < 1
    unknown = CliRunner().invoke(app, ["evaluate-model", "--held-out", "general"])
    assert unknown.exit_code == 2 and "tweeteval-val" in unknown.output
