"""Issue 12 in the window: nothing is closed under a running job (closing the window, switching
the model), offline libraries are marked and an emptied one is pruned only after a question,
and the Skipped files dialog retries them."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from imgsearch_gui.base.types import IndexReport, Progress
from imgsearch_gui.ui.model_service import open_library
from imgsearch_gui.ui.prefs import ModelChoice
from imgsearch_gui.ui.worker import Worker, WorkerGroup


class SlowLibrary:
    """A library whose indexing job takes ``seconds`` and checks cancel only at the end (a long
    phase, like a graph build); it records whether ``close`` came while the job ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.embedder = None
        self.running = threading.Event()
        self.closed_while_running: list[bool] = []
        self.jobs = 0

    def index_library(self, root, *, rebuild=False, cancel=None, **options):
        self.running.set()
        self.jobs += 1
        try:
            end = time.monotonic() + self.seconds
            while time.monotonic() < end:
                time.sleep(0.02)
                yield Progress("embed", 0, 1, None)
            yield IndexReport(str(root), 0, 0, 0, 0, 0, (), self.seconds, 0.0,
                              cancelled=bool(cancel and cancel.cancelled))
        finally:
            self.running.clear()

    def libraries(self):
        return []

    def close(self) -> None:
        self.closed_while_running.append(self.running.is_set())


@pytest.fixture
def short_timeouts(monkeypatch):
    """The old code gave up waiting after 30 s (a model switch) or 60 s (closing) and closed the
    library anyway; a job that runs longer is simulated with timeouts of 0.3 s."""
    monkeypatch.setattr(Worker.stop, "__defaults__", (300,))
    monkeypatch.setattr(WorkerGroup.stop_all, "__defaults__", (300,))


def test_closing_the_window_waits_for_the_job_before_closing_the_library(
        make_window, tmp_path, qtbot, short_timeouts):
    libs: list[SlowLibrary] = []

    def factory(data_dir, model):
        libs.append(SlowLibrary(1.5))
        return libs[-1]

    window = make_window(library_factory=factory)
    window.show()
    (tmp_path / "photos").mkdir()
    window.add_library(tmp_path / "photos")
    qtbot.waitUntil(libs[0].running.is_set, timeout=10_000)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    window.close()
    timer.stop()
    assert not window.isVisible()
    assert libs[0].closed_while_running == [False]  # closed once, after the job ended
    assert len(ticks) > 10  # the event loop ran while it waited


def test_a_model_switch_closes_the_old_library_only_after_its_job(make_window, tmp_path, qtbot,
                                                                  tiny_model, short_timeouts):
    libs: list[SlowLibrary] = []

    def factory(data_dir, model):
        libs.append(SlowLibrary(1.5))
        return libs[-1]

    window = make_window(library_factory=factory)
    (tmp_path / "photos").mkdir()
    window.add_library(tmp_path / "photos")
    qtbot.waitUntil(libs[0].running.is_set, timeout=10_000)
    other = ModelChoice(backbone="tiny", pooling="mac", size=64, device="cpu")
    started = time.monotonic()
    window.apply_model(other, ask=False)
    assert time.monotonic() - started < 1.0  # the window did not block on the job
    assert libs[0].closed_while_running == []  # not yet: its job still runs
    with qtbot.waitSignal(window.modelReady, timeout=20_000):
        pass
    assert libs[0].closed_while_running == [False] and len(libs) == 2
    # the rebuild the switch asked for runs on the new library
    qtbot.waitUntil(lambda: libs[1].jobs == 1, timeout=10_000)
    qtbot.waitUntil(lambda: not window.indexing, timeout=10_000)


def test_an_offline_library_is_marked_and_an_emptied_one_pruned_after_asking(
        make_window, library_dir, tmp_path, qtbot):
    window = make_window()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    root = window.prefs.libraries[0]
    away = tmp_path / "unplugged"
    library_dir.rename(away)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.reindex_all()
    report = blocker.args[0]
    assert report.offline and report.removed == 0 and report.indexed == 24
    assert "offline" in window.messages.last.text
    labels = [a.text() for a in window.remove_menu.actions()]
    assert labels == [f"{root} — offline (not connected?)"]
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as found:
        window.search_paths([str(away / "sub0" / "photo_00.png")])
    assert found.args[0] and all(h.offline for h in found.args[0])

    library_dir.mkdir()  # an empty mount point: the window asks before removing anything
    asked: list[str] = []
    window.confirm = lambda title, text: asked.append(title) or False
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.reindex_all()
    assert blocker.args[0].offline and asked == ["Remove the photos of an empty folder?"]
    assert window.library.catalog.file_count() == 25
    window.confirm = lambda title, text: asked.append(title) or True
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.reindex_all()
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as pruned:
        pass  # the prune job the answer queued
    assert pruned.args[0].removed == 25 and window.library.catalog.file_count() == 0
    assert window.skipped == {}


def test_the_skipped_files_dialog_retries_them(make_window, library_dir, qtbot):
    calls: list[dict] = []

    def factory(data_dir, model):
        lib = open_library(data_dir, model)
        real = lib.index_library

        def index_library(root, **kw):
            calls.append(kw)
            return real(root, **kw)

        lib.index_library = index_library
        return lib

    window = make_window(library_factory=factory)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    assert len(window.skipped) == 1

    def click_retry() -> None:
        dialog = QApplication.activeModalWidget()
        assert dialog is not None and dialog.retry_button.text() == "Retry"
        dialog.retry_button.click()

    QTimer.singleShot(100, click_retry)
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.show_skipped()
    assert calls[-1].get("retry_skipped") is True
    assert len(blocker.args[0].skipped) == 1 and len(window.skipped) == 1  # still broken
