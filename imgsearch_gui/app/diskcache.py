"""Keep a cache folder within a size budget: least recently used files go first.

"Recently used" is the file's mtime: readers touch a file when they use it (:func:`touch`), since
access times are unreliable (relatime/noatime mounts). Pruning goes down to a low-water mark below
the budget so that it does not run again after every few new files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneReport:
    files: int  # files in the cache before pruning
    bytes_before: int
    removed: int
    bytes_after: int


def touch(path: str | os.PathLike[str]) -> None:
    """Mark a cached file as used now (best effort: a read-only cache still works)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(root: str | os.PathLike[str], max_bytes: int, low_water: float = 0.8,
          cancel=None) -> PruneReport:
    """Delete the least recently used files under ``root`` until it holds at most
    ``low_water * max_bytes``, if it holds more than ``max_bytes``. Files that vanish or cannot be
    deleted meanwhile are skipped."""
    entries: list[tuple[float, int, str]] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return PruneReport(len(entries), total, 0, total)
    target = int(max_bytes * low_water)
    removed, remaining = 0, total
    entries.sort()  # oldest use first
    for _mtime, size, path in entries:
        if remaining <= target or (cancel is not None and cancel.cancelled):
            break
        try:
            os.remove(path)
        except OSError:
            continue
        removed += 1
        remaining -= size
    log.info("pruned %s: %d of %d files, %.1f -> %.1f MB", root, removed, len(entries),
             total / 1e6, remaining / 1e6)
    return PruneReport(len(entries), total, removed, remaining)

