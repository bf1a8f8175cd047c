"""One writer per data dir: an OS file lock on ``DATA_DIR/writer.lock``, held for a whole write.

Every write of a data dir (an indexing job, removing a library, learning a whitening, a repair)
runs while one process holds this lock; readers (search, info, the GUI's searches) never take it.

* The lock is ``fcntl.flock`` (Linux, macOS) or ``msvcrt.locking`` (Windows) on an open file:
  the kernel drops it when the holder's file is closed, also when the process dies (kill -9, a
  crash, a power cut), so a dead holder never blocks anyone and no stale lock is ever "broken".
  No extra package: both come with Python.
* The holder writes who it is into the file (pid, host, what it does, since when), so a second
  writer can say "waiting for the indexing job of pid N..." or fail with WriterBusyError. That
  text is only informative: what was left by a dead holder is overwritten by the next one, and a
  holder whose pid no longer runs is shown as "another process".
* Within a process it is not re-entrant and one ``WriterLock`` object is used by one holder at a
  time (its threading lock): two libraries on one data dir in one process exclude each other too,
  as flock locks belong to open files, not to processes.
* Network file systems may not support these locks; the data dir is meant to be local.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from imgsearch_gui.base.errors import WriterBusyError
from imgsearch_gui.base.types import CancelToken

log = logging.getLogger(__name__)

LOCK_FILE = "writer.lock"
#: seconds between two tries while waiting for another writer
POLL_S = 0.1
_INFO_BYTES = 512  # the holder's record is padded to this size (rewritten in place)
_WIN_LOCK_AT = 1 << 20  # Windows locks a byte range: one byte past the record


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its record says (None fields when it could not be read)."""

    pid: int | None
    what: str | None
    host: str | None = None
    since: float | None = None

    def describe(self) -> str:
        if self.pid is None:
            return "another process"
        return f"the {self.what or 'writer'} of pid {self.pid}"


class WriterLock:
    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self._fd: int | None = None
        self._thread = threading.Lock()
        self.what: str | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock (in any thread)."""
        return self._fd is not None

    def try_acquire(self, what: str) -> bool:
        """Take the lock now if it is free; True when taken. ``what`` says what the write is."""
        if not self._thread.acquire(blocking=False):
            return False
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except BaseException:
            self._thread.release()
            raise
        if not _lock(fd):
            os.close(fd)
            self._thread.release()
            return False
        self._fd, self.what = fd, what
        self._write_record(what)
        return True

    def release(self) -> None:
        fd, self._fd, self.what = self._fd, None, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)  # closing drops the lock in any case
            self._thread.release()

    def holder(self) -> Holder:
        """Who holds the lock now, from its record ("another process" when unknown)."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(_INFO_BYTES)
            info = json.loads(raw.decode("utf-8").strip())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return Holder(None, None)
        host = info.get("host")
        if host == socket.gethostname() and not _alive(pid):
            return Holder(None, None)  # the record of a dead holder; a new one is writing its own
        return Holder(pid, info.get("what"), host, info.get("since"))

    def acquire(self, what: str, *, wait: bool = True, cancel: CancelToken | None = None
                ) -> Generator[str, None, bool]:
        """Take the lock, waiting for another writer: yields a message each time the holder
        changes ("Waiting for the indexing job of pid N to finish..."); returns False when
        ``cancel`` was set while waiting. WriterBusyError when it is held and not ``wait``."""
        last = None
        while not self.try_acquire(what):
            holder = self.holder()
            if not wait:
                raise WriterBusyError(self.data_dir, holder.pid, holder.what)
            if cancel is not None and cancel.cancelled:
                return False
            message = f"Waiting for {holder.describe()} to finish writing to {self.data_dir}..."
            if message != last:
                log.info("%s", message)
                last = message
                yield message
            time.sleep(POLL_S)
        return True

    def _write_record(self, what: str) -> None:
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                             "since": time.time()})
        data = record.encode("utf-8")[: _INFO_BYTES - 1].ljust(_INFO_BYTES - 1) + b"\n"
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, data)
        except OSError as exc:  # only informative: the lock itself is held
            log.debug("cannot write the writer record %s: %s", self.path, exc)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - no cheap check; trust the record
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> bool:
        os.lseek(fd, _WIN_LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
