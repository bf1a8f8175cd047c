"""Fine-tuning dialog: pick a labelled folder, check it, train with live curves, compare, use.

The training itself is :func:`imgsearch_gui.ml.finetune.finetune` (a generator) run by the one
:class:`~imgsearch_gui.ui.worker.Worker`; this view only connects signals and draws.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.base.types import Progress
from imgsearch_gui.ml.finetune import (
    LOSSES,
    DataReady,
    EpochEnd,
    FinetuneConfig,
    FinetuneResult,
    FolderReport,
    TrainStep,
    finetune,
    inspect_folder,
)
from imgsearch_gui.ui.worker import Worker

log = logging.getLogger(__name__)

_LOSS_LABELS = {
    "classification": "Classification (softmax head, two stages) — recommended",
    "contrastive": "Contrastive (pairs, hard negatives)",
    "triplet": "Triplet (batch-hard)",
}


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class CurvePlot(QWidget):
    """Training loss per step (left axis) and val mAP per epoch (right axis, 0..1)."""

    LOSS = QColor("#1f77b4")
    MAP = QColor("#d95f02")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[float] = []
        self.maps: list[tuple[float, float]] = []  # (x in steps, mAP)
        self.steps_per_epoch = 1
        self.setMinimumSize(360, 160)

    def clear(self) -> None:
        self.losses, self.maps = [], []
        self.update()

    def add_loss(self, loss: float) -> None:
        self.losses.append(loss)
        self.update()

    def add_map(self, epochs_done: float, value: float) -> None:
        self.maps.append((epochs_done * self.steps_per_epoch, value))
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(40, 10, -40, -22)
        p.fillRect(self.rect(), self.palette().base())
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(rect)
        text = self.palette().text().color()
        n = max(len(self.losses), int(max((x for x, _ in self.maps), default=0)), 2)
        lo = min(self.losses, default=0.0)
        hi = max(self.losses, default=1.0)
        lo, hi = (0.0, hi * 1.05) if hi > lo else (lo - 0.5, hi + 0.5)

        def pt(x: float, y: float, y0: float, y1: float) -> QPointF:
            return QPointF(rect.left() + rect.width() * x / n,
                           rect.bottom() - rect.height() * (y - y0) / (y1 - y0))

        if len(self.losses) > 1:
            path = QPainterPath(pt(1, self.losses[0], lo, hi))
            for i, v in enumerate(self.losses[1:], 2):
                path.lineTo(pt(i, v, lo, hi))
            p.setPen(QPen(self.LOSS, 1.5))
            p.drawPath(path)
        if self.maps:
            p.setPen(QPen(self.MAP, 2))
            p.setBrush(self.MAP)
            prev = None
            for x, v in self.maps:
                q = pt(x, v, 0.0, 1.0)
                p.drawEllipse(q, 3, 3)
                if prev is not None:
                    p.drawLine(prev, q)
                prev = q
        p.setPen(QPen(self.LOSS))
        p.drawText(QRectF(0, rect.top(), 38, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.2f}")
        p.drawText(QRectF(0, rect.bottom() - 14, 38, 16), Qt.AlignmentFlag.AlignRight, f"{lo:.2f}")
        p.setPen(QPen(self.MAP))
        p.drawText(QRectF(rect.right() + 4, rect.top(), 36, 16), 0, "1.0")
        p.drawText(QRectF(rect.right() + 4, rect.bottom() - 14, 36, 16), 0, "0.0")
        p.setPen(QPen(text))
        p.drawText(QRectF(rect.left(), rect.bottom() + 4, rect.width(), 16),
                   Qt.AlignmentFlag.AlignCenter, "loss (blue) and val mAP (orange) per step")
        p.end()


class FinetuneDialog(QDialog):
    """Fine-tune the CNN on a labelled folder; ``use_model(path)`` offers the checkpoint."""

    use_model = Signal(str)
    inspected = Signal(object)  # FolderReport
    trainingFinished = Signal(object)  # FinetuneResult (also when cancelled)  # noqa: N815

    def __init__(self, data_dir: Path, parent: QWidget | None = None, *,
                 base_config: FinetuneConfig | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune the model")
        self.data_dir = Path(data_dir)
        self.base_config = base_config or FinetuneConfig()
        self.report: FolderReport | None = None
        self.result: FinetuneResult | None = None
        self._inspect_worker: Worker | None = None
        self._train_worker: Worker | None = None
        self._t0 = 0.0

        # -- data ------------------------------------------------------------------------------
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("A folder with one subfolder of photos per class")
        self.folder.setReadOnly(True)
        browse = QPushButton("&Choose folder…")
        browse.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.classes = QTableWidget(0, 3)
        self.classes.setHorizontalHeaderLabels(["Class", "Images", "Validation"])
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.classes.verticalHeader().setVisible(False)
        self.classes.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.classes.setMinimumHeight(120)
        self.data_status = QLabel("No folder chosen.")
        self.data_status.setWordWrap(True)
        self.bad_files = QPlainTextEdit()
        self.bad_files.setReadOnly(True)
        self.bad_files.setMaximumHeight(70)
        self.bad_files.setVisible(False)
        data_box = QGroupBox("Labelled photos")
        data_layout = QVBoxLayout(data_box)
        data_layout.addLayout(row)
        data_layout.addWidget(self.classes)
        data_layout.addWidget(self.data_status)
        data_layout.addWidget(self.bad_files)

        # -- options ---------------------------------------------------------------------------
        self.loss = QComboBox()
        for name in LOSSES:
            self.loss.addItem(_LOSS_LABELS.get(name, name), name)
        self.loss.setCurrentIndex(LOSSES.index(self.base_config.loss))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100)
        self.epochs.setValue(max(1, self.base_config.epochs))
        self.size = QSpinBox()
        self.size.setRange(32, 1024)
        self.size.setSingleStep(32)
        self.size.setSuffix(" px")
        self.size.setValue(self.base_config.size)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(self.base_config.val_fraction)
        self.val_fraction.setToolTip("Share of each class held out to measure retrieval mAP "
                                     "(a folder with train/ and validation/ is used as given)")
        self.whiten = QCheckBox("Also learn a &whitening from the labels")
        self.whiten.setChecked(self.base_config.whiten)
        self.whiten.setToolTip("A supervised (Lw) whitening learned on the training photos after "
                               "fine-tuning; its validation mAP is shown beside the others and "
                               "it is used when the model indexes your library (flowers17: "
                               "89.0 -> 90.6)")
        options = QGroupBox("Training")
        form = QFormLayout(options)
        form.addRow("&Loss:", self.loss)
        form.addRow("&Epochs:", self.epochs)
        form.addRow("&Input size:", self.size)
        form.addRow("&Validation share:", self.val_fraction)
        form.addRow("", self.whiten)

        # -- progress --------------------------------------------------------------------------
        self.plot = CurvePlot()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.results = QTableWidget(0, 2)
        self.results.setHorizontalHeaderLabels(["Model", "Val mAP"])
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.results.verticalHeader().setVisible(False)
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results.setMaximumHeight(90)
        self.results.setVisible(False)

        # -- buttons ---------------------------------------------------------------------------
        self.start_button = QPushButton("&Start")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("C&ancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button = QPushButton("&Use for library…")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Index your libraries with the fine-tuned model")
        self.use_button.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(data_box)
        layout.addWidget(options)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results)
        layout.addLayout(buttons)
        self.resize(620, 760)

    # -- data ------------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled photos (one subfolder per class)")
        if folder:
            self.set_folder(Path(folder))

    def set_folder(self, folder: Path) -> None:
        """Check ``folder`` in the background (classes, counts, unreadable files)."""
        if self._inspect_worker is not None:
            self._inspect_worker.cancel()
        self.folder.setText(str(folder))
        self.report = None
        self.start_button.setEnabled(False)
        self.classes.setRowCount(0)
        self.bad_files.setVisible(False)
        self.data_status.setText("Checking the photos…")
        worker = Worker.with_cancel(inspect_folder, folder, workers=self.base_config.workers,
                                    name="finetune-check")
        worker.progress.connect(lambda event, w=worker: self._inspect_progress(event, w))
        worker.result.connect(lambda report, w=worker: self._inspected(report, w))
        worker.error.connect(lambda exc: self.data_status.setText(f"Cannot check: {exc}"))
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._inspect_worker = worker
        worker.start()

    def _inspect_progress(self, event: Progress, worker: Worker) -> None:
        if worker is self._inspect_worker:
            self.data_status.setText(f"Checking the photos… {event.done}/{event.total}")

    def _inspected(self, report: FolderReport, worker: Worker) -> None:
        if worker is not self._inspect_worker:
            return  # an older check
        self.report = report
        given = report.given_split
        self.classes.setHorizontalHeaderLabels(
            ["Class", "Train" if given else "Images", "Validation" if given else ""])
        self.classes.setColumnHidden(2, not given)
        self.classes.setRowCount(len(report.counts))
        for r, (name, (train, val)) in enumerate(report.counts.items()):
            for c, value in enumerate((name, str(train), str(val))):
                item = QTableWidgetItem(value)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.classes.setItem(r, c, item)
        total = sum(a + b for a, b in report.counts.values())
        text = f"{len(report.counts)} classes, {total} usable photos"
        if given:
            text += " (train/validation folders used as given)"
        self.val_fraction.setEnabled(not given)
        if report.bad_files:
            text += f"; {len(report.bad_files)} unreadable file(s) will be left out"
            self.bad_files.setPlainText("\n".join(f"{b.path}: {b.reason}"
                                                  for b in report.bad_files))
            self.bad_files.setVisible(True)
        if report.error:
            text = f"<b>Cannot train:</b> {report.error}"
        self.data_status.setText(text)
        self.start_button.setEnabled(report.error is None and self._train_worker is None)
        self.inspected.emit(report)

    # -- training --------------------------------------------------------------------------------

    def config(self) -> FinetuneConfig:
        return replace(self.base_config, loss=self.loss.currentData(), epochs=self.epochs.value(),
                       size=self.size.value(), val_fraction=round(self.val_fraction.value(), 3),
                       whiten=self.whiten.isChecked())

    def start(self) -> None:
        if self.report is None or self.report.error or self._train_worker is not None:
            return
        self.result = None
        self.plot.clear()
        self.results.setVisible(False)
        self.use_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.status.setText("Loading the photos…")
        self._t0 = time.monotonic()
        worker = Worker.with_cancel(finetune, Path(self.report.root), self.config(),
                                    self.data_dir / "models", name="finetune")
        worker.progress.connect(self._progress)
        worker.result.connect(self._event)
        worker.error.connect(self._failed)
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._train_worker = worker
        self._set_running(True)
        worker.start()

    def cancel(self) -> None:
        if self._train_worker is not None:
            self._train_worker.cancel()
            self.status.setText("Cancelling… (no model is saved)")
            self.cancel_button.setEnabled(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and self.report is not None
                                     and self.report.error is None)
        self.cancel_button.setEnabled(running)
        for w in (self.loss, self.epochs, self.size, self.val_fraction):
            w.setEnabled(not running)
        if not running and self.report is not None:
            self.val_fraction.setEnabled(not self.report.given_split)

    def _progress(self, event: Progress) -> None:
        stage = {"load": "Loading the photos", "embed": event.message or "Measuring val mAP",
                 "save": "Saving the model"}.get(event.stage, event.stage)
        if event.total and event.stage == "load":
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        else:
            self.progress.setRange(0, 0)
        self.status.setText(f"{stage}…")

    def _event(self, event: object) -> None:
        if isinstance(event, DataReady):
            s = event.summary
            self.status.setText(f"{s.n_train} training / {s.n_val} validation photos on "
                                f"{event.device}")
        elif isinstance(event, TrainStep):
            self.plot.steps_per_epoch = event.steps
            self.plot.add_loss(event.loss)
            total = event.epochs * event.steps
            self.progress.setRange(0, total)
            self.progress.setValue((event.epoch - 1) * event.steps + event.step)
            stage = "classifier only" if event.stage == "head" else "whole network"
            self.status.setText(
                f"Epoch {event.epoch}/{event.epochs} ({stage}), step {event.step}/{event.steps}"
                f" — loss {event.loss:.3f}, lr {event.lr:.1e}, {event.images_per_s:.1f} images/s,"
                f" ETA {_fmt_eta(event.eta_s)}")
        elif isinstance(event, EpochEnd):
            self.plot.add_map(event.epoch, event.val_map)
            self.status.setText(f"Epoch {event.epoch}/{event.epochs}: val mAP "
                                f"{100 * event.val_map:.1f}{' (best so far)' if event.best else ''}")
        elif isinstance(event, FinetuneResult):
            self._finished(event)

    def _finished(self, result: FinetuneResult) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if not result.cancelled else 0)
        if result.cancelled:
            self.status.setText("Cancelled: no model was saved.")
        else:
            rows = [("Off-the-shelf", result.map_before),
                    (f"Fine-tuned (best epoch {result.best_epoch})" if result.best_epoch
                     else "Fine-tuned (no epoch beat the original: kept)", result.map_after)]
            if result.map_whitened is not None:
                rows.append(("Fine-tuned + whitening", result.map_whitened))
            self.results.setRowCount(len(rows))
            for r, (name, value) in enumerate(rows):
                self.results.setItem(r, 0, QTableWidgetItem(name))
                item = QTableWidgetItem(f"{100 * value:.1f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.results.setItem(r, 1, item)
            self.results.setVisible(True)
            self.status.setText(f"Done in {_fmt_eta(result.seconds)}. Saved {result.checkpoint}")
            self.use_button.setEnabled(result.checkpoint is not None)
        self.trainingFinished.emit(result)

    def _failed(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"<b>Training failed:</b> {exc}")

    def _worker_done(self, worker: Worker) -> None:
        if worker is self._train_worker:
            self._train_worker = None
            self._set_running(False)
        if worker is self._inspect_worker:
            self._inspect_worker = None
        worker.deleteLater()

    def _use(self) -> None:
        if self.result is not None and self.result.checkpoint:
            self.use_model.emit(self.result.checkpoint)

    # -- closing ---------------------------------------------------------------------------------

    def stop_workers(self, timeout_ms: int = 30_000) -> None:
        for worker in (self._train_worker, self._inspect_worker):
            if worker is not None:
                worker.stop(timeout_ms)

    def done(self, code: int) -> None:  # covers accept, reject, Esc and the close button
        self.stop_workers()
        super().done(code)
