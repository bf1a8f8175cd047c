"""Short catalog write transactions (issue 12 item 11c): no write transaction is open while a job
scans, hashes or embeds, so another connection can write at once; what a failed write committed
in short transactions since its last save is taken back (ids included); a killed job's is taken
back by the next writer."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from imgsearch_gui.app import scan
from imgsearch_gui.app.catalog import Catalog
from imgsearch_gui.app.library import CATALOG_FILE, ImageLibrary
from imgsearch_gui.base.errors import StorageFullError
from imgsearch_gui.base.types import IndexReport
from imgsearch_gui.index import durable


def _can_write_within(data: Path, seconds: float = 1.0) -> bool:
    """Another connection (another process's catalog) takes the write lock within ``seconds``."""
    conn = sqlite3.connect(data / CATALOG_FILE, timeout=seconds, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:  # "database is locked"
        assert "locked" in str(exc)
        return False
    finally:
        conn.close()


class SlowEmbedder:
    """The counting embedder, slowed down: each result takes ``delay`` s (a real model's pace)."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.config, self.meta = inner.config, inner.meta
        self.started = threading.Event()

    def embed_path(self, path):
        return self.inner.embed_path(path)

    def embed_files(self, paths, cancel=None):
        for res in self.inner.embed_files(paths, cancel=cancel):
            self.started.set()
            time.sleep(self.delay)
            yield res


def test_another_connection_can_write_while_a_job_embeds(tmp_path, write_image, embedder):
    """Before: the job's BEGIN IMMEDIATE stayed open until its next save (30 s of embedding), so
    another connection got "database is locked" after its busy timeout."""
    for i in range(12):
        write_image(tmp_path / "p" / f"{i}.png", i)
    data = tmp_path / "data"
    slow = SlowEmbedder(embedder, 0.15)
    lib = ImageLibrary(data, slow, save_every=1000, save_interval_s=1000)
    result: list[object] = []

    def index() -> None:
        try:
            result.extend(lib.index_library(tmp_path / "p"))
        except BaseException as exc:  # noqa: BLE001
            result.append(exc)

    t = threading.Thread(target=index)
    t.start()
    try:
        assert slow.started.wait(30)
        checks = 0
        while t.is_alive() and checks < 4:
            started = time.perf_counter()
            assert _can_write_within(data, 1.0), "the job holds a write transaction while embedding"
            assert time.perf_counter() - started < 1.0
            checks += 1
            time.sleep(0.1)
        assert checks >= 2
    finally:
        t.join(60)
    assert isinstance(result[-1], IndexReport), result[-1]
    assert result[-1].indexed == 12
    lib.close()


def test_no_transaction_is_open_at_any_step_of_a_job(tmp_path, write_image, embedder):
    """At every event of a job (scan, hash, match, embed, save: the consumer may take its time
    there), no catalog transaction is open and another connection writes at once; the job has
    new, touched, moved, deleted and broken files to do."""
    root = tmp_path / "p"
    files = [write_image(root / f"{i}.png", i) for i in range(8)]
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, save_every=3, save_interval_s=0) as lib:
        list(lib.index_library(root))
        files[0].rename(root / "moved.png")
        files[1].unlink()
        st = files[2].stat()
        import os

        os.utime(files[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same content
        (root / "broken.png").write_bytes(b"not a photo")
        for i in range(8, 16):
            write_image(root / f"{i}.png", i)
        stages = set()
        for event in lib.index_library(root):
            assert not lib.catalog.in_transaction
            assert _can_write_within(data, 0.5), f"locked at {event}"
            stages.add(getattr(event, "stage", "report"))
        assert {"scan", "embed", "save", "report"} <= stages
        rep = event
        assert (rep.moved, rep.removed, rep.embedded, len(rep.skipped)) == (1, 1, 8, 1)
        assert rep.indexed == 15  # 8 - 1 deleted + 8 new


def test_a_failed_save_takes_back_what_short_transactions_committed(tmp_path, write_image,
                                                                    embedder, monkeypatch):
    """Moves, deletions, touched files, new pending rows, skipped files and dropped orphans are
    committed at once; a failed save takes all of them back: the catalog is row for row (ids
    included) what the last save left, and the next run does the work."""
    root = tmp_path / "p"
    files = [write_image(root / f"{i}.png", i) for i in range(6)]
    data = tmp_path / "data"
    lib = ImageLibrary(data, embedder)
    try:
        list(lib.index_library(root))
        before = lib.catalog.all_files()
        before_vectors = lib.catalog.vector_ids()
        files[0].rename(root / "moved.png")
        files[1].unlink()
        write_image(files[2], 99)  # changed: its vector becomes an orphan
        (root / "broken.png").write_bytes(b"not a photo")
        for i in range(6, 10):
            write_image(root / f"{i}.png", i)
        real = durable.save_npy

        def no_room(directory, path, arr):
            raise durable.write_error(directory, path.name, OSError(errno.ENOSPC, "No space left"))

        monkeypatch.setattr(durable, "save_npy", no_room)
        with pytest.raises(StorageFullError):
            list(lib.index_library(root))
        assert lib.catalog.all_files() == before
        assert lib.catalog.vector_ids() == before_vectors == set(lib.store.labels().tolist())
        assert _can_write_within(data, 0.5)
        monkeypatch.setattr(durable, "save_npy", real)
        embedder.reset()
        rep = list(lib.index_library(root))[-1]
        assert (rep.moved, rep.removed, rep.embedded, len(rep.skipped)) == (1, 1, 5, 1)
        assert set(lib.store.labels().tolist()) == lib.catalog.vector_ids()
    finally:
        lib.close()


def test_a_killed_writers_short_commits_are_taken_back_by_the_next_writer(tmp_path):
    """A writer that dies after short commits (pending rows, a deletion, a meta key replaced)
    without its save: the next writer's rollback gives the state of the last commit back."""
    path = tmp_path / "c.sqlite3"
    cat = Catalog(path)
    lib = cat.add_library(scan.normalize_root(tmp_path))
    keep = cat.add_file(lib, "/p/keep.jpg", 1, 1, "h", "pending")
    gone = cat.add_file(lib, "/p/\udcff-gone.jpg", 2, 2, "g", "skipped", "bad")  # a BLOB path
    cat.set_meta("k", "old")
    cat.commit()
    committed = (cat.all_files(), cat.get_meta("k"))
    with cat.transaction():
        cat.add_file(lib, "/p/new.jpg", 3, 3, "n", "pending")
        cat.delete_files([gone])
        cat.update_file(keep, path="/p/keep2.jpg", size=1, mtime_ns=5, fast_hash="h",
                        status="pending", reason=None, vector_id=None)
        cat.set_meta("k", "new")
    cat.stage(lambda: cat.set_meta("staged", "1"))
    cat._conn.close()  # the process dies: no rollback, nothing staged is written

    other = Catalog(path)
    assert len(other.all_files()) == 2 and other.get_meta("k") == "new"  # committed at once
    other.rollback()  # what a writer does first (ImageLibrary._begin_write)
    assert (other.all_files(), other.get_meta("k")) == committed
    assert other.get_meta("staged") is None
    other.rollback()  # nothing more to take back
    assert other.all_files() == committed[0]
    other.close()


def test_this_librarys_searches_find_photos_embedded_since_the_last_save(tmp_path, write_image,
                                                                          embedder):
    """The rows of vectors not saved yet are staged, not written; a search of the same library
    (the GUI searching while it indexes) still finds the photos whose vectors are in the store."""
    root = tmp_path / "p"
    paths = [write_image(root / f"{i:02d}.png", i) for i in range(70)]
    with ImageLibrary(tmp_path / "data", embedder, save_every=1000, save_interval_s=1000) as lib:
        found = None
        for event in lib.index_library(root):
            if getattr(event, "stage", None) == "embed" and event.done == event.total:
                assert lib.catalog.staged  # nothing of it is saved or written yet
                assert lib.catalog.indexed_count(lib.catalog.library_id(str(root))) == 0
                query = embedder.embed_path(paths[3])[None]
                found = lib.search_vectors(query, k=3)[0]
                only = lib.search_vectors(query, k=3, library=root)[0]
        assert found is not None and found[0].path == str(paths[3]) and found[0].library == str(root)
        assert len(found) == 3 and [h.path for h in only] == [h.path for h in found]
