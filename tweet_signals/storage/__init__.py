"""Storage: where every output lives (``layout``), how it is written safely (``files``), when a
stored output may be reused instead of recomputed (``reuse``), and whether a session said to be
complete still is (``manifest``)."""

from tweet_signals.storage.files import (
    AnyPath,
    ParquetStreamWriter,
    file_digest,
    glob,
    is_local,
    link,
    location,
    parquet_metadata,
    publish,
    read_json,
    sha256_file,
    uri,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
)
from tweet_signals.storage.layout import Storage
from tweet_signals.storage.manifest import incomplete_reasons, output_problem, output_record
from tweet_signals.storage.reuse import current, current_json, current_parquet

__all__ = [
    "AnyPath",
    "ParquetStreamWriter",
    "Storage",
    "current",
    "current_json",
    "current_parquet",
    "file_digest",
    "glob",
    "incomplete_reasons",
    "is_local",
    "link",
    "location",
    "output_problem",
    "output_record",
    "parquet_metadata",
    "publish",
    "read_json",
    "sha256_file",
    "uri",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_parquet_atomic",
]
