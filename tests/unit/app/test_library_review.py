"""Review findings of issue 12 on the library facade: a failed write leaves no open catalog
transaction, a cancelled job's photos are searchable with DBA, a reload never shows searches a
half state, settings are recorded under the writer lock, a locked catalog is busy (not damaged)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from imgsearch_gui.app import catalog as catalog_mod
from imgsearch_gui.app import library as library_mod
from imgsearch_gui.app.library import CATALOG_FILE, ImageLibrary
from imgsearch_gui.base.errors import StorageFullError
from imgsearch_gui.base.types import CancelToken, IndexReport
from imgsearch_gui.ml.query_expansion import Augmentation


def _report(events) -> IndexReport:
    return [e for e in events if isinstance(e, IndexReport)][-1]


def _other_writer_can_write(data: Path) -> bool:
    """Another connection (as another process would) can start a write transaction."""
    conn = sqlite3.connect(str(data / CATALOG_FILE), timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _found(lib: ImageLibrary, q: np.ndarray, paths: list[Path], k: int = 3) -> int:
    """How many of ``paths`` (queried with their vectors ``q``) are among their own top ``k``
    (with DBA an identical photo may rank just below a close neighbour)."""
    hits = lib.search_vectors(q, k=k)
    return sum(str(p) in [h.path for h in hit] for p, hit in zip(paths, hits, strict=True))


def _indexed_paths(lib: ImageLibrary) -> set[str]:
    return {f.path for f in lib.catalog.all_files() if f.status == "indexed"}


# ---------------------------------------------------------------- finding 1: failed writes
def test_a_catalog_error_outside_a_commit_rolls_back_and_frees_the_catalog(
        tmp_path, write_image, embedder, monkeypatch):
    """A GUI-style (long-lived) library: the third file row of a job fails (a full disk in the
    middle of the job, not in a commit). The write ends rolled back: no open transaction holds
    other writers off, and the next job of the same library indexes the folder completely."""
    a = [write_image(tmp_path / "a" / f"{i}.png", i) for i in range(5)]
    b = [write_image(tmp_path / "b" / f"{i}.png", 100 + i) for i in range(5)]
    data = tmp_path / "data"
    lib = ImageLibrary(data, embedder)
    try:
        _report(lib.index_library(tmp_path / "a"))
        real = catalog_mod.Catalog.add_file
        calls = [0]

        def add_file(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 3:
                raise StorageFullError(data, "writing the catalog failed: database or disk is full")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(catalog_mod.Catalog, "add_file", add_file)
        with pytest.raises(StorageFullError):
            list(lib.index_library(tmp_path / "b"))
        monkeypatch.setattr(catalog_mod.Catalog, "add_file", real)
        assert not lib.catalog.in_transaction
        assert _other_writer_can_write(data)
        assert _indexed_paths(lib) == {str(p) for p in a}  # the half-done rows were dropped
        report = _report(lib.index_library(tmp_path / "b"))
        assert report.indexed == 5 and not report.cancelled
    finally:
        lib.close()
    with ImageLibrary(data, embedder) as again:
        assert _indexed_paths(again) == {str(p) for p in a + b}
        assert len(again.store) == 10


def test_a_job_its_consumer_drops_leaves_no_transaction(tmp_path, write_image, embedder):
    """A generator closed while it scans (GeneratorExit at a yield; the library row was
    committed in a short transaction, none is open) is a failed write too: rolled back."""
    for i in range(6):
        write_image(tmp_path / "a" / f"{i}.png", i)
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, save_every=100) as lib:
        events = lib.index_library(tmp_path / "a")
        assert next(events).stage == "scan"
        assert not lib.catalog.in_transaction  # short transactions: none open while it scans
        assert lib.catalog.library_id(str(tmp_path / "a")) is not None
        events.close()
        assert lib.catalog.library_id(str(tmp_path / "a")) is None  # taken back
        assert not lib.catalog.in_transaction
        assert _other_writer_can_write(data)
        assert _report(lib.index_library(tmp_path / "a")).indexed == 6


# ---------------------------------------------------------------- finding 2: cancel + DBA
def test_a_cancelled_jobs_photos_are_found_with_dba(tmp_path, write_image, embedder,
                                                    tiny_embedder):
    """DBA on (n=3): 20 photos, then a job cancelled after 10 of 40. The 10 are reported
    searchable and the same library (and a fresh one) finds each of them."""
    for i in range(20):
        write_image(tmp_path / "a" / f"{i}.png", i)
    b = [write_image(tmp_path / "b" / f"{i:02d}.png", 100 + i) for i in range(40)]
    data = tmp_path / "data"
    dba = Augmentation(n=3)
    with ImageLibrary(data, embedder, augmentation=dba) as lib:
        _report(lib.index_library(tmp_path / "a"))
        cancel = CancelToken()
        embedder.cancel_after = (cancel, 30)  # 20 embedded above, then 10 of b
        report = _report(lib.index_library(tmp_path / "b", cancel=cancel))
        embedder.cancel_after = None
        assert report.cancelled and 10 <= report.indexed < 40
        done = [p for p in b if str(p) in _indexed_paths(lib)]
        assert len(done) == report.indexed
        q = np.stack([tiny_embedder.embed_path(p) for p in done])
        assert _found(lib, q, done) == len(done)
        assert len(lib._searched) == len(lib.store)  # never a DBA store that lags
    with ImageLibrary(data, embedder, augmentation=dba) as fresh:
        assert _found(fresh, q, done) == len(done)
        assert len(fresh._searched) == len(fresh.store) == 20 + len(done)
        assert fresh._searched is not fresh.store  # DBA again once the redo was done


def test_a_cancelled_jobs_few_photos_are_augmented_at_once(tmp_path, write_image, embedder,
                                                            tiny_embedder):
    """Few new photos (the incremental DBA sync, not a redo): the cancel does not cut it, the
    DBA store holds them and is searched."""
    for i in range(50):
        write_image(tmp_path / "a" / f"{i}.png", i)
    b = [write_image(tmp_path / "b" / f"{i:02d}.png", 100 + i) for i in range(20)]
    with ImageLibrary(tmp_path / "data", embedder, augmentation=Augmentation(n=3)) as lib:
        _report(lib.index_library(tmp_path / "a"))
        cancel = CancelToken()
        embedder.cancel_after = (cancel, 53)
        report = _report(lib.index_library(tmp_path / "b", cancel=cancel))
        embedder.cancel_after = None
        done = [p for p in b if str(p) in _indexed_paths(lib)]
        assert report.cancelled and 1 <= len(done) <= 5  # at most 10 %: incremental
        assert len(lib._augmented) == len(lib.store) == 50 + len(done)
        assert lib._searched is lib._augmented
        q = np.stack([tiny_embedder.embed_path(p) for p in done])
        assert _found(lib, q, done) == len(done)


# ---------------------------------------------------------------- finding 6: reloads
def test_searches_during_a_reload_never_rank_with_raw_vectors(tmp_path, write_image, embedder,
                                                              tiny_embedder, monkeypatch):
    """A long-lived DBA library starts a job after another process saved: it loads the index
    again, and the DBA sync of that reload takes a while. A search of another thread meanwhile
    (the GUI's) uses the previous state whole (the store and its DBA copy), never the new raw
    store with no DBA store."""
    from imgsearch_gui.app import search as search_mod

    a = [write_image(tmp_path / "a" / f"{i}.png", i) for i in range(8)]
    for i in range(8):
        write_image(tmp_path / "b" / f"{i}.png", 100 + i)
    write_image(tmp_path / "c" / "0.png", 200)
    data = tmp_path / "data"
    dba = Augmentation(n=3)
    q = tiny_embedder.embed_path(a[0])[None, :]
    ranked_over: list[int] = []  # how many stores each search ranked over
    real_rank = search_mod.rank

    def spy_rank(stores, *args, **kwargs):
        ranked_over.append(len(stores))
        return real_rank(stores, *args, **kwargs)

    monkeypatch.setattr(search_mod, "rank", spy_rank)
    with ImageLibrary(data, embedder, augmentation=dba) as gui:
        _report(gui.index_library(tmp_path / "a"))
        assert gui.search_vectors(q, k=1)[0][0].score == pytest.approx(1.0, abs=1e-5)
        assert ranked_over == [2]  # the store and its DBA copy
        with ImageLibrary(data, embedder, augmentation=dba) as other:
            _report(other.index_library(tmp_path / "b"))
        real = library_mod.sync_augmented
        seen: list[int] = []

        def slow_sync(*args, **kwargs):
            if not seen:
                searcher = threading.Thread(
                    target=lambda: seen.append(len(gui.search_vectors(q, k=1)[0])))
                searcher.start()
                searcher.join(30)
                assert seen, "the search blocked during the reload"
            return real(*args, **kwargs)

        monkeypatch.setattr(library_mod, "sync_augmented", slow_sync)
        _report(gui.index_library(tmp_path / "c"))
        assert seen == [1] and ranked_over[1] == 2  # the search meanwhile: with the DBA copy
        assert len(gui._searched) == len(gui.store) == 17


# ---------------------------------------------------------------- finding 11: a locked catalog
@pytest.fixture
def short_busy_timeout(monkeypatch):
    monkeypatch.setattr(catalog_mod, "BUSY_TIMEOUT_S", 0.2)


def _hold_write_lock(path: Path, exclusive: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS other_process (x)")
    return conn


def test_a_locked_new_catalog_is_busy_not_damaged(tmp_path, embedder, short_busy_timeout):
    """Another connection holds the database: WriterBusyError (exit 3), never a damaged
    catalog (which `--rebuild` would move aside)."""
    from imgsearch_gui.base.errors import CatalogError, WriterBusyError

    data = tmp_path / "data"
    data.mkdir()
    holder = _hold_write_lock(data / CATALOG_FILE, exclusive=True)
    try:
        with pytest.raises(WriterBusyError) as info:
            catalog_mod.Catalog(data / CATALOG_FILE)
        assert not isinstance(info.value, CatalogError)
        with pytest.raises(WriterBusyError):
            ImageLibrary(data, embedder)
    finally:
        holder.close()
    catalog_mod.Catalog(data / CATALOG_FILE).close()  # fine once it is free
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("damaged")) == []


def test_a_migration_that_finds_the_catalog_locked_is_busy(tmp_path, short_busy_timeout):
    from imgsearch_gui.base.errors import WriterBusyError

    path = tmp_path / CATALOG_FILE
    catalog_mod.Catalog(path).close()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")  # an older catalog
    conn.close()
    holder = _hold_write_lock(path)
    try:
        with pytest.raises(WriterBusyError):
            catalog_mod.Catalog(path)
    finally:
        holder.close()
    cat = catalog_mod.Catalog(path)
    assert cat.schema_version() == catalog_mod.SCHEMA_VERSION
    cat.close()


def test_a_write_that_finds_the_catalog_locked_is_busy(tmp_path, short_busy_timeout):
    from imgsearch_gui.base.errors import WriterBusyError

    path = tmp_path / CATALOG_FILE
    cat = catalog_mod.Catalog(path)
    holder = _hold_write_lock(path)
    try:
        with pytest.raises(WriterBusyError):
            cat.add_library("/photos")
    finally:
        holder.close()
        cat.close()


# ---------------------------------------------------------------- findings 4 and 7: settings
REPO = Path(__file__).resolve().parents[3]
TINY = ["--backbone", "tiny", "--size", "64"]

# The child runs the CLI; when told, the settings write (embedder.json) of the library fails for
# real: a file size limit of 16 bytes (EFBIG) while it is written, or a kill -9 right before it.
_SETTINGS_CHILD = """
import os, resource, signal, sys
from imgsearch_gui.app import config as config_mod, library
fault, argv = sys.argv[1], sys.argv[2:]
real = config_mod.save_config
def save_config(data_dir, config):
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.RLIM_INFINITY))
    try:
        return real(data_dir, config)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
if fault != "none":  # wherever the settings are written from
    config_mod.save_config = library.save_config = save_config
from imgsearch_gui.cli.dispatch import main
sys.exit(main(argv))
"""


def _cli(tmp_path: Path, fault: str, *argv: str):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "IMGSEARCH_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run([sys.executable, "-c", _SETTINGS_CHILD, fault, *argv], env=env,
                          capture_output=True, text=True, cwd=str(REPO), timeout=300)


@pytest.mark.skipif(__import__("sys").platform == "win32", reason="RLIMIT_FSIZE, SIGKILL: POSIX")
@pytest.mark.parametrize("fault", ["efbig", "kill"])
def test_whiten_whose_settings_cannot_be_written_leaves_a_usable_index(tmp_path, write_image,
                                                                       fault):
    """whiten switches the index to the whitened vectors, then embedder.json fails to be written
    (EFBIG: exit 4 with one line; or the process is killed). search and index still work with
    the plain settings (the whitening file in the data dir is adopted, no --rebuild), and the
    next index run records it."""
    import json

    for i in range(6):
        write_image(tmp_path / "a" / f"{i}.png", i)
    data = tmp_path / "data"
    dd = ["--data-dir", str(data)]
    first = _cli(tmp_path, "none", "index", str(tmp_path / "a"), *dd, *TINY)
    assert first.returncode == 0, first.stderr
    plain = json.loads((data / "embedder.json").read_text())
    assert plain["whitening"] is None
    whiten = _cli(tmp_path, fault, "whiten", "--dim", "8", *dd)
    if fault == "efbig":
        assert whiten.returncode == 4, whiten.stderr
        lines = whiten.stderr.strip().splitlines()
        assert len(lines) == 1 and "embedder.json" in lines[0] and "free some space" in lines[0]
    else:
        assert whiten.returncode == -9, whiten.stderr
    assert json.loads((data / "embedder.json").read_text()) == plain  # the old file, whole
    search = _cli(tmp_path, "none", "search", str(tmp_path / "a" / "1.png"), "-k", "1", *dd)
    assert search.returncode == 0, search.stderr
    assert str(tmp_path / "a" / "1.png") in search.stdout
    again = _cli(tmp_path, "none", "index", str(tmp_path / "a"), *dd)
    assert again.returncode == 0, again.stderr
    recorded = json.loads((data / "embedder.json").read_text())["whitening"]
    assert recorded and Path(recorded).parent == data and Path(recorded).is_file()


def test_settings_are_written_under_the_writer_lock(tmp_path, write_image, tiny_embedder,
                                                    monkeypatch):
    """Indexing and whitening record the settings while they hold the writer lock (a second
    writer could otherwise record its model after the first one's job: embedder.json naming a
    model the index does not hold)."""
    from imgsearch_gui.app.config import read_config
    from imgsearch_gui.app.writer_lock import WriterLock

    for i in range(4):
        write_image(tmp_path / "a" / f"{i}.png", i)
    data = tmp_path / "data"
    real = library_mod.save_config
    held: list[bool] = []

    def save_config(data_dir, config):
        probe = WriterLock(data)
        free = probe.try_acquire("probe")
        if free:
            probe.release()
        held.append(not free)
        real(data_dir, config)

    monkeypatch.setattr(library_mod, "save_config", save_config)
    config = tiny_embedder.config
    with ImageLibrary(data, tiny_embedder, settings=config) as lib:
        _report(lib.index_library(tmp_path / "a", rebuild=True))
        assert held and all(held)
        assert read_config(data).size == config.size and read_config(data).whitening is None
        held.clear()
        path = lib.learn_whitening(4)
        assert held == [True]
        assert read_config(data).whitening == str(path)


def test_two_rebuilds_with_other_models_leave_settings_that_match_the_index(
        tmp_path, write_image, monkeypatch, capsys):
    """`index --rebuild` with model X finishes its job; before the CLI would record X (after the
    lock was released), a second `index --rebuild` with model Y runs whole. The settings must
    name Y, the index's model: a plain `search` then works (no model mismatch)."""
    from imgsearch_gui.app.writer_lock import WriterLock
    from imgsearch_gui.cli import dispatch

    for i in range(4):
        write_image(tmp_path / "a" / f"{i}.png", i)
    dd = ["--data-dir", str(tmp_path / "data")]
    real_release = WriterLock.release
    releases = [0]

    def release(self):
        real_release(self)
        releases[0] += 1
        if releases[0] == 2:  # the first run's job ended (1: its open's repair)
            code = dispatch.main(["index", "--rebuild", str(tmp_path / "a"), *dd,
                                  "--backbone", "tiny", "--size", "48"])
            assert code == 0

    monkeypatch.setattr(WriterLock, "release", release)
    assert dispatch.main(["index", "--rebuild", str(tmp_path / "a"), *dd, *TINY]) == 0
    monkeypatch.setattr(WriterLock, "release", real_release)
    assert releases[0] > 2
    capsys.readouterr()
    assert dispatch.main(["search", str(tmp_path / "a" / "1.png"), "-k", "1", *dd]) == 0
    assert str(tmp_path / "a" / "1.png") in capsys.readouterr().out
