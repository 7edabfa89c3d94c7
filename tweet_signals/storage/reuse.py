"""The one rule for reusing a stage's output: it exists, is readable, and was made from the same inputs.

Every stage records the identity of its inputs (content hashes of upstream files, the settings
that change the result) in its output's metadata; a rerun compares that record with what it
would compute from and recomputes only on a difference (or when forced). Prefect's own cache is
not used for this: it cannot see a deleted or truncated file, the metadata beside the data can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tweet_signals.storage.files import AnyPath, parquet_metadata, read_json


def current(metadata: dict[str, Any] | None, key: Mapping[str, object], force: bool = False) -> dict[str, Any] | None:
    """``metadata`` when every entry of ``key`` matches it (and not ``force``); else None."""
    if force or metadata is None:
        return None
    if any(metadata.get(name) != value for name, value in key.items()):
        return None
    return metadata


def current_parquet(path: AnyPath, key: Mapping[str, object], force: bool = False) -> dict[str, Any] | None:
    """The footer metadata of the Parquet file at ``path`` when it is current for ``key``."""
    return current(parquet_metadata(path), key, force)


def current_json(path: AnyPath, key: Mapping[str, object], force: bool = False) -> dict[str, Any] | None:
    """The JSON object at ``path`` when it is current for ``key``."""
    return current(read_json(path), key, force)
