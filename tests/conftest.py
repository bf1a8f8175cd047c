"""Shared fixtures: small generated photos and real bundled ones from scikit-image."""

from __future__ import annotations

from pathlib import Path

import pytest
from photos import make_photo
from PIL import Image
from trash_home import redirect_trash


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_dirs(tmp_path_factory):
    """Log files (CLI, GUI main), exported models (OpenVINO) and thumbnails go here, not in the
    user's folders."""
    import os

    wanted = {"IMGSEARCH_LOG_DIR": "logs", "IMGSEARCH_CACHE_DIR": "cache"}
    old = {var: os.environ.get(var) for var in wanted}
    for var, name in wanted.items():
        os.environ[var] = str(tmp_path_factory.mktemp(name))
    yield
    for var, value in old.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@pytest.fixture(autouse=True)
def _restore_logging():
    """``cli.main`` and the GUI's ``main`` install process-wide log handlers (a one-shot process
    wants them); tests run many mains in one process, so each test gets the root logger back as
    it was. Left installed, they write to a closed capture stream of an earlier test ("Logging
    error" tracebacks) and slow every thread that logs."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.fixture
def photo_factory(tmp_path):
    def factory(name: str, seed: int, size: tuple[int, int] = (96, 72)) -> Path:
        return make_photo(tmp_path / name, seed, size)

    return factory


@pytest.fixture(scope="session")
def real_photos() -> dict[str, Image.Image]:
    """scikit-image's bundled photos (no download)."""
    from skimage import data

    folder = Path(data.data_dir)
    names = ["chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
             "hubble_deep_field.jpg", "retina.jpg", "brick.png"]
    return {n.split(".")[0]: Image.open(folder / n).convert("RGB") for n in names}


@pytest.fixture
def home_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The home trash, inside tmp_path, that send2trash and app/trash both use."""
    return redirect_trash(tmp_path, monkeypatch)
