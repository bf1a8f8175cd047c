"""The library facade used by the CLI and the GUI: index folders, search them.

``ImageLibrary`` composes the SQLite catalog (core/catalog.py), the vector store
(index/store.py), the folder scan (core/scan.py) and an embedder (ml/embedder.py).

Indexing is incremental and crash-safe:

* only new and changed files are embedded; files whose size and mtime are unchanged are not even
  hashed; a file whose content (fast hash) is already known is re-pointed (moved/renamed) or
  shares the existing vector (duplicate) instead of being embedded again;
* the catalog commits in batches, each right after a store save (every ``save_every`` images or
  ``save_interval_s`` seconds, at the end and on cancel), so the committed catalog never refers
  to unsaved vectors. On open, catalog and store are reconciled: catalog vectors missing from the
  saved store make their files pending again (they are redone), store labels the catalog does
  not know are removed. A kill -9 at any moment loses at most the work since the last save.
* the store's ModelMeta must equal the embedder's: otherwise ModelMismatchError, until
  ``index_library(..., rebuild=True)`` drops every vector (all files become pending).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from imgsearch_gui.app import scan
from imgsearch_gui.app.catalog import (
    STATUS_INDEXED,
    STATUS_PENDING,
    STATUS_SKIPPED,
    Catalog,
    FileRecord,
)
from imgsearch_gui.base.errors import (
    CatalogCorruptError,
    CatalogError,
    CatalogTooNewError,
    IndexCorruptError,
    ModelMismatchError,
    NotALibraryError,
)
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress, SearchHit, SkippedFile
from imgsearch_gui.index.store import HnswParams, VectorStore
from imgsearch_gui.ml.query_expansion import Augmentation, QueryExpansion, expand
from imgsearch_gui.ml.whitening import learn_pca_whitening

if TYPE_CHECKING:  # pragma: no cover
    from imgsearch_gui.ml.embedder import Embedder

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.sqlite3"
INDEX_DIR = "index"
AUGMENTED_DIR = "index-dba"

__all__ = [
    "CatalogCorruptError",
    "ImageLibrary",
    "IndexCorruptError",
    "IndexStats",
    "LibraryInfo",
    "ModelMismatchError",
]


def move_aside_damaged(data_dir: Path | str) -> Path:
    """Move the catalog and the index files of ``data_dir`` into ``damaged-<time>/`` and return it.

    Nothing is deleted (the files may help a bug report, and the user decides); the data dir's
    settings (embedder.json) and fine-tuned models stay where they are.
    """
    data_dir = Path(data_dir)
    target = data_dir / time.strftime("damaged-%Y%m%d-%H%M%S")
    n = 1
    while target.exists():
        n += 1
        target = data_dir / time.strftime(f"damaged-%Y%m%d-%H%M%S-{n}")
    target.mkdir(parents=True)
    names = [CATALOG_FILE, f"{CATALOG_FILE}-wal", f"{CATALOG_FILE}-shm",
             f"{CATALOG_FILE}-journal", INDEX_DIR, AUGMENTED_DIR]
    for name in names:
        src = data_dir / name
        if src.exists():
            os.replace(src, target / name)
    log.warning("moved the damaged index of %s to %s", data_dir, target)
    return target


@dataclass(frozen=True)
class LibraryInfo:
    root: str
    files: int
    indexed: int
    skipped: int


@dataclass(frozen=True)
class IndexStats:
    data_dir: str
    vectors: int
    files: int
    libraries: tuple[LibraryInfo, ...]
    meta: ModelMeta | None


@dataclass
class _Work:
    """A file that needs a vector: new, changed, or pending (after a crash or a rebuild)."""

    file: scan.ScannedFile
    row: FileRecord | None
    fast: str
    full: str | None = None


@dataclass
class _Group:
    """Files of identical content found in this run: embedded once, all point at the vector."""

    rep: _Work
    members: list[_Work] = field(default_factory=list)


class _Counts:
    def __init__(self) -> None:
        self.indexed = 0
        self.unchanged = 0
        self.moved = 0
        self.removed = 0
        self.duplicates = 0
        self.skipped: list[SkippedFile] = []


class ImageLibrary:
    """Catalog + vector store + embedder; one thread may search while another indexes.

    With ``augmentation`` (DBA), queries go to a derived copy of the store in which every
    vector is merged with its nearest neighbours; scores are cosine similarities to those
    augmented vectors (an identical photo scores slightly below 1).
    """

    @classmethod
    def for_config(cls, data_dir: Path | str, embedder: Embedder, dba: int, **kwargs: Any
                   ) -> ImageLibrary:
        """The library as the CLI and the GUI open it: DBA from the saved index settings."""
        return cls(data_dir, embedder, augmentation=Augmentation(n=dba) if dba > 0 else None,
                   **kwargs)

    def __init__(
        self,
        data_dir: Path | str,
        embedder: Embedder,
        *,
        save_every: int = 2000,
        save_interval_s: float = 30.0,
        params: HnswParams | None = None,
        augmentation: Augmentation | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.save_every = max(1, int(save_every))
        self.save_interval_s = float(save_interval_s)
        self._job_lock = threading.Lock()
        self._corrupt: IndexCorruptError | None = None
        self._allowed_cache: dict[int, tuple[int, np.ndarray]] = {}
        self.augmentation = augmentation if augmentation and augmentation.n > 0 else None
        self._augmented: VectorStore | None = None
        try:
            self._catalog = Catalog(self.data_dir / CATALOG_FILE)
        except CatalogTooNewError:
            raise
        except CatalogError as exc:
            raise CatalogCorruptError(self.data_dir, str(exc)) from exc
        index_dir = self.data_dir / INDEX_DIR
        try:
            self._store = VectorStore.open(index_dir, params)
        except IndexCorruptError as exc:
            log.error("%s", exc)
            self._corrupt = exc
            self._store = VectorStore(index_dir, params)
            return
        if not self._store.existed and self._catalog.max_vector_id() >= 0:
            self._corrupt = IndexCorruptError(
                index_dir, "the index files are missing but the catalog lists indexed photos"
            )
            log.error("%s", self._corrupt)
            return
        self._reconcile()
        if self.augmentation is not None:
            self._open_augmented(params)

    def _open_augmented(self, params: HnswParams | None) -> None:
        """The searched copy of the index with DBA applied; derived, so rebuilt when damaged."""
        directory = self.data_dir / AUGMENTED_DIR
        try:
            self._augmented = VectorStore.open(directory, params)
        except IndexCorruptError as exc:
            log.warning("rebuilding the augmented index: %s", exc)
            self._augmented = VectorStore(directory, params)
        if self._sync_augmented():
            self._augmented.save()

    # ------------------------------------------------------------------ housekeeping
    def _reconcile(self) -> None:
        """Make catalog and store agree after a crash (see module docstring)."""
        catalog_ids = self._catalog.vector_ids()
        store_ids = set(self._store.labels().tolist())
        missing = catalog_ids - store_ids
        extra = store_ids - catalog_ids
        if missing:
            log.warning("%d catalog vectors were not saved in the index: redoing their files",
                        len(missing))
            self._catalog.delete_vectors(sorted(missing))
        if extra:
            log.warning("removing %d index vectors the catalog does not know", len(extra))
            self._store.remove(sorted(extra))
            self._store.save()
        self._catalog.commit()

    def _check_usable(self) -> None:
        if self._corrupt is not None:
            raise self._corrupt
        stored = self._store.meta
        current = self.embedder.meta
        if stored is not None and len(self._store) and stored.fingerprint != current.fingerprint:
            raise ModelMismatchError(stored, current)

    def _save_and_commit(self) -> None:
        """The one place that makes work durable: store first, then the catalog.

        The augmented store is derived from the store; it is brought up to date and saved here
        too (a crash in between is repaired when the library is opened again).
        """
        self._store.save()
        if self._augmented is not None and self._sync_augmented():
            self._augmented.save()
        self._catalog.commit()

    def _augmented_meta(self) -> ModelMeta | None:
        meta, aug = self._store.meta, self.augmentation
        if meta is None or aug is None:
            return meta
        return replace(meta, extra=(*meta.extra, ("dba", f"n={aug.n},alpha={aug.alpha:g}")))

    def _sync_augmented(self) -> bool:
        """Give the augmented store exactly the store's labels; True if anything changed.

        New vectors get their augmented version from their current neighbours; when more than
        10% of the index is new (or the model/parameters changed) every vector is redone so
        older vectors see their new neighbours too.
        """
        aug_store, aug = self._augmented, self.augmentation
        if aug_store is None or aug is None:
            return False
        meta = self._augmented_meta()
        raw_labels = self._store.labels()
        changed = False
        if aug_store.meta != meta:
            aug_store.reset(meta)
            changed = True
        have = aug_store.labels()
        extra = np.setdiff1d(have, raw_labels)
        if len(extra):
            aug_store.remove(extra)
            changed = True
        missing = np.setdiff1d(raw_labels, aug_store.labels())
        if len(missing) == 0:
            return changed
        if len(missing) > 0.1 * len(raw_labels):
            aug_store.reset(meta)
            missing = raw_labels
        for start in range(0, len(missing), 1024):
            labels = missing[start : start + 1024]
            vectors = self._store.get(labels)
            augmented = np.empty_like(vectors)
            for i, (nbr, sims) in enumerate(self._store.query(vectors, aug.n + 1)):
                keep = nbr != labels[i]
                nbr, sims = nbr[keep][: aug.n], sims[keep][: aug.n]
                augmented[i] = expand(vectors[i], self._store.get(nbr), sims, aug.alpha) \
                    if len(nbr) else vectors[i]
            aug_store.add(labels, augmented)
        log.debug("augmented %d vectors (DBA n=%d, alpha=%g)", len(missing), aug.n, aug.alpha)
        return True

    @property
    def _searched(self) -> VectorStore:
        """Where queries go: the augmented store when DBA is on."""
        return self._augmented if self._augmented is not None else self._store

    @property
    def needs_rebuild(self) -> str | None:
        """Why the index must be rebuilt before use (damaged / another model), or None."""
        try:
            self._check_usable()
        except (IndexCorruptError, ModelMismatchError) as exc:
            return str(exc)
        return None

    # ------------------------------------------------------------------ indexing
    def index_library(
        self,
        root: Path | str,
        *,
        rebuild: bool = False,
        cancel: CancelToken | None = None,
    ) -> Iterator[Progress | IndexReport]:
        """Index ``root`` incrementally: Progress events, then one IndexReport.

        A generator: ModelMismatchError / IndexCorruptError (when not ``rebuild``) and
        NotADirectoryError are raised by the first ``next()``, before anything is changed.
        """
        root_s = scan.normalize_root(root)
        if not os.path.isdir(root_s):
            raise NotADirectoryError(f"not a folder: {root_s}")
        if not rebuild:
            self._check_usable()
        if not self._job_lock.acquire(blocking=False):
            raise RuntimeError("another indexing job is running on this library")
        try:
            yield from self._index(root_s, rebuild, cancel or CancelToken())
        finally:
            self._job_lock.release()

    def _index(
        self, root: str, rebuild: bool, cancel: CancelToken
    ) -> Iterator[Progress | IndexReport]:
        t0 = time.perf_counter()
        cat, store = self._catalog, self._store
        counts = _Counts()
        if rebuild:
            log.info("rebuilding the index with %s", self.embedder.meta.describe())
            store.reset(self.embedder.meta)
            cat.reset_vectors()
            self._corrupt = None
            self._save_and_commit()
        elif len(store) == 0 and store.meta != self.embedder.meta:
            store.reset(self.embedder.meta)  # nothing to mix: adopt the current model
        lib_id = cat.add_library(root)
        known = cat.files_of_library(lib_id)

        # ---- scan
        scanned: list[scan.ScannedFile] = []
        last = 0.0
        yield Progress("scan", 0, 0, root, message="Looking for photos")
        for f in scan.walk(root, cancel=cancel):
            scanned.append(f)
            now = time.perf_counter()
            if now - last > 0.2:
                last = now
                yield Progress("scan", len(scanned), 0, f.path, message="Looking for photos")
        if cancel.cancelled:
            cat.commit()
            yield self._report(root, counts, t0, 0.0, cancelled=True)
            return
        changes = scan.diff(scanned, {p: scan.KnownFile(p, r.size, r.mtime_ns)
                                      for p, r in known.items()})

        # ---- classify (hash only what is new or changed)
        work: list[_Work] = []
        for f in changes.unchanged:
            r = known[f.path]
            if r.status == STATUS_INDEXED and r.vector_id is not None and r.vector_id in store:
                counts.unchanged += 1
            elif r.status == STATUS_SKIPPED:
                counts.skipped.append(SkippedFile(f.path, r.reason or "skipped"))
            elif r.fast_hash:
                work.append(_Work(f, r, r.fast_hash))
            else:
                work.append(_Work(f, r, ""))  # hashed below
        to_hash = [(f, known.get(f.path)) for f in (*changes.new, *changes.changed)]
        to_hash += [(w.file, w.row) for w in work if not w.fast]
        work = [w for w in work if w.fast]
        last = 0.0
        for i, (f, r) in enumerate(to_hash):
            if cancel.cancelled:
                break
            now = time.perf_counter()
            if now - last > 0.2:
                last = now
                yield Progress("scan", i, len(to_hash), f.path, message="Checking new files")
            try:
                h = scan.fast_hash(f.path, f.size)
            except OSError as exc:
                self._skip(lib_id, f, r, f"cannot read: {exc.strerror or exc}", counts)
                continue
            touched = r is not None and r.fast_hash == h and (
                r.status == STATUS_SKIPPED
                or (r.status == STATUS_INDEXED and r.vector_id in store)
            )
            if touched:
                assert r is not None
                # same content, new mtime: remember it, keep the vector (or the skip reason)
                cat.update_file(r.id, path=f.path, size=f.size, mtime_ns=f.mtime_ns, fast_hash=h,
                                status=r.status, reason=r.reason, vector_id=r.vector_id)
                if r.status == STATUS_SKIPPED:
                    counts.skipped.append(SkippedFile(f.path, r.reason or "skipped"))
                else:
                    counts.unchanged += 1
                continue
            work.append(_Work(f, r, h))
        if cancel.cancelled:
            self._save_and_commit()
            yield self._report(root, counts, t0, 0.0, cancelled=True)
            return

        # ---- resolve: moved / duplicate of a known vector / to embed (grouped by content)
        gone_rows = [known[p] for p in changes.gone]
        gone_by_vector: dict[int, list[FileRecord]] = {}
        for g in gone_rows:
            if g.vector_id is not None and g.status == STATUS_INDEXED:
                gone_by_vector.setdefault(g.vector_id, []).append(g)
        claimed: set[int] = set()
        groups: dict[str, list[_Group]] = {}
        last = 0.0
        for i, w in enumerate(work):
            now = time.perf_counter()
            if now - last > 0.2:
                last = now
                yield Progress("scan", i, len(work), w.file.path, message="Matching known photos")
            vid = self._find_vector(w)
            if vid is not None:
                movers = [g for g in gone_by_vector.get(vid, ()) if g.id not in claimed]
                if movers:
                    g = movers[0]
                    claimed.add(g.id)
                    if w.row is None:
                        self._point(g.id, w, vid)
                    else:
                        self._point(w.row.id, w, vid)
                        cat.delete_files([g.id])
                    counts.moved += 1
                else:
                    self._point_or_add(lib_id, w, vid)
                    counts.duplicates += 1
                continue
            self._group(groups, w)
        unclaimed = [g.id for g in gone_rows if g.id not in claimed]
        if unclaimed:
            cat.delete_files(unclaimed)
            counts.removed += len(unclaimed)
        # files waiting for a vector are pending (so a crash leaves them to be redone)
        pending_groups = [grp for lst in groups.values() for grp in lst]
        for grp in pending_groups:
            for w in (grp.rep, *grp.members):
                if w.row is None:
                    fid = cat.add_file(lib_id, w.file.path, w.file.size, w.file.mtime_ns, w.fast,
                                       STATUS_PENDING)
                    w.row = FileRecord(fid, lib_id, w.file.path, w.file.size, w.file.mtime_ns,
                                       w.fast, STATUS_PENDING, None, None)
                elif w.row.status != STATUS_PENDING or w.row.vector_id is not None:
                    cat.update_file(w.row.id, path=w.file.path, size=w.file.size,
                                    mtime_ns=w.file.mtime_ns, fast_hash=w.fast,
                                    status=STATUS_PENDING, reason=None, vector_id=None)
        orphans = cat.orphan_vectors()
        if orphans:
            store.remove(orphans)
            cat.delete_vectors(orphans)

        # ---- embed
        total = len(pending_groups)
        embed_start = time.perf_counter()
        embed_seconds = 0.0
        if total:
            yield from self._embed(pending_groups, counts, cancel, embed_start)
            embed_seconds = time.perf_counter() - embed_start
        yield Progress("save", 0, 1, None, message="Saving the index")
        if not cancel.cancelled:
            cat.set_library_indexed(lib_id)
        self._save_and_commit()
        yield Progress("save", 1, 1, None, message="Saved")
        yield self._report(root, counts, t0, embed_seconds, cancelled=cancel.cancelled)

    def _embed(
        self,
        groups: list[_Group],
        counts: _Counts,
        cancel: CancelToken,
        start: float,
    ) -> Iterator[Progress]:
        cat, store = self._catalog, self._store
        total = len(groups)
        next_id = max(cat.max_vector_id(), store.max_label) + 1
        buf_labels: list[int] = []
        buf_vecs: list[np.ndarray] = []
        since_save = 0
        last_save = time.perf_counter()
        last_save_cost = 0.0
        last_progress = 0.0
        done = 0

        def flush() -> None:
            if buf_labels:
                store.add(np.array(buf_labels, dtype=np.int64), np.stack(buf_vecs))
                buf_labels.clear()
                buf_vecs.clear()

        results = self.embedder.embed_files([g.rep.file.path for g in groups], cancel=cancel)
        finished = False
        try:
            for grp, res in zip(groups, results, strict=False):
                if res.path != grp.rep.file.path:  # pragma: no cover - contract violation
                    raise RuntimeError(f"embedder returned {res.path} for {grp.rep.file.path}")
                members = (grp.rep, *grp.members)
                if res.vector is None:
                    reason = res.error or "could not be embedded"
                    for w in members:
                        assert w.row is not None
                        cat.update_file(w.row.id, path=w.file.path, size=w.file.size,
                                        mtime_ns=w.file.mtime_ns, fast_hash=w.fast,
                                        status=STATUS_SKIPPED, reason=reason, vector_id=None)
                        counts.skipped.append(SkippedFile(w.file.path, reason))
                else:
                    vid = next_id
                    next_id += 1
                    cat.add_vector(vid, grp.rep.fast, grp.rep.full)
                    buf_labels.append(vid)
                    buf_vecs.append(np.asarray(res.vector, dtype=np.float32))
                    for w in members:
                        assert w.row is not None
                        cat.update_file(w.row.id, path=w.file.path, size=w.file.size,
                                        mtime_ns=w.file.mtime_ns, fast_hash=w.fast,
                                        status=STATUS_INDEXED, reason=None, vector_id=vid)
                    counts.indexed += 1
                    counts.duplicates += len(grp.members)
                    if len(buf_labels) >= 64:
                        flush()
                done += 1
                since_save += 1
                now = time.perf_counter()
                if now - last_progress > 0.1 or done == total:
                    last_progress = now
                    rate = done / max(now - start, 1e-9)
                    yield Progress("embed", done, total, res.path, rate,
                                   (total - done) / rate if rate > 0 else None,
                                   message="Describing photos")
                due = since_save >= self.save_every or now - last_save >= self.save_interval_s
                # saving is O(N): never spend more than ~10% of the time on it
                if due and done < total and now - last_save >= 9 * last_save_cost:
                    flush()
                    yield Progress("save", done, total, None, message="Saving the index")
                    s0 = time.perf_counter()
                    self._save_and_commit()
                    last_save = time.perf_counter()
                    last_save_cost = last_save - s0
                    since_save = 0
                if cancel.cancelled:
                    break
            finished = True
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
            flush()
            if not finished:
                # the consumer closed us or something failed: keep what is done, durably
                try:
                    self._save_and_commit()
                except Exception:  # noqa: BLE001 - reconcile on the next open handles it
                    log.exception("could not save the index after an interrupted job")

    def _skip(
        self, lib_id: int, f: scan.ScannedFile, row: FileRecord | None, reason: str,
        counts: _Counts,
    ) -> None:
        if row is None:
            self._catalog.add_file(lib_id, f.path, f.size, f.mtime_ns, None, STATUS_SKIPPED,
                                   reason)
        else:
            self._catalog.update_file(row.id, path=f.path, size=f.size, mtime_ns=f.mtime_ns,
                                      fast_hash=None, status=STATUS_SKIPPED, reason=reason,
                                      vector_id=None)
        counts.skipped.append(SkippedFile(f.path, reason))

    def _point(self, file_id: int, w: _Work, vid: int) -> None:
        self._catalog.update_file(file_id, path=w.file.path, size=w.file.size,
                                  mtime_ns=w.file.mtime_ns, fast_hash=w.fast,
                                  status=STATUS_INDEXED, reason=None, vector_id=vid)

    def _point_or_add(self, lib_id: int, w: _Work, vid: int) -> None:
        if w.row is None:
            self._catalog.add_file(lib_id, w.file.path, w.file.size, w.file.mtime_ns, w.fast,
                                   STATUS_INDEXED, None, vid)
        else:
            self._point(w.row.id, w, vid)

    def _full(self, w: _Work) -> str | None:
        if w.full is None:
            try:
                w.full = scan.full_hash(w.file.path)
            except OSError:
                return None
        return w.full

    def _find_vector(self, w: _Work) -> int | None:
        """A stored vector of the same content as ``w``, or None."""
        cands = [(v, full) for v, full in self._catalog.vectors_by_fast_hash(w.fast)
                 if v in self._store]
        if not cands:
            return None
        if scan.fast_hash_is_full(w.file.size):
            return cands[0][0]
        mine = self._full(w)
        for vid, theirs in cands:
            if theirs is None:
                theirs = self._vector_full_hash(vid)
            # no readable file of that vector (e.g. it was moved): trust the fast hash
            if theirs is None or theirs == mine:
                return vid
        return None

    def _vector_full_hash(self, vid: int) -> str | None:
        for f in self._catalog.files_of_vector(vid):
            try:
                st = os.stat(f.path)
                if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
                    continue
                h = scan.full_hash(f.path)
            except OSError:
                continue
            self._catalog.set_vector_full_hash(vid, h)
            return h
        return None

    def _group(self, groups: dict[str, list[_Group]], w: _Work) -> None:
        lst = groups.setdefault(w.fast, [])
        if not lst:
            lst.append(_Group(w))
            return
        if scan.fast_hash_is_full(w.file.size):
            lst[0].members.append(w)
            return
        mine = self._full(w)
        for grp in lst:
            if mine is not None and self._full(grp.rep) == mine:
                grp.members.append(w)
                return
        lst.append(_Group(w))

    def _report(
        self, root: str, c: _Counts, t0: float, embed_seconds: float, cancelled: bool
    ) -> IndexReport:
        seconds = time.perf_counter() - t0
        rate = c.indexed / embed_seconds if embed_seconds > 0 else 0.0
        report = IndexReport(
            library=root, indexed=c.indexed, unchanged=c.unchanged, moved=c.moved,
            removed=c.removed, duplicates=c.duplicates, skipped=tuple(c.skipped),
            seconds=seconds, images_per_s=rate, cancelled=cancelled,
        )
        log.info(
            "%s: %d indexed, %d unchanged, %d moved, %d removed, %d duplicates, %d skipped "
            "in %.1fs%s", root, c.indexed, c.unchanged, c.moved, c.removed, c.duplicates,
            len(c.skipped), seconds, " (cancelled)" if cancelled else "",
        )
        return report

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: Path | str | Image.Image | Sequence[Path | str] | np.ndarray,
        k: int = 20,
        library: Path | str | None = None,
        expansion: QueryExpansion | None = None,
    ) -> list[SearchHit]:
        """Photos most similar to ``query`` (a path, an image, several paths, or a vector).

        With ``expansion``, the query is merged with its top neighbours and searched again
        (alpha-QE), which finds more of the same object or class at the cost of a second search.
        """
        self._check_usable()
        if isinstance(query, np.ndarray):
            vec = np.asarray(query, dtype=np.float32)
            if vec.ndim == 2:
                vec = _mean_direction(vec)
        elif isinstance(query, Image.Image):
            vec = self.embedder.embed_image(query)
        elif isinstance(query, (str, os.PathLike)):
            vec = self.embedder.embed_path(query)
        else:
            paths = list(query)
            if not paths:
                raise ValueError("no query images")
            vec = _mean_direction(np.stack([self.embedder.embed_path(p) for p in paths]))
        return self.search_vectors(vec[None, :], k=k, library=library, expansion=expansion)[0]

    def search_vectors(
        self, vectors: np.ndarray, k: int = 20, library: Path | str | None = None,
        expansion: QueryExpansion | None = None,
    ) -> list[list[SearchHit]]:
        """One hit list per query vector; every path of a shared (duplicate) vector is a hit."""
        self._check_usable()
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[1] != self.embedder.meta.dim:
            raise ValueError(f"query dim {q.shape[1]} != model dim {self.embedder.meta.dim}")
        lib_id: int | None = None
        allowed: np.ndarray | None = None
        if library is not None:
            root = scan.normalize_root(library)
            lib_id = self._catalog.library_id(root)
            if lib_id is None:
                raise NotALibraryError(f"{root} is not an indexed library")
            if len(self._catalog.libraries()) > 1:
                allowed = self._library_vectors(lib_id)
        if k <= 0:
            return [[] for _ in range(len(q))]
        if expansion is not None and expansion.n > 0 and len(self._store):
            q = self._expand(q, expansion, allowed)
        out: list[list[SearchHit]] = []
        for labels, sims in self._searched.query(q, k, allowed):
            paths = self._catalog.paths_of_vectors(labels.tolist(), lib_id)
            hits: list[SearchHit] = []
            seen: set[str] = set()
            for lab, sim in zip(labels.tolist(), sims.tolist(), strict=True):
                for path, root in paths.get(lab, ()):
                    if path in seen:
                        continue
                    seen.add(path)
                    score = float(min(1.0, max(-1.0, sim)))
                    hits.append(SearchHit(path, score, len(hits) + 1, root))
                    if len(hits) >= k:
                        break
                if len(hits) >= k:
                    break
            out.append(hits)
        return out

    def _expand(self, q: np.ndarray, expansion: QueryExpansion, allowed: np.ndarray | None
                ) -> np.ndarray:
        expanded = np.empty_like(q)
        searched = self._searched
        for i, (labels, sims) in enumerate(searched.query(q, expansion.n, allowed)):
            if len(labels) == 0:
                expanded[i] = q[i]
                continue
            expanded[i] = expand(q[i], searched.get(labels), sims, expansion.alpha)
        return expanded

    def _library_vectors(self, lib_id: int) -> np.ndarray:
        """The vector ids one library uses (cached until the catalog changes)."""
        stamp = self._catalog.changes
        cached = self._allowed_cache.get(lib_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ids = np.array(self._catalog.vector_ids_of_library(lib_id), dtype=np.int64)
        self._allowed_cache = {lib_id: (stamp, ids)}
        return ids

    # ------------------------------------------------------------------ libraries
    def libraries(self) -> list[LibraryInfo]:
        return [LibraryInfo(r.root, r.files, r.indexed, r.skipped)
                for r in self._catalog.libraries()]

    def learn_whitening(self, dim: int | None = None) -> Path:
        """Learn PCA-whitening on this index's descriptors and re-project them in place.

        No photo is embedded again: the stored (unwhitened) vectors are transformed, the store
        gets the whitened model's meta, and ``self.embedder`` becomes the whitened embedder.
        Returns the whitening file (the caller records it in the embedder settings).
        """
        with self._job_lock:
            self._check_usable()
            if self.embedder.whitening is not None:
                raise ValueError("this index is already whitened; learn again from unwhitened "
                                 "descriptors (`imgsearch whiten` re-embeds them first)")
            labels, vectors = self._store.vectors()
            if len(vectors) < 2:
                raise ValueError("index at least two photos before learning a whitening")
            whitening = learn_pca_whitening(vectors, dim=dim)
            path = whitening.save(self.data_dir / f"whitening-{whitening.id}.npz")
            whitened = self.embedder.with_whitening(path)
            self._store.reset(whitened.meta)
            self._store.add(labels, whitening.apply(vectors))
            self._save_and_commit()
            self.embedder = whitened
            log.info("learned %s on %d descriptors", whitening.id, len(vectors))
            return path

    def remove_library(self, root: Path | str) -> None:
        """Forget a library: its files leave the catalog, vectors no other file uses are deleted."""
        root_s = scan.normalize_root(root)
        with self._job_lock:
            lib_id = self._catalog.library_id(root_s)
            if lib_id is None:
                raise NotALibraryError(f"{root_s} is not an indexed library")
            self._catalog.remove_library(lib_id)
            orphans = self._catalog.orphan_vectors()
            self._store.remove(orphans)
            self._catalog.delete_vectors(orphans)
            self._save_and_commit()

    def stats(self) -> IndexStats:
        return IndexStats(
            data_dir=str(self.data_dir),
            vectors=len(self._store),
            files=self._catalog.file_count(),
            libraries=tuple(self.libraries()),
            meta=self._store.meta,
        )

    @property
    def store(self) -> VectorStore:
        return self._store

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def close(self) -> None:
        self._catalog.close()

    def __enter__(self) -> ImageLibrary:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _mean_direction(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    mean = v.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        raise ValueError("the query images cancel each other out")
    return (mean / norm).astype(np.float32)
