"""Faults from outside the pipeline, told apart from bugs so each ends in one line that says what
to do: the data root's storage refusing writes, and the Prefect API going away.

Both are recognised anywhere in an exception's chain (``__cause__``/``__context__``), because
Prefect and pyarrow wrap the original error on the way up.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

# errno values that mean "the storage refuses", not "the code is wrong"; each with what to do.
STORAGE_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "no space left on the device: free space",
    errno.EDQUOT: "disk quota exceeded: free space or raise the quota",
    errno.EACCES: "permission denied: let this user write there",
    errno.EPERM: "operation not permitted: let this user write there",
    errno.EROFS: "read-only file system: mount it read-write",
    errno.ENOENT: "the data root is missing: mount or create it",
    errno.ENOTDIR: "a path under the data root is not a folder",
    errno.EIO: "input/output error: check the device",
}

NEXT_STEP = "outputs already finished are kept; run the same command again to resume"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class StorageFault(OSError):
    """The data root refused a write; ``str()`` is the one line an operator reads."""

    def __init__(self, line: str, cause: str) -> None:
        super().__init__(line)
        self.line, self.cause = line, cause

    def __str__(self) -> str:
        return self.line

    def __reduce__(self) -> tuple[type[StorageFault], tuple[str, str]]:  # crosses process boundaries
        return (StorageFault, (self.line, self.cause))


def storage_cause(exc: BaseException) -> str | None:
    """What the storage said, when ``exc`` comes from a storage refusal; None for anything else.

    ``ENOENT`` counts only for the data root itself (see ``check_data_root``): a missing input
    file is bad input, not a storage fault.
    """
    for seen in causes(exc):
        if isinstance(seen, StorageFault):
            return seen.cause
        if isinstance(seen, OSError) and seen.errno in STORAGE_ERRNOS and seen.errno != errno.ENOENT:
            return STORAGE_ERRNOS[seen.errno]
        # Object stores (s3fs, gcsfs) raise PermissionError without an errno for a refused put.
        if isinstance(seen, PermissionError):
            return f"the store refused the write ({seen}): check the credentials and the bucket's policy"
    return None


def storage_line(root: object, stage: str, cause: str) -> str:
    """The one line for a storage fault: which root, which stage, the cause, what next."""
    return f"storage fault under data root {root} during {stage}: {cause}; {NEXT_STEP}"


def api_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the Prefect API not answering (refused, reset, timed out)."""
    import httpx

    return any(isinstance(seen, httpx.TransportError) for seen in causes(exc))


def api_line(api_url: str, stage: str | None) -> str:
    during = f" while {stage} was running" if stage else ""
    return f"the Prefect API at {api_url} stopped answering{during}; {NEXT_STEP}"
