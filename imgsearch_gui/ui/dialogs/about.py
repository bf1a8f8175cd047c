"""About dialog."""

from __future__ import annotations

import logging
import platform

from PySide6.QtWidgets import QMessageBox, QWidget

from imgsearch_gui import __version__

log = logging.getLogger(__name__)


def about_text(model: str = "") -> str:
    from PySide6 import __version__ as pyside_version

    model_line = f"<p>Model: {model}</p>" if model else ""
    return (
        f"<h3>imgsearch {__version__}</h3>"
        "<p>Find photos by their content: CNN descriptors (MAC, GeM, R-MAC, CroW…) of your "
        "photo folders in an HNSW index. Drop, paste or open a photo to find similar ones.</p>"
        f"{model_line}"
        f"<p>Python {platform.python_version()}, PySide6 {pyside_version}. MIT licence.</p>"
    )


def show_about(parent: QWidget | None, model: str = "") -> None:
    QMessageBox.about(parent, "About imgsearch", about_text(model))
