"""File and configuration hashing with the standard library only: imported by model workers that must start fast
(``tweet_signals.storage`` imports polars and pyarrow, a tenth of a second a worker never needs)."""

from __future__ import annotations

import hashlib
from typing import Protocol


class _Openable(Protocol):
    def open(self, mode: str) -> object: ...


def sha256_file(path: _Openable) -> str:
    """Hex SHA-256 of a file (a local ``Path`` or an object-store ``UPath``), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:  # type: ignore[attr-defined]
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_digest(fields: dict[str, object]) -> str:
    """A short, stable key of a configuration (JSON with sorted keys): names cache entries."""
    import json

    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
