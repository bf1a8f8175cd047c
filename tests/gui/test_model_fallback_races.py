"""A model that fails to load while the user goes on (found by review, issue 17 item 5): the
failure of a model a later choice replaced is not the later choice's; a library added during
the first load is still indexed after the fallback; a query made while the model loads is
answered by the model that is back."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from imgsearch_gui.base.errors import DeviceUnavailableError
from imgsearch_gui.ui.model_service import open_library


def cuda_fails(started: threading.Event | None = None, after_s: float = 0.0):
    def factory(data_dir, model):
        if model.device == "cuda":
            if started is not None:
                started.set()
            time.sleep(after_s)
            raise DeviceUnavailableError("no CUDA here")
        return open_library(data_dir, model)

    return factory


def search_services(window) -> int:
    return sum(1 for w in window.workers._workers
               if w.isRunning() and getattr(w, "name", "") == "search-service")


def test_a_late_failure_of_a_replaced_model_keeps_the_users_last_choice(
        make_window, qtbot, tiny_model):
    started = threading.Event()
    window = make_window(library_factory=cuda_fails(started, after_s=1.0))
    failures = []
    window.modelFailed.connect(failures.append)
    cuda, bigger = replace(tiny_model, device="cuda"), replace(tiny_model, size=72)
    window.apply_model(cuda)
    qtbot.waitUntil(started.is_set, timeout=20_000)
    with qtbot.waitSignal(window.modelReady, timeout=30_000):
        window.apply_model(bigger)  # the user changed their mind while CUDA loads
    qtbot.wait(1500)  # CUDA's failure arrives late
    assert window.model == bigger and failures == []
    assert search_services(window) == 1


def test_a_library_added_during_the_first_load_is_indexed_after_the_fallback(
        make_window, qtbot, tiny_model, library_dir):
    window = make_window(wait_model=False, model=replace(tiny_model, device="cuda"),
                         library_factory=cuda_fails())
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000) as blocker:
        window.add_library(library_dir)  # as `imgsearch-gui FOLDER` or --demo do at start
    assert blocker.args[0].embedded == 24


def test_a_query_made_while_a_failing_model_loads_is_answered_by_the_one_back(
        make_window, qtbot, tiny_model, library_dir):
    started = threading.Event()
    window = make_window(library_factory=cuda_fails(started, after_s=1.0))
    with qtbot.waitSignal(window.indexingFinished, timeout=60_000):
        window.add_library(library_dir)
    window.apply_model(replace(tiny_model, device="cuda"))
    qtbot.waitUntil(started.is_set, timeout=20_000)
    query = library_dir / "sub0" / "photo_00.png"
    with qtbot.waitSignal(window.searchFinished, timeout=30_000) as blocker:
        window.search_paths([query])
    assert blocker.args[0][0].path == str(query.resolve())
