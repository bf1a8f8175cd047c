"""The left side of the window: the query photo (drag a rectangle on it), its caption, Open…
and "Whole photo". It shows what the search controller tells it; it runs no search itself."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from imgsearch_gui.ui.query import QueryImageView

log = logging.getLogger(__name__)

PLACEHOLDER = (
    "Drop a photo here\n\nor paste one (Ctrl+V), or open one (Ctrl+O).\n\n"
    "Then drag a rectangle on it to search for that part only."
)


class QueryPanel(QWidget):
    """The query photo with its region, caption and buttons (``open_button`` opens a file)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QueryImageView()
        self.view.placeholder = PLACEHOLDER
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clear_region_button = QPushButton("Whole photo")
        self.clear_region_button.setToolTip("Search with the whole photo again (Esc)")
        self.clear_region_button.clicked.connect(lambda: self.view.set_region(None))
        self.clear_region_button.setEnabled(False)
        self.open_button = QPushButton("Open…")
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.clear_region_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        title = QLabel("Query")
        title.setStyleSheet("font-weight: bold;")
        layout.addWidget(title)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)
        layout.addLayout(buttons)
