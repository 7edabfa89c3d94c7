"""One writer per (data root, session): a lease file beside the run manifest.

A run takes the lease before it collects and gives it back when it ends; a second run of the
same session on the same data root finds it held and waits (or gives up at once, by choice). The
lease names its holder (run id, host, pid, start) and carries an expiry that the holder renews
from a background thread, so a holder that died stops blocking others: on its own host at once
(its pid is gone), elsewhere once its lease expires.

How the lease is written safely:

- **local data roots**: every read-decide-write happens under an exclusive ``fcntl`` lock on a
  companion ``.lock`` file, so two processes can never both see the lease free or both take over
  a dead holder's lease;
- **object stores**: a free lease is created with a conditional put (S3 ``If-None-Match: *``
  through fsspec's ``mode="create"``), which only one writer wins. Taking over an *expired* lease
  has no conditional delete to rely on, so the taker writes, waits ``SETTLE_S`` and reads back:
  of two racing takers only the last writer keeps the lease, the other sees it lost and waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tweet_signals.processes import pid_alive
from tweet_signals.storage.files import AnyPath, is_local

TTL_S = 120.0  # a holder that stops renewing is presumed dead after this long
RENEW_EVERY_S = TTL_S / 4
SETTLE_S = 2.0  # object stores: how long a taker waits before checking it kept a taken-over lease
POLL_S = 2.0


class SessionBusyError(RuntimeError):
    """Another live run holds the session's lease (and waiting was not asked for, or ran out)."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    started_at: str

    @staticmethod
    def this_process(run_id: str | None = None) -> Holder:
        return Holder(
            run_id or uuid.uuid4().hex,
            socket.gethostname(),
            os.getpid(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return f"run {self.run_id} on host {self.host} (pid {self.pid}, started at {self.started_at})"


def holder_is_dead(record: dict[str, Any], now: datetime | None = None) -> bool:
    """A lease whose holder is gone: its process on this host no longer exists, or it expired."""
    now = now or datetime.now(UTC)
    if record.get("host") == socket.gethostname() and not pid_alive(int(record.get("pid", -1))):
        return True
    try:
        return datetime.fromisoformat(record["expires_at"]) < now
    except (KeyError, TypeError, ValueError):
        return True  # unreadable: nobody can renew it


def _record(holder: Holder) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=TTL_S)
    return {**asdict(holder), "expires_at": expires.isoformat(timespec="seconds")}


class SessionLease:
    """The lease of one session under one data root (see the module docstring)."""

    def __init__(self, path: AnyPath, holder: Holder) -> None:
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.taken_over: dict[str, Any] | None = None  # the dead holder's record, if any
        self.waited_s = 0.0

    # -- reading and writing the lease file ------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # present but unreadable (a torn write): treated as dead

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Local roots: an exclusive lock around read-decide-write. Object stores: nothing."""
        if not isinstance(self.path, Path):
            yield
            return
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, record: dict[str, Any], create: bool) -> bool:
        """Write the lease; with ``create``, only if none exists. False when one does."""
        data = json.dumps(record, indent=1).encode("utf-8")
        if isinstance(self.path, Path):
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(data)
            if create and self.path.exists():
                tmp.unlink()
                return False
            os.replace(tmp, self.path)  # under the lock: nobody else decides meanwhile
            return True
        try:
            self.path.fs.pipe_file(self.path.path, data, mode="create" if create else "overwrite")
        except FileExistsError:
            return False
        except Exception as exc:  # stores without conditional puts say so in their own words
            if create and "precondition" in str(exc).lower():
                return False
            raise
        return True

    # -- the protocol ----------------------------------------------------------------------
    def try_acquire(self) -> dict[str, Any] | None:
        """Take the lease if it is free or its holder is dead; else return the live holder."""
        with self._locked():
            current = self.read()
            if current is None:
                if self._write(_record(self.holder), create=True):
                    return None
                current = self.read() or {}
            if current.get("run_id") == self.holder.run_id:
                return None
            if not holder_is_dead(current):
                return current
            self._write(_record(self.holder), create=False)
            taken = current
        if not is_local(self.path):
            time.sleep(SETTLE_S)
            now = self.read() or {}
            if now.get("run_id") != self.holder.run_id:
                return now  # another taker wrote after us: it holds the lease
        self.taken_over = taken
        return None

    def acquire(self, wait_s: float, on_wait: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Take the lease, waiting up to ``wait_s`` for a live holder to finish (0: don't wait)."""
        started = time.monotonic()
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                self.waited_s = round(time.monotonic() - started, 1)
                self._start_renewing()
                return
            described = Holder(**{k: holder.get(k, "?") for k in ("run_id", "host", "pid", "started_at")}).describe()
            if time.monotonic() - started >= wait_s:
                waited = f" after waiting {time.monotonic() - started:.0f} s" if wait_s else ""
                raise SessionBusyError(f"the session is being processed by {described}{waited}", holder)
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(POLL_S)

    def _start_renewing(self) -> None:
        def renew() -> None:
            while not self._stop.wait(RENEW_EVERY_S):
                with self._locked():
                    current = self.read() or {}
                    if current.get("run_id") != self.holder.run_id:
                        return  # lost it (we were presumed dead): stop claiming
                    self._write(_record(self.holder), create=False)

        self._renewer = threading.Thread(target=renew, name="session-lease-renewer", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Give the lease back (only if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._locked():
            current = self.read()
            if current is not None and current.get("run_id") == self.holder.run_id:
                if isinstance(self.path, Path):
                    self.path.unlink(missing_ok=True)
                else:
                    self.path.fs.rm_file(self.path.path)
