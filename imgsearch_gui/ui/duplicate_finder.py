"""The duplicate finder's jobs in the window (like the index queue, a QObject that owns no widget):
the search for duplicates in a worker, and the writes that act on its groups (move copies to the
trash, undo that, remember photos that are not duplicates), one at a time.

A write takes the library's job lock, as indexing does, and ``index_library`` refuses to start
while another job holds it; so each write holds the index queue (``IndexQueue.hold``, as a
library removal does): no indexing job starts until it is done (a running one is waited for by
the write itself). After a trash the search results are searched again without the moved photos;
after an undo the libraries of the photos put back are indexed again, by the index queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from imgsearch_gui.app.duplicates.model import DuplicateGroup, FinderOptions
from imgsearch_gui.ui import duplicate_jobs as jobs
from imgsearch_gui.ui.duplicate_plan import Said, distinct_said, restore_said, trash_said
from imgsearch_gui.ui.format import is_under
from imgsearch_gui.ui.index_queue import IndexQueue
from imgsearch_gui.ui.messages import Message, MessageChannel
from imgsearch_gui.ui.model_service import ModelService
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.search_controller import SearchController
from imgsearch_gui.ui.worker import Worker, WorkerGroup

log = logging.getLogger(__name__)


class DuplicateFinder(QObject):
    """Finds duplicate groups and acts on them; the dialog shows what its signals say."""

    findStarted = Signal()
    findProgress = Signal(object)  # Progress
    found = Signal(object)  # duplicate_jobs.Found
    findEnded = Signal(str)  # "done", "cancelled" or "failed"
    trashed = Signal(object)  # duplicate_jobs.TrashOutcome
    restored = Signal(object)  # duplicate_jobs.UndoOutcome
    reindexed = Signal()  # the libraries of the files an undo put back are indexed again
    markedDistinct = Signal(object)  # the DuplicateGroup that is not one
    notice = Signal(object)  # a Message posted about what a job did (the dialog shows it too)
    writingChanged = Signal(bool)  # a write runs (one at a time)

    def __init__(self, models: ModelService, workers: WorkerGroup, index_queue: IndexQueue,
                 search: SearchController, messages: MessageChannel, data_dir: Path,
                 libraries: Callable[[], Sequence[str]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models = models
        self.workers = workers
        self.index_queue = index_queue
        self.search = search
        self.messages = messages
        self.data_dir = Path(data_dir)
        self.libraries = libraries
        self.find_worker: Worker | None = None
        self.write_worker: Worker | None = None
        self._waiting: FinderOptions | None = None  # a find asked for while the model loads
        self._outcome = "failed"
        self._reindexing: set[str] = set()  # the libraries an undo has indexed again
        models.loaded.connect(self._model_loaded)
        index_queue.finished.connect(self._indexed)

    @property
    def finding(self) -> bool:
        return self.find_worker is not None or self._waiting is not None

    @property
    def writing(self) -> bool:
        return self.write_worker is not None

    # ==== finding ===========================================================================
    def find(self, options: FinderOptions) -> None:
        """Search the indexed photos for duplicates (once the model is loaded)."""
        if self.find_worker is not None:
            return
        library = self.models.library
        emit(self.findStarted)
        if library is None:
            self._waiting = options  # started by _model_loaded
            return
        self._waiting = None
        worker = Worker.with_cancel(jobs.find, library, options, name="find-duplicates")
        worker.progress.connect(self.findProgress)
        worker.result.connect(self._found)
        worker.error.connect(self._find_failed)
        worker.finished.connect(lambda: self._find_done(worker))
        self.find_worker, self._outcome = worker, "cancelled"
        self.workers.start(worker)

    def _model_loaded(self, _library) -> None:
        if self._waiting is not None and self.find_worker is None:
            options, self._waiting = self._waiting, None
            self.find(options)

    def cancel(self) -> None:
        """Stop the search (the groups found so far are not shown: it ends without a report)."""
        if self._waiting is not None:
            self._waiting = None
            emit(self.findEnded, "cancelled")
        if self.find_worker is not None:
            self.find_worker.cancel()

    def _found(self, found: jobs.Found) -> None:
        self._outcome = "done"
        emit(self.found, found)

    def _find_failed(self, exc: BaseException) -> None:
        self._outcome = "failed"
        self._say_message(self.messages.report("Finding duplicates failed", exc))

    def _find_done(self, worker: Worker) -> None:
        if worker is self.find_worker:
            self.find_worker = None
            emit(self.findEnded, self._outcome)

    def stop(self) -> list[Worker]:
        """A model switch: cancel the search; returns the workers still using the library
        (the writes are in the index queue's removals: its ``stop`` returns them)."""
        self.cancel()
        return self.in_use()

    def in_use(self) -> list[Worker]:
        return [w for w in (self.find_worker,) if w is not None]

    # ==== acting on the groups ==============================================================
    def trash(self, chosen: Sequence[DuplicateGroup], shown: Sequence[DuplicateGroup]) -> bool:
        """Move the copies of ``chosen`` to the system trash, then out of the index."""
        return self._write(jobs.trash_copies, self._trashed, "Moving copies to the trash",
                           self.data_dir, tuple(chosen), tuple(shown))

    def undo(self) -> bool:
        """Put the files of the last trash back and index their libraries again."""
        return self._write(jobs.undo_last_trash, self._restored, "Undoing the last trash",
                           self.data_dir, library=False)

    def mark_distinct(self, group: DuplicateGroup) -> bool:
        """Remember that the photos of ``group`` are not duplicates of each other."""
        return self._write(lambda library: library.mark_not_duplicates(
            [f.path for f in group.files]), lambda _n: self._distinct(group),
            "Remembering photos that are not duplicates")

    def _write(self, fn, done: Callable[[object], None], what: str, *args,
               library: bool = True) -> bool:
        if self.write_worker is not None:
            self._say(Said("Wait a moment: the last change is still being made.", True))
            return False
        lib = self.models.library
        if library and lib is None:
            self._say(Said("The model is loading: try again once it is ready.", True))
            return False
        worker = Worker(fn, *((lib,) if library else ()), *args, name="duplicates-write")
        worker.result.connect(done)
        worker.error.connect(lambda exc: self._say_message(self.messages.report(
            f"{what} failed", exc)))
        worker.finished.connect(lambda: self._write_done(worker))
        self.write_worker = worker
        self._hold_indexing(worker, True)
        emit(self.writingChanged, True)
        self.workers.start(worker)
        return True

    def _hold_indexing(self, worker: Worker, hold: bool) -> None:
        """While ``worker`` writes, the index queue starts no job."""
        if hold:
            self.index_queue.hold(worker)
        else:
            self.index_queue.release(worker)  # indexing asked for meanwhile starts now

    def _write_done(self, worker: Worker) -> None:
        self._hold_indexing(worker, False)
        if worker is self.write_worker:
            self.write_worker = None
            emit(self.writingChanged, False)

    def _trashed(self, outcome: jobs.TrashOutcome) -> None:
        self._say(trash_said(outcome.report, outcome.forget_error))
        moved = {t.path for t in outcome.report.trashed}
        if moved:
            shown = [h.path for h in self.search.results.model.hits if h.path in moved]
            for path in shown:  # at once; the search again fills the page
                self.search.forget_under(path)
            self.search.refresh()
        emit(self.trashed, outcome)

    def _restored(self, outcome: jobs.UndoOutcome) -> None:
        roots = [r for r in self._library_roots()
                 if any(is_under(folder, r) for folder in outcome.folders)]
        self._say(restore_said(outcome.report, bool(roots)))
        if roots:
            self._reindexing.update(roots)
            self.index_queue.index(roots)
        emit(self.restored, outcome)

    def _library_roots(self) -> list[str]:
        """The window's libraries and the catalog's (a folder indexed by ``imgsearch index`` is
        a library too, though the window never added it): one small read of the catalog."""
        roots = list(self.libraries())
        library = self.models.library
        if library is not None:
            try:
                roots += [lib.root for lib in library.catalog.libraries() if lib.root not in roots]
            except Exception:  # noqa: BLE001 - the window's own list still serves
                log.warning("the catalog's libraries could not be read", exc_info=True)
        return roots

    def _indexed(self, root: str, _report) -> None:
        if root in self._reindexing:
            self._reindexing.discard(root)
            if not self._reindexing:
                emit(self.reindexed)

    def _distinct(self, group: DuplicateGroup) -> None:
        self._say(distinct_said(group))
        emit(self.markedDistinct, group)

    # ==== messages ==========================================================================
    def _say(self, said: Said) -> Message:
        post = self.messages.warning if said.warning else self.messages.post
        message = post(said.text, details=said.details)
        emit(self.notice, message)
        return message

    def _say_message(self, message: Message) -> None:
        emit(self.notice, message)
