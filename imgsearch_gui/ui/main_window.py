"""The main window: libraries, query panel (drop / paste / open, region), results grid, indexing.

Every slow thing runs in a :class:`~imgsearch_gui.ui.worker.Worker`: loading the model (once, at
start-up, with a warm-up pass), indexing (one library at a time, cancellable), searches (one at a
time; the latest request wins) and removing a library. Thumbnails load in a thread pool.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QColor,
    QDesktopServices,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.app import demo
from imgsearch_gui.base import paths
from imgsearch_gui.base.errors import (
    CatalogCorruptError,
    ImageError,
    IndexCorruptError,
    ModelMismatchError,
    NotALibraryError,
)
from imgsearch_gui.base.images import SUPPORTED_EXTENSIONS, is_supported
from imgsearch_gui.base.types import IndexReport, Progress, SearchHit, SkippedFile
from imgsearch_gui.ui.jobs import (
    LibraryLoaded,
    QueryFailed,
    QueryOutcome,
    QueryRequest,
    SearchService,
    filter_hits,
    index_and_remember,
)
from imgsearch_gui.ui.messages import Level, Message, MessageBanner, MessageChannel
from imgsearch_gui.ui.prefs import MAX_COUNT, ModelChoice, Prefs
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.query import QueryImageView
from imgsearch_gui.ui.results import (
    ResultsModel,
    ResultsView,
    ThumbnailCache,
    ThumbnailLoader,
    pil_to_qimage,
    qimage_to_pil,
)
from imgsearch_gui.ui.worker import Worker

log = logging.getLogger(__name__)

LibraryFactory = Callable[[Path, ModelChoice], object]
IMAGE_FILTER = "Images ({})".format(" ".join(f"*{e}" for e in sorted(SUPPORTED_EXTENSIONS)))


def open_library(data_dir: Path, model: ModelChoice):
    """Load the embedder, warm it up and open the library (runs in the loader worker)."""
    from PIL import Image

    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.ml.embedder import load_embedder

    config = model.to_config(data_dir)
    embedder = load_embedder(config)
    # One pass through the network now, so the first query is as fast as the others.
    embedder.embed_image(Image.new("RGB", (model.size, max(32, model.size * 3 // 4)), "gray"))
    _warm_up_decoding()
    return ImageLibrary.for_config(data_dir, embedder, config.dba)


def _warm_up_decoding() -> None:
    """Load PIL's format plugins and decode one JPEG in this (loader) thread, so that indexing
    does not pay first-use costs, which hold the GIL and can stall the GUI thread."""
    import io

    from PIL import Image

    from imgsearch_gui.base.images import load_image

    Image.init()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(buf, "JPEG")
    with tempfile.NamedTemporaryFile(suffix=".jpg") as fh:
        fh.write(buf.getvalue())
        fh.flush()
        load_image(fh.name, max_side=32)


def _is_mismatch(exc: BaseException) -> bool:
    """The index cannot be used as it is (another model built it, or it is damaged)."""
    return isinstance(exc, (ModelMismatchError, IndexCorruptError))


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class IndexingPanel(QFrame):
    """Progress of the running indexing job: bar, count, images/s, ETA, current file, Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexingPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.stats = QLabel()
        self.current = QLabel()
        self.current.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.current.setStyleSheet("color: palette(placeholder-text);")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop indexing (what is done so far is kept) — Esc")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.stats)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.current)
        self.hide()

    def start(self, root: str, position: int, count: int) -> None:
        extra = f" ({position} of {count})" if count > 1 else ""
        self.title.setText(f"Indexing {root}{extra}")
        self.bar.setRange(0, 0)
        self.stats.setText("scanning…")
        self.current.setText("")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.show()

    def update_progress(self, p: Progress) -> None:
        if p.stage == "scan" or p.total <= 0:
            self.bar.setRange(0, 0)
            self.stats.setText(f"scanning… {p.done:,} files found" if p.done else "scanning…")
        else:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
            self.bar.setFormat(f"{p.done:,} / {p.total:,}  (%p%)")
            if p.stage == "save":
                self.stats.setText("saving…")
            else:
                rate = f"{p.images_per_s:.1f} images/s" if p.images_per_s else "–"
                self.stats.setText(f"{rate} · ETA {_fmt_duration(p.eta_s)}")
        if p.current:
            metrics = self.current.fontMetrics()
            width = max(100, self.current.width())
            self.current.setText(
                metrics.elidedText(p.current, Qt.TextElideMode.ElideMiddle, width)
            )
        elif p.message:
            self.current.setText(p.message)

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")


class SkippedDialog(QDialog):
    """The files indexing could not use, with the reason; copyable."""

    def __init__(self, skipped: Sequence[SkippedFile], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Skipped files ({len(skipped)})")
        self.resize(760, 420)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Reason"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        for s in skipped:
            QTreeWidgetItem(self.tree, [s.path, s.reason]).setToolTip(0, s.path)
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, min(self.tree.columnWidth(0), 480))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy list", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(
                "\n".join(f"{s.path}\t{s.reason}" for s in skipped)
            )
        )
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("These files were not indexed. Fix or remove them, then re-index (F5).")
        )
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)


class EmptyState(QWidget):
    """First run: what the app does and one button to start."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Find photos by what is in them")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        steps = QVBoxLayout()
        steps.setSpacing(10)
        for number, text in enumerate((
            "<b>Choose a folder</b> with your photos. imgsearch looks at every image in it (and "
            "its subfolders) once and remembers what it sees. Your photos are not changed or "
            "uploaded.",
            "<b>Drop a photo</b> on this window, paste one (Ctrl+V) or open one (Ctrl+O): the "
            "most similar photos of your library appear, best first.",
            "<b>Draw a rectangle</b> on the query photo to search for just that part.",
        ), start=1):
            badge = QLabel(str(number))
            badge.setFixedSize(26, 26)
            badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
            badge.setStyleSheet("background: palette(highlight); color: palette(highlighted-text);"
                                " border-radius: 13px; font-weight: bold;")
            label = QLabel(text)
            label.setWordWrap(True)
            label.setFixedWidth(520)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
            row.addSpacing(8)
            row.addWidget(label)
            row.addStretch(1)
            steps.addLayout(row)
        self.button = QPushButton("Choose a photo folder…")
        self.button.setDefault(True)
        self.button.setMinimumHeight(36)
        self.button.setStyleSheet("font-weight: bold; padding: 6px 18px;")
        self.demo_button = QPushButton("Try it first with 40 demo photos")
        self.demo_button.setFlat(True)
        self.demo_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.demo_button.setStyleSheet("color: palette(link); text-decoration: underline;")
        self.demo_button.setToolTip("Index a few dozen photos of clothes that come with the app "
                                    "and search with one of them")
        self.hint = QLabel("You can add more folders later from the Library menu.")
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(title)
        layout.addSpacing(16)
        layout.addLayout(steps)
        layout.addSpacing(16)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.demo_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.hint)
        layout.addStretch(3)


class DropOverlay(QWidget):
    """While something is dragged over the window: a highlight that says what a drop will do."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # drops reach the window
        self.text = ""
        self.hide()

    def show_for(self, text: str) -> None:
        self.text = text
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        self.show()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        fill = QColor(colour)
        fill.setAlpha(50)
        pen = QPen(colour, 3, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(self.rect().adjusted(6, 6, -6, -6), 12, 12)
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        painter.setFont(font)
        # the words on a solid badge, readable over whatever is underneath
        box = painter.fontMetrics().boundingRect(self.text).adjusted(-24, -14, 24, 14)
        box.moveCenter(self.rect().center())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(box, box.height() / 2, box.height() / 2)
        painter.setPen(self.palette().color(QPalette.ColorRole.HighlightedText))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.text)
        painter.end()


class MainWindow(QMainWindow):
    """The application window. Signals are for tests, benchmarks and status listeners."""

    modelReady = Signal()
    modelFailed = Signal(object)
    indexingStarted = Signal(str)
    indexingProgress = Signal(object)  # Progress
    indexingFinished = Signal(object)  # IndexReport, or None when it failed
    searchFinished = Signal(object)  # list[SearchHit] (all fetched hits)
    resultsPainted = Signal(int)

    def __init__(
        self,
        prefs: Prefs | QSettings | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        model: ModelChoice | None = None,
        library_factory: LibraryFactory = open_library,
        thumbnail_dir: str | os.PathLike[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.prefs = prefs if isinstance(prefs, Prefs) else Prefs(prefs)
        self.data_dir = Path(data_dir) if data_dir is not None else paths.data_dir()
        self.model = model if model is not None else self.prefs.model
        self.library_factory = library_factory
        self.library = None
        self.messages = MessageChannel(self)
        #: Asked before destructive or slow actions; tests replace it.
        self.confirm: Callable[[str, str], bool] = self._ask

        self._workers: set[Worker] = set()
        self._service: SearchService | None = None
        self._service_worker: Worker | None = None
        self._model_gen = 0
        self._index_worker: Worker | None = None
        # removals hold the library's job lock: indexing waits until they are done
        self._removal_workers: set[Worker] = set()
        self._index_queue: list[tuple[str, bool]] = []
        self._index_count = 0
        self._index_root = ""
        self._seq = 0
        self._query_images: tuple = ()
        self._query_label = ""
        self._fetched: list[SearchHit] = []
        self.skipped: dict[str, SkippedFile] = {}
        self._closing = False
        self._last_progress: Progress | None = None
        self._index_report: IndexReport | None = None
        self._demo_query: str | None = None  # searched once the demo library is indexed

        thumbs = Path(thumbnail_dir) if thumbnail_dir else paths.cache_dir() / "thumbnails"
        self.thumbnails = ThumbnailLoader(ThumbnailCache(thumbs), parent=self)

        self.setWindowTitle("imgsearch")
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_actions()
        self.messages.posted.connect(self._show_message)
        self._restore_window()
        self._refresh_libraries()
        self._update_page()
        self._load_model()
        self._start(Worker.with_cancel(self.thumbnails.cache.prune, name="prune-thumbnails"))

    # ==== construction =====================================================================
    def _build_ui(self) -> None:
        self.banner = MessageBanner()
        self.empty = EmptyState()
        self.empty.button.clicked.connect(self.choose_library)
        self.empty.demo_button.clicked.connect(self.start_demo)

        # query panel (left)
        self.query_view = QueryImageView()
        self.query_view.placeholder = (
            "Drop a photo here\n\nor paste one (Ctrl+V), or open one (Ctrl+O).\n\n"
            "Then drag a rectangle on it to search for that part only."
        )
        self.query_view.regionSelected.connect(self._region_selected)
        self.query_view.regionCleared.connect(self._region_cleared)
        self.query_caption = QLabel()
        self.query_caption.setWordWrap(True)
        self.query_caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clear_region_button = QPushButton("Whole photo")
        self.clear_region_button.setToolTip("Search with the whole photo again (Esc)")
        self.clear_region_button.clicked.connect(lambda: self.query_view.set_region(None))
        self.clear_region_button.setEnabled(False)
        open_button = QPushButton("Open…")
        open_button.clicked.connect(self.open_query_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(self.clear_region_button)
        buttons.addStretch(1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(6, 6, 6, 6)
        title = QLabel("Query")
        title.setStyleSheet("font-weight: bold;")
        lv.addWidget(title)
        lv.addWidget(self.query_view, 1)
        lv.addWidget(self.query_caption)
        lv.addLayout(buttons)

        # results (right)
        self.results_model = ResultsModel(self.thumbnails, self)
        self.results_view = ResultsView()
        self.results_view.setModel(self.results_model)
        self.results_view.doubleClicked.connect(self._open_index)
        self.results_view.activated.connect(self._open_index)
        self.results_view.customContextMenuRequested.connect(self._results_menu)
        self.results_view.painted.connect(self.resultsPainted)

        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, MAX_COUNT)
        self.count_spin.setValue(self.prefs.result_count)
        self.count_spin.setToolTip("How many results to show")
        self.count_slider = QSlider(Qt.Orientation.Horizontal)
        self.count_slider.setRange(1, MAX_COUNT)
        self.count_slider.setValue(self.prefs.result_count)
        self.count_slider.setMaximumWidth(160)
        self.count_slider.valueChanged.connect(self.count_spin.setValue)
        self.count_spin.valueChanged.connect(self.count_slider.setValue)
        self.count_spin.valueChanged.connect(self._apply_filter)

        self.score_spin = QDoubleSpinBox()
        self.score_spin.setRange(-1.0, 1.0)
        self.score_spin.setSingleStep(0.05)
        self.score_spin.setDecimals(2)
        self.score_spin.setValue(self.prefs.min_score)
        self.score_spin.setToolTip("Hide results below this cosine similarity")
        self.score_slider = QSlider(Qt.Orientation.Horizontal)
        self.score_slider.setRange(-100, 100)
        self.score_slider.setValue(round(self.prefs.min_score * 100))
        self.score_slider.setMaximumWidth(160)
        self.score_slider.valueChanged.connect(lambda v: self.score_spin.setValue(v / 100))
        self.score_spin.valueChanged.connect(
            lambda v: self.score_slider.setValue(round(v * 100))
        )
        self.score_spin.valueChanged.connect(self._apply_filter)

        self.results_summary = QLabel("No query yet")
        controls = QHBoxLayout()
        controls.addWidget(self.results_summary, 1)
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.count_slider)
        controls.addWidget(self.count_spin)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Min score"))
        controls.addWidget(self.score_slider)
        controls.addWidget(self.score_spin)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(6, 6, 6, 6)
        rv.addLayout(controls)
        rv.addWidget(self.results_view, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([300, 900])

        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.splitter)

        self.indexing_panel = IndexingPanel()
        self.indexing_panel.cancel_button.clicked.connect(self.cancel_indexing)

        central = QWidget()
        cv = QVBoxLayout(central)
        cv.setContentsMargins(6, 6, 6, 0)
        cv.addWidget(self.banner)
        cv.addWidget(self.pages, 1)
        cv.addWidget(self.indexing_panel)
        self.setCentralWidget(central)
        self.drop_overlay = DropOverlay(central)

        # status bar
        self.model_label = QLabel()
        self.skipped_button = QToolButton()
        self.skipped_button.setAutoRaise(True)
        self.skipped_button.clicked.connect(self.show_skipped)
        self.skipped_button.hide()
        self.statusBar().addPermanentWidget(self.skipped_button)
        self.statusBar().addPermanentWidget(self.model_label)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(100)
        self._progress_timer.timeout.connect(self._render_progress)

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.open_action = self._action("&Open photo…", self.open_query_dialog, K.Open,
                                        "Search with a photo file (Ctrl+O)")
        self.paste_action = self._action("&Paste photo", self.paste, K.Paste,
                                         "Search with the image on the clipboard (Ctrl+V)")
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.add_library_action = self._action("&Add library…", self.choose_library, "Ctrl+L",
                                               "Index a photo folder (Ctrl+L)")
        self.reindex_all_action = self._action("&Re-index all", self.reindex_all, "F5",
                                               "Pick up new, changed and removed photos (F5)")
        self.cancel_action = self._action("&Cancel indexing", self.cancel_indexing)
        self.cancel_action.setEnabled(False)
        # Esc: stop indexing if it runs, else go back to searching with the whole photo
        self.escape_shortcut = QShortcut(QKeySequence("Esc"), self)
        self.escape_shortcut.activated.connect(self.escape)
        self.skipped_action = self._action("Show &skipped files…", self.show_skipped, "Ctrl+E")
        self.settings_action = self._action("&Settings…", self.open_settings, K.Preferences,
                                            "Model, pooling, input size, device")
        if not QKeySequence(K.Preferences).toString():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.finetune_action = QAction("&Fine-tune the model…", self)
        self.finetune_action.setToolTip("Train the CNN on a labelled folder (one subfolder per "
                                        "class) so that search tells those classes apart")
        self.finetune_action.triggered.connect(self.open_finetune)
        self.demo_action = self._action("Try the &demo photos", self.start_demo)
        self.demo_action.setToolTip("Index the demo photos that come with the app as a library "
                                    "and search with one of them")
        self.log_action = self._action("Open the &log folder", self.open_log_folder)
        self.log_action.setToolTip("The log files to attach to a bug report")
        self.about_action = self._action("&About imgsearch", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.clear_region_action = self._action("Search &whole photo",
                                                lambda: self.query_view.set_region(None))

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.paste_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self.library_menu = bar.addMenu("&Library")
        self.reindex_menu = QMenu("Re-index", self)
        self.remove_menu = QMenu("Remove", self)
        tools = bar.addMenu("&Tools")
        tools.addAction(self.settings_action)
        tools.addAction(self.finetune_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.demo_action)
        help_menu.addAction(self.log_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.paste_action)
        toolbar.addSeparator()
        toolbar.addAction(self.add_library_action)
        toolbar.addAction(self.reindex_all_action)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)

    def _refresh_libraries(self) -> None:
        roots = self.prefs.libraries
        menu = self.library_menu
        menu.clear()
        menu.addAction(self.add_library_action)
        menu.addAction(self.reindex_all_action)
        self.reindex_menu.clear()
        self.remove_menu.clear()
        for root in roots:
            a = self.reindex_menu.addAction(root)
            a.triggered.connect(lambda _c=False, r=root: self.index_libraries([r]))
            b = self.remove_menu.addAction(root)
            b.triggered.connect(lambda _c=False, r=root: self.remove_library(r))
        self.reindex_menu.setEnabled(bool(roots))
        self.remove_menu.setEnabled(bool(roots))
        self.reindex_all_action.setEnabled(bool(roots))
        menu.addMenu(self.reindex_menu)
        menu.addMenu(self.remove_menu)
        menu.addSeparator()
        menu.addAction(self.skipped_action)
        menu.addAction(self.cancel_action)

    def _update_page(self) -> None:
        has_content = bool(self.prefs.libraries) or self.query_view.has_image()
        self.pages.setCurrentWidget(self.splitter if has_content else self.empty)

    # ==== window state ======================================================================
    def _restore_window(self) -> None:
        geometry = self.prefs.bytes_value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1200, 780)
        state = self.prefs.bytes_value("window/state")
        if state is not None:
            self.restoreState(state)
        splitter = self.prefs.bytes_value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def save_window_state(self) -> None:
        self.prefs.set_value("window/geometry", self.saveGeometry())
        self.prefs.set_value("window/state", self.saveState())
        self.prefs.set_value("window/splitter", self.splitter.saveState())
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

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _report_error(self, what: str, exc: BaseException) -> None:
        if isinstance(exc, ImageError):
            self.messages.warning(f"{what}: {os.path.basename(exc.path)}: {exc.reason}")
            return
        import traceback

        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.messages.error(f"{what}: {exc}", details)

    # ==== workers ===========================================================================
    def _start(self, worker: Worker) -> Worker:
        self._workers.add(worker)
        worker.finished.connect(lambda w=worker: self._forget(w))
        worker.start()
        return worker

    def _forget(self, worker: Worker) -> None:
        self._workers.discard(worker)
        worker.deleteLater()

    @property
    def busy(self) -> bool:
        return any(w.isRunning() for w in self._workers)

    @property
    def indexing(self) -> bool:
        return self._index_worker is not None

    # ==== model =============================================================================
    def _load_model(self) -> None:
        """Start the search service: it loads the model, then answers every query."""
        self.model_label.setText(f"{self.model.backbone} · loading model…")
        service = SearchService(MAX_COUNT)
        worker = Worker.with_cancel(service.serve, self.library_factory, self.data_dir,
                                    self.model, name="search-service", progress_interval=0)
        gen = self._model_gen
        worker.result.connect(lambda item: self._service_item(item, gen))
        worker.error.connect(self._model_failed)
        worker.finished.connect(lambda: self._service_ended(worker))
        self._service, self._service_worker = service, worker
        self._start(worker)

    def _service_item(self, item, gen: int) -> None:
        if isinstance(item, LibraryLoaded):
            self._model_loaded(item.library, gen)
        elif gen != self._model_gen or self._closing:
            return
        elif isinstance(item, QueryOutcome):
            self._search_result(item)
        elif isinstance(item, QueryFailed):
            self._search_error(item.request, item.error)

    def _service_ended(self, worker: Worker) -> None:
        if worker is self._service_worker:
            self._service_worker = None
            self.unsetCursor()

    def _stop_service(self) -> None:
        worker = self._service_worker
        if worker is not None:
            self._service.stop()
            worker.stop()

    @property
    def model_loading(self) -> bool:
        return self.library is None and self._service_worker is not None

    def _model_loaded(self, library, gen: int | None = None) -> None:
        if self._closing or (gen is not None and gen != self._model_gen):
            library.close()
            return
        self.library = library
        _freeze_long_lived_objects()
        meta = getattr(getattr(library, "embedder", None), "meta", None)
        described = meta.describe() if meta is not None else self.model.describe()
        self.model_label.setText(f"{self.model.backbone} · ready")
        self.model_label.setToolTip(described)
        emit(self.modelReady)
        if not any(rebuild for _, rebuild in self._index_queue):  # else: rebuilding already
            self._check_index_model()
        self._next_index()

    def _model_failed(self, exc: BaseException) -> None:
        self.model_label.setText(f"{self.model.backbone} · not loaded")
        if isinstance(exc, CatalogCorruptError):
            self._offer_fresh_index(exc)
        else:
            self._report_error("Could not load the model", exc)
        emit(self.modelFailed, exc)

    def _offer_fresh_index(self, exc: BaseException) -> None:
        """The catalog cannot be read: move the damaged files aside and index everything again."""
        from imgsearch_gui.app.library import move_aside_damaged

        roots = self.prefs.libraries
        self.messages.error("The index is damaged and cannot be opened.", details=str(exc))
        again = f" and index your {len(roots)} libraries again" if roots else ""
        if not self.confirm(
            "The index is damaged",
            f"{getattr(exc, 'detail', exc)}\n\nYour photos are not affected. Start a new index"
            f"{again}? The damaged files are kept in a 'damaged-…' folder of {self.data_dir}.",
        ):
            return
        try:
            aside = move_aside_damaged(self.data_dir)
        except OSError as exc2:
            self._report_error("Could not move the damaged index aside", exc2)
            return
        self.messages.warning(f"Started a new index; the damaged one was moved to {aside}.")
        self._load_model()
        if roots:
            self.index_libraries(roots, rebuild=True)

    def _check_index_model(self) -> None:
        """An index built by another model, or damaged: offer a rebuild (never mix descriptors)."""
        try:
            reason = getattr(self.library, "needs_rebuild", None)
        except Exception as exc:  # noqa: BLE001 - a property that raises says the same
            reason = str(exc)
        if isinstance(reason, str) and reason:
            self._offer_rebuild(RuntimeError(reason))

    def _offer_rebuild(self, exc: BaseException) -> None:
        roots = self.prefs.libraries
        self.messages.warning(f"The index must be rebuilt. {exc}")
        if not roots:
            return
        if self.confirm(
            "Rebuild the index?",
            f"{exc}\n\nRe-index all {len(roots)} libraries with the current model now? "
            "Until then, searching is not possible.",
        ):
            self.index_libraries(roots, rebuild=True)

    # ==== libraries & indexing ==============================================================
    def choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a photo folder", str(Path.home()))
        if folder:
            self.add_library(folder)

    def add_library(self, folder: str | os.PathLike[str]) -> None:
        root = str(Path(folder).expanduser().resolve())
        if not Path(root).is_dir():
            self.messages.warning(f"Not a folder: {root}")
            return
        roots = self.prefs.libraries
        if not demo.is_demo_library(root, self.data_dir):
            for old in [r for r in roots if demo.is_demo_library(r, self.data_dir)]:
                self.remove_library(old, ask=False)  # the demo was only a first look
                self.messages.info("Removed the demo photos from the index: your own library "
                                   "replaces them (Help ▸ Try the demo photos brings them back).")
            roots = self.prefs.libraries
        if root not in roots:
            self.prefs.libraries = [*roots, root]
            self.prefs.sync()
            self._refresh_libraries()
        self._update_page()
        self.index_libraries([root])

    def start_demo(self) -> None:
        """Copy the demo photos into the data dir, index them as a library, then search with one."""
        try:
            folder = demo.prepare(self.data_dir)
        except OSError as exc:
            self._report_error("Could not copy the demo photos", exc)
            return
        self._demo_query = str(demo.example_query(folder))
        self.messages.info("Indexing the demo photos; then a search with one of them shows the "
                           "app at work. Drop any of them, or your own photo, to search again.")
        self.add_library(folder)

    def reindex_all(self) -> None:
        self.index_libraries(self.prefs.libraries)

    def index_libraries(self, roots: Iterable[str], rebuild: bool = False) -> None:
        """Queue ``roots`` for indexing (one job at a time); ``rebuild`` re-embeds everything."""
        roots = list(roots)
        if rebuild and roots:
            # A rebuild drops every vector of the data dir (all libraries' files become pending):
            # rebuild once, then index every library, those already waiting included.
            waiting = [r for r, _ in self._index_queue if r not in roots]
            queue = [(roots[0], True)] + [(r, False) for r in [*roots[1:], *waiting]]
            self._index_count += len(queue) - len(self._index_queue)
            self._index_queue = queue
            self._next_index()
            return
        for root in roots:
            for i, (queued, queued_rebuild) in enumerate(self._index_queue):
                if queued == root:
                    if rebuild and not queued_rebuild:
                        self._index_queue[i] = (root, True)
                    break
            else:
                if root == self._index_root and self.indexing and not rebuild:
                    continue  # being indexed right now
                self._index_queue.append((root, rebuild))
                self._index_count += 1
        self._next_index()

    def _next_index(self) -> None:
        if (self._index_worker is not None or self._removal_workers or self.library is None
                or self._closing):
            return
        if not self._index_queue:
            self._index_count = 0
            return
        root, rebuild = self._index_queue.pop(0)
        self._index_root = root
        position = self._index_count - len(self._index_queue)
        worker = Worker.with_cancel(index_and_remember, self.library, root, rebuild=rebuild,
                                    name="index")
        worker.progress.connect(self._index_progress)
        worker.result.connect(self._index_result)
        worker.error.connect(self._index_error)
        worker.finished.connect(self._index_done)
        self._index_worker = worker
        self._index_report: IndexReport | None = None
        self.indexing_panel.start(root, position, self._index_count)
        self.cancel_action.setEnabled(True)
        self._progress_timer.start()
        emit(self.indexingStarted, root)
        self._start(worker)

    def _index_progress(self, progress: Progress) -> None:
        new_stage = self._last_progress is None or self._last_progress.stage != progress.stage
        self._last_progress = progress
        if new_stage:
            self._render_progress()  # at once; then the 100 ms timer keeps it current
        emit(self.indexingProgress, progress)

    def _render_progress(self) -> None:
        if self._last_progress is not None and self._index_worker is not None:
            self.indexing_panel.update_progress(self._last_progress)

    def _index_result(self, item) -> None:
        if not isinstance(item, IndexReport):
            return
        self._index_report = item
        for s in item.skipped:
            self.skipped[s.path] = s
        self._update_skipped()
        parts = [f"{item.indexed:,} new"]
        if item.unchanged:
            parts.append(f"{item.unchanged:,} unchanged")
        if item.moved:
            parts.append(f"{item.moved:,} moved")
        if item.removed:
            parts.append(f"{item.removed:,} removed")
        if item.duplicates:
            parts.append(f"{item.duplicates:,} duplicates")
        if item.skipped:
            parts.append(f"{len(item.skipped):,} skipped (Library ▸ Show skipped files)")
        verb = "Indexing cancelled" if item.cancelled else "Indexed"
        text = (f"{verb} {item.library}: {', '.join(parts)} in {_fmt_duration(item.seconds)}"
                f" ({item.images_per_s:.1f} images/s).")
        if item.skipped and not item.cancelled:
            self.messages.warning(text)
        else:
            self.messages.info(text)

    def _index_error(self, exc: BaseException) -> None:
        if _is_mismatch(exc):
            self._index_queue = [(r, b) for r, b in self._index_queue if b]
            self._offer_rebuild(exc)
        else:
            self._report_error(f"Indexing {self._index_root} failed", exc)

    def _index_done(self) -> None:
        worker = self._index_worker
        root = self._index_root
        self._index_worker = None
        self._last_progress = None
        self._progress_timer.stop()
        self.indexing_panel.hide()
        self.cancel_action.setEnabled(False)
        self._index_root = ""
        if worker is not None and worker.cancelled:
            self._index_queue.clear()
        report, self._index_report = self._index_report, None
        emit(self.indexingFinished, report)  # the report, or None when the job failed
        if self._demo_query and root and demo.is_demo_library(root, self.data_dir):
            query, self._demo_query = self._demo_query, None
            if report is not None and not report.cancelled:
                self.search_paths([query])
        self._next_index()

    def escape(self) -> None:
        if self._index_worker is not None:
            self.cancel_indexing()
        elif self.query_view.region is not None:
            self.query_view.set_region(None)

    def cancel_indexing(self) -> None:
        if self._index_worker is None:
            return
        self._index_queue.clear()
        self._index_worker.cancel()
        self.indexing_panel.cancelling()
        self.messages.info("Cancelling indexing…")

    def remove_library(self, root: str, *, ask: bool = True) -> None:
        if ask and not self.confirm(
            "Remove library?",
            f"Forget {root}?\n\nIts photos leave the index; the files themselves stay untouched.",
        ):
            return
        if self._index_root == root and self._index_worker is not None:
            self._index_worker.stop()
        self._index_queue = [(r, b) for r, b in self._index_queue if r != root]
        self.prefs.libraries = [r for r in self.prefs.libraries if r != root]
        self.prefs.sync()
        self._refresh_libraries()
        self.skipped = {p: s for p, s in self.skipped.items() if not _under(p, root)}
        self._update_skipped()
        self._fetched = [h for h in self._fetched if not _under(h.path, root)]
        self._apply_filter()
        if self.library is not None:
            worker = Worker(self.library.remove_library, root, name="remove-library")
            worker.error.connect(lambda exc: self._removal_failed(root, exc))
            worker.result.connect(lambda _r: self.messages.info(f"Removed {root}."))
            worker.finished.connect(lambda: self._removal_done(worker))
            self._removal_workers.add(worker)
            self._start(worker)
        self._update_page()

    def _removal_done(self, worker: Worker) -> None:
        self._removal_workers.discard(worker)
        self._next_index()  # indexing queued meanwhile starts now

    def _removal_failed(self, root: str, exc: BaseException) -> None:
        if isinstance(exc, NotALibraryError):
            self.messages.info(f"Removed {root}.")  # it never got into the index
        else:
            self._report_error(f"Removing {root} failed", exc)

    def _update_skipped(self) -> None:
        n = len(self.skipped)
        self.skipped_button.setText(f"⚠ {n:,} skipped")
        self.skipped_button.setToolTip("Files that could not be indexed — click to see why")
        self.skipped_button.setVisible(n > 0)

    def show_skipped(self) -> None:
        if not self.skipped:
            self.messages.info("No skipped files.")
            return
        SkippedDialog(list(self.skipped.values()), self).exec()

    # ==== queries ===========================================================================
    def open_query_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Search with photo", str(Path.home()),
                                                IMAGE_FILTER)
        if files:
            self.search_paths(files)

    def paste(self) -> None:
        self.handle_mime(QGuiApplication.clipboard().mimeData(), source="clipboard")

    def handle_mime(self, mime: QMimeData | None, source: str = "drop") -> bool:
        """Search with what was dropped or pasted. True if it started a search."""
        if mime is None:
            self.messages.warning(f"Nothing to search in the {source}.")
            return False
        if mime.hasUrls():
            folders, images, others = _sort_urls(mime)
            for folder in folders:
                self.add_library(folder)
            if images:
                if others:
                    names = ", ".join(os.path.basename(p) or p for p in others[:3])
                    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
                    self.messages.warning(f"Ignored what is not a photo: {names}{more}.")
                self.search_paths(images)
                return True
            if others:
                names = ", ".join(os.path.basename(p) or p for p in others[:3])
                exts = ", ".join(sorted(e.lstrip(".").upper() for e in SUPPORTED_EXTENSIONS
                                        if e not in (".jpe", ".tif", ".jpeg")))
                self.messages.warning(
                    f"Not a photo: {names}. Drop image files ({exts}) to search, or a folder "
                    "to add it as a library."
                )
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
        files = tuple(str(Path(f)) for f in files)
        if len(files) == 1:
            label = files[0]
        else:
            label = f"{len(files)} photos (mean query): " + ", ".join(
                os.path.basename(f) for f in files[:4]
            ) + ("…" if len(files) > 4 else "")
        self._submit(QueryRequest(paths=files, label=label))

    def search_image(self, image, label: str = "Image") -> None:
        self._submit(QueryRequest(images=(image,), label=label))

    def search_region(self, box: tuple[int, int, int, int] | None) -> None:
        if not self._query_images:
            return
        label = self._query_label
        if box is not None:
            label = f"{label}\nregion {box[2] - box[0]}×{box[3] - box[1]} at ({box[0]}, {box[1]})"
        self._submit(QueryRequest(images=self._query_images, box=box, label=label,
                                  new_query=False))

    def _region_selected(self, x0: int, y0: int, x1: int, y1: int) -> None:
        if len(self._query_images) != 1:
            self.messages.info("Region search works with a single query photo.")
            return
        self.clear_region_button.setEnabled(True)
        self.search_region((x0, y0, x1, y1))

    def _region_cleared(self) -> None:
        self.clear_region_button.setEnabled(False)
        self.search_region(None)

    def _submit(self, request: QueryRequest) -> None:
        self._seq += 1
        request = QueryRequest(
            paths=request.paths, images=request.images, box=request.box, label=request.label,
            new_query=request.new_query, seq=self._seq, started=request.started,
        )
        if request.new_query and request.images:
            self._show_query(request.images, request.label)  # pasted: show it at once
        if self._service is None or self._service_worker is None:
            self.messages.warning("The model is not loaded; check Tools ▸ Settings.")
            return
        if self.library is None:
            self.results_summary.setText("Loading the model… the search starts when it is ready")
        else:
            self.results_summary.setText("Searching…")
        self.setCursor(Qt.CursorShape.BusyCursor)
        self._service.submit(request)  # only the newest waiting request is answered

    def _search_result(self, outcome: QueryOutcome) -> None:
        request = outcome.request
        if request.seq != self._seq:
            return  # a newer query is on its way
        self.unsetCursor()
        if request.new_query:
            if not request.images:
                self._show_query(outcome.images, request.label)
            self.query_view.set_region(request.box, notify=False)
            self.clear_region_button.setEnabled(request.box is not None)
        self.query_caption.setText(request.label)
        self._fetched = list(outcome.hits)
        self._apply_filter()
        if not self.prefs.libraries:
            self.messages.info("No library yet: add a photo folder (Library ▸ Add library…).")
        log.info("query %d: %d hits in %.0f ms (search %.0f ms)", request.seq, len(outcome.hits),
                 (time.perf_counter() - request.started) * 1000, outcome.seconds * 1000)
        emit(self.searchFinished, outcome.hits)

    def _search_error(self, request: QueryRequest, exc: BaseException) -> None:
        if request.seq == self._seq:
            self.results_summary.setText("Search failed")
            self.unsetCursor()
        if _is_mismatch(exc):
            self._offer_rebuild(exc)
        else:
            self._report_error("Search failed", exc)

    def _show_query(self, images: Sequence, label: str) -> None:
        self._query_images = tuple(images)
        self._query_label = label
        self.query_view.set_image(pil_to_qimage(images[0]) if images else None)
        self.query_caption.setText(label)
        self.clear_region_button.setEnabled(False)
        self._update_page()

    def _apply_filter(self) -> None:
        count, min_score = self.count_spin.value(), self.score_spin.value()
        shown = filter_hits(self._fetched, count, min_score)
        self.results_model.set_hits(shown)
        if not self._fetched:
            self.results_summary.setText("No results" if self._query_images else "No query yet")
        else:
            hidden = len([h for h in self._fetched[:count] if h.score < min_score])
            extra = f" ({hidden} below {min_score:.2f} hidden)" if hidden else ""
            self.results_summary.setText(f"{len(shown)} results{extra}")

    @property
    def shown_hits(self) -> list[SearchHit]:
        return self.results_model.hits

    # ==== results actions ===================================================================
    def _open_index(self, index) -> None:
        hit = self.results_model.hit(index)
        if hit is not None:
            self.open_hit(hit)

    def open_hit(self, hit: SearchHit) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(hit.path)):
            self.messages.warning(f"Could not open {hit.path}")

    def reveal_hit(self, hit: SearchHit) -> None:
        folder = os.path.dirname(hit.path)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(folder)):
            self.messages.warning(f"Could not open {folder}")

    def copy_path(self, hits: Sequence[SearchHit]) -> None:
        QGuiApplication.clipboard().setText("\n".join(h.path for h in hits))
        self.messages.info(f"Copied {len(hits)} path{'s' if len(hits) != 1 else ''}.")

    def _results_menu(self, pos) -> None:
        index = self.results_view.indexAt(pos)
        hit = self.results_model.hit(index)
        if hit is None:
            return
        selected = self.results_view.selected_hits()
        if hit not in selected:
            selected = [hit]
        menu = self.build_results_menu(hit, selected)
        menu.exec(self.results_view.viewport().mapToGlobal(pos))

    def build_results_menu(self, hit: SearchHit, selected: Sequence[SearchHit]) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_hit(hit))
        menu.addAction("Reveal in file manager", lambda: self.reveal_hit(hit))
        menu.addAction("Copy path" if len(selected) == 1 else f"Copy {len(selected)} paths",
                       lambda: self.copy_path(selected))
        menu.addSeparator()
        menu.addAction(
            "Search with this image" if len(selected) == 1
            else f"Search with these {len(selected)} images",
            lambda: self.search_paths([h.path for h in selected]),
        )
        return menu

    # ==== drag and drop =====================================================================
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
            self.drop_overlay.show_for(_drop_hint(mime))
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

        dialog = SettingsDialog(self.model, self, models_dir=self.data_dir / "models")
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_model(dialog.choice())

    def open_finetune(self) -> None:
        from imgsearch_gui.ui.dialogs.finetune import FinetuneDialog

        dialog = FinetuneDialog(self.data_dir, self)
        dialog.use_model.connect(self.use_finetuned)
        dialog.exec()

    def use_finetuned(self, checkpoint: str) -> bool:
        """Switch to a fine-tuned checkpoint (its backbone, pooling and size); re-index."""
        from imgsearch_gui.base.errors import CheckpointError
        from imgsearch_gui.ml.checkpoint import load_checkpoint

        try:
            ckpt = load_checkpoint(checkpoint)
        except CheckpointError as exc:
            self.messages.error(str(exc))
            return False
        return self.apply_model(ModelChoice(ckpt.backbone, ckpt.pooling, ckpt.size,
                                            self.model.device, weights=checkpoint))

    def apply_model(self, choice: ModelChoice, *, ask: bool = True) -> bool:
        """Switch to ``choice``; if descriptors change, re-index every library (after asking)."""
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
        self._model_gen += 1  # what the old service still sends is stale now
        self._index_queue.clear()
        if self._index_worker is not None:
            self._index_worker.stop()
        self._stop_service()
        old, self.library = self.library, None
        QApplication.processEvents()  # deliver the finished workers' last signals
        if old is not None:
            old.close()
        self.prefs.model = choice
        self.prefs.sync()
        self.model = choice
        self._fetched = []
        self._apply_filter()
        if reindex and roots:
            self.index_libraries(roots, rebuild=True)  # starts once the model is loaded
        self._load_model()
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
        if self._index_worker is not None and not self._closing:
            if not self.confirm(
                "Stop indexing and quit?",
                f"{self._index_root} is being indexed. What is done so far is kept; the rest "
                "is indexed next time.\n\nStop indexing and quit?",
            ):
                event.ignore()
                return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel work, wait for every worker, close the library (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self.save_window_state()
        self._index_queue.clear()
        self._progress_timer.stop()
        if self._service is not None:
            self._service.stop()
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            if not worker.wait(60_000):  # pragma: no cover - a stuck worker
                log.error("worker %s did not stop", worker.name)
        self.thumbnails.shutdown()
        QApplication.processEvents()  # deliver the workers' last signals (e.g. a loaded library)
        if self.library is not None:
            try:
                self.library.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the library failed")
            self.library = None


def _freeze_long_lived_objects() -> None:
    """Take what is loaded now (torch, the model, Qt wrappers: ~400k objects) out of the cyclic
    garbage collector's scans. A full collection over them took ~210 ms with the GIL held, which
    froze the window whenever one ran during indexing or a search; after the freeze it takes
    ~0 ms (bench/gc_pause.py). Unfreezing first lets a replaced model's cycles be collected."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _sort_urls(mime: QMimeData) -> tuple[list[str], list[str], list[str]]:
    """(folders, photos, everything else) among the dropped or pasted URLs."""
    local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    remote = [u.toString() for u in mime.urls() if not u.isLocalFile()]
    folders = [p for p in local if os.path.isdir(p)]
    photos = [p for p in local if os.path.isfile(p) and is_supported(p)]
    others = [p for p in local if p not in folders and p not in photos] + remote
    return folders, photos, others


def _drop_hint(mime: QMimeData) -> str:
    """What dropping ``mime`` will do, in words (the overlay's text)."""
    if not mime.hasUrls():
        return "Drop to search with this image"
    folders, photos, _others = _sort_urls(mime)
    if folders and not photos:
        return ("Drop to add this folder as a library" if len(folders) == 1
                else f"Drop to add these {len(folders)} folders as libraries")
    if len(photos) > 1:
        return f"Drop to search with these {len(photos)} photos"
    if photos:
        return "Drop to search with this photo"
    return "Not a photo or folder"


def _under(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == \
            os.path.abspath(root)
    except ValueError:
        return False
