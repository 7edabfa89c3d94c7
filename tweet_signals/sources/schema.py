"""The canonical post schema and the record normaliser every source goes through.

A source yields raw records (dicts); ``normalise_record`` turns each into a canonical row or
a quarantine reason. Repairs follow documented rules (docs/data.md, "Bad input"); anything that
cannot be repaired is quarantined with the original record, never dropped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

POST_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "text": pl.String(),
    "author_id": pl.String(),
    "author_username": pl.String(),
    "author_followers": pl.Int64(),
    "like_count": pl.Int64(),
    "retweet_count": pl.Int64(),
    "reply_count": pl.Int64(),
    "quote_count": pl.Int64(),
    "lang": pl.String(),
    "retweet_of": pl.String(),  # id of the original when this post is a retweet (API reference)
    "source": pl.String(),
}
REQUIRED = ("id", "created_at", "text")
COUNT_FIELDS = ("author_followers", "like_count", "retweet_count", "reply_count", "quote_count")
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "reason": pl.String(),
    "detail": pl.String(),
    "origin": pl.String(),  # file and line / page the record came from
    "record": pl.String(),  # the original record, as JSON (or the raw line)
}

# Texts beyond this are cut (rule R4); the analyzer only reads the first few hundred characters.
MAX_TEXT_CHARS = 20_000
_STATUS_ID = re.compile(r"/status(?:es)?/(\d+)")


class Quarantined(ValueError):
    """A record that cannot be repaired; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_timestamp(value: Any, naive_tz: str | None = None, date_only_tz: str | None = None) -> datetime:
    """ISO 8601 (``Z`` or offset), epoch seconds/milliseconds, or a naive time in ``naive_tz``.

    A date without a time (``2024-01-05``) is quarantined as ``date_only`` unless ``date_only_tz``
    is given: it then stands for the last second of that day in that zone (the exchange's), so
    the post counts for the session *after* that date and cannot look ahead of any close.
    """
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        if date_only_tz is None:
            raise Quarantined("date_only", f"{value.strip()} has a date but no time (see --date-only)")
        from zoneinfo import ZoneInfo

        day = datetime.fromisoformat(value.strip())
        return day.replace(hour=23, minute=59, second=59, tzinfo=ZoneInfo(date_only_tz)).astimezone(UTC)
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            try:
                ts = datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")  # v1.1 API / twint
            except ValueError as exc:
                raise Quarantined("bad_timestamp", f"cannot parse {text[:40]!r}") from exc
    else:
        raise Quarantined("bad_timestamp", f"not a timestamp: {str(value)[:40]!r}")
    if ts.tzinfo is None:
        if naive_tz is None:
            raise Quarantined("naive_timestamp", f"{value!s:.40} has no time zone (see --naive-tz)")
        from zoneinfo import ZoneInfo

        ts = ts.replace(tzinfo=ZoneInfo(naive_tz))
    return ts.astimezone(UTC)


def _count(value: Any) -> int | None:
    """Engagement counts: ints, numeric strings ("1,204", "12.0") and floats; else None (rule R3)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value == value and value >= 0 and value < 2**62 else None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return _count(number)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value)


def normalise_id(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        raise Quarantined("missing_id", "no id")
    if isinstance(value, dict | list | bool):
        raise Quarantined("bad_id", f"id is a {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    match = _STATUS_ID.search(text)
    if match:  # permalinks such as /user/status/2008807218389676229 carry the tweet id
        return match.group(1)
    if not text:
        raise Quarantined("missing_id", "empty id")
    return text


@dataclass
class NormaliseStats:
    """Counts of the documented repairs applied while normalising."""

    repairs: dict[str, int] = field(default_factory=dict)

    def add(self, rule: str) -> None:
        self.repairs[rule] = self.repairs.get(rule, 0) + 1


def normalise_record(
    record: Mapping[str, Any],
    source: str,
    stats: NormaliseStats,
    naive_tz: str | None = None,
    date_only_tz: str | None = None,
) -> dict[str, Any]:
    """One canonical row from a record already keyed by canonical names; raises ``Quarantined``."""
    for name in REQUIRED:
        value = record.get(name)
        if value is None or (isinstance(value, float) and value != value) or value == "":
            raise Quarantined(f"missing_{name}", f"required field {name!r} is missing or empty")
    if isinstance(record["text"], dict | list):
        raise Quarantined("bad_text", f"text is a {type(record['text']).__name__}, not a string")
    text = _text(record["text"])
    assert text is not None
    if not text.strip():
        raise Quarantined("empty_text", "text is empty or whitespace only")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        stats.add("R4_text_truncated")
    username = _text(record.get("author_username"))
    if username and username.startswith("@"):
        username = username[1:]
        stats.add("R2_username_at_stripped")
    row = {
        "id": normalise_id(record["id"]),
        "created_at": parse_timestamp(record["created_at"], naive_tz, date_only_tz),
        "text": text,
        "author_id": _text(record.get("author_id")),
        "author_username": username,
        "lang": _text(record.get("lang")),
        "retweet_of": _text(record.get("retweet_of")),
        "source": source,
    }
    for name in COUNT_FIELDS:
        raw = record.get(name)
        value = _count(raw)
        if value is None and raw not in (None, ""):
            stats.add("R3_bad_count_nulled")
        row[name] = value
    return row


def posts_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=POST_SCHEMA, orient="row") if rows else empty_posts()


def empty_posts() -> pl.DataFrame:
    return pl.DataFrame(schema=POST_SCHEMA)


def quarantine_row(reason: str, detail: str, origin: str, record: Any) -> dict[str, str]:
    if isinstance(record, str | bytes):
        original = record.decode("utf-8", "replace") if isinstance(record, bytes) else record
    else:
        original = json.dumps(record, default=str, ensure_ascii=False)
    return {"reason": reason, "detail": detail, "origin": origin, "record": original[:100_000]}


def quarantine_frame(rows: list[dict[str, str]]) -> pl.DataFrame:
    return (
        pl.DataFrame(rows, schema=QUARANTINE_SCHEMA, orient="row") if rows else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
