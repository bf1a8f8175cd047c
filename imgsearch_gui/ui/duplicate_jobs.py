"""What the duplicate view's workers run: plain Python (no Qt), typed results.

:func:`find` is the library's finder, each grouped photo's width and height (as the finder read
them from the headers, in the worker) at hand; :func:`trash_copies` moves copies to the system
trash and takes the moved files out of the index (one job: the index never lists a file that is
in the trash for longer than the job takes); :func:`undo_last_trash` puts the last batch back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgsearch_gui.app.duplicates.model import DuplicateGroup, DuplicateReport, FinderOptions
from imgsearch_gui.app.trash import (
    RestoreReport,
    TrashBatch,
    TrashJournal,
    TrashReport,
    restore,
    trash_files,
)
from imgsearch_gui.base.errors import StorageError
from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ui.duplicate_plan import trash_plan

log = logging.getLogger(__name__)

Dims = tuple[int, int]


@dataclass(frozen=True)
class Found:
    """A finished search: the report, and the width x height of each grouped file (as shown,
    after the EXIF turn) where its header could be read."""

    report: DuplicateReport
    dims: dict[str, Dims] = field(default_factory=dict)


def find(library, options: FinderOptions, *, cancel: CancelToken) -> Iterator[Progress | Found]:
    """The finder's progress, then one :class:`Found` (nothing when cancelled)."""
    for event in library.find_duplicates(options, cancel):
        if isinstance(event, DuplicateReport):
            yield Found(event, {f.path: (f.width, f.height) for g in event.groups
                                for f in g.files if f.width and f.height})
            return
        yield event


@dataclass(frozen=True)
class TrashOutcome:
    """What moved (and what did not), how many files left the index, and why the index could
    not be updated ("" when it was)."""

    report: TrashReport
    forgotten: int = 0
    forget_error: str = ""


def trash_copies(library, data_dir: Path, chosen: Sequence[DuplicateGroup],
                 shown: Sequence[DuplicateGroup]) -> TrashOutcome:
    """Move the copies of ``chosen`` to the system trash (never a delete; every kept file of
    ``shown`` stays), then take the moved files out of the catalog and the index."""
    requests, keep = trash_plan(chosen, shown)
    report = trash_files(requests, TrashJournal(data_dir), keep=keep)
    if not report.trashed:
        return TrashOutcome(report)
    try:
        forgotten = library.forget_files([t.path for t in report.trashed])
    except Exception as exc:  # noqa: BLE001 - they are in the trash all the same: say so
        log.warning("moved to the trash, but not taken out of the index", exc_info=True)
        return TrashOutcome(report, 0, str(exc) or type(exc).__name__)
    return TrashOutcome(report, forgotten)


def last_batch(data_dir: Path) -> TrashBatch | None:
    """The batch an undo would put back (None: none, or the undo list cannot be read)."""
    try:
        batches = TrashJournal(data_dir).batches()
    except (StorageError, OSError) as exc:
        log.info("the undo list cannot be read: %s", exc)
        return None
    return batches[-1] if batches else None


@dataclass(frozen=True)
class UndoOutcome:
    """What the undo put back; ``report`` None: there was nothing to undo."""

    report: RestoreReport | None
    folders: tuple[str, ...] = ()  # the folders of the files put back


def undo_last_trash(data_dir: Path) -> UndoOutcome:
    """Put the files of the last trash batch (the GUI's or the CLI's) back where they were."""
    journal = TrashJournal(data_dir)
    batches = journal.batches()  # TrashJournalError: a newer version's list, nothing moved
    if not batches:
        return UndoOutcome(None)
    report = restore(batches[-1], journal)
    folders = tuple(sorted({os.path.dirname(f.path) for f in report.restored}))
    return UndoOutcome(report, folders)
