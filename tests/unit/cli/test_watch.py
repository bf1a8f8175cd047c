"""``imgsearch watch`` as a real process: follows changes, lets others search, stops on signals."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from photos import make_photo

from imgsearch_gui.cli import dispatch as cli

TINY = ["--backbone", "tiny", "--size", "64"]
BASE = [sys.executable, "-m", "imgsearch_gui.cli"]


class Watch:
    """``imgsearch watch --json`` in a child process, its stdout lines parsed as they come."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen([*BASE, "watch", "--json", "--debounce", "0.2", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, key: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if key in line:
                return line

    def stop(self, sig: int) -> tuple[int, float, str]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=20)
        return code, time.monotonic() - started, self.proc.stderr.read()


@pytest.fixture
def photos(tmp_path):
    for i in range(3):
        make_photo(tmp_path / "photos" / f"p{i}.jpg", i)
    return tmp_path / "photos"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_watch_follows_changes_serves_searches_and_stops_cleanly(tmp_path, photos, sig):
    data = tmp_path / "data"
    w = Watch(str(photos), "--data-dir", str(data), *TINY)
    try:
        first = w.next("embedded")
        assert first["embedded"] == 3 and first["indexed"] == 3
        assert w.next("watching")["watching"] == [{"path": str(photos.resolve()), "mode": "events"}]
        new = make_photo(photos / "sub" / "new.png", 7)
        assert w.next("embedded")["indexed"] == 4
        found = subprocess.run([*BASE, "search", str(new), "--json", "--data-dir", str(data)],
                               capture_output=True, text=True, timeout=60)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["path"] == str(new.resolve())
    finally:
        code, took, err = w.stop(sig)
    assert code == 0 and took < 5.0, err
    assert "stopped" in err
    done = subprocess.run([*BASE, "index", str(photos), "--json", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["unchanged"] == 4  # the index was left whole and current


def test_watch_without_folders_watches_the_data_dirs_libraries(tmp_path, photos, capsys):
    data = tmp_path / "data"
    assert cli.main(["index", str(photos), "--data-dir", str(data), *TINY, "--quiet"]) == 0
    w = Watch("--data-dir", str(data))
    try:
        assert w.next("watching")["watching"][0]["path"] == str(photos.resolve())
    finally:
        assert w.stop(signal.SIGTERM)[0] == 0


def test_nothing_to_watch_or_a_missing_folder_is_a_user_error(tmp_path, capsys):
    data = tmp_path / "data"
    assert cli.main(["watch", "--data-dir", str(data), *TINY]) == 2
    assert "nothing to watch" in capsys.readouterr().err
    assert cli.main(["watch", str(tmp_path / "nope"), "--data-dir", str(data), *TINY]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_watch_help_names_polling_signals_and_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["watch", "--help"])
    out = capsys.readouterr().out
    for text in ("--poll", "--debounce", "SIGTERM", "offline", "exit status"):
        assert text in out
