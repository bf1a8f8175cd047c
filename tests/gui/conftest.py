"""GUI tests: offscreen Qt, isolated QSettings/data/cache dirs, fail on unexpected Qt warnings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from photos import make_photo  # noqa: E402

# Qt messages that are expected on the offscreen platform (no real window system).
QT_LOG_IGNORE = [
    r"This plugin does not support propagateSizeHints\(\)",
    r"This plugin does not support raise\(\)",
    r"This plugin does not support grabbing the keyboard",
    r"QFont::setPointSizeF",
]


def pytest_collection_modifyitems(config, items):
    gui_dir = Path(__file__).parent
    for item in items:
        if gui_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Never touch the user's data, cache or settings."""
    from PySide6.QtCore import QSettings

    monkeypatch.setenv("IMGSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("IMGSEARCH_CACHE_DIR", str(tmp_path / "xdg-cache" / "imgsearch"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings" / "imgsearch-gui.ini"


@pytest.fixture
def prefs(settings_file):
    from PySide6.QtCore import QSettings

    from imgsearch_gui.ui.prefs import Prefs

    return Prefs(QSettings(str(settings_file), QSettings.Format.IniFormat))


@pytest.fixture
def library_dir(tmp_path):
    """A folder of 24 small distinct photos (+ one broken file and one non-image)."""
    root = tmp_path / "photos"
    for i in range(24):
        make_photo(root / f"sub{i % 3}" / f"photo_{i:02d}.png", seed=i, size=(96, 72))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture
def tiny_model():
    from imgsearch_gui.ui.prefs import ModelChoice

    return ModelChoice(backbone="tiny", pooling="gem", size=64, device="cpu")


@pytest.fixture
def recorded_indexing():
    """(library_factory, calls): libraries opened as the app does whose ``index_library`` calls
    are recorded as (model, root as str, rebuild), for tests of what gets (re-)indexed."""
    from imgsearch_gui.ui.model_service import open_library

    calls: list[tuple] = []

    def factory(data_dir, model):
        lib = open_library(data_dir, model)
        original = lib.index_library

        def index_library(root, *, rebuild=False, cancel=None):
            calls.append((model, str(root), rebuild))
            return original(root, rebuild=rebuild, cancel=cancel)

        lib.index_library = index_library
        return lib

    return factory, calls


@pytest.fixture
def make_window(qtbot, prefs, tmp_path, tiny_model):
    """Build a MainWindow (tiny model, isolated dirs); shut down cleanly afterwards."""
    from imgsearch_gui.ui.main_window import MainWindow

    windows = []

    def make(*, wait_model: bool = True, model=None, **kwargs):
        kwargs.setdefault("data_dir", tmp_path / "data")
        kwargs.setdefault("thumbnail_dir", tmp_path / "thumbs")
        # the folder watcher's jobs come when files change: only tests of watching want them
        kwargs.setdefault("watch", False)
        window = MainWindow(prefs, model=model or tiny_model, **kwargs)
        window.confirm = lambda title, text: True
        qtbot.addWidget(window)
        windows.append(window)
        if wait_model:
            if window.library is None:
                with qtbot.waitSignal(window.modelReady, timeout=60_000):
                    pass
        return window

    yield make
    for window in windows:
        window.shutdown()



@pytest.fixture
def recorded_opener(tmp_path, monkeypatch):
    """The desktop as app.desktop finds it: an xdg-open on PATH that notes what it is given, no
    file manager on D-Bus. Returns ``opened()``: the paths handed to it so far, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    (bin_dir / "xdg-open").write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\n')
    (bin_dir / "xdg-open").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(bin_dir))

    def opened() -> list[str]:
        return calls.read_text().splitlines() if calls.exists() else []

    return opened
