"""Files shipped with the app: icons, desktop integration files and the first-run demo photos.

They live inside the package so that a wheel, an editable install and a PyInstaller bundle all
find them the same way (``importlib.resources``); nothing here imports Qt.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

APP_ID = "org.imgsearch.ImgSearch"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def root() -> Path:
    """The resources folder on disk (packages are never zipped: setuptools and PyInstaller unpack them)."""
    return Path(str(resources.files(__name__)))


def icon_svg() -> Path:
    return root() / "icons" / "imgsearch.svg"


def icon_png(size: int) -> Path:
    return root() / "icons" / f"imgsearch-{size}.png"


def desktop_file() -> Path:
    return root() / f"{APP_ID}.desktop"


def metainfo_file() -> Path:
    return root() / f"{APP_ID}.metainfo.xml"


def demo_dir() -> Path:
    """The bundled demo photos (read-only: :func:`imgsearch_gui.app.demo.prepare` copies them out)."""
    return root() / "demo"


def demo_photos() -> list[Path]:
    return sorted(p for p in demo_dir().iterdir() if p.suffix.lower() == ".jpg")
