"""Persistent GUI preferences (QSettings) and the model choice made in the settings dialog.

Names and defaults of backbones, poolings, devices and runtimes come from ``base/registry.py``, the one
source the CLI reads too. Nothing here imports torch: the embedder is only built (lazily) in the
worker that loads the model, so the window appears at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

from imgsearch_gui.base import registry
from imgsearch_gui.base.config import EmbedderConfig

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow, QSplitter

log = logging.getLogger(__name__)

ORGANIZATION = "imgsearch"
APPLICATION = "imgsearch-gui"

DEFAULT_COUNT = 50
MAX_COUNT = 200  # results fetched per query; the count/min-score controls filter these


@dataclass(frozen=True)
class ModelChoice:
    """What the settings dialog controls. Changing the network (backbone, pooling, size, weights)
    means re-indexing; the device and the runtime only change speed (:meth:`same_descriptors`)."""

    backbone: str = registry.DEFAULT_BACKBONE
    pooling: str = registry.DEFAULT_POOLING
    size: int = registry.DEFAULT_SIZE
    device: str = registry.DEFAULT_DEVICE
    runtime: str = registry.DEFAULT_RUNTIME  # what runs the network (base/registry.RUNTIMES)
    weights: str | None = None  # a fine-tuned checkpoint (imgsearch finetune / the dialog)

    @classmethod
    def of_checkpoint(cls, path: str, device: str,
                      runtime: str = registry.DEFAULT_RUNTIME) -> ModelChoice:
        """The choice a fine-tuned checkpoint makes: the backbone, pooling and input size it was
        trained with, on ``device`` in ``runtime`` (imports torch). Raises ``CheckpointError``
        for a file that is not one."""
        from imgsearch_gui.ml.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        return cls(ckpt.backbone, ckpt.pooling, ckpt.size, device, runtime, weights=path)

    @classmethod
    def of_config(cls, config: EmbedderConfig) -> ModelChoice:
        """The part of an ``EmbedderConfig`` the dialog shows. Raises ``ValueError`` or
        ``TypeError`` for a size that is not a number."""
        return cls(backbone=str(config.backbone), pooling=str(config.pooling),
                   size=int(config.size), device=str(config.device),
                   runtime=str(config.runtime),
                   weights=str(config.weights) if config.weights else None)

    def to_config(self, data_dir: str | Path | None = None):
        """The ``EmbedderConfig`` (a checkpoint's weights import torch: call from a worker).

        Settings the dialog does not show (weights file, layer, multi-scale) are kept from the
        configuration ``data_dir`` was indexed with, as long as the backbone stays the same.
        """
        from dataclasses import replace

        from imgsearch_gui.app.config import apply_overrides, load_config

        base = EmbedderConfig()
        if data_dir is not None:
            saved = load_config(Path(data_dir))
            if saved.backbone == self.backbone:
                base = saved
        # apply_overrides drops a learned whitening when the descriptors change
        if self.weights is None and base.weights is not None:
            base = replace(base, weights=None, whitening=None)  # back to the bundled weights
        return apply_overrides(
            replace(base, device=self.device, runtime=self.runtime), backbone=self.backbone,
            pooling=self.pooling, size=self.size, weights=self.weights,
        )

    def same_descriptors(self, other: ModelChoice) -> bool:
        """True if the index built with ``other`` stays valid (only the device or the runtime
        differs: they change speed, not the descriptors)."""
        mine = (self.backbone, self.pooling, self.size, self.weights)
        return mine == (other.backbone, other.pooling, other.size, other.weights)

    def describe(self) -> str:
        tuned = f" fine-tuned ({Path(self.weights).stem})" if self.weights else ""
        return (f"{self.backbone}{tuned}, {self.pooling}, {self.size}px, device {self.device}, "
                f"runtime {self.runtime}")


class Prefs:
    """Typed access to QSettings. Tests pass ``QSettings(path, QSettings.Format.IniFormat)``."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qsettings = settings if settings is not None else default_settings()

    # --- libraries ------------------------------------------------------------------------
    @property
    def libraries(self) -> list[str]:
        value = self.qsettings.value("libraries/roots", [])
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value if v]

    @libraries.setter
    def libraries(self, roots: list[str]) -> None:
        unique = list(dict.fromkeys(str(Path(r)) for r in roots))
        self.qsettings.setValue("libraries/roots", unique)

    # --- model ----------------------------------------------------------------------------
    @property
    def model(self) -> ModelChoice:
        s = self.qsettings
        default = ModelChoice()
        try:
            size = int(s.value("model/size", default.size))
        except (TypeError, ValueError):
            size = default.size
        backbone = str(s.value("model/backbone", default.backbone))
        pooling = str(s.value("model/pooling", default.pooling))
        device = str(s.value("model/device", default.device))
        runtime = str(s.value("model/runtime", default.runtime))
        weights = str(s.value("model/weights", "") or "") or None
        # hidden (test-only) backbones stay valid here; only the settings dialog hides them
        return ModelChoice(
            backbone=backbone if backbone in registry.backbone_names(include_hidden=True)
            else default.backbone,
            pooling=pooling if pooling in registry.pooling_names() else default.pooling,
            size=size if registry.MIN_SIZE <= size <= registry.MAX_SIZE else default.size,
            device=device if device in registry.device_names() else default.device,
            runtime=runtime if runtime in registry.runtime_names() else default.runtime,
            weights=weights if weights and Path(weights).is_file() else None,
        )

    @model.setter
    def model(self, choice: ModelChoice) -> None:
        s = self.qsettings
        s.setValue("model/backbone", choice.backbone)
        s.setValue("model/pooling", choice.pooling)
        s.setValue("model/size", int(choice.size))
        s.setValue("model/device", choice.device)
        s.setValue("model/runtime", choice.runtime)
        s.setValue("model/weights", choice.weights or "")

    @property
    def watch_folders(self) -> bool:
        """Keep the index in step with the library folders while the window is open."""
        value = self.qsettings.value("libraries/watch", True)
        return value not in (False, "false", "0", 0)

    @watch_folders.setter
    def watch_folders(self, on: bool) -> None:
        self.qsettings.setValue("libraries/watch", bool(on))

    # --- file dialogs ---------------------------------------------------------------------
    @property
    def last_open_dir(self) -> str:
        """Where File ▸ Open photo… starts: the folder of the photo opened last (while it
        exists), else the Pictures folder."""
        return _existing_dir(self.qsettings.value("dialogs/last_open_dir", ""))

    @last_open_dir.setter
    def last_open_dir(self, folder: str) -> None:
        self.qsettings.setValue("dialogs/last_open_dir", str(folder))

    @property
    def last_library_dir(self) -> str:
        """Where Add library… starts: the folder that holds the library added last (a sibling
        is the likely next one), else the Pictures folder."""
        return _existing_dir(self.qsettings.value("dialogs/last_library_dir", ""))

    @last_library_dir.setter
    def last_library_dir(self, folder: str) -> None:
        self.qsettings.setValue("dialogs/last_library_dir", str(folder))

    # --- search controls ------------------------------------------------------------------
    @property
    def result_count(self) -> int:
        try:
            return max(1, min(MAX_COUNT, int(self.qsettings.value("search/count", DEFAULT_COUNT))))
        except (TypeError, ValueError):
            return DEFAULT_COUNT

    @result_count.setter
    def result_count(self, value: int) -> None:
        self.qsettings.setValue("search/count", int(value))

    @property
    def min_score(self) -> float:
        try:
            return max(-1.0, min(1.0, float(self.qsettings.value("search/min_score", 0.0))))
        except (TypeError, ValueError):
            return 0.0

    @min_score.setter
    def min_score(self, value: float) -> None:
        self.qsettings.setValue("search/min_score", float(value))

    # --- window ---------------------------------------------------------------------------
    def restore_window(self, window: QMainWindow, splitter: QSplitter,
                       default_size: tuple[int, int]) -> None:
        """Put back the saved geometry (``default_size`` if there is none, or it does not fit
        this screen), toolbars and splitter."""
        geometry = self.bytes_value("window/geometry")
        if geometry is None or not window.restoreGeometry(geometry):
            window.resize(*default_size)
        state = self.bytes_value("window/state")
        if state is not None:
            window.restoreState(state)
        sizes = self.bytes_value("window/splitter")
        if sizes is not None:
            splitter.restoreState(sizes)

    def save_window(self, window: QMainWindow, splitter: QSplitter) -> None:
        self.set_value("window/geometry", window.saveGeometry())
        self.set_value("window/state", window.saveState())
        self.set_value("window/splitter", splitter.saveState())

    def bytes_value(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_value(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)

    def sync(self) -> None:
        self.qsettings.sync()


def model_from_data_dir(data_dir: str | Path) -> ModelChoice | None:
    """The model a data dir was indexed with (its ``embedder.json``, read by app/config.py,
    which imports no torch). None when there is none, it cannot be read, or its values do not
    make a choice (a size that is not a number): the window then keeps its saved settings."""
    from imgsearch_gui.app.config import CONFIG_FILE, read_config

    config = read_config(Path(data_dir))
    if config is None:
        return None
    try:
        return ModelChoice.of_config(config)
    except (TypeError, ValueError) as exc:
        log.warning("ignoring the model in %s: %s", Path(data_dir) / CONFIG_FILE, exc)
        return None


def _existing_dir(saved) -> str:
    """``saved`` if it is a folder that exists; else the user's Pictures folder (its local
    name: XDG's, Windows', macOS'), or home without one."""
    if saved and isinstance(saved, str) and Path(saved).is_dir():
        return saved
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return pictures if pictures and Path(pictures).is_dir() else str(Path.home())


def default_settings() -> QSettings:
    """The user's settings (native format; organisation/app names as set by main())."""
    return QSettings(QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)
