"""Typed results shared by the library facade, the CLI and the GUI."""

from __future__ import annotations

import threading
from dataclasses import dataclass


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

    stage: str  # "scan" | "embed" | "save"
    done: int
    total: int
    current: str | None = None
    images_per_s: float = 0.0
    eta_s: float | None = None
    message: str = ""


@dataclass(frozen=True)
class IndexReport:
    library: str
    indexed: int
    unchanged: int
    moved: int
    removed: int
    duplicates: int
    skipped: tuple[SkippedFile, ...]
    seconds: float
    images_per_s: float
    cancelled: bool = False

    @property
    def total_files(self) -> int:
        return self.indexed + self.unchanged + self.moved + self.duplicates + len(self.skipped)


@dataclass(frozen=True)
class SearchHit:
    path: str
    score: float  # cosine similarity in [-1, 1]
    rank: int  # 1-based
    library: str | None = None
