"""The libraries and the jobs that write the data dir (like vorta's JobsManager): a library is
added to the preferences and queued, libraries are indexed one at a time, a removal holds the
library's job lock so indexing waits for it, and an index that cannot be used as it is (another
model built it, or it is damaged) gets a rebuild offer. It owns no widget: the window shows what
its signals say.

Nothing here waits for a job with a timeout: a job is cancelled and the library is closed only
once it has ended (the model service and the window wait for the workers :meth:`stop` returns).
A library that is offline (an unplugged drive) keeps its photos; an emptied one is pruned only
after the user confirms."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from imgsearch_gui.app import demo
from imgsearch_gui.base.errors import IndexCorruptError, ModelMismatchError, NotALibraryError
from imgsearch_gui.base.types import IndexReport, Progress, SkippedFile
from imgsearch_gui.ui.format import index_summary, is_under
from imgsearch_gui.ui.jobs import index_and_remember
from imgsearch_gui.ui.messages import MessageChannel
from imgsearch_gui.ui.model_service import ModelService
from imgsearch_gui.ui.prefs import Prefs
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.worker import Worker, WorkerGroup

log = logging.getLogger(__name__)

Confirm = Callable[[str, str], bool]


def index_unusable(exc: BaseException) -> bool:
    """The index cannot be used as it is (another model built it, or it is damaged)."""
    return isinstance(exc, (ModelMismatchError, IndexCorruptError))


class IndexQueue(QObject):
    """Indexing and removal jobs on the library the model service opened."""

    started = Signal(str, int, int)  # root, position in this run, jobs in this run
    progress = Signal(object)  # Progress
    finished = Signal(str, object)  # root, the IndexReport (None when the job failed)
    skippedChanged = Signal()
    librariesChanged = Signal()  # the list of libraries in the preferences
    libraryRemoved = Signal(str)  # its photos leave the index (and the results)

    def __init__(self, models: ModelService, workers: WorkerGroup, messages: MessageChannel,
                 prefs: Prefs, confirm: Confirm, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models = models
        self.workers = workers
        self.messages = messages
        self.prefs = prefs
        self.confirm = confirm
        self.worker: Worker | None = None
        self.root = ""  # being indexed now
        self.skipped: dict[str, SkippedFile] = {}
        self._queue: list[tuple[str, bool]] = []
        #: options of the next job of a root: prune, retry_skipped (see index_library)
        self._options: dict[str, dict[str, bool]] = {}
        self._count = 0
        self._report: IndexReport | None = None
        # removals hold the library's job lock: indexing waits until they are done
        self._removals: set[Worker] = set()
        self._closing = False
        #: roots whose next job the watcher asked for: its report is shown only if it changed something
        self._quiet: set[str] = set()
        self._quiet_job = False

    @property
    def running(self) -> bool:
        return self.worker is not None

    @property
    def rebuilding(self) -> bool:
        """A rebuild is waiting (no need to offer one)."""
        return any(rebuild for _, rebuild in self._queue)

    # ==== indexing ==========================================================================
    def index(self, roots: Iterable[str], rebuild: bool = False, **options: bool) -> None:
        """Queue ``roots`` for indexing (one job at a time); ``rebuild`` re-embeds everything;
        ``options`` (prune, retry_skipped) go to each root's next job."""
        roots = list(roots)
        self._quiet.difference_update(roots)  # asked for: its report is shown
        if self.running and self.root in roots:
            self._quiet_job = False  # the watcher's pass running now is the one asked for
        for root in roots:
            if any(options.values()):
                self._options.setdefault(root, {}).update(options)
        if rebuild and roots:
            # A rebuild drops every vector of the data dir (all libraries' files become pending):
            # rebuild once, then index every library, those already waiting included.
            waiting = [r for r, _ in self._queue if r not in roots]
            queue = [(roots[0], True)] + [(r, False) for r in [*roots[1:], *waiting]]
            self._count += len(queue) - len(self._queue)
            self._queue = queue
            self.start_next()
            return
        for root in roots:
            for i, (queued, queued_rebuild) in enumerate(self._queue):
                if queued == root:
                    if rebuild and not queued_rebuild:
                        self._queue[i] = (root, True)
                    break
            else:
                if root == self.root and self.running and not rebuild and not options:
                    continue  # being indexed right now
                self._queue.append((root, rebuild))
                self._count += 1
        self.start_next()

    def refresh(self, roots: Iterable[str]) -> None:
        """Pass over ``roots`` again because their folders changed (the folder watcher): queued
        even while the root is being indexed (its scan may be past the change), once; a pass
        that finds nothing new says nothing."""
        for root in roots:
            if root not in self.prefs.libraries:
                continue
            if not any(queued == root for queued, _ in self._queue):
                self._queue.append((root, False))
                self._count += 1
                self._quiet.add(root)
        self.start_next()

    def start_next(self) -> None:
        """Start the next queued job once the library is open and nothing else writes."""
        library = self.models.library
        if self.worker is not None or self._removals or library is None or self._closing:
            return
        if not self._queue:
            self._count = 0
            return
        root, rebuild = self._queue.pop(0)
        self.root = root
        position = self._count - len(self._queue)
        options = self._options.pop(root, {})
        self._quiet_job = root in self._quiet
        self._quiet.discard(root)
        worker = Worker.with_cancel(index_and_remember, library, root, rebuild=rebuild,
                                    name="index", **options)
        worker.progress.connect(self._progress)
        worker.result.connect(self._result)
        worker.error.connect(self._error)
        worker.finished.connect(self._done)
        self.worker = worker
        self._report = None
        emit(self.started, root, position, self._count)
        self.workers.start(worker)

    def _progress(self, progress: Progress) -> None:
        emit(self.progress, progress)

    def _result(self, item) -> None:
        if not isinstance(item, IndexReport):
            return
        self._report = item
        news = item.is_news(self.skipped)  # before the skipped files are these
        if not item.cancelled and not item.offline:  # the library's skipped files are these now
            self.skipped = {p: s for p, s in self.skipped.items() if not is_under(p, item.library)}
        for s in item.skipped:
            self.skipped[s.path] = s
        emit(self.skippedChanged)
        if self._quiet_job and not news:
            log.info("%s: passed over after a change in its folder: nothing new%s",
                     item.library, " (offline)" if item.offline else "")
        elif item.offline:
            self._offline(item)
        elif (item.skipped or item.unreadable) and not item.cancelled:
            self.messages.warning(index_summary(item))
        else:
            self.messages.info(index_summary(item))

    def _offline(self, report: IndexReport) -> None:
        """The root is missing (kept, said) or empty while photos are indexed under it: the
        user decides whether they are gone (then the job runs again with prune)."""
        self.messages.warning(index_summary(report))
        root = report.library
        if os.path.isdir(root) and self.confirm(
            "Remove the photos of an empty folder?",
            f"{root} is empty, but {report.indexed:,} of its photos are in the index. If it is "
            "the folder of a drive that is not connected, keep them (No): they are found again "
            "when the drive is back.\n\nRemove them from the index?",
        ):
            self.index([root], prune=True)

    def _error(self, exc: BaseException) -> None:
        if index_unusable(exc):
            self._queue = [(r, b) for r, b in self._queue if b]
            self.offer_rebuild(exc)
        else:
            self.messages.report(f"Indexing {self.root} failed", exc)

    def _done(self) -> None:
        root = self.root
        self.worker, self.root = None, ""
        report, self._report = self._report, None
        emit(self.finished, root, report)  # the report, or None when the job failed
        self.start_next()

    def cancel(self) -> bool:
        """Stop the running job (what is done is kept) and forget the queue. False if idle."""
        if self.worker is None:
            return False
        self._queue.clear()
        self._quiet.clear()
        self.worker.cancel()
        return True

    def forget_rebuilds(self) -> None:
        """A model failed to load: the rebuilds queued for it go; the other jobs stay, to run
        with the model that is back (a library added meanwhile is still indexed)."""
        self._queue = [(root, rebuild) for root, rebuild in self._queue if not rebuild]
        self._count = len(self._queue) + (1 if self.running else 0)

    def in_use(self) -> list[Worker]:
        """The workers using the library now (the job, removals), the queue left as it is."""
        return [w for w in (self.worker, *self._removals) if w is not None]

    def stop(self) -> list[Worker]:
        """Forget the queue and cancel the running job (a model switch). Returns the workers
        still using the library (the job, removals): close it only once they have ended."""
        self._queue.clear()
        self._options.clear()
        self._quiet.clear()
        if self.worker is not None:
            self.worker.cancel()
        return [w for w in (self.worker, *self._removals) if w is not None]

    def shutdown(self) -> None:
        """The window closes: start nothing more (the worker group stops the running job)."""
        self._closing = True
        self._queue.clear()

    # ==== the libraries =====================================================================
    def add_library(self, folder: str | os.PathLike[str]) -> None:
        """Remember ``folder`` as a library and index it; it replaces the demo photos."""
        root = str(Path(folder).expanduser().resolve())
        if not Path(root).is_dir():
            self.messages.warning(f"Not a folder: {root}")
            return
        data_dir = self.models.data_dir
        roots = self.prefs.libraries
        if not demo.is_demo_library(root, data_dir):
            for old in [r for r in roots if demo.is_demo_library(r, data_dir)]:
                self.remove_library(old, ask=False)  # the demo was only a first look
                self.messages.info("Removed the demo photos from the index: your own library "
                                   "replaces them (Help ▸ Try the demo photos brings them back).")
            roots = self.prefs.libraries
        if root not in roots:
            self.prefs.libraries = [*roots, root]
            self.prefs.sync()
        emit(self.librariesChanged)
        self.index([root])

    def remove_library(self, root: str, *, ask: bool = True) -> None:
        """Forget ``root`` (after asking): its photos leave the index, the files stay."""
        if ask and not self.confirm(
            "Remove library?",
            f"Forget {root}?\n\nIts photos leave the index; the files themselves stay untouched.",
        ):
            return
        self.prefs.libraries = [r for r in self.prefs.libraries if r != root]
        self.prefs.sync()
        emit(self.librariesChanged)
        self._remove(root)
        emit(self.libraryRemoved, root)

    def _remove(self, root: str) -> None:
        """Take ``root``'s photos out of the index (in a worker) and out of the skipped list."""
        if self.root == root and self.worker is not None:
            self.worker.cancel()  # the removal waits for the library's job lock
        self._queue = [(r, b) for r, b in self._queue if r != root]
        self.skipped = {p: s for p, s in self.skipped.items() if not is_under(p, root)}
        emit(self.skippedChanged)
        library = self.models.library
        if library is None:
            return
        worker = Worker(library.remove_library, root, name="remove-library")
        worker.error.connect(lambda exc: self._removal_failed(root, exc))
        worker.result.connect(lambda _r: self.messages.info(f"Removed {root}."))
        worker.finished.connect(lambda: self._removal_done(worker))
        self._removals.add(worker)
        self.workers.start(worker)

    def _removal_done(self, worker: Worker) -> None:
        self.release(worker)

    def hold(self, worker: Worker) -> None:
        """Start no indexing job while ``worker`` writes to the library (a removal, the
        duplicate view's trash): the library refuses two writing jobs of one process."""
        self._removals.add(worker)

    def release(self, worker: Worker) -> None:
        self._removals.discard(worker)
        self.start_next()  # indexing queued meanwhile starts now

    def _removal_failed(self, root: str, exc: BaseException) -> None:
        if isinstance(exc, NotALibraryError):
            self.messages.info(f"Removed {root}.")  # it never got into the index
        else:
            self.messages.report(f"Removing {root} failed", exc)

    # ==== rebuild offers ====================================================================
    def check_index_model(self) -> None:
        """An index built by another model, or damaged: offer a rebuild (never mix descriptors)."""
        try:
            reason = getattr(self.models.library, "needs_rebuild", None)
        except Exception as exc:  # noqa: BLE001 - a property that raises says the same
            reason = str(exc)
        if isinstance(reason, str) and reason:
            self.offer_rebuild(RuntimeError(reason))

    def offer_rebuild(self, exc: BaseException) -> None:
        roots = self.prefs.libraries
        self.messages.warning(f"The index must be rebuilt. {exc}")
        if not roots:
            return
        if self.confirm(
            "Rebuild the index?",
            f"{exc}\n\nRe-index all {len(roots)} libraries with the current model now? "
            "Until then, searching is not possible.",
        ):
            self.index(roots, rebuild=True)

    def offer_fresh_index(self, exc: BaseException) -> bool:
        """The catalog cannot be read: move the damaged files aside (after asking). True if
        they were moved, so the caller loads the model again and indexes everything again."""
        from imgsearch_gui.app.library import move_aside_damaged

        data_dir = self.models.data_dir
        roots = self.prefs.libraries
        self.messages.error("The index is damaged and cannot be opened.", details=str(exc))
        again = f" and index your {len(roots)} libraries again" if roots else ""
        if not self.confirm(
            "The index is damaged",
            f"{getattr(exc, 'detail', exc)}\n\nYour photos are not affected. Start a new index"
            f"{again}? The damaged files are kept in a 'damaged-…' folder of {data_dir}.",
        ):
            return False
        try:
            aside = move_aside_damaged(data_dir)
        except OSError as exc2:
            self.messages.report("Could not move the damaged index aside", exc2)
            return False
        self.messages.warning(f"Started a new index; the damaged one was moved to {aside}.")
        return True
