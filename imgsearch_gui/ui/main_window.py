"""The main window: the wiring of the parts that do the work, and the window's own events.

The model service (``model_service.py``) loads the model and opens the library in a long-lived
worker; the index queue (``index_queue.py``) keeps the libraries and indexes or removes them one
job at a time; the search controller (``search_controller.py``) shows the answer to the newest
query. The widgets and commands are made in ``window_ui.py``. Every slow thing runs in a
:class:`~imgsearch_gui.ui.worker.Worker`; thumbnails load in a thread pool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEventLoop, QMimeData, QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication, QImage
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QWidget,
)

from imgsearch_gui.app import demo, scan
from imgsearch_gui.base import paths, registry
from imgsearch_gui.base.errors import (
    CatalogCorruptError,
    CheckpointError,
    DeviceUnavailableError,
    UserError,
)
from imgsearch_gui.base.types import IndexReport, SearchHit, SkippedFile
from imgsearch_gui.ui import format as fmt
from imgsearch_gui.ui import window_ui
from imgsearch_gui.ui.dialogs.skipped import SkippedDialog
from imgsearch_gui.ui.duplicate_finder import DuplicateFinder
from imgsearch_gui.ui.folder_watch import LibraryWatcher
from imgsearch_gui.ui.index_queue import IndexQueue
from imgsearch_gui.ui.library_rows import library_rows
from imgsearch_gui.ui.messages import Level, Message, MessageChannel, format_details
from imgsearch_gui.ui.model_service import (
    LibraryFactory,
    ModelService,
    fallback_text,
    open_library,
    unavailable_devices,
)
from imgsearch_gui.ui.prefs import ModelChoice, Prefs
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.results import ThumbnailCache, ThumbnailLoader, qimage_to_pil
from imgsearch_gui.ui.search_controller import SearchController
from imgsearch_gui.ui.widgets.drop_overlay import drop_hint, sort_urls
from imgsearch_gui.ui.worker import Worker, WorkerGroup

log = logging.getLogger(__name__)

class MainWindow(QMainWindow):
    """The application window. Signals are for tests, benchmarks and status listeners."""

    modelReady = Signal()
    modelFailed = Signal(object)
    indexingStarted = Signal(str)
    indexingProgress = Signal(object)  # Progress
    indexingFinished = Signal(object)  # IndexReport, or None when it failed
    searchFinished = Signal(object)  # list[SearchHit] (all fetched hits)
    resultsPainted = Signal(int)
    closing = Signal()  # shutdown has begun: take no more work (e.g. a second start's photos)

    def __init__(
        self,
        prefs: Prefs | QSettings | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        model: ModelChoice | None = None,
        library_factory: LibraryFactory = open_library,
        thumbnail_dir: str | os.PathLike[str] | None = None,
        watch: bool | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.prefs = prefs if isinstance(prefs, Prefs) else Prefs(prefs)
        self.data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()
        self.library_factory = library_factory
        self.messages = MessageChannel(self)
        #: Asked before destructive or slow actions; tests replace it.
        self.confirm: Callable[[str, str], bool] = self._ask
        self._closing = False
        self._demo_query: str | None = None  # searched once the demo library is indexed
        self._library_offline: dict[str, bool] = {}  # root -> offline, as last refreshed
        self._working: ModelChoice | None = None  # the model that loaded last: the fallback
        self._unsaved: ModelChoice | None = None  # applied; saved in the prefs once it loads

        thumbs = Path(thumbnail_dir) if thumbnail_dir else paths.cache_dir() / "thumbnails"
        self.thumbnails = ThumbnailLoader(ThumbnailCache(thumbs), parent=self)
        self.workers = WorkerGroup(self)
        self.models = ModelService(self.workers, self.data_dir,
                                   model if model is not None else self.prefs.model,
                                   library_factory, self)
        self.index_queue = IndexQueue(self.models, self.workers, self.messages, self.prefs,
                                      lambda title, text: self.confirm(title, text), self)
        # our own writes (index, thumbnails) are never changes to pass over
        self.folder_watcher = LibraryWatcher(ignore=(self.data_dir, thumbs), parent=self)

        self.setWindowTitle("imgsearch")
        self.setAcceptDrops(True)
        window_ui.setup_ui(self)  # the widgets, actions and menus, as attributes of self
        self.search = SearchController(self.models, self.query_panel, self.results_panel,
                                       self.messages, self.prefs, self)
        self.duplicates = DuplicateFinder(self.models, self.workers, self.index_queue, self.search,
                                          self.messages, self.data_dir,
                                          lambda: self.prefs.libraries, self)
        self._duplicates_dialog = None  # made when first opened
        self._connect()
        self.prefs.restore_window(self, self.splitter, default_size=(1200, 780))
        self.watch_action.setChecked(self.prefs.watch_folders if watch is None else watch)
        self._libraries_changed()
        self.models.start()
        self.workers.start(Worker.with_cancel(self.thumbnails.cache.prune, name="prune-thumbnails"))

    # ==== construction =====================================================================
    def _connect(self) -> None:
        """Who listens to whom: widgets to the window's commands, the parts to each other."""
        self.empty.button.clicked.connect(self.choose_library)
        self.empty.demo_button.clicked.connect(self.start_demo)
        self.query_panel.open_button.clicked.connect(self.open_query_dialog)
        self.results_panel.searchRequested.connect(self.search_paths)
        self.results_view.painted.connect(self.resultsPainted)
        self.indexing_panel.cancel_button.clicked.connect(self.cancel_indexing)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.offline_button.clicked.connect(self.check_offline_libraries)
        self.library_panel.reindexRequested.connect(lambda root: self.index_libraries([root]))
        self.library_panel.removeRequested.connect(self.remove_library)
        self.library_panel.revealRequested.connect(self.show_library)
        self.library_panel.addRequested.connect(self.choose_library)
        self.messages.posted.connect(self._show_message)
        self.messages.withdrawn.connect(self._withdraw_message)

        self.models.loadStarted.connect(
            lambda model: self.model_label.setText(f"{model.backbone} · loading model…"))
        self.models.loaded.connect(self._model_loaded)
        self.models.failed.connect(self._model_failed)
        self.models.ended.connect(self.unsetCursor)
        self.index_queue.started.connect(self._index_started)
        self.index_queue.progress.connect(self._index_progress)
        self.index_queue.finished.connect(self._index_finished)
        self.index_queue.skippedChanged.connect(self._update_skipped)
        self.index_queue.librariesChanged.connect(self._libraries_changed)
        self.index_queue.libraryRemoved.connect(self.search.forget_under)
        self.folder_watcher.changed.connect(self.index_queue.refresh)
        self.folder_watcher.wentOffline.connect(lambda _roots: self.refresh_library_state())
        self.search.busyChanged.connect(self._set_busy)
        self.search.queryChanged.connect(self._update_page)
        self.search.rebuildNeeded.connect(self.index_queue.offer_rebuild)
        self.search.finished.connect(self._note_answer)  # before searchFinished: marks first
        self.search.finished.connect(self.searchFinished)

    def _libraries_changed(self) -> None:
        self.refresh_library_state()
        self._update_page()
        self._update_watching()

    # ==== watching ==========================================================================
    @property
    def watching(self) -> bool:
        return self.watch_action.isChecked()

    def set_watching(self, on: bool) -> None:
        """Watch the library folders (Library ▸ Watch folders for changes); kept in the prefs."""
        if self.prefs.watch_folders != on:
            self.prefs.watch_folders = on
        self._update_watching()
        self._update_library_panel()

    def _update_watching(self) -> None:
        if self.watching and not self._closing:
            self.folder_watcher.watch(self.prefs.libraries)
        else:
            self.folder_watcher.stop()

    def refresh_library_state(self) -> dict[str, bool]:
        """Read again which libraries are offline; mark them in the Library menu, the status
        bar and the results shown (a folder watcher calls this when a folder comes or goes).
        Returns each library root -> offline."""
        roots = self.prefs.libraries
        infos = self._library_infos()  # one catalog read for the marks and the panel
        state = self._library_state(roots, infos)
        window_ui.fill_library_menu(self, roots, frozenset(r for r, off in state.items() if off))
        self.results_model.update_offline(state)
        self._library_offline = state
        self._update_library_panel(infos)
        return state

    def _library_infos(self) -> list | None:
        """The catalog's view of each library (counts, offline as the last job found it); None
        while no library is open or when it cannot be read (only marks and counts need it)."""
        if self.library is None:
            return None
        try:
            return self.library.libraries()
        except Exception:  # noqa: BLE001 - only marks and counts
            log.debug("could not list the libraries", exc_info=True)
            return None

    def _update_library_panel(self, infos: list | None = None) -> None:
        """The library panel's rows; the counts are the catalog's (read when a state changes)."""
        if infos is None:
            infos = self._library_infos()
        queue = self.index_queue
        self.library_panel.set_libraries(library_rows(
            self.prefs.libraries, infos, self._library_offline, queue.root if queue.running
            else "", self.watching, self.folder_watcher.modes, queue.skipped))

    def _note_answer(self, hits: Sequence[SearchHit]) -> None:
        """A search's answer says how the libraries of its hits are now: a drive unplugged
        since the last refresh is marked in the menu and the status bar too."""
        if any(self._library_offline.get(h.library, False) != h.offline for h in hits
               if h.library):
            self.refresh_library_state()
        self.results_model.note_answer(hits)

    def _library_state(self, roots: Sequence[str], infos: list | None = None
                       ) -> dict[str, bool]:
        """Each library root -> offline: not reachable (missing, or an empty mount point with
        photos in the index; the app's rule, ``scan.library_offline``, which stays so until an
        index job finds the folder back). Their photos are kept and still found. ``infos``: the
        catalog's libraries, read here when not given."""
        state = {r: not os.path.isdir(r) for r in roots}
        for info in (infos if infos is not None else self._library_infos()) or ():
            state[info.root] = state.get(info.root, False) or bool(getattr(info, "offline", False))
        return state

    def check_offline_libraries(self) -> None:
        """The offline note was clicked: index the libraries whose folder is back, so that the
        index catches up with what changed meanwhile (and one that the last job found offline
        is online only once a job finds it back)."""
        before = {r for r, off in self._library_offline.items() if off}
        state = self.refresh_library_state()
        roots = self.prefs.libraries
        offline = [r for r in roots if state.get(r, False)]
        back = [r for r in roots if (r in before and not state.get(r, False))
                or (r in offline and not scan.root_looks_unmounted(r))]
        self.messages.info(fmt.back_online_text(back, len(offline) - len(back)))
        if back:
            self.index_libraries(back)

    def show_library(self, root: str) -> None:
        """A library's entry in the Library menu: open its folder, or say why it cannot be."""
        if self._library_state([root]).get(root, False):
            self.messages.info(fmt.library_tip(root, True).replace("\n", " "))
        else:
            self.results_panel.open_folder(root)

    def _update_page(self) -> None:
        has_content = bool(self.prefs.libraries) or self.query_view.has_image()
        self.pages.setCurrentWidget(self.splitter if has_content else self.empty)

    # ==== window state ======================================================================
    def save_window_state(self) -> None:
        self.prefs.save_window(self, self.splitter)
        self.prefs.result_count = self.count_spin.value()
        self.prefs.min_score = self.score_spin.value()
        self.prefs.sync()

    # ==== messages ==========================================================================
    def _show_message(self, message: Message) -> None:
        timeout = 0 if message.level is Level.ERROR else 8000
        self.statusBar().showMessage(message.text, timeout)
        if message.level is Level.INFO:
            self.banner.hide()
        else:
            self.banner.show_message(message)

    def _withdraw_message(self, message: Message) -> None:
        """``message`` is over (a search worked after "Search failed"): take it down."""
        self.banner.withdraw(message)
        if self.statusBar().currentMessage() == message.text:
            self.statusBar().clearMessage()

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _set_busy(self, busy: bool) -> None:
        if busy:
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.unsetCursor()

    # ==== state the parts hold ==============================================================
    @property
    def model(self) -> ModelChoice:
        return self.models.model

    @property
    def library(self):
        """The library opened with the current model (None while it loads)."""
        return self.models.library

    @property
    def skipped(self) -> dict[str, SkippedFile]:
        return self.index_queue.skipped

    @property
    def busy(self) -> bool:
        return self.workers.busy

    @property
    def indexing(self) -> bool:
        return self.index_queue.running

    @property
    def model_loading(self) -> bool:
        return self.models.loading

    @property
    def shown_hits(self) -> list[SearchHit]:
        return self.results_model.hits

    # ==== model =============================================================================
    def _model_loaded(self, library) -> None:
        embedder = getattr(library, "embedder", None)
        meta = getattr(embedder, "meta", None)
        runtime = getattr(embedder, "runtime", None)  # what runs it: asked for, or the fallback
        described = meta.describe() if meta is not None else self.model.describe()
        self.model_label.setText(fmt.model_ready_text(self.model.backbone, runtime))
        self.model_label.setToolTip(
            "\n".join(t for t in (described, fmt.runtime_note(self.model.runtime, runtime)) if t))
        self._working = self.model
        if self._unsaved == self.model:  # the prefs keep a choice once it works
            self.prefs.model = self.model
            self.prefs.sync()
        self._unsaved = None
        emit(self.modelReady)
        self._libraries_changed()  # offline marks
        if not self.index_queue.rebuilding:  # else: rebuilding already
            self.index_queue.check_index_model()
        self.index_queue.start_next()

    def _model_failed(self, exc: BaseException) -> None:
        self.model_label.setText(f"{self.model.backbone} · not loaded")
        if isinstance(exc, CatalogCorruptError):
            roots = self.prefs.libraries
            if self.index_queue.offer_fresh_index(exc):
                self.models.start()
                if roots:
                    self.index_libraries(roots, rebuild=True)
        elif (fallback := self._fallback_model(exc)) is not None:
            self._fall_back(fallback, exc)
        else:
            self.messages.report("Could not load the model", exc)
        emit(self.modelFailed, exc)

    def _fallback_model(self, exc: BaseException) -> ModelChoice | None:
        """What to load instead of a model that failed: the last one that worked; with none yet
        (the first load), the same model on the default device when its device is missing here."""
        failed = self.model
        if self._working is not None:
            return self._working if self._working != failed else None
        if isinstance(exc, DeviceUnavailableError) and failed.device != registry.DEFAULT_DEVICE:
            return replace(failed, device=registry.DEFAULT_DEVICE)
        return None

    def _fall_back(self, fallback: ModelChoice, exc: BaseException) -> None:
        """Load ``fallback`` again instead of the model that failed; the banner says so in plain
        words, the traceback goes to the log and the message's details. Re-indexing queued for
        the failed model is dropped (the index was never touched: jobs start once a model has
        loaded); other queued jobs (a library added meanwhile, the demo) stay."""
        failed = self.model
        log.warning("could not load the model %s; back to %s", failed.describe(),
                    fallback.describe(), exc_info=exc)
        details = "" if isinstance(exc, UserError) else format_details(exc)
        first = self._working is None  # nothing loaded yet: the saved choice fails here
        self._unsaved = fallback if first else None
        self.index_queue.forget_rebuilds()  # other queued jobs run with the model that is back
        self.models.switch(fallback, busy=[*self.index_queue.in_use(), *self.duplicates.in_use()])
        self.messages.warning(fallback_text(failed, fallback, exc, previous=not first), details)

    # ==== libraries & indexing ==============================================================
    def choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a photo folder",
                                                  self.prefs.last_library_dir)
        if folder:
            self.prefs.last_library_dir = str(Path(folder).parent)  # next time: a sibling
            self.add_library(folder)

    def add_library(self, folder: str | os.PathLike[str]) -> None:
        self.index_queue.add_library(folder)

    def start_demo(self) -> None:
        """Copy the demo photos into the data dir, index them as a library, then search with one."""
        try:
            folder = demo.prepare(self.data_dir)
        except OSError as exc:
            self.messages.report("Could not copy the demo photos", exc)
            return
        self._demo_query = str(demo.example_query(folder))
        self.messages.info("Indexing the demo photos; then a search with one of them shows the "
                           "app at work. Drop any of them, or your own photo, to search again.")
        self.add_library(folder)

    def reindex_all(self) -> None:
        self.index_libraries(self.prefs.libraries)

    def index_libraries(self, roots: Iterable[str], rebuild: bool = False, **options: bool
                        ) -> None:
        """Queue ``roots`` for indexing (one job at a time); ``rebuild`` re-embeds everything;
        ``options``: prune, retry_skipped (see ImageLibrary.index_library)."""
        self.index_queue.index(roots, rebuild=rebuild, **options)

    def _index_started(self, root: str, position: int, count: int) -> None:
        self.indexing_panel.start(root, position, count)
        self.cancel_action.setEnabled(True)
        self._update_library_panel()
        emit(self.indexingStarted, root)

    def _index_progress(self, progress) -> None:
        self.indexing_panel.show_progress(progress)  # a new stage at once, else on its timer
        emit(self.indexingProgress, progress)

    def _index_finished(self, root: str, report: IndexReport | None) -> None:
        self.indexing_panel.finish()
        self.cancel_action.setEnabled(False)
        if report is not None:  # offline marks: it may have gone, or be back
            self._libraries_changed()
            if report.changed:
                self.search.refresh()  # the results shown are of the index before the job
        else:
            self._update_library_panel()
        emit(self.indexingFinished, report)  # the report, or None when the job failed
        if self._demo_query and root and demo.is_demo_library(root, self.data_dir):
            query, self._demo_query = self._demo_query, None
            if report is not None and not report.cancelled:
                self.search_paths([query])

    def escape(self) -> None:
        if self.index_queue.running:
            self.cancel_indexing()
        elif self.query_view.region is not None:
            self.query_view.set_region(None)

    def cancel_indexing(self) -> None:
        if self.index_queue.cancel():
            self.indexing_panel.cancelling()
            self.messages.info("Cancelling indexing…")

    def remove_library(self, root: str, *, ask: bool = True) -> None:
        self.index_queue.remove_library(root, ask=ask)

    def _update_skipped(self) -> None:
        n = len(self.skipped)
        self.skipped_button.setText(f"⚠ {n:,} skipped")
        self.skipped_button.setToolTip("Files that could not be indexed — click to see why")
        self.skipped_button.setVisible(n > 0)

    def show_skipped(self) -> None:
        if not self.skipped:
            self.messages.info("No skipped files.")
            return
        dialog = SkippedDialog(list(self.skipped.values()), self)
        dialog.retryRequested.connect(self.retry_skipped)
        dialog.exec()

    def retry_skipped(self) -> None:
        """Index every library again, trying the files skipped before (changed or not)."""
        roots = self.prefs.libraries
        if roots:
            self.messages.info("Trying the skipped files again…")
            self.index_libraries(roots, retry_skipped=True)

    # ==== queries ===========================================================================
    def open_query_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Search with photo",
                                                self.prefs.last_open_dir, fmt.IMAGE_FILTER)
        if files:
            self.prefs.last_open_dir = str(Path(files[0]).parent)
            self.search_paths(files)

    def paste(self) -> None:
        self.handle_mime(QGuiApplication.clipboard().mimeData(), source="clipboard")

    def handle_mime(self, mime: QMimeData | None, source: str = "drop") -> bool:
        """Search with what was dropped or pasted. True if it started a search."""
        if mime is None:
            self.messages.warning(f"Nothing to search in the {source}.")
            return False
        if mime.hasUrls():
            folders, images, others = sort_urls(mime)
            for folder in folders:
                self.add_library(folder)
            if images:
                if others:
                    self.messages.warning(fmt.ignored_text(others))
                self.search_paths(images)
                return True
            if others:
                self.messages.warning(fmt.not_a_photo_text(others))
            return False
        if mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QImage) and not image.isNull():
                self.search_image(qimage_to_pil(image), f"Image from the {source}")
                return True
        what = "text" if mime.hasText() else "data"
        self.messages.warning(
            f"The {source} holds {what}, not a photo. Copy an image or drop photo files."
        )
        return False

    def search_paths(self, files: Sequence[str | os.PathLike[str]]) -> None:
        self.search.search_paths(files)

    def search_image(self, image, label: str = "Image") -> None:
        self.search.search_image(image, label)

    def build_results_menu(self, hit: SearchHit, selected: Sequence[SearchHit]) -> QMenu:
        return self.results_panel.build_menu(hit, selected)

    # ==== drag and drop =====================================================================
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
            self.drop_overlay.show_for(drop_hint(mime))
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802
        self.drop_overlay.hide()

    def dropEvent(self, event) -> None:  # noqa: N802
        self.drop_overlay.hide()
        event.acceptProposedAction()
        self.handle_mime(event.mimeData(), source="drop")

    # ==== settings & about ==================================================================
    def open_settings(self) -> None:
        from imgsearch_gui.ui.dialogs.settings import SettingsDialog

        dialog = SettingsDialog(self.model, self, models_dir=self.data_dir / "models",
                                unavailable_devices=unavailable_devices())
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_model(dialog.choice())

    def open_finetune(self) -> None:
        from imgsearch_gui.ui.dialogs.finetune import FinetuneDialog

        dialog = FinetuneDialog(self.data_dir, self)
        dialog.use_model.connect(self.use_finetuned)
        dialog.exec()

    def open_duplicates(self) -> None:
        """Tools ▸ Find duplicates…: the duplicate view (one, kept while the window lives)."""
        from imgsearch_gui.ui.dialogs.duplicates import DuplicatesDialog

        if self._duplicates_dialog is None:
            self._duplicates_dialog = DuplicatesDialog(
                self.duplicates, self.thumbnails, self.messages, lambda: self.prefs.libraries,
                lambda title, text: self.confirm(title, text), self)
        self._duplicates_dialog.show()
        self._duplicates_dialog.raise_()
        self._duplicates_dialog.activateWindow()

    def use_finetuned(self, checkpoint: str) -> bool:
        """Switch to a fine-tuned checkpoint (its backbone, pooling and size); re-index."""
        try:
            choice = ModelChoice.of_checkpoint(checkpoint, self.model.device,
                                               self.model.runtime)
        except CheckpointError as exc:
            self.messages.error(str(exc))
            return False
        return self.apply_model(choice)

    def apply_model(self, choice: ModelChoice, *, ask: bool = True) -> bool:
        """Switch to ``choice``; if descriptors change, re-index every library (after asking).
        Should it fail to load, the last model that worked comes back (:meth:`_fall_back`)."""
        if choice == self.model:
            return False
        reindex = not choice.same_descriptors(self.model)
        roots = self.prefs.libraries
        if reindex and roots and ask and not self.confirm(
            "Re-index all libraries?",
            f"The new model ({choice.describe()}) describes photos differently, so all "
            f"{len(roots)} libraries must be indexed again. This can take a while.\n\nApply "
            "and re-index now?",
        ):
            return False
        # the old library closes once its job has ended (never under it); the new model loads then
        self.models.switch(choice, busy=[*self.index_queue.stop(), *self.duplicates.stop()])
        self._unsaved = choice  # saved once it loads: a model that fails never replaces one that works
        self.search.clear_results()
        if reindex and roots:
            self.index_libraries(roots, rebuild=True)  # starts once the model is loaded
        self.messages.info(
            f"Model: {choice.describe()}" + (" — re-indexing all libraries." if reindex and roots
                                              else "")
        )
        return True

    def open_log_folder(self) -> None:
        from imgsearch_gui.base.logs import current_log_file

        folder = current_log_file().parent if current_log_file() else paths.log_dir()
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.messages.info(f"The log files are in {folder}")

    def show_about(self) -> None:
        from imgsearch_gui.ui.dialogs.about import show_about

        meta = getattr(getattr(self.library, "embedder", None), "meta", None)
        show_about(self, meta.describe() if meta is not None else self.model.describe())

    # ==== closing ===========================================================================
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self._closing and self.workers.busy:  # closed again while waiting for the workers
            event.ignore()
            return
        if self.index_queue.running and not self._closing:
            if not self.confirm(
                "Stop indexing and quit?",
                f"{self.index_queue.root} is being indexed. What is done so far is kept; the rest "
                "is indexed next time.\n\nStop indexing and quit?",
            ):
                event.ignore()
                return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel work, wait for every worker, close the library (idempotent).

        The wait has no timeout (the library is never closed under a running job) and keeps
        the window painting: a job ends at its next cancel check."""
        if self._closing:
            return
        self._closing = True
        emit(self.closing)
        self.save_window_state()
        self.folder_watcher.stop()
        self.index_queue.shutdown()
        self.indexing_panel.stop_updates()
        self.models.shutdown()
        self._wait_for_workers()
        self.thumbnails.shutdown()
        QApplication.processEvents()  # deliver the workers' last signals (e.g. a loaded library)
        self._wait_for_workers()  # a late signal may have started nothing, but be sure
        self.models.close_library()

    def _wait_for_workers(self) -> None:
        """Cancel every worker and wait until all have ended, the event loop running meanwhile."""
        self.workers.cancel_all()
        if self.workers.busy:
            self.statusBar().showMessage("Stopping… (what is done is kept)")
        while self.workers.busy:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            self.workers.wait_any(50)
