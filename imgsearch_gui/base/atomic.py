"""Atomic, durable file writes: a file is either its old content or its complete new one.

:func:`atomic_write` writes a temporary file beside the target, flushes and fsyncs it, moves it
over the target with ``os.replace`` and fsyncs the folder, so that after a crash or a power cut
the name points at a complete file (without the fsyncs, a journaling file system may keep the
rename and lose the data: an empty settings file). A failing write (a full disk) leaves the
target as it was and removes the temporary file; its OSError comes as FileFullError (ENOSPC,
EDQUOT, EFBIG) or FileWriteError: StorageErrors (the CLI's exit status 4) that are still OSErrors.
Used for embedder.json, whitenings and checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from imgsearch_gui.base.errors import FileFullError, FileWriteError

#: errnos that mean "no room": disk full, quota exceeded, file size limit (RLIMIT_FSIZE)
FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in folder ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, created with the umask's permissions (as a plain ``open``
    would: ``mkstemp`` would make a settings file private)."""
    for _ in range(100):
        tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with ``data`` (bytes, or a function writing to a binary file object).

    A failing write raises FileFullError / FileWriteError (from the OSError, also when ``data``
    wrapped it, as ``torch.save`` does); ``path`` is then unchanged and no temporary file is left.
    Other errors of ``data`` are raised as they are.
    """
    path = Path(path)
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes | bytearray | memoryview):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        cause = _os_error(exc) if isinstance(exc, Exception) else None
        if cause is None:
            raise
        error = write_error(path, cause)
    else:
        fsync_dir(path.parent)
        return path
    raise error from cause  # outside the handler: the OSError is the context too


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, or what it was raised from or while handling)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def write_error(path: Path, exc: OSError) -> FileWriteError:
    """The StorageError (and OSError) for ``exc`` while writing ``path``: full or not."""
    if isinstance(exc, FileWriteError):
        return exc
    reason = exc.strerror or str(exc)
    kind = FileFullError if exc.errno in FULL_ERRNOS else FileWriteError
    return kind(path, reason, exc.errno)


__all__ = ["FULL_ERRNOS", "atomic_write", "fsync_dir", "write_error"]
