"""The store under faults: a full disk (a real file size limit in a child process), a damaged
graph, a concurrent save, a reader racing a save, a cancelled graph build."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from imgsearch_gui.base.errors import StoreConflictError
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.index import store as store_mod
from imgsearch_gui.index.store import HnswParams, VectorStore

DIM = 16
REPO = Path(__file__).resolve().parents[3]


def meta() -> ModelMeta:
    return ModelMeta("fake", "w0", "gem", 64, (0.5, 0.5, 0.5), (0.2, 0.2, 0.2), DIM)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def params(**kw) -> HnswParams:
    return HnswParams(**{"M": 16, "ef_construction": 100, "ef": 100, "exact_threshold": 50, **kw})


def test_a_damaged_graph_is_rebuilt_from_the_stored_vectors(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "idx"
    x = unit(rng, 120)
    store = VectorStore(d, params())
    store.meta = meta()
    store.add(np.arange(120), x)
    store.save()
    graph = d / "gen-00000001" / "hnsw.bin"
    graph.write_bytes(graph.read_bytes()[:-100])  # cut short, as a full disk left it
    loaded = VectorStore.open(d, params())
    assert loaded.repaired and "hnsw.bin" in loaded.repaired
    assert len(loaded) == 120 and not loaded.uses_hnsw and loaded.graph_due
    assert [loaded.query(x[i], k=1)[0][0][0] for i in (0, 60, 119)] == [0, 60, 119]  # exact
    loaded.save()  # rebuilds the graph from vectors.npy
    again = VectorStore.open(d, params())
    assert again.repaired is None and again.uses_hnsw and len(again) == 120
    assert [again.query(x[i], k=1)[0][0][0] for i in (0, 60, 119)] == [0, 60, 119]


_FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from imgsearch_gui.base.errors import StorageFullError
    from imgsearch_gui.index.store import HnswParams, VectorStore
    directory, limit, n, threshold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = VectorStore.open(directory, HnswParams(M=16, ef_construction=100, exact_threshold=threshold))
    x = np.random.default_rng(5).standard_normal((n, 16)).astype(np.float32)
    start = store.max_label + 1
    store.add(np.arange(start, start + n), x)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        store.save()
    except StorageFullError as exc:
        print("FULL", exc)
        sys.exit(4)
    print("SAVED")
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_a_full_disk_keeps_the_previous_generation(tmp_path, path):
    """A real per-file size limit in a child: np.save fails with EFBIG (exact path), hnswlib
    writes a short hnsw.bin without any error (HNSW path). Nothing is switched, the partial
    generation is removed, the previous one opens with all its vectors."""
    rng = np.random.default_rng(2)
    d = tmp_path / "idx"
    threshold = 50 if path == "hnsw" else 100_000
    store = VectorStore(d, params(exact_threshold=threshold))
    store.meta = meta()
    first = unit(rng, 100)
    store.add(np.arange(100), first)
    store.save()
    gen1 = d / "gen-00000001"
    sizes = {p.name: p.stat().st_size for p in gen1.iterdir()}
    # 300 more vectors: vectors.npy grows to ~25 KB, hnsw.bin to ~160 KB
    limit = sizes["vectors.npy"] * 2 if path == "exact" else sizes["vectors.npy"] * 8
    assert path == "exact" or sizes["hnsw.bin"] < limit
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(d), str(limit), "300", str(threshold)],
        capture_output=True, text=True, cwd=str(REPO), timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FULL") and str(d) in proc.stdout
    failed = "vectors.npy" if path == "exact" else "hnsw.bin"
    assert failed in proc.stdout
    assert sorted(p.name for p in d.iterdir()) == ["CURRENT", "gen-00000001"]
    assert (d / "CURRENT").read_text().strip() == "gen-00000001"
    loaded = VectorStore.open(d, params(exact_threshold=threshold))
    assert loaded.labels().tolist() == list(range(100)) and loaded.repaired is None
    assert loaded.uses_hnsw == (path == "hnsw")
    assert loaded.query(first[42], k=1)[0][0][0] == 42


def test_save_refuses_a_pointer_changed_by_an_unlocked_writer(tmp_path):
    rng = np.random.default_rng(3)
    d = tmp_path / "idx"
    a = VectorStore(d)
    a.add([1], unit(rng, 1))
    a.save()
    b = VectorStore.open(d)
    c = VectorStore.open(d)
    b.add([2], unit(rng, 1))
    b.save()
    c.add([3], unit(rng, 1))
    with pytest.raises(StoreConflictError):
        c.save()  # would have silently dropped vector 2
    assert VectorStore.open(d).labels().tolist() == [1, 2]


def test_a_reader_that_read_the_pointer_before_a_switch_still_loads(tmp_path, monkeypatch):
    """The previous generation stays on disk until the next save; a reader whose generation
    vanished (two saves meanwhile) retries with the new pointer."""
    rng = np.random.default_rng(4)
    d = tmp_path / "idx"
    writer = VectorStore(d)
    writer.add([1], unit(rng, 1))
    writer.save()
    real = VectorStore._load_generation
    calls = []

    def racing_load(self, gen_dir, generation):
        calls.append(gen_dir.name)
        if len(calls) == 1:  # the writer saves twice while this reader is about to read
            writer.add([2], unit(rng, 1))
            writer.save()
            assert gen_dir.exists()  # one save later the old generation is still there
            writer.add([3], unit(rng, 1))
            writer.save()
            assert not gen_dir.exists()
        return real(self, gen_dir, generation)

    monkeypatch.setattr(VectorStore, "_load_generation", racing_load)
    reader = VectorStore.open(d)
    assert calls == ["gen-00000001", "gen-00000003"]
    assert reader.labels().tolist() == [1, 2, 3]


def test_a_cancelled_graph_build_still_saves_the_vectors(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "_GRAPH_CHUNK", 16)
    rng = np.random.default_rng(5)
    d = tmp_path / "idx"
    store = VectorStore(d, params())
    x = unit(rng, 80)
    store.add(np.arange(80), x)
    assert store.graph_due
    cancel = CancelToken()
    cancel.cancel()
    store.save(cancel)
    assert not store.uses_hnsw and store.graph_due  # still due, built by the next save
    loaded = VectorStore.open(d, params())
    assert len(loaded) == 80 and not loaded.uses_hnsw and loaded.graph_due
    loaded.save()
    assert VectorStore.open(d, params()).uses_hnsw
