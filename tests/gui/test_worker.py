"""The one worker class: callables, generators, errors, cooperative cancel."""

from __future__ import annotations

import threading
import time

import pytest

from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ui.worker import Worker


def _collect(worker: Worker) -> dict[str, list]:
    got: dict[str, list] = {"progress": [], "result": [], "error": [], "started": []}
    worker.progress.connect(got["progress"].append)
    worker.result.connect(got["result"].append)
    worker.error.connect(got["error"].append)
    worker.started.connect(lambda: got["started"].append(True))
    return got


def test_callable_result_comes_from_another_thread(qtbot):
    gui_thread = threading.get_ident()
    worker = Worker(lambda a, b=0: (a + b, threading.get_ident(), threading.current_thread().name),
                    2, b=3, name="adder")
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert got["started"] == [True]
    (value, thread_id, thread_name), = got["result"]
    assert value == 5 and thread_id != gui_thread
    assert thread_name == "worker:adder"  # the name log lines carry
    assert got["error"] == [] and not worker.failed


def test_generator_progress_then_result(qtbot):
    def job(n, cancel: CancelToken):
        for i in range(n):
            yield Progress("embed", i + 1, n)
        yield "report"

    worker = Worker.with_cancel(job, 5, progress_interval=0)
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert [p.done for p in got["progress"]] == [1, 2, 3, 4, 5]
    assert got["result"] == ["report"]


def test_progress_bursts_are_coalesced_but_the_last_one_arrives(qtbot):
    def job(cancel: CancelToken):
        yield Progress("scan", 0, 0)
        for i in range(2000):
            yield Progress("embed", i + 1, 2000)
        yield Progress("save", 0, 1)
        yield Progress("save", 1, 1)
        yield "report"

    worker = Worker.with_cancel(job, progress_interval=10.0)
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    stages = [(p.stage, p.done) for p in got["progress"]]
    assert stages == [("scan", 0), ("embed", 1), ("embed", 2000), ("save", 0), ("save", 1)]
    assert got["result"] == ["report"]


def test_exception_becomes_error_signal(qtbot):
    def boom():
        raise ValueError("bad input")

    worker = Worker(boom)
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    (exc,) = got["error"]
    assert isinstance(exc, ValueError) and "bad input" in str(exc)
    assert worker.failed and got["result"] == []


def test_cancel_is_cooperative_and_final_report_still_arrives(qtbot):
    def job(cancel: CancelToken):
        i = 0
        while not cancel.cancelled:
            i += 1
            yield Progress("embed", i, 0)
            time.sleep(0.005)
        yield ("cancelled after", i)

    worker = Worker.with_cancel(job)
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
        qtbot.waitUntil(lambda: len(got["progress"]) >= 3, timeout=5000)
        worker.cancel()
    assert got["result"] and got["result"][0][0] == "cancelled after"


def test_cancel_stops_a_generator_that_cannot_see_the_token(qtbot):
    def endless():
        while True:
            yield Progress("embed", 1, 0)
            time.sleep(0.002)

    worker = Worker(endless)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
        time.sleep(0.02)
        assert worker.stop(5000)


@pytest.mark.parametrize("value", [None, 0, [1, 2]])
def test_plain_values_are_results(qtbot, value):
    worker = Worker(lambda: value)
    got = _collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert got["result"] == [value]
