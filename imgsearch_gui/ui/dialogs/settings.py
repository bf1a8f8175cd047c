"""Settings dialog: backbone, pooling, input size and device (a change means re-indexing)."""

from __future__ import annotations

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

from imgsearch_gui.ui.prefs import BACKBONES, DEVICES, POOLINGS, ModelChoice

_BACKBONE_NOTES = {
    "efficientnet_lite0": "bundled weights, fast (default)",
    "efficientnet_lite2": "bundled weights, more accurate, slower",
    "resnet50": "torchvision weights (needs a weights file offline)",
    "resnet101": "torchvision weights (needs a weights file offline)",
    "vgg16": "torchvision weights (needs a weights file offline)",
    "tiny": "random weights, for tests only",
}
_POOLING_NOTES = {
    "gem": "GeM, generalised mean (default)",
    "mac": "MAC, max of each channel",
    "sum": "sum pooling",
    "spoc": "SPoC, centre-weighted sum",
    "rmac": "R-MAC, regional max",
    "crow": "CroW, cross-dimensional weighting",
}


class SettingsDialog(QDialog):
    """Edits a :class:`ModelChoice`. ``needs_reindex()`` tells whether the index must be rebuilt."""

    def __init__(self, current: ModelChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.current = current

        self.backbone = QComboBox()
        for name in BACKBONES:
            self.backbone.addItem(f"{name} — {_BACKBONE_NOTES.get(name, '')}", name)
        self.pooling = QComboBox()
        for name in POOLINGS:
            self.pooling.addItem(_POOLING_NOTES.get(name, name), name)
        self.size = QSpinBox()
        self.size.setRange(32, 2048)
        self.size.setSingleStep(32)
        self.size.setSuffix(" px")
        self.size.setToolTip("Longest side of the image fed to the network")
        self.device = QComboBox()
        for name, label in zip(DEVICES, ("Automatic (CUDA if available)", "CPU", "CUDA GPU"),
                               strict=True):
            self.device.addItem(label, name)

        form = QFormLayout()
        form.addRow("&Backbone:", self.backbone)
        form.addRow("&Pooling:", self.pooling)
        form.addRow("&Input size:", self.size)
        form.addRow("&Device:", self.device)

        self.note = QLabel(
            "Backbone, pooling and input size decide what a descriptor means: changing any of "
            "them re-indexes every library (this can take a while). The device only changes "
            "speed."
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
        for combo in (self.backbone, self.pooling, self.device):
            combo.currentIndexChanged.connect(self._update_warning)
        self.size.valueChanged.connect(self._update_warning)
        self._update_warning()

    def set_choice(self, choice: ModelChoice) -> None:
        for combo, value in (
            (self.backbone, choice.backbone),
            (self.pooling, choice.pooling),
            (self.device, choice.device),
        ):
            i = combo.findData(value)
            combo.setCurrentIndex(max(0, i))
        self.size.setValue(int(choice.size))

    def choice(self) -> ModelChoice:
        backbone = str(self.backbone.currentData())
        return ModelChoice(
            backbone=backbone,
            pooling=str(self.pooling.currentData()),
            size=int(self.size.value()),
            device=str(self.device.currentData()),
            # a fine-tuned network stays while its backbone is kept
            weights=self.current.weights if backbone == self.current.backbone else None,
        )

    def needs_reindex(self) -> bool:
        return not self.choice().same_descriptors(self.current)

    def _update_warning(self) -> None:
        self.warning.setText(
            "Applying this re-indexes all libraries." if self.needs_reindex() else ""
        )
        self.warning.setVisible(self.needs_reindex())
