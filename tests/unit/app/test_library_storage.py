"""The library under storage faults: a full disk in a CLI child (exact and HNSW paths), damaged
derived files (rebuilt from vectors.npy, never by embedding), a DBA store of a rebuilt index,
a failed save in a long-lived library."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from imgsearch_gui.app.library import AUGMENTED_DIR, INDEX_DIR, ImageLibrary
from imgsearch_gui.base.errors import StorageFullError
from imgsearch_gui.index import durable
from imgsearch_gui.index.store import HnswParams, read_pointer
from imgsearch_gui.ml.query_expansion import Augmentation

REPO = Path(__file__).resolve().parents[3]
TINY = ["--backbone", "tiny", "--size", "64"]

# The tiny backbone's descriptors have 64 dims: the catalog (SQLite) grows faster than
# vectors.npy, so a size limit set at the start would stop SQLite first. The child sets the real
# limit right before the store writes its files (and, for the HNSW path, lowers the exact-search
# threshold so that 60 photos get a graph).
_CLI_CHILD = textwrap.dedent("""
    import functools, resource, signal, sys
    from imgsearch_gui.index import store
    limit, threshold, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if threshold:
        store.HnswParams = functools.partial(store.HnswParams, exact_threshold=threshold)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    real_save = store.VectorStore.save
    def save(self, cancel=None):
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        return real_save(self, cancel)
    store.VectorStore.save = save
    from imgsearch_gui.cli.dispatch import main
    sys.exit(main(argv))
""")


def _cli(tmp_path: Path, limit: int, threshold: int, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "IMGSEARCH_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run([sys.executable, "-c", _CLI_CHILD, str(limit), str(threshold), *argv],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_a_full_disk_exits_4_and_keeps_the_previous_index(tmp_path, write_image, embedder, path):
    a = [write_image(tmp_path / "a" / f"{i}.png", i) for i in range(60)]
    for i in range(150):
        write_image(tmp_path / "b" / f"{i}.png", 1000 + i)
    data = tmp_path / "data"
    threshold = 40 if path == "hnsw" else 0
    first = _cli(tmp_path, 0, threshold, "index", str(tmp_path / "a"), "--data-dir", str(data),
                 *TINY)
    assert first.returncode == 0, first.stderr
    gen = data / INDEX_DIR / read_pointer(data / INDEX_DIR)
    sizes = {p.name: p.stat().st_size for p in gen.iterdir()}
    assert ("hnsw.bin" in sizes) == (path == "hnsw")
    # 210 vectors: vectors.npy ~54 KB, hnsw.bin ~100 KB; the old files are below the limit
    limit = 40_000 if path == "exact" else 75_000
    assert max(sizes.values()) < limit
    full = _cli(tmp_path, limit, threshold, "index", str(tmp_path / "b"), "--data-dir",
                str(data), *TINY)
    assert full.returncode == 4, full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1, full.stderr
    assert str(data) in lines[0] and "free some space" in lines[0]
    assert ("vectors.npy" if path == "exact" else "hnsw.bin") in lines[0]
    assert sorted(p.name for p in (data / INDEX_DIR).iterdir()) == ["CURRENT", gen.name]
    embedder.reset()
    params = HnswParams(exact_threshold=threshold) if threshold else None
    with ImageLibrary(data, embedder, params=params) as lib:
        assert lib.needs_rebuild is None and len(lib.store) == 60
        assert lib.store.uses_hnsw == (path == "hnsw")
        assert {f.path for f in lib.catalog.all_files()} == {str(p) for p in a}
        hit = lib.search_vectors(embedder.embed_path(a[7])[None, :], k=1)[0][0]
        assert hit.path == str(a[7])
        # with room again, the next run does the rest; nothing of the first run is redone
        embedder.reset()
        list(lib.index_library(tmp_path / "a"))
        list(lib.index_library(tmp_path / "b"))
        assert len(embedder.calls) == 150 and len(lib.store) == 210


def test_a_failed_save_in_an_open_library_loses_nothing_saved(tmp_path, write_image, embedder,
                                                             monkeypatch):
    """The GUI's library goes on after a full disk: the catalog is rolled back to the last save,
    the library reloads the saved index, and the next run redoes exactly the unsaved photos."""
    a = [write_image(tmp_path / "a" / f"{i}.png", i) for i in range(6)]
    b = [write_image(tmp_path / "b" / f"{i}.png", 100 + i) for i in range(6)]
    lib = ImageLibrary(tmp_path / "data", embedder)
    list(lib.index_library(tmp_path / "a"))
    real = durable.save_npy

    def no_room(directory, path, arr):
        raise durable.write_error(directory, path.name, OSError(errno.ENOSPC, "No space left"))

    monkeypatch.setattr(durable, "save_npy", no_room)
    with pytest.raises(StorageFullError):
        list(lib.index_library(tmp_path / "b"))
    assert len(lib.store) == 6 and {f.path for f in lib.catalog.all_files()} == {str(p) for p in a}
    monkeypatch.setattr(durable, "save_npy", real)
    embedder.reset()
    list(lib.index_library(tmp_path / "b"))
    assert embedder.embedded() == {str(p) for p in b}
    assert set(lib.store.labels().tolist()) == lib.catalog.vector_ids() and len(lib.store) == 12
    lib.close()


def test_a_damaged_graph_is_rebuilt_without_embedding(tmp_path, write_image, embedder):
    photos = [write_image(tmp_path / "p" / f"{i}.png", i) for i in range(30)]
    params = HnswParams(exact_threshold=10)
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, params=params) as lib:
        list(lib.index_library(tmp_path / "p"))
        assert lib.store.uses_hnsw
    graph = data / INDEX_DIR / read_pointer(data / INDEX_DIR) / "hnsw.bin"
    raw = bytearray(graph.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    graph.write_bytes(bytes(raw))
    embedder.reset()
    with ImageLibrary(data, embedder, params=params) as lib:
        assert lib.needs_rebuild is None  # no re-embedding offered: the vectors are intact
        hit = lib.search_vectors(embedder.embed_path(photos[4])[None, :], k=1)[0][0]
        assert hit.path == str(photos[4])
        embedder.reset()
        list(lib.index_library(tmp_path / "p"))  # the next write rebuilds the graph
        assert embedder.calls == {}
    with ImageLibrary(data, embedder, params=params) as lib:
        assert lib.store.uses_hnsw and lib.store.repaired is None and len(lib.store) == 30


def test_damaged_dba_files_are_rebuilt_without_embedding(tmp_path, write_image, embedder):
    photos = [write_image(tmp_path / "p" / f"{i}.png", i) for i in range(15)]
    aug = Augmentation(n=3)
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, augmentation=aug) as lib:
        list(lib.index_library(tmp_path / "p"))
        reference = lib.search(photos[5], k=5)
    gen = data / AUGMENTED_DIR / read_pointer(data / AUGMENTED_DIR)
    vec = gen / "vectors.npy"
    raw = bytearray(vec.read_bytes())
    raw[-7] ^= 0xFF
    vec.write_bytes(bytes(raw))
    embedder.reset()
    with ImageLibrary(data, embedder, augmentation=aug) as lib:
        assert lib.search(photos[5], k=5) == reference
        assert set(embedder.calls) <= {str(photos[5])}  # the query only
    # ... and it was saved again (under the writer lock, no one was writing)
    assert read_pointer(data / AUGMENTED_DIR) != gen.name


def test_dba_follows_a_rebuilt_index(tmp_path, write_image, embedder):
    """A damaged index rebuilt from nothing hands out ids from 0 again: the DBA store must not
    keep the old photos' vectors under those ids."""
    [write_image(tmp_path / "old" / f"{i}.png", i) for i in range(12)]
    new = [write_image(tmp_path / "new" / f"{i}.png", 500 + i) for i in range(12)]
    aug = Augmentation(n=2)
    data = tmp_path / "data"
    with ImageLibrary(data, embedder, augmentation=aug) as lib:
        list(lib.index_library(tmp_path / "old"))
    (data / INDEX_DIR / "CURRENT").write_text("garbage")  # the main index is damaged
    with ImageLibrary(data, embedder, augmentation=aug) as lib:
        assert lib.needs_rebuild is not None
        list(lib.index_library(tmp_path / "new", rebuild=True))
        assert min(lib.store.labels().tolist()) == 0  # ids from 0 again
        for p in new:
            assert lib.search(p, k=1)[0].path == str(p)
    with ImageLibrary(data, embedder, augmentation=aug) as lib:
        for p in new:
            assert lib.search(p, k=1)[0].path == str(p)
        raw = dict(zip(*lib.store.vectors(), strict=True))
        labels, augmented = lib._augmented.vectors()
        # each augmented vector is (mostly) its own photo's descriptor, not an old photo's
        own = [float(raw[lab] @ vec) for lab, vec in zip(labels.tolist(), augmented, strict=True)]
        assert min(own) > 0.5 and len(own) == 12
    assert np.isfinite(own).all()


_CATALOG_FULL_CHILD = textwrap.dedent("""
    import resource, signal, sys
    limit, argv = int(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    from imgsearch_gui.cli.dispatch import main
    sys.exit(main(argv))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_disk_that_fills_while_the_catalog_is_written_exits_4(tmp_path, write_image):
    for i in range(20):
        write_image(tmp_path / "a" / f"{i}.png", i)
    for i in range(400):  # one photo 400 times: one new vector, 400 catalog rows
        write_image(tmp_path / "b" / f"copy{i:03d}-with-a-long-name-to-fill-pages.png", 1000)
    data = tmp_path / "data"
    first = _cli(tmp_path, 0, 0, "index", str(tmp_path / "a"), "--data-dir", str(data), *TINY)
    assert first.returncode == 0, first.stderr
    limit = max(p.stat().st_size for p in data.rglob("*") if p.is_file()) + 8192
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "IMGSEARCH_LOG_DIR": str(tmp_path / "logs")}
    full = subprocess.run([sys.executable, "-c", _CATALOG_FULL_CHILD, str(limit), "index",
                           str(tmp_path / "b"), "--data-dir", str(data), *TINY],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=300)
    assert full.returncode == 4, full.stderr
    lines = full.stderr.strip().splitlines()
    # SQLite reports a write past the limit as an I/O error (SQLITE_IOERR_WRITE), not SQLITE_FULL
    assert len(lines) == 1 and "writing the catalog failed" in lines[0], full.stderr
    assert str(data) in lines[0] and "previous index is kept" in lines[0]
    again = _cli(tmp_path, 0, 0, "search", str(tmp_path / "a" / "3.png"), "-k", "1", "--data-dir",
                 str(data), *TINY)
    assert again.returncode == 0 and again.stdout.split()[-1].endswith("3.png"), again.stderr
