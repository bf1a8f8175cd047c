"""The query panel: shows the query photo; drawing a rectangle on it searches by that region."""

from __future__ import annotations

import logging

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from imgsearch_gui.ui.qtcompat import emit

log = logging.getLogger(__name__)

MIN_REGION_PX = 8  # in image pixels; smaller drags are clicks


class QueryImageView(QWidget):
    """Paints the query image fitted to the widget; a mouse drag selects a region.

    ``regionSelected(x0, y0, x1, y1)`` is in image pixel coordinates; ``regionCleared`` when a
    click (no drag) removes the selection.
    """

    regionSelected = Signal(int, int, int, int)
    regionCleared = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._image_size = QSize()
        self._region: QRect | None = None  # image coordinates
        self._drag_from: QPointF | None = None
        self._drag_to: QPointF | None = None
        self.placeholder = "Drop a photo here"
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.CrossCursor)

    # --- state ----------------------------------------------------------------------------
    def set_image(self, image: QImage | None) -> None:
        valid = image is not None and not image.isNull()
        self._pixmap = QPixmap.fromImage(image) if valid else None
        self._image_size = image.size() if self._pixmap is not None else QSize()
        self._region = None
        self._drag_from = self._drag_to = None
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        r = self._region
        return None if r is None else (r.left(), r.top(), r.right() + 1, r.bottom() + 1)

    def set_region(self, box: tuple[int, int, int, int] | None, notify: bool = True) -> None:
        """Select ``box`` = (x0, y0, x1, y1) in image pixels (None clears)."""
        if box is None:
            had = self._region is not None
            self._region = None
            self.update()
            if notify and had:
                emit(self.regionCleared)
            return
        x0, y0, x1, y1 = box
        rect = QRect(QPoint(x0, y0), QPoint(x1 - 1, y1 - 1)).normalized()
        rect = rect.intersected(QRect(QPoint(0, 0), self._image_size))
        if rect.width() < MIN_REGION_PX or rect.height() < MIN_REGION_PX:
            return
        self._region = rect
        self.update()
        if notify:
            x0, y0, x1, y1 = self.region  # type: ignore[misc]
            emit(self.regionSelected, x0, y0, x1, y1)

    # --- geometry -------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is painted (widget coordinates)."""
        if self._pixmap is None:
            return QRectF()
        area = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        size = QSize(self._image_size)
        size.scale(area.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRectF(0, 0, size.width(), size.height())
        rect.moveCenter(area.center())
        return rect

    def to_image(self, point: QPointF) -> QPointF:
        target = self.image_rect()
        if target.isEmpty():
            return QPointF()
        sx = self._image_size.width() / target.width()
        sy = self._image_size.height() / target.height()
        x = min(max(point.x() - target.left(), 0.0), target.width()) * sx
        y = min(max(point.y() - target.top(), 0.0), target.height()) * sy
        return QPointF(x, y)

    def to_widget(self, rect: QRect) -> QRectF:
        target = self.image_rect()
        sx = target.width() / max(1, self._image_size.width())
        sy = target.height() / max(1, self._image_size.height())
        return QRectF(
            target.left() + rect.left() * sx,
            target.top() + rect.top() * sy,
            rect.width() * sx,
            rect.height() * sy,
        )

    # --- events ---------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self._pixmap is not None and event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = self._drag_to = QPointF(event.position())
            self.update()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag_from is not None:
            self._drag_to = QPointF(event.position())
            self.update()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag_from is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseReleaseEvent(event)
            return
        a = self.to_image(self._drag_from)
        b = self.to_image(QPointF(event.position()))
        self._drag_from = self._drag_to = None
        x0, x1 = sorted((round(a.x()), round(b.x())))
        y0, y1 = sorted((round(a.y()), round(b.y())))
        if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
            self.set_region(None)  # a click clears the region
        else:
            self.set_region((x0, y0, x1, y1))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = self.palette()
        if self._pixmap is None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            pen = QPen(palette.color(QPalette.ColorRole.Mid), 2, Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(8, 8, -8, -8), 10, 10)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            return
        target = self.image_rect()
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        sel: QRectF | None = None
        if self._drag_from is not None and self._drag_to is not None:
            sel = QRectF(self._drag_from, self._drag_to).normalized().intersected(target)
        elif self._region is not None:
            sel = self.to_widget(self._region)
        if sel is not None and not sel.isEmpty():
            shade = QPainterPath()
            shade.addRect(target)
            hole = QPainterPath()
            hole.addRect(sel)
            painter.fillPath(shade.subtracted(hole), QColor(0, 0, 0, 110))
            painter.setPen(QPen(QColor(255, 210, 0), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(sel)
