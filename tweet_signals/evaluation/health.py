"""Is the live signal still working? The stored signal history of a data root judged against a
folder of daily prices over a trailing window of sessions. No Prefect here: the ``signal-health``
flow publishes what this returns.

Definitions:
- **window**: the last ``window_sessions`` stored sessions (``signals/date=D``) up to ``as_of``
  (default: the last stored session). The ``ALL`` pseudo-symbol is left out: it is every post
  of a session, not a symbol to rank against the others.
- **a symbol has a signal** in a session when it has at least ``min_posts`` posts and a value in
  the judged column (the panel's rule, ``panel.panel_frame``).
- **coverage**: symbols with a signal per session, and posts per session (posts naming a symbol,
  summed over symbols: a post naming two symbols counts twice); each as the last session, the
  mean of the window's last ``RECENT_SESSIONS`` sessions and the window's median. The coverage
  ratio is that recent mean of symbols over the window's median; under ``min_coverage`` the
  coverage has **collapsed**.
- **rank IC** (h = 1): the per-session Spearman correlation across symbols between the signal and
  the next session's return (sessions with at least ``min_symbols`` symbols), averaged over the
  ``ROLLING_SESSIONS`` most recent sessions that have one and over the whole window; the window's
  significance is the panel evaluation's (t-test, Holm-adjusted over the horizons).
- **hit rate** (h = 1): over (symbol, session) pairs of those sessions, the share where the
  signal's deviation from the session's cross-sectional mean has the sign of the next return's
  deviation from its mean (pairs with a zero deviation are left out); chance is about 50%, and
  the benchmark, the same for every symbol of a session, does not move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tweet_signals.evaluation.judge import evaluate_signal_panel
from tweet_signals.evaluation.panel import (
    DEFAULT_COLUMN,
    PanelSettings,
    forward_returns,
    json_ready,
    load_price_panel,
    panel_frame,
    session_ic,
)
from tweet_signals.stages.signals import ALL, recent_signals
from tweet_signals.storage import Storage, location

RECENT_SESSIONS = 5  # the "last sessions" whose coverage is compared with the window's median
ROLLING_SESSIONS = 20  # the recent stretch of the rolling IC and hit rate (about a trading month)
QUANTILES = 5  # the tear sheet's quantile groups (fewer when min_symbols is smaller)
SIGNIFICANCE = 0.05  # Holm-adjusted p under which the window's IC counts as evidence

# What the check concluded; the first two end the flow Failed.
NO_SIGNALS = "no signals"
COLLAPSED = "coverage collapsed"
NOT_MEASURABLE = "not measurable"
WORKING = "working"
FADING = "fading"
NO_EVIDENCE = "no evidence"
STATUS_MEANING = {
    NO_SIGNALS: "no stored session of the window has a symbol with a signal (run Failed)",
    COLLAPSED: "symbols with a signal fell under min_coverage of the window's median (run Failed)",
    NOT_MEASURABLE: "no session had min_symbols symbols with a signal and a return",
    WORKING: "window rank IC significant (Holm), recent IC has its sign",
    FADING: "window rank IC significant (Holm), recent IC does not have its sign",
    NO_EVIDENCE: "window rank IC not significant after Holm's adjustment",
}


@dataclass(frozen=True)
class HealthSettings:
    """How the trailing window is chosen and judged."""

    window_sessions: int = 120
    signal_column: str = DEFAULT_COLUMN
    min_posts: int = 1
    min_symbols: int = 5
    horizons: tuple[int, ...] = (1, 5)
    benchmark: str | None = None
    min_coverage: float = 0.5
    as_of: date | None = None

    def panel_settings(self) -> PanelSettings:
        """The panel evaluation of the window; horizon 1 is always judged (the rolling IC's)."""
        return PanelSettings(
            horizons=tuple(sorted({1, *self.horizons})),
            quantiles=max(2, min(QUANTILES, self.min_symbols)),
            min_posts=self.min_posts,
            min_symbols=self.min_symbols,
            signal_column=self.signal_column,
            benchmark=self.benchmark.upper() if self.benchmark else None,
        )


def window_signals(storage: Storage, window_sessions: int, as_of: date | None) -> tuple[list[date], pl.DataFrame]:
    """The stored sessions of the window (oldest first) and their signals, ``ALL`` left out.

    Only the window's partitions are read, so the check costs the same after years of sessions
    (on an object store every partition read is a request)."""
    signals = recent_signals(storage, as_of, window_sessions)
    return sorted(signals["session"].unique().to_list()), signals.filter(pl.col("symbol") != ALL)


def session_coverage(sessions: Sequence[date], signals: pl.DataFrame, column: str, min_posts: int) -> pl.DataFrame:
    """(session, n_symbols, n_posts) for every session of the window, zero where nothing was stored."""
    has_signal = (pl.col("n_posts") >= min_posts) & pl.col(column).is_not_null()
    counts = signals.group_by("session").agg(
        pl.col("symbol").filter(has_signal).n_unique().cast(pl.Int64).alias("n_symbols"),
        pl.col("n_posts").sum().cast(pl.Int64).alias("n_posts"),
    )
    frame = pl.DataFrame({"session": list(sessions)}, schema={"session": pl.Date})
    return frame.join(counts, on="session", how="left").with_columns(pl.col("n_symbols", "n_posts").fill_null(0))


def _summary(values: pl.Series) -> dict[str, float]:
    """Last value, mean of the last ``RECENT_SESSIONS`` and median of a per-session series."""
    return {
        "last": float(values[-1]),
        "recent_mean": float(values.tail(RECENT_SESSIONS).mean()),  # type: ignore[arg-type]
        "median": float(values.median()),  # type: ignore[arg-type]
    }


def coverage_figures(per_session: pl.DataFrame, min_coverage: float) -> dict[str, Any]:
    """Symbols and posts per session summed up, the coverage ratio and whether it collapsed."""
    symbols, posts = _summary(per_session["n_symbols"]), _summary(per_session["n_posts"])
    if symbols["median"] > 0:
        ratio: float | None = symbols["recent_mean"] / symbols["median"]
    else:  # half the window or more had no signal at all: a ratio says nothing then
        ratio = 0.0 if symbols["recent_mean"] == 0 else None
    recent = per_session["session"].tail(RECENT_SESSIONS)
    return {
        "symbols": symbols,
        "posts": posts,
        "ratio": ratio,
        "min_coverage": min_coverage,
        "collapsed": ratio is not None and ratio < min_coverage,
        "recent_sessions": [recent[0], recent[-1]],
    }


def rolling_ic(frame: pl.DataFrame, min_symbols: int) -> dict[str, Any]:
    """Mean per-session rank IC at h = 1 over the most recent ``ROLLING_SESSIONS`` sessions with
    one and over the window, with the per-session series (oldest first)."""
    ic = session_ic(frame, 1, min_symbols)
    values = ic["ic"].to_numpy().astype(float)
    recent = values[-ROLLING_SESSIONS:]
    return {
        "recent_mean": float(np.mean(recent)) if len(recent) else None,
        "recent_sessions": len(recent),
        "window_mean": float(np.mean(values)) if len(values) else None,
        "window_sessions": len(values),
        "series": [{"session": s, "ic": float(v)} for s, v in ic.select("session", "ic").iter_rows()],
    }


def hit_rate(frame: pl.DataFrame, min_symbols: int) -> dict[str, Any]:
    """Share of (symbol, session) pairs whose cross-sectional signal deviation has the sign of the
    next return's deviation, over the window and its most recent ``ROLLING_SESSIONS`` sessions."""
    usable = frame.filter(pl.col("signal").is_not_null() & pl.col("fwd_1").is_not_null())
    usable = usable.filter(pl.len().over("session") >= min_symbols)
    signs = usable.select(
        "session",
        (pl.col("signal") - pl.col("signal").mean().over("session")).sign().alias("s"),
        (pl.col("fwd_1") - pl.col("fwd_1").mean().over("session")).sign().alias("r"),
    ).filter((pl.col("s") != 0) & (pl.col("r") != 0))
    sessions = signs["session"].unique().sort()
    recent = signs.filter(pl.col("session").is_in(sessions.tail(ROLLING_SESSIONS).to_list()))

    def share(part: pl.DataFrame) -> float | None:
        return float((part["s"] == part["r"]).mean()) if part.height else None  # type: ignore[arg-type]

    return {"window": share(signs), "recent": share(recent), "pairs": signs.height, "recent_pairs": recent.height}


def skill_status(ic: dict[str, Any], h1: dict[str, Any] | None) -> str:
    """``working`` when the window's IC at h = 1 survives Holm's adjustment and the recent IC has its
    sign, ``fading`` when it survives but the recent IC does not agree, ``no evidence`` otherwise;
    ``not measurable`` when no session had enough symbols."""
    if h1 is None or h1.get("n_sessions", 0) < 3 or ic["window_mean"] is None:
        return NOT_MEASURABLE
    if (h1.get("p_holm") or 1.0) >= SIGNIFICANCE:
        return NO_EVIDENCE
    recent = ic["recent_mean"]
    return WORKING if recent is not None and np.sign(recent) == np.sign(h1["ic_mean"]) else FADING


def coverage_message(coverage: dict[str, Any]) -> str:
    """One sentence on the symbols with a signal lately against the window's median."""
    symbols = coverage["symbols"]
    first, last = coverage["recent_sessions"]
    ratio = "no median to compare with" if coverage["ratio"] is None else f"{coverage['ratio']:.0%} of it"
    return (
        f"the last {RECENT_SESSIONS} sessions ({first} … {last}) averaged {symbols['recent_mean']:.1f} symbols "
        f"with a signal against a window median of {symbols['median']:.1f} ({ratio}; "
        f"min_coverage {coverage['min_coverage']:.0%})"
    )


def health_verdict(status: str, figures: dict[str, Any]) -> str:
    """Plain words for whoever watches the UI: what the check concluded, then the figures behind it."""
    coverage, ic, hits = figures["coverage"], figures["ic"], figures["hit_rate"]
    h1 = figures.get("h1") or {}
    lead = {
        COLLAPSED: f"Coverage collapsed: {coverage_message(coverage)}.",
        NOT_MEASURABLE: (
            f"Not measurable: no session of the window had {figures['min_symbols']} or more symbols with a signal "
            "and a next-session return, so symbols cannot be ranked against each other."
        ),
        WORKING: "Working: the signal still ranks next-session returns.",
        FADING: "Fading: the window's rank IC is significant, but the recent sessions do not agree with its sign.",
        NO_EVIDENCE: "No evidence: the window's rank IC does not survive Holm's adjustment.",
    }[status]
    parts = [lead]
    if ic["window_mean"] is not None:
        recent = "-" if ic["recent_mean"] is None else f"{ic['recent_mean']:+.3f}"
        p = h1.get("p_holm")
        parts.append(
            f"Rank IC at h=1: {ic['window_mean']:+.3f} over {ic['window_sessions']} sessions"
            f"{'' if p is None else f' (Holm p {p:.3f})'}, {recent} over the last {ic['recent_sessions']}."
        )
    if hits["window"] is not None:
        recent = "-" if hits["recent"] is None else f"{hits['recent']:.1%}"
        parts.append(f"Hit rate of the cross-sectional sign: {hits['window']:.1%} (recent {recent}; chance ≈ 50%).")
    if status != COLLAPSED:
        parts.append(f"Coverage: {coverage_message(coverage)}.")
    return " ".join(parts)


def empty_health(root: str, settings: HealthSettings) -> dict[str, Any]:
    """The result when the window holds no stored session with a signal."""
    where = f"before {settings.as_of}" if settings.as_of else "at all"
    message = (
        f"no stored signals: {root} has no signals/date=D/signals.parquet with a symbol that has a signal "
        f"({settings.signal_column}, at least {settings.min_posts} posts) {where}"
    )
    return {"status": NO_SIGNALS, "failure": message, "verdict": f"No signals: {message}.", "data_root": root}


def check_signal_health(data_root: str, prices_dir: str, settings: HealthSettings) -> dict[str, Any]:
    """Judge the window's stored signals against ``prices_dir``; write the tear sheet under
    ``<data_root>/reports/signal-health/<as_of>/``; return the figures (JSON-ready), the status,
    the verdict and ``failure``: why the flow should end Failed, or None.

    A missing or unusable price folder, or no symbol with both signals and prices, is a
    ``ValueError`` (bad input, not an unhealthy signal)."""
    panel_settings = settings.panel_settings()
    if not Path(prices_dir).is_dir():  # the deployment ships a placeholder: say which folder was looked for
        raise ValueError(
            f"prices_dir {prices_dir!r} ({Path(prices_dir).resolve()}): no such folder; "
            "give a folder of <SYMBOL>.csv daily bars"
        )
    panel = load_price_panel(Path(prices_dir))
    sessions, signals = window_signals(Storage.at(data_root), settings.window_sessions, settings.as_of)
    if sessions and settings.signal_column not in signals.columns:
        raise ValueError(f"no column {settings.signal_column!r} in the signals; they have {sorted(signals.columns)}")
    per_session = session_coverage(sessions, signals, settings.signal_column, settings.min_posts)
    if not sessions or int(per_session["n_symbols"].sum()) == 0:
        return empty_health(data_root, settings)
    as_of = settings.as_of or sessions[-1]
    out_dir = location(data_root) / "reports" / "signal-health" / as_of.isoformat()
    evaluation = evaluate_signal_panel(signals, panel, prices_dir, str(out_dir), panel_settings)
    # The same frame the evaluation judged (signal by the panel's rule, benchmark-relative returns).
    frame = panel_frame(signals, forward_returns(panel, (1,), panel_settings.benchmark), panel_settings)
    coverage = coverage_figures(per_session, settings.min_coverage)
    h1 = next((r for r in evaluation["horizons"] if r["horizon"] == 1), None)
    figures: dict[str, Any] = {
        "data_root": data_root,
        "prices_dir": prices_dir,
        "as_of": as_of,
        "window": {"first": sessions[0], "last": sessions[-1], "sessions": len(sessions)},
        "signal_column": settings.signal_column,
        "min_symbols": settings.min_symbols,
        "n_symbols": evaluation["n_symbols"],
        "coverage": coverage,
        "ic": rolling_ic(frame, settings.min_symbols),
        "hit_rate": hit_rate(frame, settings.min_symbols),
        "h1": h1,
        "horizons": evaluation["horizons"],
        "report": evaluation["report"],
        "evaluation_verdict": evaluation["verdict"],
        "coverage_per_session": per_session.to_dicts(),
    }
    skill = skill_status(figures["ic"], h1)
    status = COLLAPSED if coverage["collapsed"] else skill
    figures.update(
        status=status,
        skill=skill,
        verdict=health_verdict(status, figures),
        failure=f"coverage collapsed: {coverage_message(coverage)}" if status == COLLAPSED else None,
    )
    return dict(json_ready(figures))


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def health_rows(health: dict[str, Any]) -> list[dict[str, str]]:
    """One row per figure (figure, value, detail) for the UI's table artifact."""
    if health["status"] == NO_SIGNALS:
        return [{"figure": "status", "value": health["status"], "detail": health["failure"]}]
    coverage, ic, hits, h1 = health["coverage"], health["ic"], health["hit_rate"], health["h1"] or {}
    symbols, posts = coverage["symbols"], coverage["posts"]
    window = health["window"]
    rows = [
        ("status", health["status"], STATUS_MEANING[health["status"]]),
        ("as of", health["as_of"], f"window {window['first']} … {window['last']}"),
        ("sessions in window", str(window["sessions"]), "stored sessions"),
        ("symbols judged", str(health["n_symbols"]), f"signal column {health['signal_column']}"),
        (
            f"rank IC h=1, last {ROLLING_SESSIONS}",
            _number(ic["recent_mean"], "+.3f"),
            f"mean per-session IC of the last {ic['recent_sessions']} sessions with one",
        ),
        (
            "rank IC h=1, window",
            _number(ic["window_mean"], "+.3f"),
            f"{ic['window_sessions']} sessions; t {_number(h1.get('ic_t'), '+.2f')}, "
            f"Holm p {_number(h1.get('p_holm'), '.3f')}",
        ),
        *[
            (
                f"rank IC h={r['horizon']}, window",
                _number(r["ic_mean"], "+.3f"),
                f"{r['n_sessions']} sessions; Holm p {_number(r.get('p_holm'), '.3f')}",
            )
            for r in health["horizons"]
            if r["horizon"] != 1
        ],
        ("hit rate, recent", _number(hits["recent"], ".1%"), f"{hits['recent_pairs']} symbol-sessions; chance ≈ 50%"),
        ("hit rate, window", _number(hits["window"], ".1%"), f"{hits['pairs']} symbol-sessions"),
        ("symbols with a signal, last session", _number(symbols["last"], ".0f"), ""),
        (f"symbols with a signal, last {RECENT_SESSIONS} (mean)", _number(symbols["recent_mean"], ".1f"), ""),
        ("symbols with a signal, window median", _number(symbols["median"], ".1f"), ""),
        (
            "coverage ratio",
            _number(coverage["ratio"], ".0%"),
            f"last-{RECENT_SESSIONS} mean / window median; collapse under {coverage['min_coverage']:.0%}",
        ),
        ("posts, last session", _number(posts["last"], ".0f"), "posts naming a symbol, summed over symbols"),
        (f"posts, last {RECENT_SESSIONS} (mean)", _number(posts["recent_mean"], ".1f"), ""),
        ("posts, window median", _number(posts["median"], ".1f"), ""),
        ("report", Path(health["report"]).name, health["report"]),
    ]
    return [{"figure": f, "value": str(v), "detail": d} for f, v, d in rows]
