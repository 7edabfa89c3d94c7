"""Keeping a data root usable: is it writable before a run starts, and removing what killed writes
left behind.

A write killed mid-file (SIGKILL, a lost machine) leaves its temporary file: beside the target on
a local root (``raw/date=D/.posts.parquet.<hex>.tmp``), in the system's temp directory for an
object store (the upload itself is atomic, so the store holds no partial object). Nothing trusts
these files, but they would stay for good; the next run of the session removes them once it holds
the session's lease, that is when no live run of that session can still be writing them.
"""

from __future__ import annotations

import errno
import re
import tempfile
import uuid
from datetime import date
from pathlib import Path

from tweet_signals.faults import STORAGE_ERRNOS, StorageFault, storage_cause, storage_line
from tweet_signals.processes import pid_alive
from tweet_signals.storage.files import LOCAL_TMP_GLOB, REMOTE_TMP_PREFIX, write_bytes_atomic
from tweet_signals.storage.layout import Storage

# Every stage folder a session's run writes into (see ``layout``).
SESSION_STAGES = ("raw", "quarantine", "clean", "tfidf", "analyzed", "signals", "runs")
_REMOTE_TMP = re.compile(rf"^{re.escape(REMOTE_TMP_PREFIX)}(\d+)-[0-9a-f]+\.tmp$")


def sweep_temporaries(storage: Storage, day: date, temp_dir: Path | None = None) -> list[str]:
    """Remove the temporary files killed writes left for session ``day``; return what was removed.

    Call it only while holding the session's lease. On a local root: every ``.*.tmp`` under the
    session's stage folders. For an object store: the staging files in ``temp_dir`` (the system's
    temp directory) whose writer process is gone; those of live writers (other sessions' runs on
    this machine) stay.
    """
    removed: list[str] = []
    if not storage.remote:
        for stage in SESSION_STAGES:
            folder = storage.root / stage / f"date={day.isoformat()}"
            if not isinstance(folder, Path) or not folder.is_dir():
                continue
            for tmp in folder.rglob(LOCAL_TMP_GLOB):
                tmp.unlink(missing_ok=True)
                removed.append(str(tmp))
        return removed
    for tmp in (temp_dir or Path(tempfile.gettempdir())).glob(f"{REMOTE_TMP_PREFIX}*.tmp"):
        match = _REMOTE_TMP.match(tmp.name)
        if match and not pid_alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(str(tmp))
    return removed


def check_data_root(storage: Storage, day: date) -> None:
    """Fail with a ``StorageFault`` before anything starts when the data root cannot take a write
    (missing mount, read-only, no permission, full): a probe file in the session's ``runs/``
    folder, written atomically and removed."""
    probe = storage.manifest(day).parent / f".write-probe-{uuid.uuid4().hex[:8]}"
    try:
        write_bytes_atomic(b"ok", probe)
        probe.unlink()
    except OSError as exc:
        cause = storage_cause(exc)
        # Here a missing path is the root itself; object stores say so without an errno (s3fs
        # turns NoSuchBucket into a bare FileNotFoundError).
        if cause is None and (exc.errno == errno.ENOENT or isinstance(exc, FileNotFoundError)):
            cause = STORAGE_ERRNOS[errno.ENOENT]
        if cause is None:
            raise
        raise StorageFault(storage_line(storage.root, "start", cause), cause) from exc
