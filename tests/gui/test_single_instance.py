"""One window per data dir: a second start hands its photos over (local socket) and exits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest
from photos import make_photo
from PySide6.QtCore import QByteArray, QThread
from PySide6.QtNetwork import QLocalSocket

from imgsearch_gui.ui.single_instance import (
    HandOver,
    InstanceServer,
    Start,
    server_name,
    try_hand_over,
)

#: generous: 2 busy cores, a Python start with PySide6 and the model in another test's worker
SLOW_MS = 60_000


class _Client(QThread):
    """Runs a blocking client off the GUI thread, so the server in this process can answer.
    (A QThread, not a Python thread: Qt's sockets need a thread Qt knows.)"""

    def __init__(self, work) -> None:
        super().__init__()
        self.work, self.result = work, None

    def run(self) -> None:
        self.result = self.work()


def run_client(qtbot, work):
    client = _Client(work)
    with qtbot.waitSignal(client.finished, timeout=SLOW_MS):
        client.start()
    client.wait()
    return client.result


def send_raw(name: str, data: bytes) -> bytes:
    """What a foreign or broken client would do: send ``data`` and read whatever comes back."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    assert socket.waitForConnected(5_000)
    socket.write(QByteArray(data))
    socket.waitForBytesWritten(5_000)
    reply = b""
    if socket.waitForReadyRead(3_000):
        reply = bytes(socket.readAll().data())
    socket.abort()
    return reply


@pytest.fixture
def server(tmp_path):
    servers = []

    def start(data_dir):
        instance = InstanceServer(data_dir)
        servers.append(instance)
        return instance, instance.start()

    yield start
    for instance in servers:
        instance.close()


def test_server_names_are_short_and_one_per_data_dir(tmp_path):
    (tmp_path / "a").mkdir()
    name = server_name(tmp_path / "a")
    assert name == server_name(tmp_path / "b" / ".." / "a")  # every spelling of the folder
    assert name != server_name(tmp_path / "b")
    assert len(name) <= 30 and name.isascii()


def test_messages_round_trip_and_anything_else_is_refused():
    request = HandOver(photos=("/p/a.jpg", "/p/ö b.png"), demo=True, raise_window=False)
    assert HandOver.from_bytes(request.to_bytes().rstrip(b"\n")) == request
    for bad in (b"not json", b"\xff\xfe", b"[1, 2]", b'{"protocol": 99, "photos": []}',
                b'{"protocol": 1, "photos": "a.jpg"}', b'{"protocol": 1, "photos": [1]}',
                b'{"protocol": 1, "demo": "yes"}'):
        with pytest.raises(ValueError):
            HandOver.from_bytes(bad)


def test_a_hand_over_reaches_the_window_of_its_data_dir_only(server, qtbot, tmp_path):
    first, started = server(tmp_path / "one")
    other, other_started = server(tmp_path / "two")
    assert started is Start.LISTENING and other_started is Start.LISTENING
    got, other_got = [], []
    first.received.connect(got.append)
    other.received.connect(other_got.append)
    request = HandOver(photos=(str(tmp_path / "photo.png"),))
    assert run_client(qtbot, lambda: try_hand_over(tmp_path / "one", request))
    qtbot.waitUntil(lambda: got == [request], timeout=5_000)
    assert other_got == []


def test_nobody_listening_is_said_at_once(tmp_path):
    begun = time.monotonic()
    assert not try_hand_over(tmp_path / "nobody", HandOver())
    assert time.monotonic() - begun < 5


def test_a_second_server_of_the_same_data_dir_is_told_it_is_taken(server, tmp_path):
    first, started = server(tmp_path / "d")
    assert started is Start.LISTENING
    assert server(tmp_path / "d")[1] is Start.TAKEN
    first.close()  # the first window quit: the next start is the window
    assert server(tmp_path / "d")[1] is Start.LISTENING


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes leave no file behind")
def test_a_crashed_window_leaves_files_that_do_not_block_the_next(server, qtbot, tmp_path):
    data = tmp_path / "d"
    crash = ("import os, signal; from PySide6.QtCore import QCoreApplication; "
             "app = QCoreApplication([]); "
             "from imgsearch_gui.ui.single_instance import InstanceServer, Start; "
             f"s = InstanceServer({str(data)!r}); assert s.start() is Start.LISTENING; "
             "os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", crash], timeout=SLOW_MS / 1000, check=False)
    from PySide6.QtCore import QDir

    socket_file = os.path.join(QDir.tempPath(), server_name(data))
    assert os.path.exists(socket_file) and os.path.exists(socket_file + ".lock")  # left behind
    assert not try_hand_over(data, HandOver())  # nobody answers
    instance, started = server(data)
    assert started is Start.LISTENING
    got = []
    instance.received.connect(got.append)
    assert run_client(qtbot, lambda: try_hand_over(data, HandOver(demo=True)))
    qtbot.waitUntil(lambda: got == [HandOver(demo=True)], timeout=5_000)


def test_garbage_and_half_messages_are_logged_and_ignored(server, qtbot, tmp_path, caplog):
    instance, started = server(tmp_path / "d")
    assert started is Start.LISTENING
    got = []
    instance.received.connect(got.append)
    caplog.set_level(logging.WARNING, logger="imgsearch_gui.ui.single_instance")
    assert run_client(qtbot, lambda: send_raw(instance.name, b"GET / HTTP/1.0\r\n\r\n")) == b""
    qtbot.waitUntil(lambda: "not a JSON message" in caplog.text, timeout=5_000)
    run_client(qtbot, lambda: send_raw(instance.name, b'{"protocol": 1, "photos": ["/a'))
    qtbot.waitUntil(lambda: "closed mid-message" in caplog.text, timeout=5_000)
    assert got == []
    # and the window still takes a proper one
    assert run_client(qtbot, lambda: try_hand_over(tmp_path / "d", HandOver()))
    qtbot.waitUntil(lambda: got == [HandOver()], timeout=5_000)


def test_a_second_start_hands_its_photo_to_the_first_window_and_exits(qtbot, tmp_path,
                                                                     monkeypatch):
    """The real start-up path (``imgsearch-gui``) in this process, then a second
    ``python -m imgsearch_gui PHOTO`` as a file manager's "Open with" would start it."""
    from PySide6.QtWidgets import QApplication

    from imgsearch_gui import __main__ as app_main
    from imgsearch_gui.ui.main_window import MainWindow

    library = tmp_path / "photos"
    photos = [make_photo(library / f"p{i}.png", seed=i) for i in range(4)]
    monkeypatch.setenv("IMGSEARCH_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    import threading

    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    flags = ["--backbone", "tiny", "--size", "64", "--device", "cpu",
             "--settings", str(tmp_path / "s.ini"), "--data-dir", str(tmp_path / "d")]
    seen = {}

    def event_loop(self=None) -> int:
        (window,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        window.confirm = lambda title, text: True
        with qtbot.waitSignal(window.indexingFinished, timeout=SLOW_MS):
            pass  # the model loads, then the folder given is indexed
        window.showMinimized()
        begun = time.monotonic()
        second = subprocess.Popen(
            [sys.executable, "-m", "imgsearch_gui", *flags, os.path.relpath(photos[2])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with qtbot.waitSignal(window.searchFinished, timeout=SLOW_MS) as blocker:
            qtbot.waitUntil(lambda: second.poll() is not None, timeout=SLOW_MS)
        seen["seconds"] = time.monotonic() - begun
        seen["rc"], seen["out"] = second.returncode, second.communicate()
        seen["hits"] = blocker.args[0]
        seen["minimized"] = window.isMinimized()
        return 0

    monkeypatch.setattr(QApplication, "exec", event_loop)
    assert app_main.main([*flags, str(library)]) == 0  # the folder becomes the library
    assert seen["rc"] == 0, seen["out"]
    assert seen["seconds"] < 30, seen  # about 1-2 s: no window, no model (loose: busy CPUs)
    assert seen["out"] == (b"", b"")  # nothing noisy on the console
    assert seen["hits"][0].path == str(photos[2])  # searched with the photo handed over
    assert not seen["minimized"]  # brought up
    log_text = (tmp_path / "logs" / "imgsearch-gui.log").read_text()
    assert "handed 1 path(s) to the window already open" in log_text
    assert "handed over from a second start: 1 path(s)" in log_text
    # the first window is gone: a later start is the data dir's window again
    assert not try_hand_over(tmp_path / "d", HandOver())


def test_the_loser_of_two_starts_at_once_hands_over_to_the_winner(tmp_path):
    """Both found no window; the other took the lock first but listens only a moment later."""
    import argparse

    from imgsearch_gui.ui import app

    data = tmp_path / "d"
    winner = ("import sys, time; from PySide6.QtCore import QCoreApplication, QDir, QLockFile; "
              "app = QCoreApplication([]); "
              "from imgsearch_gui.ui.single_instance import InstanceServer, Start, server_name; "
              f"data = {str(data)!r}; "
              "lock = QLockFile(QDir.tempPath() + '/' + server_name(data) + '.lock'); "
              "assert lock.tryLock(0); print('locked', flush=True); time.sleep(1.5); "
              "lock.unlock(); s = InstanceServer(data); assert s.start() is Start.LISTENING; "
              "s.received.connect(lambda r: (print(r.photos, flush=True), app.quit())); "
              "app.exec(); s.close()")
    other = subprocess.Popen([sys.executable, "-c", winner], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        args = argparse.Namespace(photos=["a.png"], demo=False)
        assert app._single_window(data, args) == (True, None)
        assert other.stdout.readline().strip() == repr((os.path.abspath("a.png"),))
        assert other.wait(timeout=SLOW_MS / 1000) == 0
    finally:
        other.kill()
