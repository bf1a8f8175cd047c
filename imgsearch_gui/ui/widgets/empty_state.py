"""The first-run page: what the app does, in three steps, and one button to start."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

_STEPS = (
    "<b>Choose a folder</b> with your photos. imgsearch looks at every image in it (and "
    "its subfolders) once and remembers what it sees. Your photos are not changed or "
    "uploaded.",
    "<b>Drop a photo</b> on this window, paste one (Ctrl+V) or open one (Ctrl+O): the "
    "most similar photos of your library appear, best first.",
    "<b>Draw a rectangle</b> on the query photo to search for just that part.",
)


class EmptyState(QWidget):
    """First run: what the app does and one button to start (or the demo photos)."""

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
        for number, text in enumerate(_STEPS, start=1):
            steps.addLayout(_step(number, text))
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


def _step(number: int, text: str) -> QHBoxLayout:
    """A numbered badge and its sentence, centred."""
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
    return row
