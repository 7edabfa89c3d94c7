"""The panel tear sheet: one self-contained HTML file, verdict first, then the cross-section
(IC by horizon, quantile returns, cumulative top-minus-bottom), the per-symbol table, and the
single-series charts of the symbols with the most sessions."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import polars as pl

from tweet_signals.evaluation.report import _png
from tweet_signals.storage import write_bytes_atomic

IC_HEADER = [
    *("horizon (sessions)", "mean IC", "95% interval (HAC)", "t (HAC)", "IC IR"),
    *("p", "Holm p", "sessions", "symbols a session"),
]
SYMBOL_HEADER = [
    *("symbol", "sessions", "posts", "Spearman ρ", "95% interval (block bootstrap)"),
    *("Holm p", "hit rate", "chance rate", "long/flat", "buy and hold"),
]


def _num(value: Any, fmt: str = "{:+.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def _pct(value: Any) -> str:
    return _num(value, "{:+.2%}")


def _charts(result: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, bytes] = {}
    rows = [r for r in result["horizons"] if r["n_sessions"] >= 3]
    if rows:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        labels = [f"h={r['horizon']}" for r in rows]
        means = [r["ic_mean"] for r in rows]
        errors = [
            [m - r["ic_ci_low"] for m, r in zip(means, rows, strict=True)],
            [r["ic_ci_high"] - m for m, r in zip(means, rows, strict=True)],
        ]
        ax.bar(labels, means, yerr=errors, capsize=4, color=["tab:green" if m > 0 else "tab:red" for m in means])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel("mean rank IC (95% HAC interval)")
        ax.set_title("cross-sectional rank IC by horizon (sessions ahead)")
        charts["ic_by_horizon.png"] = _png(fig)

        fig, ax = plt.subplots(figsize=(8, 3.2))
        quantiles = result["quantiles"]
        width = 0.8 / max(1, len(result["quantile_returns"]))
        for i, q in enumerate(result["quantile_returns"]):
            xs = [k + i * width for k in range(1, quantiles + 1)]
            ax.bar(
                xs,
                [q["mean_return"].get(k, float("nan")) * 1e4 for k in range(1, quantiles + 1)],
                width,
                label=f"h={q['horizon']}",
            )
        ax.set_xticks([k + width * (len(result["quantile_returns"]) - 1) / 2 for k in range(1, quantiles + 1)])
        ax.set_xticklabels([f"Q{k}" for k in range(1, quantiles + 1)])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel("mean forward return (bps)")
        ax.set_title("mean forward return by signal quantile (Q1 lowest signal)")
        ax.legend(fontsize=8)
        charts["quantile_returns.png"] = _png(fig)

    spreads = result.get("_spreads", {})
    first = result["horizons"][0]["horizon"] if result["horizons"] else None
    spread = spreads.get(first)
    if spread is not None and spread.height:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        step = spread["spread"].to_numpy() / first  # an h-session spread, spread evenly over its sessions
        ax.plot(spread["session"].to_list(), (1 + step).cumprod(), color="tab:purple")
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_ylabel("growth of 1")
        ax.set_title(f"cumulative top-minus-bottom quantile (h={first}), before costs")
        charts["top_minus_bottom.png"] = _png(fig)

    frame: pl.DataFrame | None = result.get("_frame")
    ranked = sorted((r for r in result["per_symbol"] if r["n_sessions"]), key=lambda r: -r["n_sessions"])[:6]
    if frame is not None and ranked:
        cols = 2
        rows_n = math.ceil(len(ranked) / cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(10, 2.6 * rows_n), squeeze=False)
        for ax, row in zip(axes.flat, ranked, strict=False):
            data = frame.filter(pl.col("symbol") == row["symbol"]).sort("session")
            signal = data.filter(pl.col("signal").is_not_null())
            if signal.height:
                data = data.filter(
                    (pl.col("session") >= signal["session"].min()) & (pl.col("session") <= signal["session"].max())
                )
            ax.bar(
                data["session"].to_list(), data["signal"].fill_null(float("nan")).to_list(), color="tab:blue", alpha=0.6
            )
            twin = ax.twinx()
            twin.plot(data["session"].to_list(), data["close"].to_list(), color="black", linewidth=1)
            ax.set_title(f"{row['symbol']}: signal (bars) and close", fontsize=9)
            ax.tick_params(labelsize=7)
            twin.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(ranked) :]:
            ax.axis("off")
        charts["single_series.png"] = _png(fig)
    return charts


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(charts: dict[str, bytes], name: str, caption: str) -> str:
    if name not in charts:
        return ""
    data = base64.b64encode(charts[name]).decode()
    image = f'<img alt="{name}" src="data:image/png;base64,{data}">'
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


def write_panel_report(directory: Path, result: dict[str, Any], context: dict[str, Any]) -> Path:
    """Write ``report.html`` (charts inline) and the PNGs into ``directory``; return the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = _charts(result)
    for name, data in charts.items():
        (directory / name).write_bytes(data)
    ic_rows = [
        [
            str(r["horizon"]),
            _num(r["ic_mean"]),
            f"{_num(r['ic_ci_low'])} … {_num(r['ic_ci_high'])}",
            _num(r["ic_t"], "{:+.2f}"),
            _num(r["ic_ir"], "{:+.2f}"),
            _num(r["p_value"], "{:.3f}"),
            _num(r.get("p_holm"), "{:.3f}"),
            str(r["n_sessions"]),
            _num(r["mean_symbols"], "{:.1f}"),
        ]
        for r in result["horizons"]
    ]
    q_rows = [
        [str(q["horizon"])]
        + [_pct(q["mean_return"].get(k)) for k in range(1, result["quantiles"] + 1)]
        + [_pct(q["spread_mean"]), _num(q["spread_t"], "{:+.2f}")]
        for q in result["quantile_returns"]
    ]
    sym_rows = [
        [
            html.escape(r["symbol"]),
            str(r["n_sessions"]),
            str(r["n_posts"]),
            _num(r["spearman"]),
            f"{_num(r.get('spearman_ci_low'))} … {_num(r.get('spearman_ci_high'))}"
            if r["spearman"] is not None
            else "–",
            _num(r.get("p_holm"), "{:.3f}"),
            _num(r["hit_rate"], "{:.1%}"),
            _num(r["hit_rate_base"], "{:.1%}"),
            _pct(r.get("strategy_return")),
            _pct(r.get("buy_and_hold_return")),
        ]
        for r in result["per_symbol"]
    ]
    split = result.get("split")
    split_html = ""
    if split:
        rows = []
        for a, b in zip(split["in_sample"]["horizons"], split["out_of_sample"]["horizons"], strict=True):
            rows.append(
                [
                    f"mean IC, h={a['horizon']}",
                    f"{_num(a['ic_mean'])} (t {_num(a['ic_t'], '{:+.2f}')})",
                    f"{_num(b['ic_mean'])} (t {_num(b['ic_t'], '{:+.2f}')})",
                ]
            )
        for key, label in (
            ("spread_mean", "top minus bottom, first horizon"),
            ("strategy_return_mean", "long/flat, mean over symbols"),
            ("buy_and_hold_return_mean", "buy and hold, mean over symbols"),
        ):
            rows.append([label, _pct(split["in_sample"][key]), _pct(split["out_of_sample"][key])])
        rows.append(["sessions", str(split["in_sample"]["sessions"]), str(split["out_of_sample"]["sessions"])])
        split_html = (
            f"<h2>In sample vs out of sample (split at {split['split']})</h2>"
            f"<p>The long/flat rule's threshold ({split['fitted_threshold']:+g}) and z-score window "
            f"({split['fitted_window']} sessions) were chosen on the in-sample part only "
            "(best mean Sharpe across symbols).</p>" + _table(["figure", "in sample", "out of sample"], rows)
        )
    facts = [[html.escape(str(k)), html.escape(str(v))] for k, v in context.items()]
    turnover = ", ".join(f"Q{k} {v:.0%}" for k, v in result["turnover"].items() if not math.isnan(v))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tweet-signals panel evaluation</title>
<style>body{{font-family:sans-serif;max-width:1040px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0}}th,td{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
th{{background:#f4f4f4}}td:first-child{{text-align:left}}
.verdict{{background:#f4f4f4;padding:1em;border-left:4px solid #555}}img{{max-width:100%}}</style></head>
<body><h1>Does the signal rank {result["n_symbols"]} symbols by their future returns?</h1>
<p class="verdict">{html.escape(result["verdict"])}</p>
<h2>Cross-section: rank IC by horizon</h2>
{_table(IC_HEADER, ic_rows)}
{_figure(charts, "ic_by_horizon.png", "mean cross-sectional rank IC with Newey-West intervals")}
<h2>Quantile returns ({result["returns"]})</h2>
{_table(["horizon"] + [f"Q{k}" for k in range(1, result["quantiles"] + 1)] + ["top − bottom", "t (HAC)"], q_rows)}
<p>Turnover of the quantile portfolios (share of names new each session): {turnover or "–"}.</p>
{_figure(charts, "quantile_returns.png", "mean forward return per quantile")}
{_figure(charts, "top_minus_bottom.png", "cumulative top-minus-bottom quantile")}
{split_html}
<h2>Per symbol (next session)</h2>
{_table(SYMBOL_HEADER, sym_rows)}
<h2>Single series</h2>
{_figure(charts, "single_series.png", "signal and close of the symbols with the most sessions")}
<h2>Inputs</h2>{_table(["", ""], facts)}
<h2>How to read this</h2>
<p>The signal of session t uses only posts that count for t (after the close they roll to t+1) and is compared
with returns from close t onwards; nothing later enters it. IC intervals and t-statistics use Newey-West errors
(forward returns over h sessions overlap); per-symbol intervals come from a stationary block bootstrap. The report
makes {result["tests"]["n"]} tests ({html.escape(result["tests"]["family"])}); Holm's adjustment keeps the chance of
any false claim among them at 5%. Sessions with fewer than {result["min_posts"]} posts carry no signal, and a session
needs {result["min_symbols"]} symbols with a signal to enter the cross-section.</p>
</body></html>"""
    path = directory / "report.html"
    write_bytes_atomic(page.encode("utf-8"), path)
    return path
