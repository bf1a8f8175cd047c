"""First run with the demo photos, and the crash dialog for unhandled exceptions."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from PySide6.QtCore import Qt

from imgsearch_gui import resources
from imgsearch_gui.app import demo
from imgsearch_gui.ui import messages


def test_demo_indexes_the_photos_then_searches_with_one(make_window, qtbot, tmp_path):
    window = make_window()
    assert window.pages.currentWidget() is window.empty
    assert "demo" in window.empty.demo_button.text()
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        qtbot.mouseClick(window.empty.demo_button, Qt.MouseButton.LeftButton)
    folder = tmp_path / "data" / demo.DEMO_FOLDER
    assert window.prefs.libraries == [str(folder.resolve())]
    hits = blocker.args[0]
    assert len(hits) == len(resources.demo_photos())
    assert hits[0].path == str(demo.example_query(folder))  # the query photo itself first
    assert window.pages.currentWidget() is window.splitter
    assert str(demo.example_query(folder)) in window.query_caption.text()


def test_adding_your_own_library_replaces_the_demo(make_window, qtbot, library_dir, tmp_path):
    window = make_window()
    with qtbot.waitSignal(window.searchFinished, timeout=60_000):
        window.start_demo()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    assert window.prefs.libraries == [str(library_dir.resolve())]
    roots = lambda: [lib.root for lib in window.library.stats().libraries]  # noqa: E731
    qtbot.waitUntil(lambda: roots() == [str(library_dir.resolve())], timeout=30_000)
    assert "Removed the demo photos" in " ".join(m.text for m in window.messages.history)


def test_demo_flag_of_the_app(qtbot, tmp_path, monkeypatch, photo_factory):
    """``imgsearch-gui --demo PHOTO``: the whole start-up path (logging, icon, window, demo, query)."""
    from PySide6.QtWidgets import QApplication

    from imgsearch_gui import __main__ as app_main
    from imgsearch_gui.ui.main_window import MainWindow

    photo = photo_factory("query.png", seed=1)
    (tmp_path / "notes.txt").write_text("not a photo")
    started, searched = [], []
    posted = []

    def start_demo(self):
        started.append(self)
        self.messages.posted.connect(lambda message: posted.append(message.text))

    monkeypatch.setattr(MainWindow, "start_demo", start_demo)
    monkeypatch.setattr(MainWindow, "search_paths",
                        lambda self, files: searched.append([os.path.basename(f) for f in files]))
    monkeypatch.setattr(QApplication, "exec", lambda self=None: 0)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))
    import faulthandler  # pytest's own fault handler stays in place

    faults = []
    monkeypatch.setattr(faulthandler, "enable", lambda file, all_threads: faults.append(file.name))
    code = app_main.main(["--demo", "--backbone", "tiny", "--size", "64", "--device", "cpu",
                          "--settings", str(tmp_path / "s.ini"), "--data-dir", str(tmp_path / "d"),
                          str(photo), str(tmp_path / "notes.txt")])
    assert code == 0 and len(started) == 1
    assert searched == [["query.png"]]  # photos on the command line (file manager's Open With)
    assert "Ignored what is not a photo: notes.txt." in posted
    import shiboken6

    assert not shiboken6.isValid(started[0])  # shut down and deleted before main() returned
    assert not QApplication.windowIcon().isNull()
    assert "imgsearch-gui" in (tmp_path / "logs" / "imgsearch-gui.log").read_text()
    assert faults == [str(tmp_path / "logs" / "imgsearch-gui-faults.log")]  # segfault traces


@pytest.fixture
def hooks(monkeypatch):
    """Install the app's hooks for one test; pytest-qt's own are put back afterwards."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    messages.install_excepthook()
    reporter = messages.crash_reporter()
    yield reporter
    if reporter.dialog is not None:
        reporter.dialog.close()


def raise_and_report(message: str) -> None:
    try:
        raise ValueError(message)
    except ValueError:
        sys.excepthook(*sys.exc_info())


def test_unhandled_exception_shows_a_copyable_report_with_the_log_path(hooks, qtbot, tmp_path,
                                                                        monkeypatch, caplog):
    from PySide6.QtGui import QGuiApplication

    from imgsearch_gui.base import logs

    monkeypatch.setattr(logs, "_current_file", tmp_path / "imgsearch-gui.log")
    raise_and_report("first problem")
    qtbot.waitUntil(lambda: hooks.dialog is not None and hooks.dialog.isVisible(), timeout=5_000)
    dialog = hooks.dialog
    report = dialog.text.toPlainText()
    assert "ValueError: first problem" in report and "Traceback" in report
    assert f"Log file: {tmp_path / 'imgsearch-gui.log'}" in report
    assert "unhandled exception" in caplog.text and "first problem" in caplog.text

    from PySide6.QtWidgets import QPushButton

    buttons = {b.text(): b for b in dialog.findChildren(QPushButton)}
    assert buttons["Open log folder"].isEnabled()
    buttons["Copy to clipboard"].click()
    assert "first problem" in QGuiApplication.clipboard().text()

    # a second error, from another thread, lands in the same dialog
    worker = threading.Thread(target=lambda: (_ for _ in ()).throw(KeyError("second problem")))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: "second problem" in dialog.text.toPlainText(), timeout=5_000)
    assert hooks.dialog is dialog and "2 unexpected errors" in dialog.windowTitle()


def test_thumbnail_cache_hits_count_as_use_and_the_cache_is_pruned(tmp_path, photo_factory):
    from imgsearch_gui.ui.results import ThumbnailCache

    photos = [photo_factory(f"p{i}.png", seed=i, size=(200, 150)) for i in range(6)]
    cache = ThumbnailCache(tmp_path / "thumbs", size=64)
    for photo in photos:
        assert cache.load(str(photo)) is not None
    files = sorted((tmp_path / "thumbs").rglob("*.jpg"))
    assert len(files) == 6
    for f in files:
        os.utime(f, (1_000_000, 1_000_000))
    cache.load(str(photos[0]))  # a hit: now the most recently used
    used = cache.file_for(cache.key(str(photos[0])))
    assert used.stat().st_mtime > 1_000_000
    cache.max_bytes = sum(f.stat().st_size for f in files) // 2
    report = cache.prune()
    assert report.removed >= 3 and used.exists()


def test_unreadable_catalog_offers_a_fresh_index(make_window, library_dir, qtbot, tmp_path,
                                                  prefs):
    window = make_window()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    window.shutdown()
    data = tmp_path / "data"
    (data / "catalog.sqlite3").write_bytes(b"not a database" * 100)
    for wal in data.glob("catalog.sqlite3-*"):
        wal.unlink()

    asked = []
    again = make_window(wait_model=False)
    again.confirm = lambda title, text: asked.append((title, text)) or True
    with qtbot.waitSignal(again.indexingFinished, timeout=60_000) as blocker:
        pass
    assert asked and asked[0][0] == "The index is damaged" and "not affected" in asked[0][1]
    assert blocker.args[0].embedded == 24  # every library indexed again
    (aside,) = data.glob("damaged-*")
    assert (aside / "catalog.sqlite3").exists()
    assert "moved to" in " ".join(m.text for m in again.messages.history)


def test_declining_the_fresh_index_keeps_the_damaged_files(make_window, qtbot, tmp_path):
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "catalog.sqlite3").write_bytes(b"not a database" * 100)
    window = make_window(wait_model=False)
    window.confirm = lambda title, text: False
    qtbot.waitUntil(lambda: window.messages.last is not None
                    and "damaged" in window.messages.last.text, timeout=60_000)
    assert (data / "catalog.sqlite3").exists() and not list(data.glob("damaged-*"))
    assert window.library is None


def test_an_exception_in_a_slot_reaches_the_crash_dialog(hooks, qtbot):
    """PySide6 hands exceptions raised in slots to sys.excepthook: the app keeps running."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: 1 / 0)
    qtbot.waitUntil(lambda: hooks.dialog is not None
                    and "ZeroDivisionError" in hooks.dialog.text.toPlainText(), timeout=5_000)
