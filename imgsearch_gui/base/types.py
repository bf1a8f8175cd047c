"""Typed results shared by the library facade, the CLI and the GUI."""

from __future__ import annotations

import threading
from collections.abc import Container
from dataclasses import dataclass

from imgsearch_gui.base.bands import Band


class CancelToken:
    """A cooperative cancel flag: long work checks ``cancelled`` between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """One step of a long job. ``total`` is 0 while unknown (e.g. during the scan)."""

    stage: str  # "wait" (for another writer) | "scan" | "embed" | "save"
    done: int
    total: int
    current: str | None = None
    images_per_s: float = 0.0
    eta_s: float | None = None
    message: str = ""


@dataclass(frozen=True)
class IndexReport:
    """What one indexing job of one library root did.

    ``embedded``: images embedded in this run (a group of identical new files counts once, the
    others are ``duplicates``); ``indexed``: the library's photos searchable after the run.
    ``offline``: the root was not reachable (missing, or empty while the catalog holds photos
    under it: an unplugged drive); nothing was removed. ``unreadable``: folders (or files) that
    could not be read; their catalog entries were kept.
    """

    library: str
    embedded: int
    unchanged: int
    moved: int
    removed: int
    duplicates: int
    skipped: tuple[SkippedFile, ...]
    seconds: float
    images_per_s: float
    cancelled: bool = False
    indexed: int = 0
    offline: bool = False
    unreadable: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """The index changed: photos added, moved, removed or found to be duplicates."""
        return bool(self.embedded or self.moved or self.removed or self.duplicates)

    def is_news(self, skipped_before: Container[str]) -> bool:
        """Worth telling after a pass nobody asked for (a watcher's): the index changed, the job
        was cut short, or a file is skipped that was not before (files skipped before and still
        skipped are in every report; an offline root is shown where libraries are)."""
        return (self.changed or self.cancelled
                or any(s.path not in skipped_before for s in self.skipped))

    @property
    def total_files(self) -> int:
        return self.embedded + self.unchanged + self.moved + self.duplicates + len(self.skipped)


@dataclass(frozen=True)
class SearchHit:
    path: str
    score: float  # cosine similarity in [-1, 1]
    rank: int  # 1-based
    library: str | None = None
    offline: bool = False  # its library root is not reachable (e.g. an unplugged drive)
    #: what the score means (``base/bands.py``), None where the model's bands were not measured
    band: Band | None = None
