"""The library panel under the query: one row per library (its folder's name in bold, the full
path, the photo count and its state: indexing, offline, watching, skipped files) with Re-index,
Remove… and Show in file manager. It shows the rows it is given (``ui/library_rows.py`` builds
them) and says what was asked through signals; the window does the rest."""

from __future__ import annotations

import logging

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.ui.library_rows import LibraryRow

log = logging.getLogger(__name__)

EMPTY_TEXT = "No library yet."
REVEAL_TEXT = "Show in file manager"


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" in the middle to the width it gets
    (a long path in a narrow column), instead of widening the column."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle,
                                              self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)


class LibraryRowWidget(QWidget):
    """How one row looks: name (bold) and state; the path, smaller and grey; the photo count."""

    def __init__(self, row: LibraryRow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name_label = ElidedLabel(row.name)
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.path_label = ElidedLabel(row.path)
        small = self.path_label.font()
        if small.pointSizeF() > 0:
            small.setPointSizeF(small.pointSizeF() * 0.88)
        self.path_label.setFont(small)
        self.count_label = QLabel(row.count_text)
        self.state_label = ElidedLabel(row.state_text)
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._state_style = ("color: #b35c00;" if row.offline
                             else "color: #9a6700;" if row.skipped else "")
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.count_label)
        bottom.addWidget(self.state_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.setSpacing(0)
        layout.addWidget(self.name_label)
        layout.addWidget(self.path_label)
        layout.addLayout(bottom)
        self.setToolTip(row.tip)
        self.set_selected(False)

    def set_selected(self, on: bool) -> None:
        """The text in the selection's colours when the row is selected (an item widget does
        not follow them by itself); else the path greyed and a warning state coloured."""
        text = QPalette.ColorRole.HighlightedText if on else QPalette.ColorRole.WindowText
        for label in (self.name_label, self.count_label, self.state_label):
            label.setForegroundRole(text)
        self.path_label.setForegroundRole(
            QPalette.ColorRole.HighlightedText if on else QPalette.ColorRole.PlaceholderText)
        self.state_label.setStyleSheet("" if on else self._state_style)


class LibraryPanel(QWidget):
    """The libraries, their counts and states; ``set_libraries`` shows new rows."""

    reindexRequested = Signal(str)
    removeRequested = Signal(str)
    revealRequested = Signal(str)
    addRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LibraryRow] = []
        title = QLabel("Libraries")
        title.setStyleSheet("font-weight: bold;")
        self.add_button = QToolButton()
        self.add_button.setText("Add…")
        self.add_button.setToolTip("Index a photo folder (Ctrl+L)")
        self.add_button.setAutoRaise(True)
        self.add_button.clicked.connect(self.addRequested)
        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.add_button)

        self.list = QListWidget()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemDoubleClicked.connect(
            lambda item: self.revealRequested.emit(self._root_of(item)))
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.list.itemSelectionChanged.connect(self._show_selection)

        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setEnabled(False)
        self.empty_add_button = QPushButton("Add library…")
        self.empty_add_button.clicked.connect(self.addRequested)
        self.empty_box = QWidget()
        empty = QHBoxLayout(self.empty_box)
        empty.setContentsMargins(0, 0, 0, 0)
        empty.addWidget(self.empty_label)
        empty.addWidget(self.empty_add_button)
        empty.addStretch(1)

        self.reindex_button = self._button("Re-index", "Pick up new, changed and removed photos "
                                           "of this library", self.reindexRequested)
        self.remove_button = self._button("Remove…", "Forget this library: its photos leave "
                                          "the index, the files stay", self.removeRequested)
        self.reveal_button = self._button("Show", "Open the folder in the file manager",
                                          self.revealRequested)
        self.buttons = QWidget()
        buttons = QHBoxLayout(self.buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.reindex_button, self.remove_button, self.reveal_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 6)
        layout.addLayout(header)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_box)
        layout.addWidget(self.buttons)
        self.set_libraries([])

    def _button(self, text: str, tip: str, signal) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self._emit_current(signal))
        return button

    # ==== showing ============================================================================
    def set_libraries(self, rows: list[LibraryRow]) -> None:
        """Show ``rows`` (the selection stays on the same library)."""
        current = self.current_root()
        self.rows = list(rows)
        self.list.clear()
        for row in self.rows:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, row.root)
            item.setData(Qt.ItemDataRole.AccessibleTextRole,
                         f"{row.name}, {row.count_text}, {row.state_text}".rstrip(", "))
            widget = LibraryRowWidget(row)
            # no width of its own (a long path's): the row is as wide as the list
            item.setSizeHint(QSize(0, widget.sizeHint().height()))
            self.list.addItem(item)
            self.list.setItemWidget(item, widget)
            if row.root == current:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.rows:
            self.list.setCurrentRow(0)
        self._fit_list()
        self._show_selection()
        has_rows = bool(self.rows)
        self.list.setVisible(has_rows)
        self.buttons.setVisible(has_rows)
        self.add_button.setVisible(has_rows)
        self.empty_box.setVisible(not has_rows)
        self._update_buttons()

    def _fit_list(self, most: int = 4) -> None:
        """The list as tall as its rows (up to ``most``, then it scrolls): the query photo
        above gets the rest of the column."""
        heights = [self.list.sizeHintForRow(i) for i in range(min(self.list.count(), most))]
        frame = 2 * self.list.frameWidth()
        self.list.setMaximumHeight(sum(heights) + frame if heights else 16_777_215)
        self.list.setMinimumHeight((heights[0] + frame) if heights else 0)
        self.setMaximumHeight(16_777_215)
        self.layout().activate()
        self.setMaximumHeight(self.sizeHint().height())  # a splitter gives the rest above

    def _show_selection(self) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            widget = self.list.itemWidget(item)
            if isinstance(widget, LibraryRowWidget):
                widget.set_selected(item.isSelected())

    def row(self, root: str) -> LibraryRow | None:
        return next((r for r in self.rows if r.root == root), None)

    def row_widget(self, root: str) -> LibraryRowWidget | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if self._root_of(item) == root:
                return self.list.itemWidget(item)
        return None

    def current_root(self) -> str:
        item = self.list.currentItem()
        return self._root_of(item) if item is not None else ""

    def select(self, root: str) -> None:
        for i in range(self.list.count()):
            if self._root_of(self.list.item(i)) == root:
                self.list.setCurrentRow(i)

    # ==== asking =============================================================================
    def build_menu(self, root: str) -> QMenu:
        """The row's context menu (built apart from exec() so that tests can trigger it)."""
        menu = QMenu(self)
        menu.addAction("Re-index", lambda: self.reindexRequested.emit(root))
        menu.addAction(REVEAL_TEXT, lambda: self.revealRequested.emit(root))
        menu.addSeparator()
        menu.addAction("Remove…", lambda: self.removeRequested.emit(root))
        return menu

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        self.build_menu(self._root_of(item)).exec(self.list.viewport().mapToGlobal(pos))

    def _emit_current(self, signal) -> None:
        root = self.current_root()
        if root:
            signal.emit(root)

    def _update_buttons(self) -> None:
        row = self.row(self.current_root())
        self.reindex_button.setEnabled(row is not None and not row.indexing)
        self.remove_button.setEnabled(row is not None)
        self.reveal_button.setEnabled(row is not None and not row.offline)

    @staticmethod
    def _root_of(item: QListWidgetItem) -> str:
        return str(item.data(Qt.ItemDataRole.UserRole) or "")
