"""The right side of the window: the results grid, the count and minimum-score controls, and
what can be done with a hit (open, reveal, copy its path, search with it)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.app import desktop
from imgsearch_gui.app.desktop import OpenResult
from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui.format import BAND_MEANINGS, band_legend_tip, copied_text
from imgsearch_gui.ui.messages import MessageChannel
from imgsearch_gui.ui.open_text import COPY_PATH_FAILURES, open_failure_text
from imgsearch_gui.ui.prefs import MAX_COUNT
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.results import ResultsModel, ResultsView, ThumbnailLoader, band_colour

log = logging.getLogger(__name__)


class ResultsPanel(QWidget):
    """Results and their filters. ``searchRequested`` carries the paths of "Search with"."""

    searchRequested = Signal(object)  # list[str]

    def __init__(self, thumbnails: ThumbnailLoader, messages: MessageChannel, count: int,
                 min_score: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages = messages
        self.model = ResultsModel(thumbnails, self)
        self.view = ResultsView()
        self.view.setModel(self.model)
        # activated: a double click (or one click where the desktop says so) and Enter; not
        # doubleClicked as well, which would open the photo twice
        self.view.activated.connect(self._open_index)
        self.view.customContextMenuRequested.connect(self._menu)
        self.summary = QLabel("No query yet")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._controls(count, min_score))
        self.legend = band_legend()
        layout.addWidget(self.legend)
        layout.addWidget(self.view, 1)

    def _controls(self, count: int, min_score: float) -> QHBoxLayout:
        """Spin boxes with sliders beside them, kept in step both ways."""
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, MAX_COUNT)
        self.count_spin.setValue(count)
        self.count_spin.setToolTip("How many results to show")
        self.count_slider = QSlider(Qt.Orientation.Horizontal)
        self.count_slider.setRange(1, MAX_COUNT)
        self.count_slider.setValue(count)
        self.count_slider.setMaximumWidth(160)
        self.count_slider.valueChanged.connect(self.count_spin.setValue)
        self.count_spin.valueChanged.connect(self.count_slider.setValue)

        self.score_spin = QDoubleSpinBox()
        self.score_spin.setRange(-1.0, 1.0)
        self.score_spin.setSingleStep(0.05)
        self.score_spin.setDecimals(2)
        self.score_spin.setValue(min_score)
        self.score_spin.setToolTip("Hide results below this cosine similarity")
        self.score_slider = QSlider(Qt.Orientation.Horizontal)
        self.score_slider.setRange(-100, 100)
        self.score_slider.setValue(round(min_score * 100))
        self.score_slider.setMaximumWidth(160)
        # only a slider the user moved sets the box: one that follows the box must not rewrite
        # it while the user types ("0.8" -> "0.80" would turn the next keystroke into 0.80)
        self.score_slider.valueChanged.connect(self._score_slid)
        self.score_spin.valueChanged.connect(
            lambda v: self.score_slider.setValue(round(v * 100))
        )
        controls = QHBoxLayout()
        controls.addWidget(self.summary, 1)
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.count_slider)
        controls.addWidget(self.count_spin)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Min score"))
        controls.addWidget(self.score_slider)
        controls.addWidget(self.score_spin)
        return controls

    # ==== what can be done with a hit =======================================================
    def _score_slid(self, value: int) -> None:
        if round(self.score_spin.value() * 100) != value:
            self.score_spin.setValue(value / 100)

    def _open_index(self, index) -> None:
        hit = self.model.hit(index)
        if hit is not None:
            self.open_hit(hit)

    def open_hit(self, hit: SearchHit) -> OpenResult:
        """Open the photo with the desktop's viewer, or say why that could not be done."""
        result = desktop.open_path(hit.path, offline=hit.offline)
        self._report(result)
        return result

    def reveal_hit(self, hit: SearchHit) -> OpenResult:
        """Show the photo in its folder in a file manager, or say why that could not be done."""
        result = desktop.reveal_path(hit.path, offline=hit.offline)
        self._report(result, reveal=True)
        return result

    def open_folder(self, folder: str) -> OpenResult:
        """Open a library's folder in the file manager, or say why that could not be done (the
        one way the window opens files and folders: ``app.desktop``)."""
        result = desktop.open_path(folder)
        self._report(result)
        return result

    def _report(self, result: OpenResult, reveal: bool = False) -> None:
        """A failure in words; where the file is there but the desktop cannot take it, its
        path goes to the clipboard (to paste into a file manager or viewer), and the
        message's Details hold it too."""
        if result.ok:
            return
        copied = result.reason in COPY_PATH_FAILURES
        if copied:
            QGuiApplication.clipboard().setText(result.path)
        details = "\n".join([result.path, *([result.detail] if result.detail else [])])
        self.messages.warning(open_failure_text(result, reveal=reveal, copied=copied), details)

    def copy_path(self, hits: Sequence[SearchHit]) -> None:
        QGuiApplication.clipboard().setText("\n".join(h.path for h in hits))
        self.messages.info(copied_text(len(hits)))

    def _menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        hit = self.model.hit(index)
        if hit is None:
            return
        selected = self.view.selected_hits()
        if hit not in selected:
            selected = [hit]
        menu = self.build_menu(hit, selected)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def build_menu(self, hit: SearchHit, selected: Sequence[SearchHit]) -> QMenu:
        """The context menu of ``hit`` (the right-clicked one) among the ``selected`` hits."""
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_hit(hit))
        menu.addAction("Reveal in file manager", lambda: self.reveal_hit(hit))
        menu.addAction("Copy path" if len(selected) == 1 else f"Copy {len(selected)} paths",
                       lambda: self.copy_path(selected))
        menu.addSeparator()
        menu.addAction(
            "Search with this image" if len(selected) == 1
            else f"Search with these {len(selected)} images",
            lambda: emit(self.searchRequested, [h.path for h in selected]),
        )
        return menu


def band_legend() -> QLabel:
    """A line above the grid: what the score colours mean (the ranges in its tooltip)."""
    from imgsearch_gui.base.bands import MEASURED

    chips = " &nbsp; ".join(
        f'<span style="color:{band_colour(name).name()}">&#9632;</span> {name}'
        for name, _meaning in BAND_MEANINGS)
    label = QLabel(f"<small>Score: &nbsp;{chips}</small>")
    label.setObjectName("bandLegend")
    label.setToolTip(band_legend_tip(next(iter(MEASURED.values()), None)))
    return label
