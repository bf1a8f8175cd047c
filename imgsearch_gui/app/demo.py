"""The first-run demo: a few dozen CC0 photos of clothes, copied where the app may index them.

The bundled photos sit inside the package, which may be read-only (system site-packages, a
PyInstaller bundle); :func:`prepare` copies them into the data dir, so that the demo library is an
ordinary library the user can remove like any other. No Qt here: the CLI and tests use it too.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from imgsearch_gui import resources

log = logging.getLogger(__name__)

DEMO_FOLDER = "demo-photos"
#: The photo the demo searches with first: its three siblings should come back on top.
EXAMPLE_QUERY = "shoes-1.jpg"


def demo_folder(data_dir: str | Path) -> Path:
    return Path(data_dir) / DEMO_FOLDER


def is_demo_library(root: str | Path, data_dir: str | Path) -> bool:
    return Path(root).resolve() == demo_folder(data_dir).resolve()


def prepare(data_dir: str | Path) -> Path:
    """Copy the demo photos to ``data_dir/demo-photos`` (missing files only) and return that folder.

    Files already there are left alone, so re-running the demo re-uses the index instead of
    re-embedding anything, and a photo the user deleted from the demo comes back.
    """
    target = demo_folder(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    sources = [*resources.demo_photos(), resources.demo_dir() / "README.txt",
               resources.demo_dir() / "LICENSE.txt"]
    for src in sources:
        dst = target / src.name
        if not dst.exists():
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)  # never a half-copied photo in the library
            copied += 1
    log.info("demo photos in %s (%d copied)", target, copied)
    return target


def example_query(folder: str | Path) -> Path:
    return Path(folder) / EXAMPLE_QUERY
