"""The run manifest's record of outputs, and the check that a "complete" session really is.

A manifest that says ``complete`` is a claim; the files are the truth. Each output is recorded
with its size (and, for analyzed chunks, its row count), and a session counts as complete only
when every recorded output is still there, the same size, with the same rows. Anything else is
recomputed by the next run, which reuses what is intact.
"""

from __future__ import annotations

from typing import Any

from tweet_signals.storage.files import AnyPath, location, parquet_metadata


def output_record(path: AnyPath | str, rows: int | None = None) -> dict[str, Any]:
    """``{"path", "bytes"[, "rows"]}`` of a file that was just written or reused."""
    target = location(str(path))
    record: dict[str, Any] = {"path": str(path), "bytes": int(target.stat().st_size)}
    if rows is not None:
        record["rows"] = int(rows)
    return record


def output_problem(record: dict[str, Any]) -> str | None:
    """Why a recorded output can no longer be trusted, or None when it is intact."""
    path = location(record["path"])
    try:
        size = int(path.stat().st_size)
    except (FileNotFoundError, OSError):
        return f"{record['path']}: missing"
    if size != record["bytes"]:
        return f"{record['path']}: {size} bytes, {record['bytes']} recorded"
    if "rows" in record:
        meta = parquet_metadata(path)
        rows = None if meta is None else meta.get("rows")
        if rows != record["rows"]:
            return f"{record['path']}: {rows} rows, {record['rows']} recorded"
    return None


def incomplete_reasons(manifest: dict[str, Any] | None) -> list[str]:
    """Why a session's manifest does not prove a complete session (empty when it does)."""
    if not manifest:
        return ["no manifest"]
    if manifest.get("status") != "complete":
        return [f"status {manifest.get('status')!r}"]
    if "outputs" not in manifest:
        return ["the manifest lists no outputs"]
    return [problem for record in manifest["outputs"] if (problem := output_problem(record))]
