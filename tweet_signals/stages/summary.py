"""What a person sees after a run: the signal-over-time chart and the run summary in markdown."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import polars as pl

from tweet_signals.stages.signals import recent_signals
from tweet_signals.storage import AnyPath, Storage, link, location, write_bytes_atomic

CHART_SESSIONS = 60  # sessions the run's chart shows


def signal_chart_png(history: pl.DataFrame) -> bytes:
    """Weighted score and post volume per symbol over sessions, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]}
    )
    has_attention = "attention_z" in history.columns
    for (symbol,), group in history.sort("session").group_by("symbol", maintain_order=True):
        sessions = group["session"].to_list()
        top.plot(sessions, group["weighted_score"].to_list(), marker="o", label=symbol)
        middle.plot(sessions, group["n_posts"].to_list(), marker=".", label=symbol)
        if has_attention:
            bottom.plot(sessions, group["attention_z"].fill_null(float("nan")).to_list(), marker=".", label=symbol)
    top.axhline(0, color="grey", linewidth=0.8)
    top.set_ylabel("engagement-weighted score")
    top.set_title("tweet-signals: sentiment and attention per symbol and session")
    top.legend(loc="upper left", fontsize="small")
    middle.set_ylabel("posts")
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_ylabel("attention (σ)")
    import matplotlib.dates as mdates

    bottom.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10))
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_chart(storage: Storage, run_date: date) -> AnyPath | None:
    history = recent_signals(storage, run_date, CHART_SESSIONS)
    if history.is_empty():
        return None
    return write_bytes_atomic(signal_chart_png(history), storage.signals(run_date).with_name("chart.png"))


# The signals table as people read it: what and which way first, then the evidence.
LEADING_COLUMNS = ("symbol", "signal", "bullishness", "weighted_score", "agreement", "n_posts", "attention_z")


def root_tag(root: str) -> str:
    """A short, key-safe name for a data root: its last folder plus a hash of the whole URL, so
    artifacts of a test root never become the "latest" of a production one."""
    import hashlib
    import re

    last = re.sub(r"[^a-z0-9]+", "-", str(root).rstrip("/").rsplit("/", 1)[-1].lower()).strip("-") or "root"
    return f"{last[:24]}-{hashlib.sha256(str(root).encode()).hexdigest()[:6]}"


def signals_rows(signals: pl.DataFrame, digits: int = 3) -> list[dict[str, Any]]:
    """Rows for a table artifact: symbol and signal first, floats rounded, dates as text."""
    ordered = [c for c in LEADING_COLUMNS if c in signals.columns]
    frame = signals.select(*ordered, *(c for c in signals.columns if c not in ordered))
    frame = frame.with_columns(
        [pl.col(c).round(digits) for c, t in frame.schema.items() if t.is_float()]
        + [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t.is_temporal()]
    )
    return frame.to_dicts()


def attention_text(z: float | None) -> str:
    """Post volume against the symbol's previous sessions, as people say it: "+2.1σ" ("–" while
    there is too little history)."""
    return "–" if z is None else f"{z:+.1f}σ"


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value:+.2f}" if isinstance(value, float) else str(value)


def summary_markdown(
    manifest: dict[str, Any], signals: pl.DataFrame | None, chart_png: bytes | None, data_root: str
) -> str:
    """The run summary: the verdict per symbol, the chart (inline, so the UI shows it), then how
    each stage went."""
    c, d, a = manifest["collect"], manifest["dedupe"], manifest["analyze"]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in manifest["timings"].items())
    lines = [f"# tweet-signals {manifest['run_date']}: {manifest['status']}", "", f"Data root: `{data_root}`", ""]
    if signals is not None and signals.height:
        lines += [
            "| symbol | signal | attention | bullishness | weighted score | agreement | posts |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in signals.sort("symbol").iter_rows(named=True):
            cells = [row["symbol"], f"**{row['signal']}**", attention_text(row.get("attention_z"))]
            cells += [_cell(row[k]) for k in LEADING_COLUMNS[2:5]]
            lines.append("| " + " | ".join([*cells, str(row["n_posts"])]) + " |")
        lines.append("")
    if chart_png:
        import base64

        lines += [f"![signal over time](data:image/png;base64,{base64.b64encode(chart_png).decode('ascii')})", ""]
    deaths = a.get("worker_deaths") or []
    lines += [
        f"- **model:** `{manifest['model']['id']}` (revision `{manifest['model']['revision']}`)",
        f"- **collect** ({c['status']}): {c['records_in']} records in, {c['posts']} in the session window, "
        f"{c['out_of_window']} for other sessions, {c['quarantined']} quarantined; repairs {c['repairs'] or 'none'}",
        f"- **dedupe** ({d['status']}): {d['posts_in']} in → {d['posts_out']} out "
        f"({d['duplicate_ids']} duplicate ids, {d['retweets']} retweets, {d['near_duplicates']} near-duplicates)",
        f"- **analyze:** {a['chunks']} chunks: {a['computed']} computed, {a['reused']} reused, "
        f"{len(a['failed'])} failed {a['failed'] or ''}; {a['workers']} worker(s); "
        f"{a['tweets_per_s'] or '-'} tweets/s" + (f"; {len(deaths)} worker death(s), pool rebuilt" if deaths else ""),
        f"- **timings:** {timings}",
    ]
    if manifest.get("signals"):
        lines.append(f"- **signals:** `{manifest['signals']['path']}`")
    if manifest.get("evaluation"):
        e = manifest["evaluation"]
        report = f"[report]({link(location(e['report']))})"
        lines += ["", f"Evaluation of {e['symbol']} against prices: {e['verdict']} {report}"]
    return "\n".join(lines)


def backfill_markdown(start: str, end: str, report: dict[str, Any], data_root: str) -> str:
    """What a backfill did with each session: computed, skipped as complete, or failed (why)."""
    outcome = {d: "computed" for d in report["completed"]}
    outcome.update({d: "skipped: already complete" for d in report["skipped"]})
    outcome.update({d: f"recomputed what was lost ({r})" for d, r in report.get("repaired", {}).items()})
    outcome.update({d: f"**failed:** {why}" for d, why in report["failed"].items()})
    lines = [
        f"# Backfill {start} … {end}",
        "",
        f"Data root: `{data_root}`. {len(report['completed'])} computed, {len(report['skipped'])} skipped "
        f"(already complete), {len(report['failed'])} failed.",
        "",
        "| session | outcome |",
        "|---|---|",
        *(f"| {day} | {outcome[day]} |" for day in sorted(outcome)),
    ]
    return "\n".join(lines)
