"""Render the app icon (resources/icons/imgsearch.svg) to the PNG sizes we ship.

Run after editing the SVG: ``QT_QPA_PLATFORM=offscreen python packaging/make_icons.py``.
The outputs are committed (a few KB each) so that neither pip nor PyInstaller needs Qt's SVG
renderer at build time (PyInstaller turns the 512 px PNG into .ico/.icns itself, with Pillow).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from imgsearch_gui.resources import ICON_SIZES as SIZES  # what the app and desktop-entry use

ICONS = Path(__file__).resolve().parent.parent / "imgsearch_gui" / "resources" / "icons"


def render(renderer: QSvgRenderer, size: int) -> Image.Image:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buffer = io.BytesIO()
    from PySide6.QtCore import QBuffer, QIODevice

    qbuffer = QBuffer()
    qbuffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(qbuffer, "PNG")
    buffer.write(bytes(qbuffer.data()))
    buffer.seek(0)
    return Image.open(buffer).convert("RGBA")


def main() -> int:
    QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(ICONS / "imgsearch.svg"))
    if not renderer.isValid():
        raise SystemExit("imgsearch.svg does not parse")
    images = {size: render(renderer, size) for size in SIZES}
    for size, image in images.items():
        image.save(ICONS / f"imgsearch-{size}.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
