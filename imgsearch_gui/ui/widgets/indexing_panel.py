"""The panel under the results while a library is indexed: bar, count, images/s, ETA, Cancel."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.base.types import Progress
from imgsearch_gui.ui.format import progress_stats

log = logging.getLogger(__name__)


class IndexingPanel(QFrame):
    """Progress of the running indexing job: bar, count, images/s, ETA, current file, Cancel.

    Progress arrives far more often than anyone can read it: :meth:`show_progress` paints a new
    stage at once and otherwise leaves the latest report to a 100 ms timer.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexingPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.stats = QLabel()
        self.current = QLabel()
        self.current.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.current.setStyleSheet("color: palette(placeholder-text);")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop indexing (what is done so far is kept) — Esc")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.stats)
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.current)
        self._last: Progress | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._render)
        self.hide()

    def start(self, root: str, position: int, count: int) -> None:
        extra = f" ({position} of {count})" if count > 1 else ""
        self.title.setText(f"Indexing {root}{extra}")
        self.bar.setRange(0, 0)
        self.stats.setText("scanning…")
        self.current.setText("")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self._timer.start()
        self.show()

    def show_progress(self, progress: Progress) -> None:
        """Remember ``progress``; paint it now if it starts a stage, else on the next tick."""
        new_stage = self._last is None or self._last.stage != progress.stage
        self._last = progress
        if new_stage:
            self._render()

    def _render(self) -> None:
        if self._last is not None:
            self.update_progress(self._last)

    def update_progress(self, p: Progress) -> None:
        if p.stage in ("scan", "wait") or p.total <= 0:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
            self.bar.setFormat(f"{p.done:,} / {p.total:,}  (%p%)")
        self.stats.setText(progress_stats(p))
        if p.current:
            metrics = self.current.fontMetrics()
            width = max(100, self.current.width())
            self.current.setText(
                metrics.elidedText(p.current, Qt.TextElideMode.ElideMiddle, width)
            )
        elif p.message:
            self.current.setText(p.message)

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")

    def stop_updates(self) -> None:
        """No more painting (the window closes)."""
        self._timer.stop()

    def finish(self) -> None:
        """The job ended: stop painting, forget its progress, hide."""
        self._timer.stop()
        self._last = None
        self.hide()
