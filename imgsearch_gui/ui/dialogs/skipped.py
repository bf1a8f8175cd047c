"""The files indexing could not use, with the reason for each; the list can be copied, and
"Retry" indexes the libraries again trying them (changed or not)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.base.types import SkippedFile

log = logging.getLogger(__name__)


class SkippedDialog(QDialog):
    """The files indexing could not use, with the reason; copyable; Retry tries them again."""

    retryRequested = Signal()

    def __init__(self, skipped: Sequence[SkippedFile], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Skipped files ({len(skipped)})")
        self.resize(760, 420)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Reason"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        for s in skipped:
            QTreeWidgetItem(self.tree, [s.path, s.reason]).setToolTip(0, s.path)
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, min(self.tree.columnWidth(0), 480))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy list", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(
                "\n".join(f"{s.path}\t{s.reason}" for s in skipped)
            )
        )
        self.retry_button = buttons.addButton("Retry", QDialogButtonBox.ButtonRole.ActionRole)
        self.retry_button.setToolTip("Index the libraries again and try these files again")
        self.retry_button.clicked.connect(self._retry)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("These files were not indexed. Fix or remove them, then re-index (F5).")
        )
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

    def _retry(self) -> None:
        self.retryRequested.emit()
        self.accept()
