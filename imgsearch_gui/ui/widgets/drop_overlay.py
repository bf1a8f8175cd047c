"""What a drag over the window will do: the URLs sorted into folders/photos/others, the words
for it (``ui/format.py``) and a highlight that shows them."""

from __future__ import annotations

import logging

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QWidget

from imgsearch_gui.ui import format as fmt

log = logging.getLogger(__name__)


def sort_urls(mime: QMimeData) -> tuple[list[str], list[str], list[str]]:
    """(folders, photos, everything else) among the dropped or pasted URLs."""
    local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    remote = [u.toString() for u in mime.urls() if not u.isLocalFile()]
    return fmt.sort_paths(local, remote)


def drop_hint(mime: QMimeData) -> str:
    """What dropping ``mime`` will do, in words (the overlay's text)."""
    if not mime.hasUrls():
        return fmt.drop_hint(False, (), ())
    folders, photos, _others = sort_urls(mime)
    return fmt.drop_hint(True, folders, photos)


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
