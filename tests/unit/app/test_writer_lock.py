"""One writer per data dir: real processes (the CLI) writing at once, a reader searching meanwhile,
the GUI's long-lived library beside a CLI run, --no-wait, a holder killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.app.writer_lock import WriterLock
from imgsearch_gui.base.errors import WriterBusyError
from imgsearch_gui.base.types import IndexReport, Progress
from imgsearch_gui.cli import dispatch as cli

REPO = Path(__file__).resolve().parents[3]
TINY = ["--backbone", "tiny", "--size", "64"]
CLI = [sys.executable, "-m", "imgsearch_gui.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "IMGSEARCH_LOG_DIR": str(tmp_path / "logs")}


def _photos(write_image, folder: Path, first: int, n: int) -> list[Path]:
    return [write_image(folder / f"{i:04d}.png", i) for i in range(first, first + n)]


def _all_found(lib: ImageLibrary, embedder, photos: list[Path]) -> None:
    """Every photo is in the catalog with a saved vector, and finds itself first."""
    files = {f.path: f for f in lib.catalog.all_files()}
    assert {str(p) for p in photos} <= set(files)
    assert all(files[str(p)].status == "indexed" for p in photos)
    assert set(lib.store.labels().tolist()) == lib.catalog.vector_ids()
    vectors = np.stack([embedder.embed_path(p) for p in photos])
    for photo, hits in zip(photos, lib.search_vectors(vectors, k=1), strict=True):
        assert hits[0].path == str(photo) and hits[0].score > 0.999


def test_a_second_writer_waits_and_says_for_whom(tmp_path, write_image, embedder):
    _photos(write_image, tmp_path / "p", 0, 3)
    holder = WriterLock(tmp_path / "data")
    assert holder.try_acquire("indexing job")
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        timer = threading.Timer(0.5, holder.release)
        timer.start()
        t0 = time.monotonic()
        events = list(lib.index_library(tmp_path / "p"))
        timer.join()
    assert time.monotonic() - t0 >= 0.45
    waits = [e for e in events if isinstance(e, Progress) and e.stage == "wait"]
    assert len(waits) == 1  # said once, not at every poll
    assert f"indexing job of pid {os.getpid()}" in waits[0].message
    assert isinstance(events[-1], IndexReport) and events[-1].embedded == 3


def test_no_wait_fails_with_status_3_naming_the_pid(tmp_path, write_image, embedder, capsys):
    _photos(write_image, tmp_path / "p", 0, 2)
    data = tmp_path / "data"
    holder = WriterLock(data)
    assert holder.try_acquire("indexing job")
    try:
        code = cli.main(["index", str(tmp_path / "p"), "--data-dir", str(data), *TINY,
                         "--no-wait"])
        _, err = capsys.readouterr()
        assert code == 3
        assert len(err.strip().splitlines()) == 1 and f"pid {os.getpid()}" in err
        with ImageLibrary(data, embedder, wait=False) as lib:
            with pytest.raises(WriterBusyError) as info:
                list(lib.index_library(tmp_path / "p"))
            assert info.value.pid == os.getpid() and info.value.what == "indexing job"
            with pytest.raises(WriterBusyError):
                lib.remove_library(tmp_path / "p")
    finally:
        holder.release()
    assert cli.main(["index", str(tmp_path / "p"), "--data-dir", str(data), *TINY,
                     "--no-wait"]) == 0


_HOLD = ("import sys, time\n"
         "from imgsearch_gui.app.writer_lock import WriterLock\n"
         "assert WriterLock(sys.argv[1]).try_acquire('indexing job')\n"
         "print('HELD', flush=True)\n"
         "time.sleep(60)\n")


def test_a_holder_killed_with_sigkill_does_not_block(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(data)], stdout=subprocess.PIPE,
                            env=_env(tmp_path), cwd=str(REPO))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"HELD"
        lock = WriterLock(data)
        assert not lock.try_acquire("indexing job")
        assert lock.holder().pid == proc.pid and lock.holder().what == "indexing job"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert lock.holder().pid is None  # its record names a dead process: not shown
        assert lock.try_acquire("indexing job")  # the kernel dropped the lock with the process
        assert lock.holder().pid == os.getpid()
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _Reader(threading.Thread):
    """Searches the data dir in a loop, as a second process would: one library kept open (like
    the GUI) and a fresh one each round (like `imgsearch search`)."""

    def __init__(self, data: Path, embedder, queries: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.data, self.embedder, self.queries = data, embedder, queries
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.rounds = 0

    def run(self) -> None:
        try:
            kept = ImageLibrary(self.data, self.embedder)
            while not self.stop.is_set():
                kept.search_vectors(self.queries, k=3)
                with ImageLibrary(self.data, self.embedder) as fresh:
                    fresh.search_vectors(self.queries, k=3)
                    fresh.stats()
                self.rounds += 1
            kept.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)


def test_two_cli_writers_and_a_reader_lose_nothing(tmp_path, write_image, embedder):
    a = _photos(write_image, tmp_path / "a", 0, 40)
    b = _photos(write_image, tmp_path / "b", 1000, 40)
    data = tmp_path / "data"
    seed = _photos(write_image, tmp_path / "seed", 5000, 2)
    with ImageLibrary(data, embedder) as lib:  # something to search from the start
        list(lib.index_library(tmp_path / "seed"))
    # the test holds the lock until both writers wait for it: they surely run at once
    gate = WriterLock(data)
    assert gate.try_acquire("indexing job")
    reader = _Reader(data, embedder, np.stack([embedder.embed_path(p) for p in seed]))
    reader.start()
    procs = [subprocess.Popen([*CLI, "index", str(folder), "--data-dir", str(data), *TINY,
                               "--dba", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env(tmp_path), cwd=str(REPO))
             for folder in (tmp_path / "a", tmp_path / "b")]
    try:
        deadline = time.monotonic() + 120
        waiting = []
        for p in procs:  # each says once that it waits (for the gate), on stderr
            assert p.stderr is not None
            line = p.stderr.readline()
            assert time.monotonic() < deadline
            waiting.append(line)
        assert all(f"pid {os.getpid()}" in line for line in waiting), waiting
    finally:
        gate.release()
    outputs = [p.communicate(timeout=300) for p in procs]
    reader.stop.set()
    reader.join(timeout=60)
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "were not saved" not in err and "does not know" not in err
        assert "40 embedded" in out
    assert not reader.errors, reader.errors
    assert reader.rounds > 0
    with ImageLibrary(data, embedder) as lib:
        _all_found(lib, embedder, a + b + seed)
        assert len(lib.store) == 82


def test_the_guis_open_library_and_a_cli_run(tmp_path, write_image, embedder, caplog):
    a = _photos(write_image, tmp_path / "a", 0, 10)
    b = _photos(write_image, tmp_path / "b", 100, 10)
    c = _photos(write_image, tmp_path / "c", 200, 10)
    data = tmp_path / "data"
    gui = ImageLibrary(data, embedder)  # kept open, like the window's
    list(gui.index_library(tmp_path / "a"))
    proc = subprocess.run([*CLI, "index", str(tmp_path / "b"), "--data-dir", str(data), *TINY],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=str(REPO),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "were not saved" not in proc.stderr
    # the open library's next search sees the CLI's photos
    hit = gui.search(b[3], k=1)[0]
    assert hit.path == str(b[3]) and hit.score > 0.999
    embedder.reset()
    list(gui.index_library(tmp_path / "c"))  # ids handed out after the CLI's
    assert embedder.embedded() == {str(p) for p in c}
    _all_found(gui, embedder, a + b + c)
    gui.close()
    caplog.clear()
    with ImageLibrary(data, embedder) as lib:
        _all_found(lib, embedder, a + b + c)
        embedder.reset()
        for folder in ("a", "b", "c"):
            list(lib.index_library(tmp_path / folder))
        assert embedder.calls == {}
    assert "were not saved" not in caplog.text and "does not know" not in caplog.text


def test_whiten_no_wait_holds_for_its_re_embedding_too(tmp_path, write_image, capsys):
    """Learning a whitening on a whitened index first re-embeds it with a second library:
    --no-wait applies there too (exit 3 instead of waiting forever)."""
    _photos(write_image, tmp_path / "p", 0, 4)
    data = tmp_path / "data"
    assert cli.main(["index", str(tmp_path / "p"), "--data-dir", str(data), *TINY]) == 0
    assert cli.main(["whiten", "--dim", "8", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    holder = WriterLock(data)
    assert holder.try_acquire("indexing job")
    try:
        assert cli.main(["whiten", "--data-dir", str(data), "--no-wait"]) == 3
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    finally:
        holder.release()
