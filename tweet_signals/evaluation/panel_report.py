"""The panel tear sheet: one self-contained HTML file, verdict first, then the cross-section
(IC by horizon, quantile returns, cumulative top-minus-bottom), the rest of the factor tear sheet
(IC through time and by month, IC decay, cumulative returns per quantile, turnover and rank
autocorrelation, the top-minus-bottom portfolio, coverage), the per-symbol table, and the
single-series charts of the symbols with the most sessions."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import polars as pl

from tweet_signals.evaluation.report import _png
from tweet_signals.evaluation.targets import is_return, label
from tweet_signals.storage import write_bytes_atomic

IC_HEADER = [
    *("horizon (sessions)", "mean IC", "95% interval (every h-th session)", "t", "IC IR"),
    *("p", "Holm p", "sessions", "symbols a session"),
]
SYMBOL_HEADER = [
    *("symbol", "sessions", "posts", "Spearman ρ", "95% interval (block bootstrap)"),
    *("BH q", "hit rate", "chance rate", "PT p", "long/flat Sharpe", "buy-and-hold Sharpe", "random timing p"),
]


SPREAD_HEADER = ["top − bottom", "t", "Holm p", "per session", "traded", "net per session"]


def _symbol_header(pool: int) -> list[str]:
    """The per-symbol table's header; pooled posts count once for every session that pools them."""
    if pool <= 1:
        return SYMBOL_HEADER
    return [f"posts (each counted in {pool} pooled sessions)" if h == "posts" else h for h in SYMBOL_HEADER]


def _pool_text(result: dict[str, Any]) -> str:
    pool = result.get("pool", 1)
    return f" (each session's signal pools the posts of the {pool} sessions ending at it)" if pool > 1 else ""


def _movement_html(movement: dict[str, Any] | None) -> str:
    """The next-session direction task (up/down with a dead band), sign and trailing-mean rules."""
    if not movement:
        return ""
    rows = [
        [
            html.escape(name),
            str(part.get("n", 0)),
            _num(part.get("accuracy"), "{:.1%}"),
            _num(part.get("mcc"), "{:+.3f}"),
            _num(part.get("majority_accuracy"), "{:.1%}"),
        ]
        for name, part in (
            ("sign of the signal", movement.get("sign", {})),
            ("signal above its trailing mean", movement.get("trailing", {})),
        )
    ]
    band = f"{movement['down']:+.2%} … {movement['up']:+.2%}"
    return f"<h2>Next-session direction (moves inside {band} dropped)</h2>" + _table(
        ["rule", "calls", "accuracy", "MCC", "always the majority class"], rows
    )


def _composite_html(composite: dict[str, Any] | None) -> str:
    """The composite's weights (fitted in sample) and its IC on either side of the split."""
    if not composite:
        return ""
    h = composite["horizon"]
    fitted = composite["fitted_on"]
    rows = [[html.escape(c), _num(w, "{:+.6f}"), _num(w * 10_000, "{:+.2f}")] for c, w in composite["weights"].items()]
    return (
        f"<h2>Composite of {html.escape(', '.join(composite['columns']))}</h2>"
        f"<p>Ridge regression (alpha {composite['alpha']:g}) of the {h}-session forward return in excess of the "
        f"session's mean on the columns z-scored across each session's symbols, fitted on {fitted['sessions']} "
        f"in-sample sessions ({fitted['first']} … {fitted['last']}, {fitted['rows']:,} rows; forward returns reaching "
        f"the split purged) and applied unchanged out of sample. Mean IC at h={h}: "
        f"{_num(composite['in_sample_ic'])} in sample (fitted there), {_num(composite['out_of_sample_ic'])} out of "
        "sample.</p>" + _table(["column", f"weight ({h}-session return per SD)", "in bps"], rows)
    )


def _num(value: Any, fmt: str = "{:+.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def _pct(value: Any) -> str:
    return _num(value, "{:+.2%}")


def _value(value: Any, target: str) -> str:
    """A quantile mean or spread in the target's units (log points for volume, else percent)."""
    return _num(value, "{:+.3f}") if target == "volume" else _pct(value)


def _target(result: dict[str, Any]) -> str:
    return str(result.get("target") or "return")


def _title(result: dict[str, Any]) -> str:
    """The question the report answers, naming the target."""
    n, target = result["n_symbols"], _target(result)
    if is_return(target):
        return f"Does the signal rank {n} symbols by their future returns?"
    when = "next-session" if result["horizons"] and result["horizons"][0]["horizon"] == 1 else "future"
    return f"Does the signal rank {n} symbols by their {when} {label(target)}?"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date_axis(ax: Any) -> None:
    """Short, non-overlapping date labels on ``ax``'s x axis, whatever the span."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _ic_series_chart(series: pl.DataFrame, horizon: int) -> bytes:
    """Per-session rank IC (thin) and its rolling mean (thick) through time."""
    import matplotlib.pyplot as plt

    from tweet_signals.evaluation.tearsheet import ROLLING_SESSIONS

    fig, ax = plt.subplots(figsize=(10, 3.2))
    sessions = series["session"].to_list()
    ax.plot(sessions, series["ic"].to_list(), color="tab:blue", linewidth=0.7, alpha=0.6, label="session IC")
    rolling = series.filter(pl.col("ic_rolling").is_not_null())
    if rolling.height:
        ax.plot(
            rolling["session"].to_list(),
            rolling["ic_rolling"].to_list(),
            color="tab:green",
            linewidth=2,
            label=f"mean of the last {ROLLING_SESSIONS} sessions",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("rank IC")
    ax.set_title(f"cross-sectional rank IC through time (h={horizon})")
    ax.legend(fontsize=8, loc="upper left")
    _date_axis(ax)
    return _png(fig)


def _monthly_ic_chart(months: list[dict[str, Any]]) -> bytes:
    """Mean IC per month as a heatmap: a row per year, a column per month, zero at the centre of a
    diverging colour scale so positive and negative months read as opposite colours."""
    import matplotlib.pyplot as plt
    import numpy as np

    years = sorted({m["year"] for m in months})
    grid = np.full((len(years), 12), np.nan)
    for m in months:
        grid[years.index(m["year"]), m["month"] - 1] = m["ic_mean"]
    finite = grid[np.isfinite(grid)]
    bound = float(np.max(np.abs(finite))) if finite.size and np.max(np.abs(finite)) > 0 else 0.01
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.55 * len(years)))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    for (row, col), value in np.ndenumerate(grid):
        if np.isfinite(value):
            # Dark text on the pale middle of the scale, white on its saturated ends.
            colour = "white" if abs(value) > 0.65 * bound else "black"
            ax.text(col, row, f"{value:+.3f}", ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(12))
    ax.set_xticklabels(MONTHS)
    ax.set_yticks(range(len(years)))
    ax.set_yticklabels([str(y) for y in years])
    ax.set_title("mean rank IC by month (blank: no session with a cross-section)")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    return _png(fig)


def _ic_decay_chart(decay: list[dict[str, Any]]) -> bytes:
    """Mean rank IC by delay with 95% intervals from the plain t."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    delays = [r["delay"] for r in decay]
    means = [r["ic_mean"] for r in decay]
    # The interval's half-width is 1.96 standard errors, and the standard error is mean / t.
    errors = [1.96 * abs(r["ic_mean"] / r["ic_t"]) if r["ic_t"] and not math.isnan(r["ic_t"]) else 0.0 for r in decay]
    ax.bar(delays, means, yerr=errors, capsize=3, color=["tab:green" if m > 0 else "tab:red" for m in means])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(delays)
    ax.set_xlabel("delay d: signal at t, return from close t+d to close t+d+1")
    ax.set_ylabel("mean rank IC (95% interval)")
    ax.set_title("IC decay: what is left when the trade starts d sessions late")
    return _png(fig)


def _coverage_chart(coverage: pl.DataFrame) -> bytes:
    """Symbols with a signal (left axis) and posts (right axis) per session."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    sessions = coverage["session"].to_list()
    symbols, posts = coverage["n_symbols"].to_list(), coverage["n_posts"].to_list()
    ax.fill_between(sessions, symbols, step="mid", color="tab:blue", alpha=0.25, linewidth=0)
    ax.plot(sessions, symbols, color="tab:blue", linewidth=1.2, drawstyle="steps-mid")
    ax.set_ylabel("symbols with a signal", color="tab:blue")
    ax.tick_params(axis="y", colors="tab:blue")
    twin = ax.twinx()
    twin.plot(sessions, posts, color="tab:orange", linewidth=1.0)
    twin.set_ylabel("posts (all symbols)", color="tab:orange")
    twin.tick_params(axis="y", colors="tab:orange")
    # Different headroom on the two axes keeps the lines apart when coverage is steady (both at
    # their maximum most of the time).
    ax.set_ylim(0, max(1, max(symbols)) * 1.5)
    twin.set_ylim(0, max(1, max(posts)) * 1.1)
    ax.set_title("coverage: symbols with a signal and posts per session")
    _date_axis(ax)
    return _png(fig)


def _quantile_cumulative_chart(cumulative: pl.DataFrame) -> bytes:
    """Growth of 1 in each quantile, one line per quantile from the lowest signal to the highest."""
    import matplotlib.pyplot as plt
    import numpy as np

    quantiles = sorted(cumulative["quantile"].unique().to_list())
    # An ordered scale from blue (lowest signal) to red (highest) whose neighbours differ in hue,
    # without the pale ends of most diverging scales, so every line stays visible on white.
    colours = plt.get_cmap("turbo")(np.linspace(0.08, 0.92, len(quantiles)))
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for colour, quantile in zip(colours, quantiles, strict=True):
        rows = cumulative.filter(pl.col("quantile") == quantile).sort("session")
        ax.plot(rows["session"].to_list(), rows["growth"].to_list(), color=colour, linewidth=1.3, label=f"Q{quantile}")
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_ylabel("growth of 1")
    ax.set_title("cumulative next-session return per quantile (equal weights, rebalanced each session, before costs)")
    ax.legend(fontsize=8, ncol=min(len(quantiles), 10), loc="upper left")
    _date_axis(ax)
    return _png(fig)


def _tear_sheet_charts(sheet: dict[str, Any]) -> dict[str, bytes]:
    """The charts of the tear sheet's figures; a figure without data gets no chart."""
    charts: dict[str, bytes] = {}
    series = sheet.get("_ic_series")
    if series is not None and series.height >= 2:
        charts["ic_series.png"] = _ic_series_chart(series, sheet["ic_horizon"])
    if sheet.get("monthly_ic"):
        charts["monthly_ic.png"] = _monthly_ic_chart(sheet["monthly_ic"])
    decay = [r for r in sheet.get("ic_decay", []) if r["n_sessions"] and not math.isnan(r["ic_mean"])]
    if decay:
        charts["ic_decay.png"] = _ic_decay_chart(decay)
    coverage = sheet.get("_coverage")
    if coverage is not None and coverage.height >= 2:
        charts["coverage.png"] = _coverage_chart(coverage)
    cumulative = sheet.get("_quantile_cumulative")
    if cumulative is not None and cumulative.height:
        charts["quantile_cumulative.png"] = _quantile_cumulative_chart(cumulative)
    return charts


def _charts(result: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, bytes] = {}
    rows = [r for r in result["horizons"] if r["n_sessions"] >= 3]
    if rows:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        positions = list(range(len(rows)))
        means = [r["ic_mean"] for r in rows]
        ax.bar(positions, means, color=["tab:green" if m > 0 else "tab:red" for m in means])
        # The interval is drawn from its ends, not as error bars around the mean: for h > 1 it comes
        # from a sub-sample, so it need not be centred on (or even contain) the full-sample mean.
        lows, highs = [r["ic_ci_low"] for r in rows], [r["ic_ci_high"] for r in rows]
        ax.vlines(positions, lows, highs, color="black", linewidth=1)
        ax.scatter(positions + positions, lows + highs, marker="_", s=120, color="black")
        ax.set_xticks(positions)
        ax.set_xticklabels([f"h={r['horizon']}" for r in rows])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel("mean rank IC (95% interval)")
        ax.set_title("cross-sectional rank IC by horizon (sessions ahead)")
        charts["ic_by_horizon.png"] = _png(fig)

        fig, ax = plt.subplots(figsize=(8, 3.2))
        quantiles = result["quantiles"]
        target = _target(result)
        measured = "return" if is_return(target) else label(target)
        # Returns and ranges are fractions of a price (shown in bps); volume is in log points.
        scale, unit = (1.0, "log points") if target == "volume" else (1e4, "bps")
        width = 0.8 / max(1, len(result["quantile_returns"]))
        for i, q in enumerate(result["quantile_returns"]):
            xs = [k + i * width for k in range(1, quantiles + 1)]
            ax.bar(
                xs,
                [q["mean_return"].get(k, float("nan")) * scale for k in range(1, quantiles + 1)],
                width,
                label=f"h={q['horizon']}",
            )
        ax.set_xticks([k + width * (len(result["quantile_returns"]) - 1) / 2 for k in range(1, quantiles + 1)])
        ax.set_xticklabels([f"Q{k}" for k in range(1, quantiles + 1)])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(f"mean forward {measured} ({unit})")
        ax.set_title(f"mean forward {measured} by signal quantile (Q1 lowest signal)")
        ax.legend(fontsize=8)
        charts["quantile_returns.png"] = _png(fig)

    spreads = result.get("_spreads", {})
    first = result["horizons"][0]["horizon"] if result["horizons"] else None
    spread = spreads.get(first)
    # Growth of 1 compounds returns; a spread of ranges or volumes compounds into nothing meaningful.
    if spread is not None and spread.height and is_return(_target(result)):
        fig, ax = plt.subplots(figsize=(8, 3.2))
        step = spread["spread"].to_numpy() / first  # an h-session spread, spread evenly over its sessions
        ax.plot(spread["session"].to_list(), (1 + step).cumprod(), color="tab:purple")
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_ylabel("growth of 1")
        ax.set_title(f"cumulative top-minus-bottom quantile (h={first}), before costs")
        fig.autofmt_xdate()  # a year or more of sessions: slanted dates do not overlap
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
    charts.update(_tear_sheet_charts(result.get("tear_sheet", {})))
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


def _tear_sheet_html(sheet: dict[str, Any], charts: dict[str, bytes], quantiles: int, target: str = "return") -> str:
    """The tear sheet's sections: IC through time, IC decay, quantile portfolios, coverage. For a
    target other than the return, the quantiles' next-session means of it, without the growth
    of 1 and the spread book (they compound and trade returns)."""
    if not sheet:
        return ""
    decay = sheet.get("ic_decay", [])
    decay_rows = [
        ["mean IC", *(_num(r["ic_mean"]) for r in decay)],
        ["t", *(_num(r["ic_t"], "{:+.2f}") for r in decay)],
        ["sessions", *(str(r["n_sessions"]) for r in decay)],
    ]
    turnover = sheet.get("turnover_by_horizon", {})
    autocorrelation = sheet.get("rank_autocorrelation", {})
    churn_rows = [
        [str(h)]
        + [_num(turnover.get(h, {}).get(k), "{:.0%}") for k in range(1, quantiles + 1)]
        + [_num(autocorrelation.get(h), "{:+.3f}")]
        for h in sorted(set(turnover) | set(autocorrelation))
    ]
    book = sheet.get("spread_portfolio", {})
    book_rows = [
        [
            _num(book.get("sharpe"), "{:+.2f}"),
            _pct(book.get("annual_return")),
            _pct(book.get("max_drawdown")),
            str(book.get("sessions", 0)),
        ]
    ]
    means = sheet.get("quantile_next_return", {})
    mean_rows = [
        ["mean a session"] + [_value(means.get("mean", {}).get(k), target) for k in range(1, quantiles + 1)],
        ["growth of 1"] + [_num(means.get("final_growth", {}).get(k), "{:.3f}") for k in range(1, quantiles + 1)],
    ]
    if is_return(target):
        book_html = (
            "<p>Top-minus-bottom book held one session at a time, before costs (annualised over 252 sessions):</p>"
            + _table(["Sharpe", "annual return", "max drawdown", "sessions"], book_rows)
        )
    else:
        mean_rows = mean_rows[:1]
        book_html = (
            f"<p>Means of the next session's {html.escape(label(target))}. No growth of 1 and no top-minus-bottom "
            "book: they compound and trade returns.</p>"
        )
    cover = sheet.get("coverage", {})
    cover_rows = [
        [
            str(cover.get("sessions", 0)),
            _num(cover.get("median_symbols"), "{:.1f}"),
            str(cover.get("min_symbols", "–")),
            _num(cover.get("median_posts"), "{:.0f}"),
        ]
    ]
    horizon = sheet.get("ic_horizon", 1)
    heatmap_caption = "mean rank IC per calendar month (year rows, month columns)"
    decay_caption = "mean rank IC by delay with plain-t 95% intervals (one-session returns do not overlap)"
    decayed = (
        "one-session return d sessions later" if is_return(target) else f"{html.escape(label(target))} of session t+d+1"
    )
    return f"""<h2>Rank IC through time (h={horizon})</h2>
{_figure(charts, "ic_series.png", "per-session rank IC and its rolling mean")}
{_figure(charts, "monthly_ic.png", heatmap_caption)}
{"" if sheet.get("monthly_ic") else "<p>No session has a cross-section at this horizon: –</p>"}
<h2>IC decay (signal at t, {decayed})</h2>
{_table(["delay d", *(str(r["delay"]) for r in decay)], decay_rows) if decay else "<p>–</p>"}
{_figure(charts, "ic_decay.png", decay_caption)}
<h2>Quantile portfolios (next session)</h2>
{_table(["", *(f"Q{k}" for k in range(1, quantiles + 1))], mean_rows)}
{_figure(charts, "quantile_cumulative.png", "growth of 1 per quantile")}
{book_html}
<p>Turnover (share of a quantile's names not in it h sessions before) and factor rank autocorrelation
(Spearman correlation of the ranking with the one h sessions before; 1: the ranking does not change):</p>
{_table(["lag h", *(f"Q{k} turnover" for k in range(1, quantiles + 1)), "rank autocorrelation"], churn_rows)}
<h2>Coverage</h2>
{_table(["sessions", "median symbols", "fewest symbols", "median posts"], cover_rows)}
{_figure(charts, "coverage.png", "symbols with a signal and posts per session")}"""


def _quantile_heading(result: dict[str, Any]) -> str:
    """The quantile table's heading: returns (and their basis), or the target's values."""
    target = _target(result)
    if is_return(target):
        return f"<h2>Quantile returns ({html.escape(result['returns'])})</h2>"
    excess = f", relative to {result['benchmark']}" if result.get("benchmark") else ""
    return f"<h2>Quantile means of the forward {html.escape(label(target))}{html.escape(excess)}</h2>"


def _quantile_note(result: dict[str, Any], turnover: str) -> str:
    """What the quantile table's figures are; rates and costs exist for returns only."""
    rotation = f"Turnover of the quantile portfolios (share of names new each session): {turnover or '–'}."
    target = _target(result)
    if is_return(target):
        return (
            "<p>Quantile means are h-session returns. Per session: the constant rate that compounds to the "
            f"h-session spread; net: after {result.get('cost_bps', 0):g} bps on every unit traded, a top-minus-bottom "
            f"book rebalanced every h sessions trading the share shown. {rotation}</p>"
        )
    units = "log points" if target == "volume" else "fractions of the price, shown in percent"
    return (
        f"<p>Quantile means are of the target over h sessions ({html.escape(result.get('target_definition', ''))}; "
        f"{units}). Per-session rates and costs apply to returns only: the {html.escape(label(target))} is not a "
        f"position's return, it does not compound and pays no costs, so those columns are empty. {rotation}</p>"
    )


def _compared(result: dict[str, Any]) -> str:
    """What the signal of session t is compared with, in words."""
    target = _target(result)
    if is_return(target):
        return "returns from close t onwards"
    return f"the {label(target)} of the sessions after t ({result.get('target_definition', '')})"


def write_panel_report(directory: Path, result: dict[str, Any], context: dict[str, Any]) -> Path:
    """Write ``report.html`` (charts inline) and the PNGs into ``directory``; return the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = _charts(result)
    sheet = result.get("tear_sheet", {})
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
    target = _target(result)
    tradable = is_return(target)
    q_rows = [
        [str(q["horizon"])]
        + [_value(q["mean_return"].get(k), target) for k in range(1, result["quantiles"] + 1)]
        + [
            _value(q["spread_mean"], target),
            _num(q["spread_t"], "{:+.2f}"),
            _num(q.get("spread_p_holm"), "{:.3f}"),
            _pct(q.get("spread_per_session")),
            _num(q.get("traded_per_rebalance"), "{:.0%}"),
            _pct(q.get("spread_net_per_session")),
        ]
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
            _num(r.get("p_bh"), "{:.3f}"),
            _num(r["hit_rate"], "{:.1%}"),
            _num(r["hit_rate_base"], "{:.1%}"),
            _num(r.get("hit_rate_p_value"), "{:.3f}"),
            _num(r.get("strategy_sharpe"), "{:+.2f}"),
            _num(r.get("buy_and_hold_sharpe"), "{:+.2f}"),
            _num(r.get("random_timing_p"), "{:.3f}"),
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
        key = "spread_mean"
        rows.append(
            [
                "top minus bottom, first horizon",
                _value(split["in_sample"][key], target),
                _value(split["out_of_sample"][key], target),
            ]
        )
        for key, caption in (
            ("strategy_return_mean", "long/flat, mean over symbols"),
            ("buy_and_hold_return_mean", "buy and hold, mean over symbols"),
        ):
            if tradable:  # no strategy is fitted on a target that is not a return
                rows.append([caption, _pct(split["in_sample"][key]), _pct(split["out_of_sample"][key])])
        if "movement" in split["in_sample"]:
            for rule, caption in (("sign", "sign of the signal"), ("trailing", "above its trailing mean")):
                inside, outside = (split[part]["movement"][rule] for part in ("in_sample", "out_of_sample"))
                rows.append(
                    [
                        f"next-session direction, {caption}: accuracy (MCC, calls)",
                        f"{_num(inside['accuracy'], '{:.1%}')} ({_num(inside['mcc'])}, {inside['n']})",
                        f"{_num(outside['accuracy'], '{:.1%}')} ({_num(outside['mcc'])}, {outside['n']})",
                    ]
                )
        rows.append(["sessions", str(split["in_sample"]["sessions"]), str(split["out_of_sample"]["sessions"])])
        fitted = (
            f"<p>The long/flat rule's threshold ({split['fitted_threshold']:+g}) and z-score window "
            f"({split['fitted_window']} sessions) were chosen on the in-sample part only "
            "(best mean Sharpe across symbols).</p>"
            if split.get("fitted_threshold") is not None
            else "<p>No long/flat rule is fitted: it trades returns, and the target is not one.</p>"
        )
        split_html = (
            f"<h2>In sample vs out of sample (split at {split['split']})</h2>"
            + fitted
            + _table(["figure", "in sample", "out of sample"], rows)
        )
    facts = [[html.escape(str(k)), html.escape(str(v))] for k, v in context.items()]
    turnover = ", ".join(f"Q{k} {v:.0%}" for k, v in result["turnover"].items() if not math.isnan(v))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tweet-signals panel evaluation</title>
<style>body{{font-family:sans-serif;max-width:1040px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0}}th,td{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
th{{background:#f4f4f4}}td:first-child{{text-align:left}}
.verdict{{background:#f4f4f4;padding:1em;border-left:4px solid #555}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(_title(result))}</h1>
<p class="verdict">{html.escape(result["verdict"])}</p>
{_movement_html(result.get("movement"))}
<h2>Cross-section: rank IC by horizon</h2>
{_table(IC_HEADER, ic_rows)}
{_figure(charts, "ic_by_horizon.png", "mean cross-sectional rank IC; intervals from every h-th session")}
{_quantile_heading(result)}
{_table(["horizon"] + [f"Q{k}" for k in range(1, result["quantiles"] + 1)] + SPREAD_HEADER, q_rows)}
{_quantile_note(result, turnover)}
{_figure(charts, "quantile_returns.png", f"mean forward {'return' if tradable else label(target)} per quantile")}
{_figure(charts, "top_minus_bottom.png", "cumulative top-minus-bottom quantile")}
{_tear_sheet_html(sheet, charts, result["quantiles"], target)}
{_composite_html(result.get("composite"))}
{split_html}
<h2>Per symbol (next session)</h2>
{_table(_symbol_header(result.get("pool", 1)), sym_rows)}
<h2>Single series</h2>
{_figure(charts, "single_series.png", "signal and close of the symbols with the most sessions")}
<h2>Inputs</h2>{_table(["", ""], facts)}
<h2>How to read this</h2>
<p>The signal of session t uses only posts that count for t (after the close they roll to t+1) and is compared
with {html.escape(_compared(result))}; nothing later enters it. Forward values over h sessions overlap, so the test
at h &gt; 1 uses every h-th session only (a t-test on non-overlapping returns); the mean is over every session.
Per-symbol intervals come from a stationary block bootstrap. Families of tests:
{html.escape(result["tests"]["family"])}; Holm's adjustment over the {result["tests"]["n"]} horizons keeps the
chance of any false claim of skill at 5%; the per-symbol correlations are adjusted as their own family
(Benjamini–Hochberg q). Sessions with fewer than {result["min_posts"]} posts carry no
signal{_pool_text(result)}, and a session needs {result["min_symbols"]} symbols with a signal to enter the
cross-section.</p>
</body></html>"""
    path = directory / "report.html"
    write_bytes_atomic(page.encode("utf-8"), path)
    return path
