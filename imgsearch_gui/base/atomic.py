"""Atomic, durable file writes: a file is either its old content or its complete new one.

:func:`atomic_write` writes a temporary file beside the target, flushes and fsyncs it, moves it
over the target with ``os.replace`` and fsyncs the folder, so that after a crash or a power cut
the name points at a complete file (without the fsyncs, a journaling file system may keep the
rename and lose the data: an empty settings file). A failing write (a full disk) leaves the
target as it was and removes the temporary file. Used for embedder.json, whitenings and
checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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

    Raises what the write raises (OSError for a full disk); ``path`` is then unchanged and no
    temporary file is left.
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes | bytearray | memoryview):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


__all__ = ["atomic_write", "fsync_dir"]
