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
    """A generator closed while it scans (GeneratorExit at a yield, the library row written but
    not committed) is a failed write too: rolled back."""
    for i in range(6):
        write_image(tmp_path / "a" / f"{i}.png", i)
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, save_every=100) as lib:
        events = lib.index_library(tmp_path / "a")
        assert next(events).stage == "scan"
        assert lib.catalog.in_transaction
        events.close()
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
    (the GUI's) uses the previous state whole (DBA scores: an identical photo scores below 1),
    never the new raw store with no DBA store."""
    a = [write_image(tmp_path / "a" / f"{i}.png", i) for i in range(8)]
    for i in range(8):
        write_image(tmp_path / "b" / f"{i}.png", 100 + i)
    write_image(tmp_path / "c" / "0.png", 200)
    data = tmp_path / "data"
    dba = Augmentation(n=3)
    q = tiny_embedder.embed_path(a[0])[None, :]
    with ImageLibrary(data, embedder, augmentation=dba) as gui:
        _report(gui.index_library(tmp_path / "a"))
        assert gui.search_vectors(q, k=1)[0][0].score < 0.9999  # DBA: below 1
        with ImageLibrary(data, embedder, augmentation=dba) as other:
            _report(other.index_library(tmp_path / "b"))
        real = library_mod.sync_augmented
        seen: list[float] = []

        def slow_sync(*args, **kwargs):
            if not seen:
                searcher = threading.Thread(
                    target=lambda: seen.append(gui.search_vectors(q, k=1)[0][0].score))
                searcher.start()
                searcher.join(30)
                assert seen, "the search blocked during the reload"
            return real(*args, **kwargs)

        monkeypatch.setattr(library_mod, "sync_augmented", slow_sync)
        _report(gui.index_library(tmp_path / "c"))
        assert seen and seen[0] < 0.9999
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
