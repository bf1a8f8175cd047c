"""What the main window is made of: its widgets, actions (text, shortcut, tip), menu bar, toolbar
and the Library menu, which lists the libraries. Like the code ``uic`` writes for a ``.ui`` file,
:func:`setup_ui` puts them on the window as attributes; the window's methods are the actions'
slots, and the window connects the rest (typed QMainWindow: main_window.py imports this module)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.ui.format import (
    library_label,
    library_tip,
    offline_button_text,
    offline_button_tip,
)
from imgsearch_gui.ui.messages import MessageBanner
from imgsearch_gui.ui.widgets.drop_overlay import DropOverlay
from imgsearch_gui.ui.widgets.empty_state import EmptyState
from imgsearch_gui.ui.widgets.indexing_panel import IndexingPanel
from imgsearch_gui.ui.widgets.library_panel import LibraryPanel
from imgsearch_gui.ui.widgets.query_panel import QueryPanel
from imgsearch_gui.ui.widgets.results_panel import ResultsPanel

log = logging.getLogger(__name__)


def setup_ui(window: QMainWindow) -> None:
    """The widgets, then the commands (they need the widgets: "Search whole photo")."""
    _build_widgets(window)
    _build_actions(window)
    _build_menus(window)
    _build_toolbar(window)


def _build_widgets(w: QMainWindow) -> None:
    """Banner; first-run page or (query over libraries) | results; indexing panel; status
    bar."""
    w.banner = MessageBanner()
    w.empty = EmptyState()
    w.query_panel = QueryPanel()
    w.query_view, w.query_caption = w.query_panel.view, w.query_panel.caption
    w.clear_region_button = w.query_panel.clear_region_button
    w.results_panel = ResultsPanel(w.thumbnails, w.messages, w.prefs.result_count,
                                   w.prefs.min_score)
    panel = w.results_panel
    w.results_model, w.results_view, w.results_summary = panel.model, panel.view, panel.summary
    w.count_spin, w.count_slider = panel.count_spin, panel.count_slider
    w.score_spin, w.score_slider = panel.score_spin, panel.score_slider

    w.library_panel = LibraryPanel()
    # the left column: the query photo over the libraries (their panel keeps to its rows)
    w.left_splitter = QSplitter(Qt.Orientation.Vertical)
    w.left_splitter.setChildrenCollapsible(False)
    w.left_splitter.addWidget(w.query_panel)
    w.left_splitter.addWidget(w.library_panel)
    w.left_splitter.setStretchFactor(0, 3)
    w.left_splitter.setStretchFactor(1, 1)
    w.left_splitter.setSizes([480, 190])

    w.splitter = QSplitter(Qt.Orientation.Horizontal)
    w.splitter.addWidget(w.left_splitter)
    w.splitter.addWidget(w.results_panel)
    w.splitter.setStretchFactor(0, 1)
    w.splitter.setStretchFactor(1, 3)
    w.splitter.setSizes([300, 900])
    w.pages = QStackedWidget()
    w.pages.addWidget(w.empty)
    w.pages.addWidget(w.splitter)
    w.indexing_panel = IndexingPanel()

    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(6, 6, 6, 0)
    layout.addWidget(w.banner)
    layout.addWidget(w.pages, 1)
    layout.addWidget(w.indexing_panel)
    w.setCentralWidget(central)
    w.drop_overlay = DropOverlay(central)

    w.model_label = QLabel()
    w.skipped_button = QToolButton()
    w.skipped_button.setAutoRaise(True)
    w.skipped_button.hide()
    w.offline_button = QToolButton()  # shown while a library is offline (an unplugged drive)
    w.offline_button.setAutoRaise(True)
    w.offline_button.hide()
    w.statusBar().addPermanentWidget(w.offline_button)
    w.statusBar().addPermanentWidget(w.skipped_button)
    w.statusBar().addPermanentWidget(w.model_label)


def _action(window: QMainWindow, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)
    return action


def _build_actions(w: QMainWindow) -> None:
    """Every command of the window as ``window.<name>_action``."""
    K = QKeySequence.StandardKey
    w.open_action = _action(w, "&Open photo…", w.open_query_dialog, K.Open,
                            "Search with a photo file (Ctrl+O)")
    w.paste_action = _action(w, "&Paste photo", w.paste, K.Paste,
                             "Search with the image on the clipboard (Ctrl+V)")
    w.quit_action = _action(w, "&Quit", w.close, "Ctrl+Q")
    w.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    w.add_library_action = _action(w, "&Add library…", w.choose_library, "Ctrl+L",
                                   "Index a photo folder (Ctrl+L)")
    w.reindex_all_action = _action(w, "&Re-index all", w.reindex_all, "F5",
                                   "Pick up new, changed and removed photos (F5)")
    w.watch_action = QAction("&Watch folders for changes", w)
    w.watch_action.setCheckable(True)
    w.watch_action.setToolTip("Keep the index in step with the library folders while the "
                              "window is open: new, edited, moved and deleted photos are "
                              "picked up a few seconds later, without F5")
    w.watch_action.setStatusTip(w.watch_action.toolTip())
    w.watch_action.toggled.connect(w.set_watching)
    w.cancel_action = _action(w, "&Cancel indexing", w.cancel_indexing)
    w.cancel_action.setEnabled(False)
    # Esc: stop indexing if it runs, else go back to searching with the whole photo
    w.escape_shortcut = QShortcut(QKeySequence("Esc"), w)
    w.escape_shortcut.activated.connect(w.escape)
    w.skipped_action = _action(w, "Show &skipped files…", w.show_skipped, "Ctrl+E")
    w.settings_action = _action(w, "&Settings…", w.open_settings, K.Preferences,
                                "Model, pooling, input size, device")
    if not QKeySequence(K.Preferences).toString():
        w.settings_action.setShortcut(QKeySequence("Ctrl+,"))
    w.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    w.finetune_action = QAction("&Fine-tune the model…", w)
    w.finetune_action.setToolTip("Train the CNN on a labelled folder (one subfolder per "
                                 "class) so that search tells those classes apart")
    w.finetune_action.triggered.connect(w.open_finetune)
    w.duplicates_action = _action(w, "Find &duplicates…", w.open_duplicates, None,
                                  "Identical files and the same photo saved again (resized, "
                                  "recoloured, turned, cropped) among the indexed photos")
    w.demo_action = _action(w, "Try the &demo photos", w.start_demo)
    w.demo_action.setToolTip("Index the demo photos that come with the app as a library "
                             "and search with one of them")
    w.log_action = _action(w, "Open the &log folder", w.open_log_folder)
    w.log_action.setToolTip("The log files to attach to a bug report")
    w.about_action = _action(w, "&About imgsearch", w.show_about)
    w.about_action.setMenuRole(QAction.MenuRole.AboutRole)
    w.clear_region_action = _action(w, "Search &whole photo",
                                    lambda: w.query_view.set_region(None))


def _build_menus(w: QMainWindow) -> None:
    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(w.open_action)
    file_menu.addAction(w.paste_action)
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    w.library_menu = bar.addMenu("&Library")
    w.library_menu.setToolTipsVisible(True)  # an offline library's entry says what to do
    w.reindex_menu = QMenu("Re-index", w)
    w.remove_menu = QMenu("Remove", w)
    tools = bar.addMenu("&Tools")
    tools.addAction(w.settings_action)
    tools.addAction(w.finetune_action)
    tools.addAction(w.duplicates_action)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(w.demo_action)
    help_menu.addAction(w.log_action)
    help_menu.addSeparator()
    help_menu.addAction(w.about_action)


def _build_toolbar(w: QMainWindow) -> None:
    toolbar = w.addToolBar("Main")
    toolbar.setObjectName("mainToolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    toolbar.addAction(w.open_action)
    toolbar.addAction(w.paste_action)
    toolbar.addSeparator()
    toolbar.addAction(w.add_library_action)
    toolbar.addAction(w.reindex_all_action)
    toolbar.addSeparator()
    toolbar.addAction(w.settings_action)


def fill_library_menu(w: QMainWindow, roots: list[str], offline: frozenset[str] = frozenset()
                      ) -> None:
    """The Library menu for these libraries: each one listed (an offline one, an unplugged
    drive, is marked and its tooltip says what brings it back; an online one opens its folder),
    and Re-index and Remove list each one too. The status bar's note counts the offline ones."""
    menu = w.library_menu
    menu.clear()
    menu.addAction(w.add_library_action)
    menu.addAction(w.reindex_all_action)
    menu.addAction(w.watch_action)
    w.reindex_menu.clear()
    w.remove_menu.clear()
    for root in roots:
        label = library_label(root, root in offline)
        a = w.reindex_menu.addAction(label)
        a.triggered.connect(lambda _c=False, r=root: w.index_libraries([r]))
        b = w.remove_menu.addAction(label)
        b.triggered.connect(lambda _c=False, r=root: w.remove_library(r))
    w.reindex_menu.setEnabled(bool(roots))
    w.remove_menu.setEnabled(bool(roots))
    w.reindex_all_action.setEnabled(bool(roots))
    menu.addMenu(w.reindex_menu)
    menu.addMenu(w.remove_menu)
    w.library_actions = []
    if roots:
        menu.addSection("Libraries")
    for root in roots:
        entry = menu.addAction(library_label(root, root in offline))
        entry.setToolTip(library_tip(root, root in offline))
        entry.setStatusTip(entry.toolTip().replace("\n", " "))
        entry.triggered.connect(lambda _c=False, r=root: w.show_library(r))
        w.library_actions.append(entry)
    menu.addSeparator()
    menu.addAction(w.skipped_action)
    menu.addAction(w.cancel_action)
    show_offline(w, [r for r in roots if r in offline])


def show_offline(w: QMainWindow, offline: list[str]) -> None:
    """The status bar's note of the offline libraries (hidden when there is none)."""
    w.offline_button.setText(offline_button_text(len(offline)))
    w.offline_button.setToolTip(offline_button_tip(offline))
    w.offline_button.setVisible(bool(offline))
