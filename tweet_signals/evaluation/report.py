"""The evaluation report: one self-contained HTML file plus the PNG charts it embeds."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.evaluation.statistics import Evaluation
from tweet_signals.evaluation.targets import definition, is_return, label
from tweet_signals.storage import write_bytes_atomic


def _sharpe_text(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _charts(aligned: pl.DataFrame, evaluation: Evaluation, symbol: str) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, bytes] = {}
    fig, ax = plt.subplots(figsize=(9, 3.5))
    sessions = aligned["session"].to_list()
    values = aligned["signal"].fill_null(float("nan")).to_list()
    ax.bar(sessions, values, color="tab:blue", alpha=0.6, label=f"signal ({evaluation.signal_column})")
    ax.set_ylabel("signal")
    twin = ax.twinx()
    twin.plot(sessions, aligned["close"].to_list(), color="black", linewidth=1.2, label="close")
    twin.set_ylabel("close")
    ax.set_title(f"{symbol}: signal per session and closing price")
    charts["signal_price.png"] = _png(fig)

    if evaluation.lead_lag:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        lags = [r["lag"] for r in evaluation.lead_lag]
        values = [r["spearman"] for r in evaluation.lead_lag]
        errors = [
            [v - r["ci_low"] for v, r in zip(values, evaluation.lead_lag, strict=True)],
            [r["ci_high"] - v for v, r in zip(values, evaluation.lead_lag, strict=True)],
        ]
        colors = ["tab:green" if k == 1 else "tab:gray" for k in lags]
        ax.bar(lags, values, yerr=errors, color=colors, capsize=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(lags)
        # For another target, session t+k's value of it (its "same-session" value) stands for the return.
        moved = "return" if is_return(evaluation.target) else label(evaluation.target)
        ax.set_xlabel(f"lag k: corr(signal_t, {moved}_{{t+k}}); k = 1 is the prediction, k ≤ 0 the {moved} came first")
        ax.set_ylabel("Spearman ρ (95% CI)")
        charts["lead_lag.png"] = _png(fig)

    if evaluation.strategy:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot(sessions, evaluation.strategy["equity"], label="long/flat on the centred signal")
        ax.plot(sessions, evaluation.strategy["buy_and_hold"], label="buy and hold", color="black", alpha=0.7)
        # The fair yardstick for a rule that is flat part of the time: buy-and-hold at its exposure.
        exposure = evaluation.strategy["exposure"]
        matched = np.cumprod(1 + exposure * aligned["next_return"].to_numpy().astype(float))
        ax.plot(sessions, matched, label=f"buy and hold at the rule's exposure ({exposure:.0%})", color="gray", ls="--")
        ax.set_ylabel("growth of 1")
        ax.set_title(f"strategy after {evaluation.strategy['cost_bps']:g} bps per trade")
        ax.legend(loc="upper left")
        charts["equity.png"] = _png(fig)
    return charts


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _same_session(target: str) -> str:
    """What the Granger test explains: session t's own value of the target."""
    return "return" if is_return(target) else label(target)


def _compared(target: str) -> str:
    """What the signal of session t is compared with, in words."""
    if is_return(target):
        return "the return from close t to close t+1"
    return f"the {label(target)} of session t+1 ({definition(target)}, h = 1)"


def write_report(
    directory: Path, symbol: str, aligned: pl.DataFrame, evaluation: Evaluation, context: dict[str, Any]
) -> Path:
    """Write ``report.html`` and its PNGs into ``directory``; return the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = _charts(aligned, evaluation, symbol) if aligned.height else {}
    for name, data in charts.items():
        (directory / name).write_bytes(data)
    rows: list[tuple[str, Any]] = [
        ("signal tested", evaluation.signal_column),
        ("target (what the signal must predict, h = 1)", f"{evaluation.target}: {definition(evaluation.target)}"),
        ("sessions with a signal (n)", evaluation.n),
        ("sessions in the window (price calendar)", evaluation.calendar_sessions),
    ]
    for name in ("pearson", "spearman"):
        est = getattr(evaluation, name)
        if est is not None:
            rows.append(
                (
                    f"{name} r (95% CI), p",
                    f"{est.value:+.4f} ({est.ci_low:+.4f} … {est.ci_high:+.4f}), p = {est.p_value:.4f}",
                )
            )
    if evaluation.hit_rate is not None and evaluation.hit_rate_base is not None:
        statistic = evaluation.hit_rate_statistic
        rows.append(
            (
                "hit rate vs chance (Pesaran–Timmermann, one-sided)",
                f"{evaluation.hit_rate:.1%} of {evaluation.directional_n} vs {evaluation.hit_rate_base:.1%} "
                f"(always long {evaluation.hit_rate_always_long:.1%}; "
                + (f"S = {statistic:+.2f}, " if statistic is not None else "calls or moves all one way, ")
                + f"p = {evaluation.hit_rate_p_value:.4f})",
            )
        )
    rows.append(
        (
            f"Granger p (signal lags 1–3 → same-session {_same_session(evaluation.target)}, joint F-test, "
            f"{evaluation.granger_n} complete rows)",
            evaluation.granger_p_value,
        )
    )
    st = evaluation.strategy
    if st:
        random_p = st.get("random_timing_p")
        rows += [
            ("strategy", st["rule"]),
            ("strategy exposure (share of sessions invested)", f"{st['exposure']:.1%}"),
            (
                "Sharpe (annualised): strategy vs random timing at the same exposure (median) vs buy-and-hold",
                f"{st['sharpe_annualised']:+.2f} vs {_sharpe_text(st.get('random_timing_sharpe'))} "
                f"vs {st['buy_and_hold_sharpe']:+.2f}",
            ),
            (
                "random timing, same exposure and costs: share doing at least as well (p)",
                "–"
                if random_p is None
                else f"p = {random_p:.3f} ((count + 1) / ({st['random_timing_draws']:,} + 1) random orderings, "
                f"seed {st['random_timing_seed']})",
            ),
            (
                "total return: strategy vs buy-and-hold at the same exposure",
                f"{st['total_return']:+.1%} vs {st['exposure_matched_return']:+.1%}",
            ),
            ("buy and hold, fully invested over every session of the window", f"{st['buy_and_hold_return']:+.1%}"),
            ("strategy annual return (compounded)", f"{st['annual_return']:+.1%}"),
            ("strategy max drawdown (fraction lost from a peak)", f"{st['max_drawdown']:.1%}"),
            ("strategy trades", st["trades"]),
        ]
    if not is_return(evaluation.target) and evaluation.enough_data:
        rows.append(
            (
                "hit rate, long/flat strategy",
                f"not computed: they call and trade a return's direction, and the target is the "
                f"{label(evaluation.target)}",
            )
        )
    for key, value in context.items():
        rows.append((key, value))
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
    images = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{name}</figcaption></figure>"
        for name, data in charts.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tweet-signals evaluation: {html.escape(symbol)}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
.verdict{{background:#f4f4f4;padding:1em;border-left:4px solid #555}}img{{max-width:100%}}</style></head>
<body><h1>Does the {html.escape(symbol)} signal predict the next session's {html.escape(label(evaluation.target))}?</h1>
<p class="verdict">{html.escape(evaluation.verdict)}</p>
<h2>Numbers</h2><table>{table}</table>
<h2>Charts</h2>{images or "<p>No chart: not enough aligned sessions.</p>"}
<h2>What this shows and what it does not</h2>
<p>The signal of session t uses only posts that count for t (posts after the close roll to t+1) and is
compared with {html.escape(_compared(evaluation.target))}; nothing later enters it. Confidence intervals come from
a stationary block bootstrap (2,000 resamples, 500 per lag; blocks of about n^(1/3) sessions, so autocorrelation
widens them), and the lead-lag claim is Holm-adjusted over its lags. The hit rate is tested against the rate of
calls independent of the moves (Pesaran–Timmermann), so an always-bullish signal in a rising market scores no
skill. The Granger test asks whether the signal's last three sessions add to the returns' own last three in
explaining today's return. The long/flat rule is flat part of the time, so it is judged at equal exposure: by
its Sharpe ratio against buy-and-hold's, against buy-and-hold scaled to its exposure, and against random
orderings of its own positions (same exposure, same costs). A significant result in one
sample of {evaluation.n} sessions is evidence, not proof of a tradable edge; an insignificant one does not prove
the signal useless, only that this sample cannot tell.</p>
</body></html>"""
    path = directory / "report.html"
    write_bytes_atomic(page.encode("utf-8"), path)
    return path
