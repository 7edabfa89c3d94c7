"""``train-model`` and ``evaluate-model``: fine-tune the embedded model; score any model on labelled texts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tweet_signals.cli.common import console, fail, quiet_prefect, run_flow, write_json
from tweet_signals.model.base import ModelUnavailableError
from tweet_signals.training.config import TrainConfig

JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")]


def train_model_cmd(
    shared_data: Annotated[str | None, typer.Option(help="Folder holding the labelled sets")] = None,
    output: Annotated[
        str | None,
        typer.Option(help="Adapter file, or a directory for the adapter and its model card (run it with --model DIR)"),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs (default: the model card's)")] = TrainConfig.epochs,
    epoch_rows: Annotated[
        int, typer.Option(help="Rows drawn per epoch, shared between the domains")
    ] = TrainConfig.epoch_rows,
    seed: int = TrainConfig.seed,
    limit: Annotated[int | None, typer.Option(help="Rows per set (quick smoke runs)")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate (AdamW, linear decay; default: the model card's)")
    ] = None,
    extra: Annotated[
        list[Path] | None,
        typer.Option(help="A desk's own labelled CSV (repeatable); half of each epoch and of the selection score"),
    ] = None,
    text_column: Annotated[
        list[str] | None, typer.Option(help="Text column of the --extra files (once for all, or once per file)")
    ] = None,
    label_column: Annotated[
        list[str] | None, typer.Option(help="Label column of the --extra files (once for all, or once per file)")
    ] = None,
    label_map: Annotated[
        list[str] | None,
        typer.Option(help="e.g. 0=negative,1=neutral,2=positive,9=drop, for the --extra files (once, or per file)"),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(help="Start from this adapter ('embedded': the committed one) instead of the bare encoder"),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--sets",
            help="Train only on this set or domain (repeatable; e.g. sentimix, trader); every validation split is "
            "still scored, and --extra files always train",
        ),
    ] = None,
    verbose: bool = True,
) -> None:
    """Fine-tune the embedded model on ../shared/data (and your own labelled posts) and write its
    adapter and model card."""
    quiet_prefect(verbose)
    from tweet_signals.model.embedded_files import ADAPTER_PATH, adapter_file
    from tweet_signals.training.labelled_sets import extra_specs, selected_sets
    from tweet_signals.training.trainer import default_shared_data

    shared = Path(shared_data) if shared_data else default_shared_data()
    target = Path(output) if output else ADAPTER_PATH
    start = ADAPTER_PATH if init == "embedded" else Path(init) if init else None
    try:
        if not (shared / "tweeteval-sentiment-val").is_dir():
            raise ValueError(
                f"{shared} does not hold the labelled sets (no tweeteval-sentiment-val); see --shared-data"
            )
        selected_sets(sets or [])  # an unknown name fails here, before anything is read
        specs = extra_specs(extra or [], text_column or [], label_column or [], label_map or [])
        for spec in specs:
            spec.read()  # every file checked before anything trains
        if start is not None and not start.is_file():
            raise ValueError(f"{start}: no such adapter (--init)")
        if start is not None and start.resolve() == adapter_file(target).resolve():
            raise ValueError("--init and --output are the same file; write the fine-tune somewhere else")
    except (ValueError, OSError) as exc:
        fail(str(exc))
    from tweet_signals.flows.train_model import train_model

    extras = [
        {"path": str(s.path), "text_column": s.text_column, "label_column": s.label_column, "label_map": s.label_map}
        for s in specs
    ]
    ok, report, message = run_flow(
        train_model,
        str(shared),
        str(target),
        epochs,
        seed,
        limit,
        TrainConfig.learning_rate if learning_rate is None else learning_rate,
        epoch_rows,
        extras,
        str(start) if start else None,
        sets or None,
    )
    if not ok:
        fail(message, 1)
    sys.stdout.write(
        json.dumps({"score": report["final_score"], "validation": report["final_validation"]}, indent=1) + "\n"
    )


def evaluate_model(
    texts: Annotated[Path | None, typer.Option(help="One text per line")] = None,
    labels: Annotated[Path | None, typer.Option(help="One label per line, aligned with --texts")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="CSV with a text and a label column")] = None,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Annotated[
        str | None, typer.Option(help="e.g. 0=negative,1=neutral,2=positive; VALUE=drop leaves those rows out")
    ] = None,
    model: Annotated[str, typer.Option(help="'embedded' or a local Hugging Face model directory")] = "embedded",
    held_out: Annotated[
        str | None,
        typer.Option(
            help="A validation split of the embedded model's training (e.g. tweeteval-val, financial-news, "
            "pyfin-cashtags, stocktwits, sentimix) or a check set (market-tweets-2020, indian-stocktwits-nse)"
        ),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Accuracy, macro recall, macro F1 and the confusion matrix of a model on labelled texts, next
    to two baselines (the majority class; a bullish/bearish/buy/sell/long/short keyword rule); for
    gold labels that are only bullish/bearish, also the share called neutral and the directional
    accuracy among the rest."""
    from tweet_signals.model.base import LABELS
    from tweet_signals.model.config import AnalyzerConfig
    from tweet_signals.model.loader import build_analyzer
    from tweet_signals.model.reference import resolve_model
    from tweet_signals.stages.analyze import choose_engine
    from tweet_signals.training.baselines import baseline_figures, majority_class
    from tweet_signals.training.metrics import (
        DROP,
        LabelledRows,
        binary_figures,
        compute_metrics,
        map_labels,
        parse_label_map,
        read_labelled_csv,
        read_labelled_lines,
    )

    majority: tuple[int, str] | None = None
    try:
        if held_out is not None:
            from tweet_signals.training.trainer import held_out as held_out_set

            split, most_class, counted_in = held_out_set(held_out)
            majority = (most_class, counted_in)
            names = [LABELS[y] for y in split.labels]
            rows = LabelledRows(split.texts, names, [f"held-out {held_out} #{i + 1}" for i in range(len(names))])
        elif csv_path is not None:
            rows = read_labelled_csv(csv_path, text_column, label_column)
        elif texts is not None and labels is not None:
            rows = read_labelled_lines(texts, labels)
        else:
            fail(
                "give --texts FILE --labels FILE, --csv FILE --text-column NAME --label-column NAME, "
                "or --held-out NAME (a training validation split)"
            )
        mapped = map_labels(rows.labels, parse_label_map(label_map), rows.origins)
        kept = [i for i, label in enumerate(mapped) if label != DROP]
        if not kept:
            fail(f"no labelled rows left: all {len(mapped)} were dropped or empty")
        analyzer = build_analyzer(choose_engine(AnalyzerConfig(model=resolve_model(model))))
    except (ValueError, OSError, ModelUnavailableError) as exc:
        fail(str(exc))
    for note in rows.notes:
        console.print(f"[yellow]note:[/] {note}")
    truth = [mapped[i] for i in kept]
    scored = [rows.texts[i] for i in kept]
    probs = analyzer.predict_proba(scored)
    metrics = compute_metrics(truth, probs.argmax(axis=1).tolist())
    binary = binary_figures(truth, probs)
    # A held-out split's majority class is its training pool's; a file has no training pool here,
    # so its own majority stands in (which flatters that baseline).
    most, of = majority or (majority_class(truth), "evaluated set")
    baselines = baseline_figures(scored, truth, most, of)
    dropped = len(mapped) - len(kept)
    if as_json:
        write_json(
            {
                **metrics.as_dict(),
                "model": analyzer.model_id,
                "dropped": dropped,
                **(binary or {}),
                "baselines": baselines,
            }
        )
        return
    out = Console(width=None if sys.stdout.isatty() else 130)
    title = f"{analyzer.model_id} on {metrics.n} texts" + (f" ({dropped} dropped by --label-map)" if dropped else "")
    summary = Table(title=title)
    summary.add_column("")
    for col in ("accuracy", "macro recall", "macro F1"):
        summary.add_column(col, justify="right")
    summary.add_row("model", f"{metrics.accuracy:.4f}", f"{metrics.macro_recall:.4f}", f"{metrics.macro_f1:.4f}")
    majority_row = baselines["majority"]
    keyword_row = baselines["keyword"]
    for name, figures in (
        (f"majority ({majority_row['class']}, of the {of})", majority_row),
        ("keyword rule", keyword_row),
    ):
        summary.add_row(name, *(f"{float(str(figures[k])):.4f}" for k in ("accuracy", "macro_recall", "macro_f1")))
    out.print(summary)
    if binary is not None:
        polar = Table(title="gold labels are only negative/positive (bearish/bullish)")
        for col in ("called neutral", "directional accuracy (the rest)", "sign of p_pos - p_neg"):
            polar.add_column(col, justify="right")
        directional = binary["directional_accuracy"]
        polar.add_row(
            f"{binary['called_neutral']:.1%}",
            "–" if directional is None else f"{directional:.1%}",
            f"{binary['sign_accuracy']:.1%}",
        )
        out.print(polar)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in LABELS:
        confusion.add_column(label, justify="right")
    for label, counts in zip(LABELS, metrics.confusion, strict=True):
        confusion.add_row(label, *map(str, counts))
    out.print(confusion)


def model_card(
    model: Annotated[
        str, typer.Option(help="'embedded' (the committed adapter) or a directory written by train-model --output")
    ] = "embedded",
    shared_data: Annotated[str | None, typer.Option(help="Folder holding the labelled sets")] = None,
) -> None:
    """Re-evaluate a trained adapter on the current validation splits and checks, with the majority
    and keyword baselines, and rewrite the model card beside it (no training; the weights stay)."""
    from tweet_signals.model.reference import resolve_model
    from tweet_signals.training.card import refresh
    from tweet_signals.training.trainer import default_shared_data

    ref = resolve_model(model)
    adapter = ref.path if ref.kind == "embedded" else None
    if adapter is None or not adapter.is_file():
        fail(f"{model}: not the embedded model nor a directory written by train-model --output")
        return
    shared = Path(shared_data) if shared_data else default_shared_data()
    card = adapter.with_name("MODEL_CARD.md")
    try:
        report = refresh(adapter, card, shared)
    except (ValueError, OSError) as exc:
        fail(str(exc))
        return
    console.print(f"wrote {card} (selection score under the current terms {report['refreshed']['score']:.4f})")


def register(app: typer.Typer) -> None:
    app.command("train-model")(train_model_cmd)
    app.command("evaluate-model")(evaluate_model)
    app.command("model-card")(model_card)
