"""One group of the duplicate view: a check box (its copies go with "Move copies to the trash"),
what it is and frees, "Not duplicates", and a tile per file: thumbnail, name, folder, size,
width x height, how it matches the kept copy, and a radio button to keep it instead. The kept
tile has a green frame and a KEEP badge. The group says what was asked through signals."""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.app.duplicates.model import DuplicateFile, GroupKind
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.ui.duplicate_plan import GroupEntry, facts_text, group_title, match_text
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.thumbnail_cache import THUMB_SIZE
from imgsearch_gui.ui.widgets.flow_layout import FlowLayout
from imgsearch_gui.ui.widgets.library_panel import ElidedLabel

TILE_WIDTH = THUMB_SIZE + 28
_KEPT = "#1e8246"
_STYLE = (
    f"#duplicateTile {{ border: 1px solid palette(mid); border-radius: 6px; }}"
    f"#duplicateTile[kept=\"true\"] {{ border: 2px solid {_KEPT}; background: rgba(30, 130, 70, 30); }}"
)
_BADGE = "color: white; font-weight: bold; border-radius: 3px; padding: 1px 5px; background: {};"
DISTINCT_TIP = ("These photos are not copies of each other: remember it, so that the next search "
                "leaves them apart")


class FileTile(QFrame):
    """One file of a group."""

    keepRequested = Signal(str)
    openRequested = Signal(str)
    revealRequested = Signal(str)

    def __init__(self, file: DuplicateFile, dims: tuple[int, int] | None, buttons: QButtonGroup,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("duplicateTile")
        self.setFixedWidth(TILE_WIDTH)
        self.path = file.path
        self.dims = dims
        self.thumb = QLabel("…")
        self.thumb.setFixedSize(THUMB_SIZE, THUMB_SIZE)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setToolTip("Double-click to open")
        self.badge = QLabel(self.thumb)
        self.badge.move(4, 4)
        self.keep_button = QRadioButton("Keep this one")
        self.keep_button.setToolTip("Keep this file; the others of the group are its copies")
        buttons.addButton(self.keep_button)
        self.keep_button.toggled.connect(
            lambda on: on and emit(self.keepRequested, self.path))
        self.name_label = ElidedLabel(display_path(os.path.basename(file.path)))
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.folder_label = ElidedLabel(display_path(os.path.dirname(file.path)))
        grey = self.folder_label.palette()
        grey.setColor(QPalette.ColorRole.WindowText, grey.color(QPalette.ColorRole.PlaceholderText))
        self.folder_label.setPalette(grey)
        self.facts_label = QLabel()
        self.match_label = QLabel()
        self.setToolTip(display_path(file.path))
        self._layout(self._actions())
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.show_file(file)

    def _actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for text, signal in (("Open", self.openRequested), ("Show in folder",
                                                            self.revealRequested)):
            button = QToolButton()
            button.setText(text)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _c=False, s=signal: emit(s, self.path))
            row.addWidget(button)
        row.addStretch(1)
        return row

    def _layout(self, actions: QHBoxLayout) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 4)
        layout.setSpacing(2)
        layout.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.keep_button)
        for label in (self.name_label, self.folder_label, self.facts_label, self.match_label):
            layout.addWidget(label)
        layout.addLayout(actions)

    def show_file(self, file: DuplicateFile) -> None:
        """The file as the group keeps it now (kept, or how it matches the kept one)."""
        self.keep_button.setChecked(file.keep)
        self.facts_label.setText(facts_text(file, self.dims))
        self.match_label.setText(match_text(file))
        self.match_label.setToolTip("" if file.keep or file.identical else
                                    "How well it agrees with the kept photo once aligned "
                                    "(1.00: the same pixels)")
        self.badge.setText("KEEP" if file.keep else "copy")
        self.badge.setStyleSheet(_BADGE.format(_KEPT if file.keep else "rgba(60, 60, 60, 170)"))
        self.badge.adjustSize()
        self.setProperty("kept", file.keep)
        self.setStyleSheet(_STYLE)  # the property selector is looked at again

    def set_thumbnail(self, image: QImage) -> None:
        if image.isNull():
            self.thumb.setText("unreadable")
            return
        pixmap = QPixmap.fromImage(image).scaled(
            THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.thumb.setPixmap(pixmap)
        # the badge on the picture's corner, not on the label's empty margin
        self.badge.move((THUMB_SIZE - pixmap.width()) // 2 + 4,
                        (THUMB_SIZE - pixmap.height()) // 2 + 4)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        emit(self.openRequested, self.path)

    def _menu(self, pos: QPoint) -> None:
        self.build_menu().exec(self.mapToGlobal(pos))

    def build_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Open", lambda: emit(self.openRequested, self.path))
        menu.addAction("Reveal in file manager", lambda: emit(self.revealRequested, self.path))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(self.path))
        keep = menu.addAction("Keep this one", lambda: self.keep_button.setChecked(True))
        keep.setEnabled(not self.keep_button.isChecked())
        return menu


class GroupWidget(QFrame):
    """A group of the view, showing its :class:`GroupEntry` (which it changes: kept, checked)."""

    changed = Signal()  # the kept file or the check changed
    distinctRequested = Signal(object)  # the GroupEntry
    openRequested = Signal(str)
    revealRequested = Signal(str)

    def __init__(self, entry: GroupEntry, number: int, dims: dict[str, tuple[int, int]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.number = number
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.check = QCheckBox()
        self.check.setToolTip("Move this group's copies with “Move copies to the trash”")
        self.check.setChecked(entry.checked)
        self.check.toggled.connect(self._checked)
        self.distinct_button = QPushButton("Not duplicates")
        exact = entry.found.kind is GroupKind.EXACT
        self.distinct_button.setEnabled(not exact)
        self.distinct_button.setToolTip("Identical files (the same bytes) are copies" if exact
                                        else DISTINCT_TIP)
        self.distinct_button.clicked.connect(lambda: emit(self.distinctRequested, self.entry))
        header = QHBoxLayout()
        header.addWidget(self.check, 1)
        header.addWidget(self.distinct_button)
        self._buttons = QButtonGroup(self)  # exclusive: one file kept
        self.tiles: dict[str, FileTile] = {}
        flow = FlowLayout()
        for file in entry.found.files:
            tile = FileTile(file, dims.get(file.path), self._buttons)
            tile.keepRequested.connect(self._keep)
            tile.openRequested.connect(self.openRequested)
            tile.revealRequested.connect(self.revealRequested)
            self.tiles[file.path] = tile
            flow.addWidget(tile)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addLayout(header)
        layout.addLayout(flow)
        self.refresh()

    def refresh(self) -> None:
        """Show the entry as it is now (after a pick, a keep rule or a check)."""
        group = self.entry.group
        self.check.setText(f"{self.number}. {group_title(group)}")
        if self.check.isChecked() != self.entry.checked:
            self.check.setChecked(self.entry.checked)
        for file in group.files:
            self.tiles[file.path].show_file(file)

    def _keep(self, path: str) -> None:
        if path != self.entry.keep:
            self.entry.keep = path
            self.refresh()
            emit(self.changed)

    def _checked(self, on: bool) -> None:
        if on != self.entry.checked:
            self.entry.checked = on
            emit(self.changed)
