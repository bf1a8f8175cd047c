"""Settings dialog: backbone, pooling and input size (a change means re-indexing), device and
runtime (they only change speed).

The names, labels and defaults are the registry's (``base/registry.py``). Test-only backbones
("tiny") are not offered, unless the current choice or a chosen checkpoint already uses one: the
dialog must show what is in use rather than silently switch it. A device or runtime that cannot run
here (no CUDA GPU, OpenVINO not installed) is shown greyed out, saying why; the device check is the
model service's, made once in its worker (:func:`~imgsearch_gui.ui.model_service.unavailable_devices`).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.base import registry
from imgsearch_gui.base.errors import CheckpointError
from imgsearch_gui.ml.checkpoint import list_checkpoints, load_checkpoint
from imgsearch_gui.ui.format import runtime_label
from imgsearch_gui.ui.model_service import unavailable_devices as find_unavailable_devices
from imgsearch_gui.ui.prefs import ModelChoice

log = logging.getLogger(__name__)

#: why a runtime cannot be chosen here; "auto" then uses PyTorch (ml/runtime.py)
OPENVINO_MISSING = ("The openvino package is not installed (pip install openvino). Automatic "
                    "uses PyTorch instead.")


def unavailable_runtimes() -> dict[str, str]:
    """Runtimes that cannot run here, with the reason. Only looks for the package: importing
    OpenVINO is ``ml``'s business (and takes a while)."""
    return {} if importlib.util.find_spec("openvino") is not None else {"openvino": OPENVINO_MISSING}


class SettingsDialog(QDialog):
    """Edits a :class:`ModelChoice`. ``needs_reindex()`` tells whether the index must be rebuilt."""

    def __init__(self, current: ModelChoice, parent: QWidget | None = None,
                 models_dir: Path | None = None,
                 unavailable_devices: dict[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.current = current

        # ImageNet weights, or a network fine-tuned with Tools > Fine-tune / `imgsearch finetune`
        self.network = QComboBox()
        self.network.addItem("ImageNet weights (no fine-tuning)", "")
        checkpoints = [str(p) for p in list_checkpoints(models_dir)] if models_dir else []
        if current.weights and current.weights not in checkpoints:
            checkpoints.insert(0, current.weights)
        for path in checkpoints:
            self.network.addItem(f"Fine-tuned: {Path(path).stem}", path)

        self.backbone = QComboBox()
        for name in registry.backbone_names():
            self.backbone.addItem(registry.label(name), name)
        self.pooling = QComboBox()
        for name in registry.pooling_names():
            self.pooling.addItem(registry.label(name), name)
        self.size = QSpinBox()
        self.size.setRange(registry.MIN_SIZE, registry.MAX_SIZE)
        self.size.setSingleStep(32)
        self.size.setSuffix(" px")
        self.size.setToolTip("Longest side of the image fed to the network")
        self.device = QComboBox()
        self._add_devices(find_unavailable_devices() if unavailable_devices is None
                          else unavailable_devices)
        self.runtime = QComboBox()
        self.runtime.setToolTip("What runs the network: same results, different speed")
        self._add_runtimes(unavailable_runtimes())

        form = QFormLayout()
        form.addRow("&Network:", self.network)
        form.addRow("&Backbone:", self.backbone)
        form.addRow("&Pooling:", self.pooling)
        form.addRow("&Input size:", self.size)
        form.addRow("&Device:", self.device)
        form.addRow("&Runtime:", self.runtime)

        self.note = QLabel(
            "Backbone, pooling and input size decide what a descriptor means: changing any of "
            "them re-indexes every library (this can take a while). The device and the runtime "
            "only change speed: the index stays as it is."
        )
        self.note.setWordWrap(True)
        self.note.setObjectName("settingsNote")
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #8a1c1c; font-weight: bold;")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)

        self.set_choice(current)
        for combo in (self.backbone, self.pooling, self.device, self.runtime):
            combo.currentIndexChanged.connect(self._update_warning)
        self.network.currentIndexChanged.connect(self._network_changed)
        self.size.valueChanged.connect(self._update_warning)
        self._update_warning()

    def set_choice(self, choice: ModelChoice) -> None:
        known = choice.backbone in registry.backbone_names(include_hidden=True)
        if known and self.backbone.findData(choice.backbone) < 0:  # a test-only one, in use
            self.backbone.addItem(registry.label(choice.backbone), choice.backbone)
        for combo, value in (
            (self.backbone, choice.backbone),
            (self.pooling, choice.pooling),
            (self.device, choice.device),
            (self.runtime, choice.runtime),
            (self.network, choice.weights or ""),
        ):
            i = combo.findData(value)
            combo.setCurrentIndex(max(0, i))
        self.size.setValue(int(choice.size))

    def _add_devices(self, unavailable: dict[str, str]) -> None:
        """One entry per device; one missing here is greyed out, its reason in the tooltips."""
        for name in registry.device_names():
            reason = unavailable.get(name)
            self.device.addItem(registry.label(name) + (" (not available here)" if reason else ""),
                                name)
            if reason:
                i = self.device.count() - 1
                self.device.model().item(i).setEnabled(False)
                self.device.setItemData(i, reason, Qt.ItemDataRole.ToolTipRole)
        self.device.setToolTip("\n".join(unavailable.values()) or
                               "Where the network runs: same results, different speed")

    def _add_runtimes(self, unavailable: dict[str, str]) -> None:
        """One entry per runtime; one that cannot run here is shown disabled, saying why."""
        for name in registry.runtime_names():
            self.runtime.addItem(runtime_label(name), name)
            reason = unavailable.get(name)
            if reason:
                i = self.runtime.count() - 1
                self.runtime.model().item(i).setEnabled(False)
                self.runtime.setItemData(i, reason, Qt.ItemDataRole.ToolTipRole)

    def _network_changed(self) -> None:
        """A fine-tuned network brings the backbone, pooling and size it was trained with."""
        path = str(self.network.currentData() or "")
        if path:
            try:
                choice = ModelChoice.of_checkpoint(path, str(self.device.currentData()),
                                                   str(self.runtime.currentData()))
            except CheckpointError as exc:
                self.warning.setText(str(exc))
                return
            self.set_choice(choice)
        self._update_warning()

    def choice(self) -> ModelChoice:
        backbone = str(self.backbone.currentData())
        weights = str(self.network.currentData() or "") or None
        return ModelChoice(
            backbone=backbone,
            pooling=str(self.pooling.currentData()),
            size=int(self.size.value()),
            device=str(self.device.currentData()),
            runtime=str(self.runtime.currentData()),
            # a fine-tuned network only fits the backbone it was trained from
            weights=weights if weights and backbone == self._checkpoint_backbone(weights) else None,
        )

    def _checkpoint_backbone(self, path: str) -> str | None:
        if path == self.current.weights:
            return self.current.backbone
        try:
            return load_checkpoint(path).backbone
        except CheckpointError:
            return None

    def needs_reindex(self) -> bool:
        return not self.choice().same_descriptors(self.current)

    def _update_warning(self) -> None:
        self.warning.setText(
            "Applying this re-indexes all libraries." if self.needs_reindex() else ""
        )
        self.warning.setVisible(self.needs_reindex())
