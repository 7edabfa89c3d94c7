"""Every path the pipeline reads or writes: hive-style ``date=YYYY-MM-DD`` partitions under one root.

This is the one place that knows the layout; everything else asks a ``Storage`` for a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tweet_signals.storage.files import AnyPath, glob, is_local, location


@dataclass(frozen=True)
class Storage:
    root: AnyPath

    @classmethod
    def at(cls, root: str | AnyPath) -> Storage:
        return cls(location(root))

    @property
    def remote(self) -> bool:
        return not is_local(self.root)

    def _part(self, stage: str, day: date) -> AnyPath:
        return self.root / stage / f"date={day.isoformat()}"

    def raw(self, day: date) -> AnyPath:
        return self._part("raw", day) / "posts.parquet"

    def raw_pages(self, day: date) -> AnyPath:
        return self._part("raw", day) / "pages"

    def quarantine(self, day: date) -> AnyPath:
        return self._part("quarantine", day) / "records.parquet"

    def clean(self, day: date) -> AnyPath:
        return self._part("clean", day) / "posts.parquet"

    def tfidf_dir(self, day: date) -> AnyPath:
        return self._part("tfidf", day)

    def analyzed_dir(self, day: date, config_key: str) -> AnyPath:
        return self._part("analyzed", day) / config_key

    def analyzed_chunk(self, day: date, config_key: str, chunk: int) -> AnyPath:
        return self.analyzed_dir(day, config_key) / f"chunk-{chunk:04d}.parquet"

    def signals(self, day: date) -> AnyPath:
        return self._part("signals", day) / "signals.parquet"

    def manifest(self, day: date) -> AnyPath:
        return self._part("runs", day) / "manifest.json"

    def claims(self, day: date) -> AnyPath:
        """Which worker holds which analyze chunk, while a run goes on (local roots)."""
        return self._part("runs", day) / "claims"

    def lease(self, day: date) -> AnyPath:
        """Held by the one run writing this session (see ``storage.lease``)."""
        return self._part("runs", day) / "lease.json"

    def log(self, name: str) -> AnyPath:
        """A log file of the runs under this root (``logs/<name>.log``)."""
        return self.root / "logs" / f"{name}.log"

    def partitions(self, stage: str, filename: str, until: date | None = None) -> list[tuple[date, AnyPath]]:
        """``(session, path)`` of every stored ``stage/date=D/filename`` (up to ``until``), by date."""
        found = []
        for path in glob(self.root, f"{stage}/date=*/{filename}"):
            day = date.fromisoformat(path.parent.name.removeprefix("date="))
            if until is None or day <= until:
                found.append((day, path))
        return sorted(found, key=lambda item: item[0])
