"""The results grid: a list model of SearchHit, a delegate painting thumbnail/rank/score, and a
thumbnail loader that decodes off the GUI thread (QThreadPool) with an on-disk cache.

Thumbnails are cached as JPEGs keyed by (path, mtime, size, thumbnail size), so an edited photo
gets a new thumbnail and an unchanged one is never decoded twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

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

from imgsearch_gui.app import diskcache
from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui.format import (
    display_path,
    hit_caption,
    hit_tooltip,
    placeholder_text,
    score_band,
    score_text,
)
from imgsearch_gui.ui.qtcompat import emit

log = logging.getLogger(__name__)

THUMB_SIZE = 160
#: ~60,000 thumbnails of 160 px (about 8 KB each)
THUMBNAIL_CACHE_BYTES = 500_000_000
HitRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
PathRole = Qt.ItemDataRole.UserRole + 3


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage of an RGB PIL image (safe to use in any thread)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    data = image.tobytes("raw", "RGB")
    qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    return qimage.copy()  # own the pixels: ``data`` goes away


def qimage_to_pil(qimage: QImage):
    """An RGB PIL image of a QImage (clipboard, drops of image data)."""
    from PIL import Image

    rgb = qimage.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buf = bytes(rgb.constBits())[: stride * height]
    return Image.frombuffer("RGB", (width, height), buf, "raw", "RGB", stride, 1).copy()


class ThumbnailCache:
    """Thumbnails on disk under ``root``, keyed by path + mtime + size, kept within ``max_bytes``
    (:meth:`prune`: least recently shown first; thumbnails of edited or deleted photos go too)."""

    def __init__(self, root: Path, size: int = THUMB_SIZE,
                 max_bytes: int = THUMBNAIL_CACHE_BYTES) -> None:
        self.root = Path(root)
        self.size = size
        self.max_bytes = max_bytes

    def prune(self, cancel=None) -> diskcache.PruneReport:
        return diskcache.prune(self.root, self.max_bytes, cancel=cancel)

    def key(self, path: str) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        raw = f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}|{self.size}"
        return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def file_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.jpg"

    def load(self, path: str) -> QImage | None:
        """The thumbnail of ``path`` (from the cache, else decoded and stored). Any thread."""
        key = self.key(path)
        if key is None:
            return None
        cached = self.file_for(key)
        if cached.exists():
            image = QImage(str(cached))
            if not image.isNull():
                diskcache.touch(cached)  # recently used: pruned last
                return image
        from imgsearch_gui.base.errors import ImageError
        from imgsearch_gui.base.images import load_image

        try:
            pil = load_image(path, max_side=self.size)
        except ImageError as exc:
            log.debug("no thumbnail for %s: %s", path, exc.reason)
            return None
        pil.thumbnail((self.size, self.size))
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            pil.save(tmp, "JPEG", quality=85)
            os.replace(tmp, cached)
        except OSError as exc:
            log.debug("cannot cache thumbnail %s: %s", cached, exc)
        return pil_to_qimage(pil)


class _ThumbnailJob(QRunnable):
    def __init__(self, loader: ThumbnailLoader, path: str) -> None:
        super().__init__()
        self.loader = loader
        self.path = path
        self.cache = loader.cache

    def run(self) -> None:  # pool thread
        try:
            image = self.cache.load(self.path)
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

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self.pool.start(_ThumbnailJob(self, path))

    def _done(self, path: str, _image: QImage) -> None:
        self._pending.discard(path)

    def cancel_pending(self) -> None:
        self.pool.clear()
        self._pending.clear()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.pool.clear()
        self.pool.waitForDone(timeout_ms)


class ResultsModel(QAbstractListModel):
    """The hits shown in the grid (already ranked best first and filtered)."""

    def __init__(self, loader: ThumbnailLoader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._hits: list[SearchHit] = []
        self._rows: dict[str, list[int]] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self.max_pixmaps = 1000
        self.loader = loader
        loader.loaded.connect(self._thumbnail_loaded)

    # --- data -----------------------------------------------------------------------------
    @property
    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    def set_hits(self, hits: Sequence[SearchHit]) -> None:
        hits = list(hits)
        if hits == self._hits:
            return
        self.beginResetModel()
        self._hits = hits
        self._rows = {}
        for row, hit in enumerate(hits):
            self._rows.setdefault(hit.path, []).append(row)
        self.endResetModel()

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
            return hit_tooltip(hit)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(hit.path)
        if role == HitRole:
            return hit
        if role == ScoreRole:
            return hit.score
        if role == PathRole:
            return hit.path
        return None

    # --- thumbnails -----------------------------------------------------------------------
    def thumbnail(self, path: str) -> QPixmap | None:
        """The cached pixmap, or None while it loads (a load is requested)."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._failed:
            self.loader.request(path)
        return None

    def thumbnail_failed(self, path: str) -> bool:
        return path in self._failed

    def _thumbnail_loaded(self, path: str, image: QImage) -> None:
        if image.isNull():
            self._failed.add(path)
        else:
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
            painter.drawPixmap(target, pixmap)
            if target.width() >= 90:
                badges_on = target.adjusted(3, 3, -3, 0)
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


_BAND_COLOURS = {  # format.score_band: green the same photo, teal very similar, amber similar,
    # grey unrelated; slate where the model's bands are not measured
    "same photo": (30, 130, 70, 230),
    "very similar": (20, 110, 140, 220),
    "similar": (190, 120, 20, 220),
    "unrelated": (120, 120, 120, 210),
    "unknown": (60, 70, 90, 210),
}


def _score_colour(hit: SearchHit) -> QColor:
    return QColor(*_BAND_COLOURS[score_band(hit)])


class ResultsView(QListView):
    """IconMode grid of hits; emits ``painted`` the first time rows are painted after a reset."""

    painted = Signal(int)  # number of rows

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
