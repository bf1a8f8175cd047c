"""The results grid: a list model of SearchHit, a delegate painting thumbnail/rank/score, and a
thumbnail loader that decodes off the GUI thread (QThreadPool) with an on-disk cache
(``thumbnail_cache.py``).

A hit of a library that is offline (an unplugged drive) stays in the grid with the thumbnail it
had when it was last shown, dimmed and marked "offline"; the model keeps the newest known state
of each library (a search's answer, or the window's refresh), and a photo back online loads its
thumbnail again.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui.format import (
    OFFLINE_BADGE,
    display_path,
    hit_caption,
    hit_tooltip,
    placeholder_text,
    score_band,
    score_text,
)
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.thumbnail_cache import (
    THUMB_SIZE,
    THUMBNAIL_CACHE_BYTES,
    ThumbnailCache,
    pil_to_qimage,
)

__all__ = [
    "THUMBNAIL_CACHE_BYTES", "THUMB_SIZE", "ResultsModel", "ResultsView", "ThumbnailCache",
    "ThumbnailDelegate", "ThumbnailLoader", "pil_to_qimage", "qimage_to_pil",
]

log = logging.getLogger(__name__)

HitRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
PathRole = Qt.ItemDataRole.UserRole + 3


def qimage_to_pil(qimage: QImage):
    """An RGB PIL image of a QImage (clipboard, drops of image data)."""
    from PIL import Image

    rgb = qimage.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buf = bytes(rgb.constBits())[: stride * height]
    return Image.frombuffer("RGB", (width, height), buf, "raw", "RGB", stride, 1).copy()


class _ThumbnailJob(QRunnable):
    def __init__(self, loader: ThumbnailLoader, path: str, offline: bool) -> None:
        super().__init__()
        self.loader = loader
        self.path = path
        self.offline = offline
        self.cache = loader.cache

    def run(self) -> None:  # pool thread
        try:
            image = self.cache.load(self.path, offline=self.offline)
        except Exception:  # noqa: BLE001 - a thumbnail must never take the app down
            log.exception("thumbnail of %s failed", self.path)
            image = None
        try:
            emit(self.loader.loaded, self.path, image if image is not None else QImage())
        except RuntimeError:  # loader deleted at shutdown
            pass


class ThumbnailLoader(QObject):
    """Loads thumbnails in a small thread pool; ``loaded(path, QImage)`` arrives in the GUI thread.

    Only QImage crosses threads (QPixmap is GUI-thread only).
    """

    loaded = Signal(str, QImage)

    def __init__(self, cache: ThumbnailCache, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.cache = cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._pending: set[str] = set()
        self.loaded.connect(self._done)

    def request(self, path: str, offline: bool = False) -> None:
        """Load the thumbnail of ``path``; ``offline``: its library is not reachable, the
        cached one is shown (the photo is not even stat'ed)."""
        if path in self._pending:
            return
        self._pending.add(path)
        self.pool.start(_ThumbnailJob(self, path, offline))

    def _done(self, path: str, _image: QImage) -> None:
        self._pending.discard(path)

    def cancel_pending(self) -> None:
        self.pool.clear()
        self._pending.clear()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.pool.clear()
        self.pool.waitForDone(timeout_ms)


class ResultsModel(QAbstractListModel):
    """The hits shown in the grid (already ranked best first and filtered), each marked offline
    as the newest known state of its library says (:meth:`update_offline`)."""

    def __init__(self, loader: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._given: list[SearchHit] = []  # as set_hits had them
        self._hits: list[SearchHit] = []  # marked as _offline says
        self._rows: dict[str, list[int]] = {}
        self._offline: dict[str, bool] = {}  # library root -> offline, the newest known
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._stats: dict[str, os.stat_result | None] = {}  # path -> stat (None: not found)
        self.max_pixmaps = 1000
        self.loader = loader
        loader.loaded.connect(self._thumbnail_loaded)

    # --- data -----------------------------------------------------------------------------
    @property
    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    def set_hits(self, hits: Sequence[SearchHit]) -> None:
        hits = list(hits)
        if hits == self._given:
            return
        self.beginResetModel()
        self._given = hits
        self._hits = [self._marked(h) for h in hits]
        self._stats.clear()  # a new answer: sizes and dates looked up again when asked
        self._rows = {}
        for row, hit in enumerate(hits):
            self._rows.setdefault(hit.path, []).append(row)
        self.endResetModel()

    # --- offline libraries ----------------------------------------------------------------
    def _marked(self, hit: SearchHit) -> SearchHit:
        offline = self._offline.get(hit.library) if hit.library else None
        return hit if offline is None or offline == hit.offline else replace(hit, offline=offline)

    def update_offline(self, state: Mapping[str, bool]) -> None:
        """The newest state of these library roots (True: offline), from the window's refresh
        or a search's answer; the hits given before keep it (the count and score filters
        give the same hits again). A photo back online loads its thumbnail again (it may have
        been edited meanwhile); one that went offline tries the cached thumbnail."""
        self._offline.update(state)
        for row, given in enumerate(self._given):
            hit = self._marked(given)
            if hit.offline == self._hits[row].offline:
                continue
            self._hits[row] = hit
            self._failed.discard(hit.path)
            self._stats.pop(hit.path, None)
            if not hit.offline and hit.path in self._pixmaps:
                self.loader.request(hit.path)  # the shown one stays until the new one is in
            index = self.index(row)
            emit(self.dataChanged, index, index)

    def note_answer(self, hits: Sequence[SearchHit]) -> None:
        """A search's answer says how the libraries of its hits are now."""
        self.update_offline({h.library: h.offline for h in hits if h.library})

    def hit(self, index: QModelIndex | QPersistentModelIndex) -> SearchHit | None:
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        return self._hits[index.row()]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._hits)

    def data(
        self,
        index: QModelIndex | QPersistentModelIndex,
        role: int = Qt.ItemDataRole.DisplayRole,
    ):
        hit = self.hit(index)
        if hit is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return display_path(os.path.basename(hit.path))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(hit)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(hit.path, hit.offline)
        if role == HitRole:
            return hit
        if role == ScoreRole:
            return hit.score
        if role == PathRole:
            return hit.path
        return None

    def tooltip(self, hit: SearchHit) -> str:
        """The hit's tooltip, with the file's size and date: stat'ed when a tooltip is first
        asked for (never for every hit of an answer), and never for a photo of an offline
        library (a stat of a share that is down can hang the window)."""
        if hit.offline:
            return hit_tooltip(hit)
        if hit.path not in self._stats:
            try:
                self._stats[hit.path] = os.stat(hit.path)
            except OSError:
                self._stats[hit.path] = None
        st = self._stats[hit.path]
        if st is None:
            return hit_tooltip(hit, missing=True)
        return hit_tooltip(hit, size=st.st_size, modified=st.st_mtime)

    # --- thumbnails -----------------------------------------------------------------------
    def thumbnail(self, path: str, offline: bool = False) -> QPixmap | None:
        """The cached pixmap, or None while it loads (a load is requested; ``offline``: the
        photo's library is not reachable, the thumbnail cached last is loaded)."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._failed:
            self.loader.request(path, offline)
        return None

    def thumbnail_failed(self, path: str) -> bool:
        return path in self._failed

    def _thumbnail_loaded(self, path: str, image: QImage) -> None:
        if image.isNull():
            self._failed.add(path)
        else:
            self._failed.discard(path)
            self._pixmaps[path] = QPixmap.fromImage(image)
            while len(self._pixmaps) > self.max_pixmaps:
                self._pixmaps.popitem(last=False)
        for row in self._rows.get(path, ()):
            index = self.index(row)
            emit(self.dataChanged, index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: thumbnail (or a placeholder), rank badge, cosine score and file name."""

    CELL = QSize(THUMB_SIZE + 16, THUMB_SIZE + 44)

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        return self.CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        hit: SearchHit | None = index.data(HitRole)
        if hit is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(3, 3, -3, -3)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(rect, 6, 6)
        elif hovered:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(rect, 6, 6)

        thumb_area = QRect(rect.x() + 5, rect.y() + 5, rect.width() - 10, THUMB_SIZE)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        badges_on = thumb_area  # the badges sit on the picture's corners
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            scaled = pixmap.size().scaled(thumb_area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(thumb_area.center())
            target.moveBottom(thumb_area.bottom())  # pictures rest on the file name
            if hit.offline:  # the photo as cached, dimmed: it cannot be opened now
                painter.setOpacity(0.4)
            painter.drawPixmap(target, pixmap)
            painter.setOpacity(1.0)
            if target.width() >= 90:
                badges_on = target.adjusted(3, 3, -3, 0)
            if hit.offline:
                self._paint_offline_badge(painter, option, target)
        else:
            painter.setPen(QPen(QColor(0, 0, 0, 40), 1, Qt.PenStyle.DashLine))
            painter.setBrush(QColor(0, 0, 0, 12))
            painter.drawRoundedRect(thumb_area.adjusted(8, 8, -8, -8), 4, 4)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            model = index.model()
            failed = hasattr(model, "thumbnail_failed") and model.thumbnail_failed(hit.path)
            painter.drawText(thumb_area, Qt.AlignmentFlag.AlignCenter, placeholder_text(hit, failed))

        # rank badge, top-left
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        badge_text = f"#{hit.rank}"
        metrics = painter.fontMetrics()
        badge = QRect(badges_on.x(), badges_on.y(), metrics.horizontalAdvance(badge_text) + 10,
                      metrics.height() + 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 180))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, badge_text)

        # score, top-right, coloured by similarity
        score = score_text(hit.score)
        sbox = QRect(0, 0, metrics.horizontalAdvance(score) + 10, metrics.height() + 4)
        sbox.moveTopRight(badges_on.topRight())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_score_colour(hit))
        painter.drawRoundedRect(sbox, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(sbox, Qt.AlignmentFlag.AlignCenter, score)

        # file name, elided
        painter.setFont(option.font)
        text_rect = QRect(rect.x() + 4, thumb_area.bottom() + 6, rect.width() - 8,
                          rect.bottom() - thumb_area.bottom() - 6)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(role))
        name = painter.fontMetrics().elidedText(
            hit_caption(hit), Qt.TextElideMode.ElideMiddle, text_rect.width()
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name)
        painter.restore()

    @staticmethod
    def _paint_offline_badge(painter: QPainter, option: QStyleOptionViewItem,
                             picture: QRect) -> None:
        """The word "offline" across the bottom of a cached thumbnail of an offline library."""
        painter.save()
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        badge = QRect(0, 0, metrics.horizontalAdvance(OFFLINE_BADGE) + 14, metrics.height() + 6)
        badge.moveCenter(picture.center())
        badge.moveBottom(picture.bottom() - 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*_OFFLINE_COLOUR))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, OFFLINE_BADGE)
        painter.restore()


_BAND_COLOURS = {  # format.score_band: green the same photo, teal very similar, amber similar,
    # grey unrelated; slate where the model's bands are not measured
    "same photo": (30, 130, 70, 230),
    "very similar": (20, 110, 140, 220),
    "similar": (190, 120, 20, 220),
    "unrelated": (120, 120, 120, 210),
    "unknown": (60, 70, 90, 210),
}


_OFFLINE_COLOUR = (70, 70, 80, 220)  # slate: a state of the library, not of the photo


def _score_colour(hit: SearchHit) -> QColor:
    return QColor(*_BAND_COLOURS[score_band(hit)])


def band_colour(band: str) -> QColor:
    """The badge colour of a band's name (the legend's squares are the badges' colours)."""
    return QColor(*_BAND_COLOURS.get(band, _BAND_COLOURS["unknown"]))


class ResultsView(QListView):
    """IconMode grid of hits; emits ``painted`` the first time rows are painted after a reset.

    The grid fills the width: as many columns as cells of :attr:`MIN_PITCH` fit, and the spare
    width shared out between them (:meth:`fit_grid`, on every resize of the viewport). The cells
    themselves keep their size: a thumbnail is never drawn larger than it is cached.
    """

    painted = Signal(int)  # number of rows
    #: the narrowest column: a cell and a gap of 8 px
    MIN_PITCH = ThumbnailDelegate.CELL.width() + 8
    ROW_PITCH = ThumbnailDelegate.CELL.height() + 8

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setSpacing(4)
        self.setWordWrap(False)
        self.setMouseTracking(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setItemDelegate(ThumbnailDelegate(self))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._announce = False
        self.fit_grid()

    def columns_for(self, width: int) -> int:
        """How many columns a viewport ``width`` px wide holds."""
        return max(1, width // self.MIN_PITCH)

    def fit_grid(self) -> None:
        """Columns as many as fit, each as wide as the viewport's width shared out evenly."""
        width = self.viewport().width()
        # QListView wraps a row that would reach the viewport's edge: one pixel is kept free
        pitch = max(self.MIN_PITCH, (width - 1) // self.columns_for(width - 1))
        grid = QSize(pitch, self.ROW_PITCH)
        if grid != self.gridSize():
            self.setGridSize(grid)

    def resizeEvent(self, event) -> None:  # noqa: N802 - the viewport's resizes come here too
        self.fit_grid()
        super().resizeEvent(event)

    def setModel(self, model) -> None:  # noqa: N802
        super().setModel(model)
        if model is not None:
            model.modelReset.connect(self._arm)

    def _arm(self) -> None:
        self._announce = True

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        model = self.model()
        if self._announce and model is not None and model.rowCount() > 0:
            self._announce = False
            emit(self.painted, model.rowCount())

    def selected_hits(self) -> list[SearchHit]:
        model = self.model()
        rows = sorted(i.row() for i in self.selectionModel().selectedIndexes())
        return [h for h in (model.hit(model.index(r)) for r in rows) if h is not None]
