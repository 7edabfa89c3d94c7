"""The one parameters model of the evaluation: ``tweet-signals evaluate`` derives its options from
it and the ``evaluate`` flow takes it, so the command line and the Prefect UI's form cannot disagree.

Two modes: ``prices`` (one symbol's closes) or ``prices_dir`` (a panel of ``<SYMBOL>.csv``). An
option that only one mode reads is refused in the other, rather than silently ignored.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tweet_signals.evaluation.composite import COMBINABLE_COLUMNS, parse_combine
from tweet_signals.evaluation.judge import EvaluationSettings
from tweet_signals.evaluation.panel import DEFAULT_COLUMN, MIN_SYMBOLS, PanelSettings, parse_horizons
from tweet_signals.evaluation.targets import Target, check_movement

DEFAULT_HORIZONS = "1,5,10,20"
# Options only one mode reads; the other mode refuses them when set to anything but their default
# (a form or a dumped model carries every field at its default, which changes nothing).
PANEL_ONLY = ("horizons", "quantiles", "benchmark", "symbol_column", "split", "min_symbols", "pool", "combine")
SINGLE_ONLY = ("symbol", "price_columns")


def flag(name: str) -> str:
    """The command-line flag of a field (``prices_dir`` → ``--prices-dir``)."""
    return "--" + name.replace("_", "-")


class EvaluationParams(BaseModel):
    """How a signal is judged against prices. Unknown names are refused (a misspelt option must
    not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")

    prices: str | None = Field(None, description="Daily closes CSV of --symbol (one series)")
    prices_dir: str | None = Field(
        None,
        description="Panel mode: a folder of <SYMBOL>.csv (Date, Adj Close or Close; High, Low, Volume for "
        "--target range or volume); every symbol with posts",
    )
    symbol: str = Field("NIFTY", description="Symbol to judge (ALL: every post)")
    data_root: str | None = Field("data", description="Root folder of all outputs")
    input: str | None = Field(None, description="Posts file to analyze instead of stored signals")
    columns: str | None = Field(None, description="Column mapping of --input")
    model: str = Field("embedded", description="Hugging Face hub id, local model directory, or 'embedded'")
    exchange: str | None = Field(
        None, description="Exchange calendar (NSE, BSE, NYSE or an ISO MIC); default: inferred from the price dates"
    )
    price_columns: str = Field(
        "date=Date,close=Close",
        description="date=COLUMN,close=COLUMN (and high=, low=, volume= for --target range or volume; "
        "default High, Low, Volume)",
    )
    out: str | None = Field(None, description="Report folder (default DATA_ROOT/reports/SYMBOL, or .../panel)")
    threshold: float = Field(
        0.0, description="Long when the signal's z-score against its previous --window sessions is above this"
    )
    cost_bps: float = Field(5.0, ge=0, description="Cost per position change, basis points")
    min_sessions: int = Field(20, ge=1, description="Fewer sessions with a signal: no figures, 'not enough data'")
    window: int = Field(20, ge=2, description="Sessions of the trailing z-scores (features, strategy)")
    signal_column: str = Field(
        DEFAULT_COLUMN,
        description="Column judged: mean_score (known at post time), bullishness, score_z, volume_z, "
        "weighted_score (engagement counted after the posts: look-ahead on historical files), ...",
    )
    min_posts: int = Field(5, ge=0, description="Sessions with fewer posts carry no signal (gaps)")
    naive_tz: str | None = Field(None, description="Zone of --input timestamps without one (e.g. UTC)")
    date_only: Literal["quarantine", "next-session"] = Field(
        "quarantine", description="--input posts with a date and no time: quarantine, or next-session (no look-ahead)"
    )
    workers: int = Field(1, ge=1, description="Analyzer worker processes for --input")
    horizons: str = Field(DEFAULT_HORIZONS, description="Panel: forward-return horizons in sessions")
    quantiles: int = Field(5, ge=2, description="Panel: signal quantiles per session (5: quintiles)")
    benchmark: str | None = Field(
        None, description="Panel: the index's symbol in --prices-dir; returns become market-relative"
    )
    symbol_column: str | None = Field(
        None, description="Panel: the posts' own ticker column (else symbols come from the text)"
    )
    split: date | None = Field(
        None, description="Panel: YYYY-MM-DD; fit on sessions before it, report both parts side by side"
    )
    min_symbols: int | None = Field(
        None,
        ge=2,
        description=f"Panel: symbols a session needs to enter the cross-section "
        f"(default: {MIN_SYMBOLS}, or --quantiles if more)",
    )
    pool: int = Field(
        1,
        ge=1,
        le=250,
        description="Panel: sessions of posts behind each session's signal: the trailing N sessions ending at "
        "that session's close (needs --input)",
    )
    target: Target = Field(
        "return",
        description="What the signal must predict: return (close to close), abs-return (its absolute value), "
        "range ((high - low) / close), volume (log volume against its trailing 20-session mean)",
    )
    movement: tuple[float, float] | None = Field(
        None,
        description="UP,DOWN thresholds of the next-session move, e.g. 0.0055,-0.005: adds direction accuracy "
        "and MCC with the dead band dropped",
    )
    combine: str | None = Field(
        None,
        description="Panel: COL1,COL2,...: judge a composite, a ridge combination of these columns (z-scored "
        "across each session's symbols) fitted on the sessions before --split (needed) and judged from it; "
        f"columns: {', '.join(COMBINABLE_COLUMNS)}",
    )

    @field_validator("symbol")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().lstrip("#$").upper()

    @field_validator("benchmark")
    @classmethod
    def _upper_benchmark(cls, value: str | None) -> str | None:
        return value.strip().lstrip("#$").upper() if value else None

    @field_validator("horizons")
    @classmethod
    def _horizons(cls, value: str) -> str:
        # One spelling per set of horizons ("5, 1" is "1,5"), so a default is recognised as one.
        return ",".join(map(str, parse_horizons(value)))

    @field_validator("split", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # Pydantic's own message ("input is too short") does not say which format is wanted.
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"--split {value!r}: give a date as YYYY-MM-DD") from None
        return value

    @field_validator("combine")
    @classmethod
    def _combine(cls, value: str | None) -> str | None:
        # One spelling per list ("a, b" is "a,b"); fewer than two columns or unknown ones are refused.
        return ",".join(parse_combine(value)) if value is not None else None

    @field_validator("movement", mode="before")
    @classmethod
    def _movement(cls, value: Any) -> Any:
        """``"UP,DOWN"`` (the command line) or a pair (the UI form, a JSON round trip) → (up, down)."""
        if value is None or value == "":
            return None
        try:
            up, down = (float(p) for p in (value.split(",") if isinstance(value, str) else value))
            if not (math.isfinite(up) and math.isfinite(down)):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"--movement {value!r}: give two numbers UP,DOWN, e.g. 0.0055,-0.005") from None
        if up < down:
            raise ValueError(
                f"--movement {value!r}: UP must be at or above DOWN (the dead band between), e.g. 0.0055,-0.005"
            )
        return (up, down)

    @model_validator(mode="after")
    def _one_mode(self) -> EvaluationParams:
        """Exactly one of ``prices`` and ``prices_dir``, and only the options that mode reads."""
        if (self.prices is None) == (self.prices_dir is None):
            both = ", not both" if self.prices is not None else ""
            raise ValueError(
                f"give --prices FILE (one symbol) or --prices-dir FOLDER (every symbol with a price file){both}"
            )
        if self.prices is not None:
            wrong, mode, other = self._set(PANEL_ONLY), "--prices (one symbol)", "--prices-dir"
        else:
            wrong, mode, other = self._set(SINGLE_ONLY), "--prices-dir (panel)", "--prices"
        if wrong:
            flags = ", ".join(flag(f) for f in wrong)
            raise ValueError(f"{flags} {'does' if len(wrong) == 1 else 'do'} not apply with {mode}; only with {other}")
        if self.pool > 1 and not self.input:
            raise ValueError("--pool needs --input: pooling is done on the posts")
        if self.combine and self.split is None:
            raise ValueError(
                "--combine needs --split: the composite's weights are fitted on the sessions before it and "
                "judged on the sessions from it"
            )
        if not self.input and not self.data_root:
            raise ValueError("give --data-root (stored signals) or --input (a posts file)")
        check_movement(self.target, self.movement)
        return self

    def _set(self, names: tuple[str, ...]) -> list[str]:
        """Those of ``names`` given explicitly with a value other than their default."""
        fields = type(self).model_fields
        return [f for f in names if f in self.model_fields_set and getattr(self, f) != fields[f].get_default()]

    @property
    def panel(self) -> bool:
        """Panel mode (``prices_dir``), else one symbol (``prices``)."""
        return self.prices_dir is not None

    def panel_settings(self) -> PanelSettings:
        """How the panel is judged (raises ``ValueError`` for settings that contradict each other)."""
        return PanelSettings(
            horizons=parse_horizons(self.horizons),
            quantiles=self.quantiles,
            min_posts=self.min_posts,
            min_symbols=self.min_symbols if self.min_symbols is not None else max(MIN_SYMBOLS, self.quantiles),
            signal_column=self.signal_column,
            window=self.window,
            threshold=self.threshold,
            cost_bps=self.cost_bps,
            min_sessions=self.min_sessions,
            benchmark=self.benchmark,
            split=self.split,
            pool=self.pool,
            movement=self.movement,
            combine=self.combine_columns,
            target=self.target,
        )

    @property
    def combine_columns(self) -> tuple[str, ...]:
        """The ``combine`` columns as a tuple (empty without a composite)."""
        return tuple(self.combine.split(",")) if self.combine else ()

    def single_settings(self, target_dir: str, exchange: str | None = None) -> EvaluationSettings:
        """How one symbol is judged, its report under ``target_dir``; ``exchange`` is the calendar
        in use when this model's is left to inference."""
        calendar = exchange or self.exchange
        if calendar is None:
            raise ValueError("no exchange calendar: give --exchange or let the flow infer it from the prices")
        return EvaluationSettings(
            prices_path=str(self.prices),
            out_dir=target_dir,
            price_columns=self.price_columns,
            exchange=calendar,
            threshold=self.threshold,
            cost_bps=self.cost_bps,
            min_sessions=self.min_sessions,
            window=self.window,
            signal_column=self.signal_column,
            min_posts=self.min_posts,
            movement=self.movement,
            target=self.target,
        )
