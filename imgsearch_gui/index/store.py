"""Vector store: raw float32 vectors + an HNSW graph (cosine), labelled by catalog vector ids.

* Labels are the catalog's vector ids (never reused: ``max_label`` is a persisted high-water mark).
* Below ``HnswParams.exact_threshold`` live vectors there is no graph at all: search is an exact
  matrix product with numpy (fast enough, and exact). Above it an hnswlib graph is built once and
  then grows with ``resize_index``; deletions use ``mark_deleted``; when the deleted fraction
  passes ``compact_fraction`` the graph (and the raw matrix) are rebuilt from the live vectors.
  Graph (re)builds are deferred to the next ``save`` (or ``build_graph_if_due``) and run outside
  the lock: searches continue on the old graph / exact path; concurrent adds and removes are
  journalled and replayed on the new graph before it is swapped in.
* The raw vectors are always kept: exact search, compaction and whitening need them.
* hnswlib does not allow ``add_items`` concurrently with ``knn_query``; every public method holds
  one lock, so the GUI can search while an index job adds vectors in another thread.
* ``save`` is atomic: a new generation folder ``gen-NNNNNNNN`` is written, fsynced and read back
  (size and CRC of every file, index/durable.py), then the small ``CURRENT`` pointer file is
  replaced with ``os.replace`` (and the folder fsynced). After a crash at any moment ``open`` sees
  either the complete old or the complete new generation. A failed or short write raises
  StorageFullError / StorageWriteError; the half-written generation is removed, the old one stays
  current.
* One writer per directory (the caller holds the data dir's writer lock, app/writer_lock.py);
  readers in other processes never wait: ``open`` only reads, ``save`` keeps the previous
  generation on disk until the next save (a reader that read ``CURRENT`` just before a switch
  can still load it; ``open`` retries with the new pointer when a generation vanished), and only
  ``save`` / ``cleanup`` (the lock holder) delete files. ``save`` refuses to switch a pointer that
  changed since this store was loaded (StoreConflictError).
* The header (``header.json``) holds the ModelMeta, the HNSW parameters (hnswlib does not save
  ``ef``), counts, a CRC32 + size of every file, the store's ``lineage`` (a random id, new for
  every empty start: labels are only unique within a lineage) and ``source`` (the lineage a
  derived store was computed from). A damaged data file raises ``IndexCorruptError``; a damaged
  graph (``hnsw.bin``, derived data) is dropped and rebuilt from the vectors by the next save.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import hnswlib
import numpy as np

from imgsearch_gui.base.atomic import fsync_dir
from imgsearch_gui.base.errors import IndexCorruptError, StoreConflictError
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken
from imgsearch_gui.index import durable

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
POINTER = "CURRENT"
_GEN_RE = re.compile(r"^gen-(\d{8})$")
_VECTORS = "vectors.npy"
_LABELS = "labels.npy"
_HNSW = "hnsw.bin"
_HEADER = "header.json"
#: lineage of stores saved before lineages were recorded
LEGACY_LINEAGE = "legacy"
_OPEN_TRIES = 5
#: vectors added to a graph between two looks at the cancel flag
_GRAPH_CHUNK = 8192


@dataclass(frozen=True)
class HnswParams:
    """Graph parameters, chosen by measurement (bench/ann.py; tests/unit/index/test_store.py).

    On 20k clustered 1280-d descriptors (2 cores): M=16/ef=100 gave recall@10 0.996 at 0.83 ms,
    M=24/ef=100 0.998 at 1.0 ms, M=24/ef=128 0.999 at 1.3 ms, M=32/ef=200 0.9995 at ~1.5 ms
    (10k). On 20k random 32-d unit vectors (a hard case) M=16/ef=100 reached only 0.979, M=24
    0.992. M=24, ef_construction=200, ef=100 keeps recall >= 0.99 with p50 <= 2 ms at 100k.
    """

    M: int = 24
    ef_construction: int = 200
    ef: int = 100
    #: below this many live vectors search is exact (numpy) and no graph is kept. Measured
    #: single-thread exact top-10 at dim 1280: 0.3 ms at 2k, 1.7 ms at 5k, 3.9 ms at 10k, so
    #: up to 5k exact search is as fast as the graph (~1 ms) and needs no build time.
    exact_threshold: int = 5000
    #: rebuild the graph / raw matrix when this fraction of their entries is deleted
    compact_fraction: float = 0.2
    #: threads for building the graph (0 = all cores); queries of one vector use one thread
    build_threads: int = 0


@dataclass(frozen=True)
class StoreInfo:
    vectors: int
    dim: int | None
    uses_hnsw: bool
    deleted_in_graph: int
    generation: int
    bytes_on_disk: int


def read_pointer(directory: Path) -> str | None:
    """What ``CURRENT`` in ``directory`` says (stripped), None when there is none."""
    try:
        data = (directory / POINTER).read_bytes()
    except FileNotFoundError:
        return None
    return data.decode("ascii", "replace").strip()


def pointer_stamp(directory: Path) -> tuple[int, int, int] | None:
    """A cheap token that changes whenever ``CURRENT`` is replaced (one stat)."""
    try:
        st = os.stat(directory / POINTER)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class VectorStore:
    """Labels -> L2-normalised float32 vectors with k-NN search (cosine similarity)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        params: HnswParams | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.params = params or HnswParams()
        self._lock = threading.RLock()
        self.meta: ModelMeta | None = None
        self._dim: int | None = None
        self._vecs = np.zeros((0, 0), dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)
        self._n = 0  # rows used in _vecs/_labels (dead rows have label -1)
        self._row: dict[int, int] = {}
        self._hnsw: hnswlib.Index | None = None
        self._hnsw_deleted = 0
        #: the graph must be (re)built: threshold crossed, or too many deletions
        self._graph_due = False
        #: adds/removes made while a graph is built outside the lock (replayed on the new graph)
        self._journal: list[tuple[str, list[int]]] | None = None
        #: bumped whenever the graph is replaced or dropped under the lock (stale builds lose)
        self._epoch = 0
        self.max_label = -1
        self.generation = 0
        #: True when a saved generation existed at open()
        self.existed = False
        #: this store's identity: new for every empty start (labels are unique within a lineage)
        self.lineage = uuid.uuid4().hex
        #: for a derived store (DBA): the lineage of the store it was computed from
        self.source: str | None = None
        #: what ``CURRENT`` said when this state was loaded (or last saved): save switches the
        #: pointer only from there
        try:
            self.pointer = read_pointer(self.directory)
        except OSError:
            self.pointer = None
        #: why derived data of the loaded generation was dropped (rebuilt by the next save)
        self.repaired: str | None = None

    # ------------------------------------------------------------------ open / save
    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], params: HnswParams | None = None
    ) -> VectorStore:
        """Load the current generation from ``directory`` (an empty store if there is none).

        Only reads. Raises IndexCorruptError when the pointer, the header or a data file is
        missing/damaged; a generation that vanished under a concurrent save is retried with the
        new pointer.
        """
        for attempt in range(_OPEN_TRIES):
            store = cls(directory, params)
            store.directory.mkdir(parents=True, exist_ok=True)
            try:
                name = read_pointer(store.directory)
            except OSError as exc:
                raise IndexCorruptError(store.directory, f"cannot read {POINTER}: {exc}") from exc
            store.pointer = name
            if name is None:
                return store
            m = _GEN_RE.match(name)
            if not m:
                raise IndexCorruptError(store.directory, f"{POINTER} holds {name[:40]!r}")
            try:
                store._load_generation(store.directory / name, int(m.group(1)))
            except IndexCorruptError:
                try:
                    moved = read_pointer(store.directory) != name
                except OSError:
                    moved = False
                if not moved or attempt == _OPEN_TRIES - 1:
                    raise
                log.debug("%s was replaced while it was read: reading the new one", name)
                continue
            store.existed = True
            return store
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_generation(self, gen_dir: Path, generation: int) -> None:
        d = self.directory
        try:
            header = json.loads((gen_dir / _HEADER).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorruptError(d, f"{gen_dir.name}/{_HEADER} is missing") from exc
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(d, f"{gen_dir.name}/{_HEADER} unreadable: {exc}") from exc
        try:
            if header["format"] != FORMAT_VERSION:
                raise IndexCorruptError(
                    d, f"unsupported index format {header['format']} (expected {FORMAT_VERSION})"
                )
            files: dict[str, dict] = header["files"]
            for fname in (_VECTORS, _LABELS):
                p = gen_dir / fname
                if not p.exists():
                    raise IndexCorruptError(d, f"{gen_dir.name}/{fname} is missing")
                if p.stat().st_size != files[fname]["size"]:
                    raise IndexCorruptError(d, f"{gen_dir.name}/{fname} has the wrong size")
            meta = ModelMeta.from_dict(header["meta"]) if header["meta"] else None
            dim = header["dim"]
            saved = header["params"]
            self.params = replace(
                self.params, M=saved["M"], ef_construction=saved["ef_construction"], ef=saved["ef"]
            )
            vecs = np.load(gen_dir / _VECTORS, allow_pickle=False)
            labels = np.load(gen_dir / _LABELS, allow_pickle=False)
            if durable.crc_array(vecs) != files[_VECTORS]["crc32"]:
                raise IndexCorruptError(d, f"{gen_dir.name}/{_VECTORS} fails its checksum")
            if durable.crc_array(labels) != files[_LABELS]["crc32"]:
                raise IndexCorruptError(d, f"{gen_dir.name}/{_LABELS} fails its checksum")
            n = int(header["rows"])
            if vecs.dtype != np.float32 or labels.dtype != np.int64 or len(vecs) != n or len(
                labels
            ) != n or (n and dim is not None and vecs.shape[1] != dim):
                raise IndexCorruptError(d, "vector arrays do not match the header")
            hnsw = self._load_graph(gen_dir, files, dim, int(header["hnsw_capacity"]))
        except IndexCorruptError:
            raise
        except (KeyError, TypeError, ValueError, OSError, RuntimeError, EOFError) as exc:
            raise IndexCorruptError(d, f"{gen_dir.name}: {type(exc).__name__}: {exc}") from exc
        self.meta = meta
        self._dim = dim
        self._vecs = vecs if n else np.zeros((0, dim or 0), dtype=np.float32)
        self._labels = labels
        self._n = n
        self._row = {int(lab): i for i, lab in enumerate(labels.tolist()) if lab >= 0}
        self._hnsw = hnsw
        self._hnsw_deleted = int(header.get("hnsw_deleted", 0)) if hnsw is not None else 0
        self.max_label = int(header["max_label"])
        self.generation = generation
        self.lineage = header.get("lineage") or LEGACY_LINEAGE
        self.source = header.get("source")
        self._graph_due = hnsw is None and len(self._row) >= self.params.exact_threshold
        if len(self._row) != int(header["count"]):
            raise IndexCorruptError(d, "vector count does not match the header")

    def _load_graph(self, gen_dir: Path, files: dict[str, dict], dim: int | None, capacity: int
                    ) -> hnswlib.Index | None:
        """The saved graph, or None when there is none or it is damaged: derived from the vectors,
        so search goes exact until the next save rebuilds it (never a reason to re-embed)."""
        if _HNSW not in files:
            return None
        hp = gen_dir / _HNSW
        try:
            if hp.stat().st_size != files[_HNSW]["size"]:
                raise ValueError("it has the wrong size")
            if durable.crc_file(hp) != files[_HNSW]["crc32"]:
                raise ValueError("it fails its checksum")
            hnsw = hnswlib.Index(space="cosine", dim=dim)
            hnsw.load_index(str(hp), max_elements=capacity)
            hnsw.set_ef(self.params.ef)
        except (OSError, ValueError, RuntimeError) as exc:
            self.repaired = f"{gen_dir.name}/{_HNSW} was dropped ({exc})"
            log.warning("the search graph %s/%s is damaged (%s): searching exactly until the next "
                        "save rebuilds it from the stored vectors", gen_dir.name, _HNSW, exc)
            return None
        return hnsw

    def save(self, cancel: CancelToken | None = None) -> None:
        """Write a new generation and switch the pointer to it atomically (O(N)).

        The caller holds the writer lock. A due graph (re)build runs first, outside the lock
        (searches go on meanwhile); when ``cancel`` is set it stops early and the vectors are
        saved without the new graph (still due). Every file is read back before the pointer
        moves: StorageFullError / StorageWriteError when it fails (nothing switched, the partial
        generation removed). StoreConflictError when ``CURRENT`` changed since this was loaded.
        """
        self.build_graph_if_due(cancel)
        with self._lock:
            t0 = time.perf_counter()
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                current = read_pointer(self.directory)
            except OSError as exc:
                raise durable.write_error(self.directory, POINTER, exc) from exc
            if current != self.pointer:
                raise StoreConflictError(
                    f"the index in {self.directory} was changed by another process ({POINTER} "
                    f"{self.pointer!r} -> {current!r}); nothing was saved"
                )
            gen = max(self.generation, *self._generations_on_disk(), 0) + 1
            name = f"gen-{gen:08d}"
            gen_dir = self.directory / name
            try:
                gen_dir.mkdir()
                self._write_generation(gen_dir)
                durable.save_text(self.directory, self.directory / (POINTER + ".tmp"), name + "\n")
                os.replace(self.directory / (POINTER + ".tmp"), self.directory / POINTER)
            except OSError as exc:
                shutil.rmtree(gen_dir, ignore_errors=True)
                raise durable.write_error(self.directory, name, exc) from exc
            except BaseException:
                shutil.rmtree(gen_dir, ignore_errors=True)
                raise
            fsync_dir(self.directory)
            previous, self.pointer = self.pointer, name
            self.generation = gen
            self.existed = True
            self.repaired = None
            self._remove_stale_generations(keep={name, previous})
            log.debug(
                "saved %d vectors as %s in %.2fs", len(self._row), name, time.perf_counter() - t0
            )

    def _write_generation(self, gen_dir: Path) -> None:
        """The files of a generation, each read back; the header (with their CRCs) last."""
        files: dict[str, dict] = {}
        for fname, arr in ((_VECTORS, self._vecs[: self._n]), (_LABELS, self._labels[: self._n])):
            files[fname] = durable.save_npy(self.directory, gen_dir / fname, arr)
        capacity = 0
        if self._hnsw is not None:
            p = gen_dir / _HNSW
            self._hnsw.save_index(str(p))  # reports no write error: checked by reading it back
            capacity = self._hnsw.get_max_elements()
            files[_HNSW] = durable.check_hnsw(self.directory, p, self._hnsw.element_count,
                                              capacity)
        header = {
            "format": FORMAT_VERSION,
            "meta": self.meta.to_dict() if self.meta else None,
            "dim": self._dim,
            "params": asdict(self.params),
            "rows": self._n,
            "count": len(self._row),
            "max_label": self.max_label,
            "hnsw_capacity": capacity,
            "hnsw_deleted": self._hnsw_deleted,
            "lineage": self.lineage,
            "source": self.source,
            "saved_at": time.time(),
            "files": files,
        }
        durable.save_text(self.directory, gen_dir / _HEADER, json.dumps(header, indent=1))
        fsync_dir(gen_dir)

    def _generations_on_disk(self) -> list[int]:
        return [int(m.group(1)) for p in self.directory.glob("gen-*")
                if (m := _GEN_RE.match(p.name))]

    def cleanup(self) -> None:
        """Remove what crashed saves left (folders other than the current and the previous
        generation, ``CURRENT.tmp``). Only the writer-lock holder calls this."""
        with self._lock:
            if not self.directory.is_dir():
                return
            older = [g for g in self._generations_on_disk() if g < self.generation]
            keep = {self.pointer, f"gen-{max(older):08d}" if older else None}
            self._remove_stale_generations(keep=keep)
            (self.directory / (POINTER + ".tmp")).unlink(missing_ok=True)

    def _remove_stale_generations(self, keep: set[str | None]) -> None:
        for p in self.directory.glob("gen-*"):
            if p.name not in keep and _GEN_RE.match(p.name):
                shutil.rmtree(p, ignore_errors=True)

    def adopt(self, other: VectorStore) -> None:
        """Take the contents of ``other`` (built beside, in memory) in one step under the lock:
        searches see either the old or the new contents, never a half-filled store."""
        with self._lock, other._lock:
            for attr in ("meta", "_dim", "_vecs", "_labels", "_n", "_row", "_hnsw",
                         "_hnsw_deleted", "_graph_due", "max_label", "lineage", "source"):
                setattr(self, attr, getattr(other, attr))
            self._epoch += 1

    # ------------------------------------------------------------------ contents
    def reset(self, meta: ModelMeta | None) -> None:
        """Drop every vector (in memory; ``save`` makes it permanent). Labels are not reused;
        the store starts a new lineage (derived stores see that they must start again)."""
        with self._lock:
            self._epoch += 1
            self._graph_due = False
            self.meta = meta
            self._dim = meta.dim if meta else None
            self._vecs = np.zeros((0, self._dim or 0), dtype=np.float32)
            self._labels = np.zeros(0, dtype=np.int64)
            self._n = 0
            self._row = {}
            self._hnsw = None
            self._hnsw_deleted = 0
            self.lineage = uuid.uuid4().hex

    @property
    def dim(self) -> int | None:
        return self._dim

    @property
    def uses_hnsw(self) -> bool:
        return self._hnsw is not None

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, label: object) -> bool:
        return label in self._row

    def labels(self) -> np.ndarray:
        """The live labels (sorted)."""
        with self._lock:
            return np.array(sorted(self._row), dtype=np.int64)

    def get(self, labels: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors for ``labels`` (KeyError for an unknown label)."""
        with self._lock:
            rows = [self._row[int(lab)] for lab in labels]
            return self._vecs[rows].copy()

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, vectors) of every live vector (copies), e.g. to learn whitening."""
        with self._lock:
            alive = self._labels[: self._n] >= 0
            return self._labels[: self._n][alive].copy(), self._vecs[: self._n][alive].copy()

    def info(self) -> StoreInfo:
        with self._lock:
            size = 0
            cur = self.directory / f"gen-{self.generation:08d}"
            if cur.is_dir():
                size = sum(p.stat().st_size for p in cur.iterdir())
            return StoreInfo(
                len(self._row), self._dim, self._hnsw is not None, self._hnsw_deleted,
                self.generation, size,
            )

    def add(self, labels: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add vectors under new labels (vectors are L2-normalised again, defensively)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        labels_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels_arr) != len(vectors):
            raise ValueError("labels and vectors differ in length")
        if len(labels_arr) == 0:
            return
        if (labels_arr < 0).any():
            raise ValueError("labels must be >= 0")
        if len(set(labels_arr.tolist())) != len(labels_arr):
            raise ValueError("duplicate labels in one add")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or (norms == 0).any():
            raise ValueError("vectors must be finite and non-zero")
        vectors = vectors / norms
        with self._lock:
            if self._dim is None:
                self._dim = vectors.shape[1]
                self._vecs = np.zeros((0, self._dim), dtype=np.float32)
            if vectors.shape[1] != self._dim:
                raise ValueError(f"vector dim {vectors.shape[1]} != index dim {self._dim}")
            for lab in labels_arr.tolist():
                if lab in self._row:
                    raise ValueError(f"label {lab} is already in the index")
            self._append_rows(labels_arr, vectors)
            self.max_label = max(self.max_label, int(labels_arr.max()))
            if self._journal is not None:
                self._journal.append(("add", labels_arr.tolist()))
            if self._hnsw is not None:
                self._graph_add(self._hnsw, labels_arr, vectors)
            elif len(self._row) >= self.params.exact_threshold:
                self._graph_due = True  # built by the next save / build_graph_if_due()

    def _graph_add(self, index: hnswlib.Index, labels: np.ndarray, vectors: np.ndarray) -> None:
        need = index.element_count + len(labels)
        if need > index.get_max_elements():
            index.resize_index(max(need, 2 * index.get_max_elements()))
        index.add_items(vectors, labels, num_threads=self._threads(len(vectors)))

    def _append_rows(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        need = self._n + len(labels)
        if need > len(self._vecs):
            cap = max(need, 2 * len(self._vecs), 256)
            vecs = np.empty((cap, self._dim), dtype=np.float32)
            vecs[: self._n] = self._vecs[: self._n]
            labs = np.full(cap, -1, dtype=np.int64)
            labs[: self._n] = self._labels[: self._n]
            self._vecs, self._labels = vecs, labs
        self._vecs[self._n : need] = vectors
        self._labels[self._n : need] = labels
        for i, lab in enumerate(labels.tolist()):
            self._row[lab] = self._n + i
        self._n = need

    def remove(self, labels: np.ndarray | list[int]) -> int:
        """Delete labels (unknown ones are ignored); returns how many were removed."""
        gone: list[int] = []
        with self._lock:
            for lab in np.asarray(labels, dtype=np.int64).reshape(-1).tolist():
                row = self._row.pop(lab, None)
                if row is None:
                    continue
                self._labels[row] = -1
                gone.append(lab)
                if self._hnsw is not None:
                    self._hnsw.mark_deleted(lab)
                    self._hnsw_deleted += 1
            if gone:
                if self._journal is not None:
                    self._journal.append(("rm", gone))
                self._maybe_compact()
        return len(gone)

    def _maybe_compact(self) -> None:
        frac = self.params.compact_fraction
        live = len(self._row)
        if live < self.params.exact_threshold // 2 and (self._hnsw is not None or self._graph_due):
            log.debug("index shrank to %d vectors: dropping the graph (exact search)", live)
            self._hnsw = None
            self._hnsw_deleted = 0
            self._graph_due = False
            self._epoch += 1
        if self._n and (self._n - live) > frac * self._n:
            self._compact_rows()  # fast (one numpy copy)
        if self._hnsw is not None and self._hnsw_deleted > frac * self._hnsw.element_count:
            self._graph_due = True  # rebuilt by the next save / build_graph_if_due()

    def compact(self) -> None:
        """Rebuild the raw matrix and the graph from the live vectors only (holds the lock)."""
        with self._lock:
            self._compact_rows()
            if self._hnsw is not None or len(self._row) >= self.params.exact_threshold:
                labels, vecs = self._live()
                self._hnsw = self._new_graph(labels, vecs)
                self._hnsw_deleted = 0
                self._graph_due = False
                self._epoch += 1

    @property
    def graph_due(self) -> bool:
        return self._graph_due

    def build_graph_if_due(self, cancel: CancelToken | None = None) -> bool:
        """(Re)build the HNSW graph if due, without holding the lock while building.

        Searches keep using the old graph (or exact search) meanwhile; adds and removes made
        during the build are journalled and replayed on the new graph before it is swapped in.
        Returns True when a new graph was installed (False when ``cancel`` stopped the build:
        the graph stays due).
        """
        with self._lock:
            if not self._graph_due or self._journal is not None:
                return False
            labels, vecs = self._live()
            self._journal = []
            epoch = self._epoch
        try:
            index = self._new_graph(labels, vecs, cancel)
        except BaseException:
            with self._lock:
                self._journal = None
            raise
        with self._lock:
            journal, self._journal = self._journal or [], None
            if index is None or epoch != self._epoch:
                return False  # reset / dropped / compacted meanwhile: this build is stale
            deleted = 0
            for op, labs in journal:
                if op == "add":
                    live = [lab for lab in labs if lab in self._row]
                    if live:
                        rows = [self._row[lab] for lab in live]
                        self._graph_add(index, np.array(live, dtype=np.int64), self._vecs[rows])
                else:
                    for lab in labs:
                        try:
                            index.mark_deleted(lab)
                            deleted += 1
                        except RuntimeError:  # added and removed during the build
                            pass
            self._hnsw = index
            self._hnsw_deleted = deleted
            self._graph_due = False
            self._epoch += 1
            return True

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        alive = self._labels[: self._n] >= 0
        return self._labels[: self._n][alive].copy(), self._vecs[: self._n][alive]

    def _compact_rows(self) -> None:
        alive = self._labels[: self._n] >= 0
        self._vecs = np.ascontiguousarray(self._vecs[: self._n][alive])
        self._labels = self._labels[: self._n][alive].copy()
        self._n = len(self._labels)
        self._row = {lab: i for i, lab in enumerate(self._labels.tolist())}

    def _threads(self, n: int) -> int:
        if n < 64:
            return 1
        return self.params.build_threads or (os.cpu_count() or 1)

    def _new_graph(self, labels: np.ndarray, vecs: np.ndarray, cancel: CancelToken | None = None
                   ) -> hnswlib.Index | None:
        """A graph of ``vecs``; None when ``cancel`` was set during the build."""
        t0 = time.perf_counter()
        index = hnswlib.Index(space="cosine", dim=self._dim)
        index.init_index(
            max(2 * len(labels), 1024), M=self.params.M,
            ef_construction=self.params.ef_construction, random_seed=100,
        )
        index.set_ef(self.params.ef)
        for start in range(0, len(labels), _GRAPH_CHUNK):
            if cancel is not None and cancel.cancelled:
                log.info("graph build cancelled after %d of %d vectors", start, len(labels))
                return None
            end = start + _GRAPH_CHUNK
            index.add_items(vecs[start:end], labels[start:end],
                            num_threads=self._threads(len(labels)))
        log.info("built HNSW graph of %d vectors in %.1fs", len(labels), time.perf_counter() - t0)
        return index

    # ------------------------------------------------------------------ search
    def query(
        self,
        vectors: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        exact: bool = False,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """k nearest neighbours of each query: a list of (labels, cosine similarities), best first.

        ``allowed`` restricts the result to those labels (e.g. one library's vectors): small
        subsets are searched exactly, large ones through the graph with a filter. ``exact``
        forces brute force (for recall measurements).
        """
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        q = q / np.where(norms == 0, 1, norms)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        with self._lock:
            live = len(self._row)
            if live == 0 or k <= 0 or len(q) == 0:
                return [empty for _ in range(len(q))]
            if q.shape[1] != self._dim:
                raise ValueError(f"query dim {q.shape[1]} != index dim {self._dim}")
            if allowed is not None:
                allowed_rows = np.array(
                    [self._row[lab] for lab in np.asarray(allowed).tolist() if lab in self._row],
                    dtype=np.int64,
                )
                if len(allowed_rows) == 0:
                    return [empty for _ in range(len(q))]
                if exact or self._hnsw is None or len(allowed_rows) <= self.params.exact_threshold:
                    return self._exact(q, k, allowed_rows)
                allowed_set = set(self._labels[allowed_rows].tolist())
                return self._graph(q, min(k, len(allowed_rows)), allowed_rows, allowed_set)
            if exact or self._hnsw is None:
                return self._exact(q, k, None)
            return self._graph(q, min(k, live), None, None)

    def _exact(
        self, q: np.ndarray, k: int, rows: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if rows is None:
            mat = self._vecs[: self._n]
            labels = self._labels[: self._n]
        else:
            mat = self._vecs[rows]
            labels = self._labels[rows]
        sims = q @ mat.T
        if rows is None:
            sims[:, labels < 0] = -np.inf
            k = min(k, len(self._row))
        k = min(k, len(labels))
        out = []
        for s in sims:
            idx = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
            idx = idx[np.argsort(-s[idx], kind="stable")]
            out.append((labels[idx].copy(), s[idx].astype(np.float32)))
        return out

    def _graph(
        self, q: np.ndarray, k: int, rows: np.ndarray | None, allowed: set[int] | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        assert self._hnsw is not None
        self._hnsw.set_ef(max(self.params.ef, k))
        threads = 1 if len(q) < 4 else -1
        try:
            if allowed is None:
                lab, dist = self._hnsw.knn_query(q, k=k, num_threads=threads)
            else:
                lab, dist = self._hnsw.knn_query(
                    q, k=k, num_threads=1, filter=allowed.__contains__
                )
        except RuntimeError:
            # hnswlib could not find k results (heavily filtered or deleted graph): go exact
            log.debug("graph search returned fewer than %d results; exact fallback", k)
            return self._exact(q, k, rows)
        finally:
            self._hnsw.set_ef(self.params.ef)
        sims = (1.0 - dist).astype(np.float32)
        return [(lab[i].astype(np.int64), sims[i]) for i in range(len(q))]
