"""Fine-tuning dialog: pick a labelled folder, check it, train with live curves, compare, use.

The training itself is :func:`imgsearch_gui.ml.finetune.finetune` (a generator) run by the one
:class:`~imgsearch_gui.ui.worker.Worker`; this view only connects signals and draws.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPainterPath, QPen
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
from imgsearch_gui.ml.embedder import resolve_device
from imgsearch_gui.ml.finetune import (
    LOSSES,
    DataReady,
    EpochEnd,
    FinetuneConfig,
    FinetuneResult,
    FolderReport,
    Speed,
    TrainStep,
    finetune,
    inspect_folder,
    measure_speed,
    plan_for,
    split_sizes,
)
from imgsearch_gui.ui.worker import Worker

log = logging.getLogger(__name__)

_LOSS_LABELS = {
    "classification": "Classification (softmax head, two stages) — recommended",
    "contrastive": "Contrastive (pairs, hard negatives)",
    "triplet": "Triplet (batch-all, hard negatives)",
}


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"



def _fmt_duration(seconds: float) -> str:
    """A rough duration for an estimate: "under a minute", "about 6 min", "about 1 h 20 min"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def _epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _speed_key(config: FinetuneConfig) -> tuple:
    """What the measured speed depends on (the loss, epochs and counts only change the plan)."""
    return config.backbone, config.weights, config.pooling, config.size, config.device


def _measure(config: FinetuneConfig) -> tuple[Speed, str]:
    """Runs in a worker: the speed of ``config``'s network and the device type it ran on."""
    return measure_speed(config), resolve_device(config.device).type


def _unless_deleted(slot):
    """A slot that does nothing once the dialog's C++ side is gone: a worker's queued signal can
    arrive after the dialog was closed (stop_workers) and deleted."""

    @functools.wraps(slot)
    def guarded(self, *args):
        if shiboken6.isValid(self):
            return slot(self, *args)
        return None

    return guarded


def _best_label(result: FinetuneResult) -> str:
    best = result.best
    if best is None:
        return "Fine-tuned: no epoch beat the off-the-shelf model (nothing saved)"
    if best.stage == "head":
        return "Fine-tuned (classifier warm-up)"
    return f"Fine-tuned (epoch {best.epoch}/{best.epochs})"


class CurvePlot(QWidget):
    """Training loss per step (left axis) and val mAP per epoch (right axis, 0..1); a dashed line
    ends the classifier's warm-up."""

    LOSS = QColor("#1f77b4")
    MAP = QColor("#d95f02")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[float] = []
        self.maps: list[tuple[float, float]] = []  # (x in steps, mAP)
        self.steps_per_epoch = 1
        self.warmup_steps = 0  # steps of the classifier's warm-up (0: none)
        self.setMinimumSize(360, 130)

    def clear(self) -> None:
        self.losses, self.maps, self.warmup_steps = [], [], 0
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
        n = max(len(self.losses), int(max((x for x, _ in self.maps), default=0)), 2)
        lo = min(self.losses, default=0.0)
        hi = max(self.losses, default=1.0)
        lo, hi = (0.0, hi * 1.05) if hi > lo else (lo - 0.5, hi + 0.5)

        def pt(x: float, y: float, y0: float, y1: float) -> QPointF:
            return QPointF(rect.left() + rect.width() * x / n,
                           rect.bottom() - rect.height() * (y - y0) / (y1 - y0))

        self._paint_warmup(p, rect, pt(self.warmup_steps, 0, 0, 1).x())
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
        self._paint_axes(p, rect, lo, hi)
        p.end()

    def _paint_warmup(self, p: QPainter, rect: QRectF, x: float) -> None:
        if not self.warmup_steps:
            return
        pen = QPen(self.palette().mid().color(), 1, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        p.setPen(QPen(self.palette().placeholderText().color()))
        p.drawText(QRectF(rect.left() + 4, rect.top() + 2, max(0.0, x - rect.left() - 6), 16),
                   Qt.AlignmentFlag.AlignLeft, "warm-up")

    def _paint_axes(self, p: QPainter, rect: QRectF, lo: float, hi: float) -> None:
        p.setPen(QPen(self.LOSS))
        p.drawText(QRectF(0, rect.top(), 38, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.2f}")
        p.drawText(QRectF(0, rect.bottom() - 14, 38, 16), Qt.AlignmentFlag.AlignRight, f"{lo:.2f}")
        p.setPen(QPen(self.MAP))
        p.drawText(QRectF(rect.right() + 4, rect.top(), 36, 16), 0, "1.0")
        p.drawText(QRectF(rect.right() + 4, rect.bottom() - 14, 36, 16), 0, "0.0")
        p.setPen(QPen(self.palette().text().color()))
        p.drawText(QRectF(rect.left(), rect.bottom() + 4, rect.width(), 16),
                   Qt.AlignmentFlag.AlignCenter, "loss (blue) and val mAP (orange) per step")


class FinetuneDialog(QDialog):
    """Fine-tune the CNN on a labelled folder; ``use_model(path)`` offers the checkpoint."""

    #: A typed folder is checked once the typing pauses this long (if it is an existing folder).
    FOLDER_CHECK_DELAY_MS = 500

    use_model = Signal(str)
    inspected = Signal(object)  # FolderReport
    estimated = Signal(str)  # the estimate's text, each time it is shown
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
        self._speed_worker: Worker | None = None
        self._speeds: dict[tuple, tuple[Speed, str] | None] = {}  # None: the measurement failed
        # measurements overlapped by a training run: their (slowed) result is neither kept nor shown
        self._stale_speed_workers: set[Worker] = set()
        self._run_config = self.base_config
        self._t0 = 0.0
        self._closed = False  # stop_workers ran: nothing new starts until the dialog shows again

        layout = QVBoxLayout(self)
        layout.addWidget(self._data_box())
        layout.addWidget(self._options_box())
        self._progress_widgets(layout)
        layout.addLayout(self._buttons())
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter in a field must never press a button
        self.resize(620, 780)

    # -- building --------------------------------------------------------------------------------

    def _data_box(self) -> QGroupBox:
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("A folder with one subfolder of photos per class "
                                       "(type a path and press Enter, or choose one)")
        self.folder.returnPressed.connect(self._folder_entered)
        self.folder.textEdited.connect(self._folder_edited)
        self._folder_timer = QTimer(self)
        self._folder_timer.setSingleShot(True)
        self._folder_timer.setInterval(self.FOLDER_CHECK_DELAY_MS)
        self._folder_timer.timeout.connect(self._folder_typed)
        self.browse_button = QPushButton("&Choose folder…")
        self.browse_button.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse_button)
        self.classes = QTableWidget(0, 3)
        self.classes.setHorizontalHeaderLabels(["Class", "Images", "Validation"])
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.classes.verticalHeader().setVisible(False)
        self.classes.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.classes.setMinimumHeight(96)
        self.data_status = QLabel("No folder chosen.")
        self.data_status.setWordWrap(True)
        self.bad_files = QPlainTextEdit()
        self.bad_files.setReadOnly(True)
        self.bad_files.setMaximumHeight(56)
        self.bad_files.setVisible(False)
        box = QGroupBox("Labelled photos")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(row)
        box_layout.addWidget(self.classes)
        box_layout.addWidget(self.data_status)
        box_layout.addWidget(self.bad_files)
        return box

    def _options_box(self) -> QGroupBox:
        cfg = self.base_config
        self.loss = QComboBox()
        for name in LOSSES:
            self.loss.addItem(_LOSS_LABELS.get(name, name), name)
        self.loss.setCurrentIndex(LOSSES.index(cfg.loss))
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100)
        self.epochs.setValue(max(1, cfg.epochs))
        self.warmup_hint = QLabel()
        self.size = QSpinBox()
        self.size.setRange(32, 1024)
        self.size.setSingleStep(32)
        self.size.setSuffix(" px")
        self.size.setValue(cfg.size)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(cfg.val_fraction)
        self.val_fraction.setToolTip("Share of each class held out to measure retrieval mAP "
                                     "(a folder with train/ and validation/ is used as given)")
        self.whiten = QCheckBox("Also learn a &whitening from the labels")
        self.whiten.setChecked(cfg.whiten)
        self.whiten.setToolTip("A supervised (Lw) whitening learned on the training photos after "
                               "fine-tuning; its validation mAP is shown beside the others and "
                               "it is used when the model indexes your library")
        self.estimate = QLabel()
        self.estimate.setVisible(False)
        box = QGroupBox("Training")
        form = QFormLayout(box)
        form.addRow("&Loss:", self.loss)
        epochs_label = QLabel("&Epochs:")
        epochs_label.setBuddy(self.epochs)
        epochs_row = QHBoxLayout()
        epochs_row.addWidget(self.epochs)
        epochs_row.addWidget(self.warmup_hint, 1)
        form.addRow(epochs_label, epochs_row)
        form.addRow("&Input size:", self.size)
        form.addRow("&Validation share:", self.val_fraction)
        form.addRow("", self.whiten)
        form.addRow(self.estimate)
        self.loss.currentIndexChanged.connect(self._loss_changed)
        for signal in (self.epochs.valueChanged, self.size.valueChanged,
                       self.val_fraction.valueChanged, self.whiten.toggled):
            signal.connect(self._settings_changed)
        self._update_warmup_hint()
        return box

    def _progress_widgets(self, layout: QVBoxLayout) -> None:
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
        self.results.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setVisible(False)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results)

    def _buttons(self) -> QHBoxLayout:
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
        return buttons

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        # QDialog presses its default button on Enter; this dialog has none on purpose (Enter
        # in the folder field checks the folder, elsewhere it does nothing). Esc still closes.
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)

    # -- data ------------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled photos (one subfolder per class)")
        if folder:
            self.set_folder(Path(folder))

    def _typed_folder(self) -> Path | None:
        text = self.folder.text().strip()
        return Path(text).expanduser() if text else None

    def _folder_entered(self) -> None:
        folder = self._typed_folder()
        if folder is not None:
            self.set_folder(folder)

    def _folder_edited(self, _text: str) -> None:
        """The typed path is not the checked one any more: nothing can be trained until it is
        checked (on Enter, or by itself once the typing pauses on an existing folder)."""
        self._forget_folder()
        folder = self._typed_folder()
        if folder is None:
            self.data_status.setText("No folder chosen.")
            return
        self.data_status.setText("Press Enter to check this folder.")
        self._folder_timer.start()  # restarts: the check waits until the typing pauses

    def _folder_typed(self) -> None:
        folder = self._typed_folder()
        if folder is not None and folder.is_dir() and self.report is None \
                and self._inspect_worker is None:
            self.set_folder(folder)

    def _forget_folder(self) -> None:
        """Drop the checked folder (and any check running): Start stays off until a new check."""
        self._folder_timer.stop()
        if self._inspect_worker is not None:
            self._inspect_worker.cancel()
            self._inspect_worker = None  # its report, if any, is ignored
        self.report = None
        self.start_button.setEnabled(False)
        self.classes.setRowCount(0)
        self.bad_files.setVisible(False)
        self._update_estimate()

    def set_folder(self, folder: Path) -> None:
        """Check ``folder`` in the background (classes, counts, unreadable files)."""
        if self._typed_folder() != folder:  # as typed: the text under the cursor stays as it is
            self.folder.setText(str(folder))
        self._forget_folder()
        if not folder.is_dir():
            why = "it is a file" if folder.exists() else "nothing is there"
            self.data_status.setText(f"<b>Not a folder:</b> {html.escape(str(folder))} ({why}). "
                                     "Type the path of a folder with one subfolder of photos "
                                     "per class, or choose one.")
            return
        self.data_status.setText("Checking the photos…")
        worker = Worker.with_cancel(inspect_folder, folder, workers=self.base_config.workers,
                                    name="finetune-check")
        worker.progress.connect(lambda event, w=worker: self._inspect_progress(event, w))
        worker.result.connect(lambda report, w=worker: self._inspected(report, w))
        worker.error.connect(lambda exc, w=worker: self._inspect_failed(exc, w))
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._inspect_worker = worker
        worker.start()

    @_unless_deleted
    def _inspect_progress(self, event: Progress, worker: Worker) -> None:
        if worker is self._inspect_worker:
            self.data_status.setText(f"Checking the photos… {event.done}/{event.total}")

    @_unless_deleted
    def _inspect_failed(self, exc: BaseException, worker: Worker) -> None:
        if worker is self._inspect_worker:
            self.data_status.setText(f"Cannot check: {html.escape(str(exc))}")

    @_unless_deleted
    def _inspected(self, report: FolderReport, worker: Worker) -> None:
        if worker is not self._inspect_worker:
            return  # an older check
        self.report = report
        self._show_counts(report)
        total = sum(a + b for a, b in report.counts.values())
        text = f"{len(report.counts)} classes, {total} usable photos"
        if report.given_split:
            text += " (train/validation folders used as given)"
        self.val_fraction.setEnabled(not report.given_split)
        if report.bad_files:
            text += f"; {len(report.bad_files)} unreadable file(s) will be left out"
            self.bad_files.setPlainText("\n".join(f"{b.path}: {b.reason}"
                                                  for b in report.bad_files))
            self.bad_files.setVisible(True)
        if report.error:
            text = f"<b>Cannot train:</b> {html.escape(report.error)}"
        self.data_status.setText(text)
        self.start_button.setEnabled(report.error is None and self._train_worker is None)
        self._retry_failed_measurements()
        self._update_estimate()
        self.inspected.emit(report)

    def _show_counts(self, report: FolderReport) -> None:
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

    # -- the estimate ----------------------------------------------------------------------------

    def _loss_changed(self) -> None:
        self._update_warmup_hint()
        self._settings_changed()

    def _settings_changed(self) -> None:
        self._retry_failed_measurements()
        self._update_estimate()

    def _retry_failed_measurements(self) -> None:
        """A failed measurement is not final (memory may be free now): measure again next time."""
        self._speeds = {k: v for k, v in self._speeds.items() if v is not None}

    def _update_warmup_hint(self) -> None:
        head = self.config().warmup_epochs  # the chosen loss's warm-up before the epochs set
        self.warmup_hint.setText(f"plus {_epochs_text(head)} of classifier warm-up first"
                                 if head else "")
        self.warmup_hint.setToolTip(
            f"The classification loss first trains its new classifier alone for "
            f"{_epochs_text(head)} (the network stays as it is), then the whole network for the "
            f"epochs set here." if head else "")
        self.warmup_hint.setVisible(bool(head))

    def _set_estimate(self, text: str) -> None:
        self.estimate.setText(text)
        self.estimate.setVisible(bool(text))

    def _update_estimate(self) -> None:
        """The expected training time of the current settings: the folder's counts, the plan and
        this computer's measured speed (measured in the background, once per network and size)."""
        if self.report is None or self.report.error:
            self._set_estimate("")
            return
        cfg = self.config()
        key = _speed_key(cfg)
        if key not in self._speeds:
            if self._train_worker is not None:
                self._set_estimate("")  # measured once the run ends (it would slow both)
                return
            self._set_estimate("Estimating the training time…")
            self._measure_speed(cfg)
            return
        measured = self._speeds[key]
        if measured is None:
            self._set_estimate("")  # the measurement failed (logged)
            return
        speed, device_type = measured
        n_train, n_val = split_sizes(self.report.counts, self.report.given_split, cfg)
        seconds = plan_for(n_train, n_val, cfg, device_type).seconds(speed)
        self._set_estimate(f"Estimated time: {_fmt_duration(seconds)} on this computer "
                           "(plus loading the photos)")
        self.estimated.emit(self.estimate.text())

    def _measure_speed(self, cfg: FinetuneConfig) -> None:
        if self._speed_worker is not None or self._train_worker is not None or self._closed:
            return  # one at a time, never beside a run; when either ends the estimate asks again
        key = _speed_key(cfg)
        worker = Worker(_measure, cfg, name="finetune-speed")
        worker.result.connect(lambda measured, k=key, w=worker: self._speed_measured(k, measured, w))
        worker.error.connect(lambda exc, k=key, w=worker: self._speed_failed(k, exc, w))
        worker.finished.connect(lambda w=worker: self._worker_done(w))
        self._speed_worker = worker
        worker.start()

    def _speed_measured(self, key: tuple, measured: tuple[Speed, str], worker: Worker) -> None:
        if worker in self._stale_speed_workers:
            log.info("fine-tuning speed for %s measured during a run: not kept", key)
            return
        log.info("fine-tuning speed for %s: %.1f train, %.1f embed images/s on %s",
                 key, measured[0].train, measured[0].embed, measured[1])
        self._speeds[key] = measured

    def _speed_failed(self, key: tuple, exc: BaseException, worker: Worker) -> None:
        if worker in self._stale_speed_workers:
            return
        log.warning("could not measure the fine-tuning speed for %s: %s", key, exc)
        self._speeds[key] = None  # not measured again until the settings or the folder change

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
        self._run_config = self.config()
        if self._speed_worker is not None:  # the run would slow it: its speed would be wrong
            self._speed_worker.cancel()
            self._stale_speed_workers.add(self._speed_worker)
            self._set_estimate("")
        worker = Worker.with_cancel(finetune, Path(self.report.root), self._run_config,
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
        for w in (self.folder, self.browse_button, self.loss, self.epochs, self.size,
                  self.val_fraction, self.whiten):
            w.setEnabled(not running)
        if not running and self.report is not None:
            self.val_fraction.setEnabled(not self.report.given_split)

    @_unless_deleted
    def _progress(self, event: Progress) -> None:
        stage = {"load": "Loading the photos", "embed": event.message or "Measuring val mAP",
                 "save": "Saving the model"}.get(event.stage, event.stage)
        if event.total and event.stage == "load":
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        else:
            self.progress.setRange(0, 0)
        self.status.setText(f"{stage}…")

    @_unless_deleted
    def _event(self, event: object) -> None:
        if isinstance(event, DataReady):
            s = event.summary
            self.status.setText(f"{s.n_train} training / {s.n_val} validation photos on "
                                f"{event.device}")
        elif isinstance(event, TrainStep):
            self._train_step(event)
        elif isinstance(event, EpochEnd):
            self.plot.add_map(event.run_epoch, event.val_map)
            self.status.setText(f"{self._epoch_text(event)}: val mAP {100 * event.val_map:.1f}"
                                f"{' (best so far)' if event.best else ''}")
        elif isinstance(event, FinetuneResult):
            self._finished(event)

    def _epoch_text(self, event: TrainStep | EpochEnd) -> str:
        """"Epoch 3/7 (whole network)", 7 as set; the warm-up is named as what runs before."""
        if event.stage == "head":
            return (f"Classifier warm-up {event.epoch}/{event.epochs} "
                    f"(before the {_epochs_text(self._run_config.epochs)})")
        return f"Epoch {event.epoch}/{event.epochs} (whole network)"

    def _train_step(self, event: TrainStep) -> None:
        self.plot.steps_per_epoch = event.steps
        self.plot.add_loss(event.loss)
        if event.stage == "head":
            self.plot.warmup_steps = event.run_step
        self.progress.setRange(0, max(1, event.run_steps))
        self.progress.setValue(event.run_step)
        self.status.setText(
            f"{self._epoch_text(event)}, step {event.step}/{event.steps}"
            f" — loss {event.loss:.3f}, lr {event.lr:.1e}, {event.images_per_s:.1f} images/s,"
            f" ETA {_fmt_eta(event.eta_s)}")

    def _finished(self, result: FinetuneResult) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if not result.cancelled else 0)
        if result.cancelled:
            self.status.setText("Cancelled: no model was saved.")
        else:
            self._show_results(result)
            self.status.setText(self._done_text(result))
            self.use_button.setEnabled(result.improved and result.checkpoint is not None)
        self.trainingFinished.emit(result)

    def _show_results(self, result: FinetuneResult) -> None:
        rows: list[tuple[str, float | None]] = [("Off-the-shelf", result.map_before)]
        rows.append((_best_label(result), result.map_after if result.improved else None))
        if result.map_whitened is not None:
            rows.append(("Fine-tuned + whitening", result.map_whitened))
        self.results.setRowCount(len(rows))
        for r, (name, value) in enumerate(rows):
            self.results.setItem(r, 0, QTableWidgetItem(name))
            item = QTableWidgetItem("—" if value is None else f"{100 * value:.1f}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.results.setItem(r, 1, item)
        # as tall as its rows: two or three, never a scroll bar
        self.results.setFixedHeight(self.results.horizontalHeader().sizeHint().height()
                                    + sum(self.results.rowHeight(r) for r in range(len(rows)))
                                    + 2 * self.results.frameWidth())
        self.results.setVisible(True)

    @staticmethod
    def _done_text(result: FinetuneResult) -> str:
        took = f"Done in {_fmt_eta(result.seconds)}"
        if result.stopped_early:
            took += " (stopped early: the val mAP stopped improving)"
        if not result.improved:
            return (f"{took}. No epoch beat the off-the-shelf model (val mAP "
                    f"{100 * result.map_before:.1f}), so nothing was saved: the library keeps "
                    "its model.")
        return f"{took}. Saved {html.escape(str(result.checkpoint))}"

    @_unless_deleted
    def _failed(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"<b>Training failed:</b> {html.escape(str(exc))}")

    def _worker_done(self, worker: Worker) -> None:
        worker.deleteLater()
        self._stale_speed_workers.discard(worker)
        if not shiboken6.isValid(self):
            return  # the dialog was deleted after stop_workers (a queued signal came late)
        if worker is self._train_worker:
            self._train_worker = None
            self._set_running(False)
            self._update_estimate()  # measures the speed now if the run overlapped it
        if worker is self._inspect_worker:
            self._inspect_worker = None
        if worker is self._speed_worker:
            self._speed_worker = None
            if self._train_worker is None:
                self._update_estimate()  # for the settings now (they may have changed meanwhile)

    def _use(self) -> None:
        if self.result is not None and self.result.improved and self.result.checkpoint:
            self.use_model.emit(self.result.checkpoint)

    # -- closing ---------------------------------------------------------------------------------

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._closed:  # shown again after closing: estimates may be measured again
            self._closed = False
            self._update_estimate()

    def stop_workers(self, timeout_ms: int = 30_000) -> None:
        self._closed = True
        for worker in (self._train_worker, self._inspect_worker, self._speed_worker):
            if worker is not None:
                worker.stop(timeout_ms)

    def done(self, code: int) -> None:  # covers accept, reject, Esc and the close button
        self.stop_workers()
        super().done(code)
