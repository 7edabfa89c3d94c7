"""What a person sees after a run: the signal-over-time chart and the run summary in markdown."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import polars as pl

from tweet_signals.storage import AnyPath, Storage, link, location, uri, write_bytes_atomic


def signal_history(storage: Storage, until: date, sessions: int = 60) -> pl.DataFrame:
    """Signals of up to ``sessions`` sessions ending at ``until``, read from storage."""
    keep = storage.partitions("signals", "signals.parquet", until)[-sessions:]
    return pl.concat([pl.read_parquet(uri(path)) for _, path in keep]) if keep else pl.DataFrame()


def signal_chart_png(history: pl.DataFrame) -> bytes:
    """Weighted score and post volume per symbol over sessions, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for (symbol,), group in history.sort("session").group_by("symbol", maintain_order=True):
        sessions = group["session"].to_list()
        top.plot(sessions, group["weighted_score"].to_list(), marker="o", label=symbol)
        bottom.plot(sessions, group["n_posts"].to_list(), marker=".", label=symbol)
    top.axhline(0, color="grey", linewidth=0.8)
    top.set_ylabel("engagement-weighted score")
    top.set_title("tweet-signals: sentiment per symbol and session")
    top.legend(loc="upper left", fontsize="small")
    bottom.set_ylabel("posts")
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
    history = signal_history(storage, run_date)
    if history.is_empty():
        return None
    return write_bytes_atomic(signal_chart_png(history), storage.signals(run_date).with_name("chart.png"))


def summary_markdown(manifest: dict[str, Any], chart: AnyPath | None) -> str:
    c, d, a = manifest["collect"], manifest["dedupe"], manifest["analyze"]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in manifest["timings"].items())
    lines = [
        f"# tweet-signals {manifest['run_date']}: {manifest['status']}",
        "",
        f"- **model:** `{manifest['model']['id']}` (revision `{manifest['model']['revision']}`)",
        f"- **collect** ({c['status']}): {c['records_in']} records in, {c['posts']} in the session window, "
        f"{c['out_of_window']} for other sessions, {c['quarantined']} quarantined; repairs {c['repairs'] or 'none'}",
        f"- **dedupe** ({d['status']}): {d['posts_in']} in → {d['posts_out']} out "
        f"({d['duplicate_ids']} duplicate ids, {d['retweets']} retweets, {d['near_duplicates']} near-duplicates)",
        f"- **analyze:** {a['chunks']} chunks: {a['computed']} computed, {a['reused']} reused, "
        f"{len(a['failed'])} failed {a['failed'] or ''}; {a['workers']} worker(s); "
        f"{a['tweets_per_s'] or '-'} tweets/s",
        f"- **timings:** {timings}",
    ]
    if manifest.get("signals"):
        lines.append(f"- **signals:** `{manifest['signals']['path']}`")
    if chart is not None:
        lines += ["", f"Chart of the signal over time: [{chart.name}]({link(chart)})"]
    if manifest.get("evaluation"):
        e = manifest["evaluation"]
        report = f"[report]({link(location(e['report']))})"
        lines += ["", f"Evaluation of {e['symbol']} against prices: {e['verdict']} {report}"]
    return "\n".join(lines)
