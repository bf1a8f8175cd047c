"""The library facade used by the CLI and the GUI: index folders, search them.

``ImageLibrary`` composes the SQLite catalog (app/catalog.py), the vector store
(index/store.py) and an embedder (ml/embedder.py). The work is done elsewhere: indexing by the
job of app/indexing.py (its steps: scan, classify, hash, resolve, embed, commit, report), search
by app/search.py, the DBA copy of the store by app/augmented.py.

Indexing is incremental and crash-safe:

* only new and changed files are embedded; files whose size and mtime are unchanged are not even
  hashed; a file whose content (fast hash) is already known is re-pointed (moved/renamed) or
  shares the existing vector (duplicate) instead of being embedded again;
* catalog write transactions are short (app/catalog.py): what does not refer to unsaved vectors
  commits at once; the new vectors' rows are staged and committed right after the store save
  that made them durable (every ``save_every`` images or ``save_interval_s`` seconds, at the end
  and on cancel), so the committed catalog never refers to unsaved vectors. Catalog and store
  are reconciled under the writer lock (below): catalog vectors missing from the saved store
  make their files pending again (they are redone), store labels the catalog does not know are
  removed. A kill -9 at any moment loses at most the work
  since the last save.
* the store's ModelMeta must equal the embedder's: otherwise ModelMismatchError, until
  ``index_library(..., rebuild=True)`` drops every vector (all files become pending).

One writer per data dir, any number of readers (app/writer_lock.py):

* opening reads; it repairs (reconciles) only if no process is writing at that moment, under
  the lock, without waiting. Every write (an indexing job, removing a library, learning a
  whitening) holds the data dir's writer lock from start to end; a second writer waits
  (Progress events of stage "wait", and ``on_wait``) or, with ``wait=False``, raises
  WriterBusyError. Right after
  taking the lock the library loads what other processes saved meanwhile, then reconciles
  catalog and store and removes what crashed saves left; vector ids are handed out under it.
* a reader (search, stats) sees another process's saved work at its next query: one stat of
  the index pointer tells whether the saved index changed; then it is loaded again.
* a failed save (disk full, I/O error: StorageWriteError) rolls the catalog back to the last
  save; the write ends and the library reloads the saved state. So does any write that ends
  with an exception (a catalog write error outside a commit, a job its consumer dropped): no
  SQLite write transaction outlives the writer lock.
* the embedder settings (``settings``, embedder.json) are recorded under the lock, right after
  a job's first save; a whitened index whose settings were not recorded uses the whitening
  file of the data dir. Derived data (the HNSW graph,
  the DBA store) that is damaged is rebuilt from the stored vectors, never by embedding again.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgsearch_gui.app import duplicates, indexing, scan, search
from imgsearch_gui.app.augmented import is_current, open_augmented, sync_augmented
from imgsearch_gui.app.catalog import Catalog
from imgsearch_gui.app.config import save_config
from imgsearch_gui.app.duplicates import DuplicateReport, FinderOptions
from imgsearch_gui.app.search import Query
from imgsearch_gui.app.writer_lock import WriterLock
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import (
    CatalogCorruptError,
    CatalogError,
    CatalogTooNewError,
    IndexCorruptError,
    ModelMismatchError,
    NotALibraryError,
    StorageError,
    UserError,
    WhiteningError,
    WriterBusyError,
)
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress, SearchHit
from imgsearch_gui.index.store import HnswParams, VectorStore, pointer_stamp, read_pointer
from imgsearch_gui.ml.query_expansion import Augmentation
from imgsearch_gui.ml.whitening import learn_pca_whitening

if TYPE_CHECKING:  # pragma: no cover
    from imgsearch_gui.app.indexing import BatchEmbedder
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
    settings (embedder.json) and fine-tuned models stay where they are. Done under the writer
    lock (WriterBusyError while another process writes).
    """
    data_dir = Path(data_dir)
    lock = WriterLock(data_dir)
    if not lock.try_acquire("index repair"):
        holder = lock.holder()
        raise WriterBusyError(data_dir, holder.pid, holder.what)
    try:
        return _move_aside(data_dir)
    finally:
        lock.release()


def _move_aside(data_dir: Path) -> Path:
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
class _View:
    """What a search reads, replaced in one assignment (never half of a reload): the store, the
    store queries go to (the augmented one when DBA is on and it is complete) and the pipeline."""

    store: VectorStore
    searched: VectorStore
    pipeline: search.SearchPipeline

    @property
    def stores(self) -> tuple[VectorStore, ...]:
        """What a query ranks over (``search.rank``): the augmented store and the store, or the
        store alone (no DBA, or a DBA copy that is not complete)."""
        return (self.store,) if self.searched is self.store else (self.searched, self.store)


@dataclass(frozen=True)
class LibraryInfo:
    root: str
    files: int
    indexed: int
    skipped: int
    #: the root is missing or an empty folder while photos are indexed under it (unplugged)
    offline: bool = False


@dataclass(frozen=True)
class IndexStats:
    data_dir: str
    vectors: int
    files: int
    libraries: tuple[LibraryInfo, ...]
    meta: ModelMeta | None


class ImageLibrary:
    """Catalog + vector store + embedder; one thread may search while another indexes.

    With ``augmentation`` (DBA), queries also go to a derived copy of the store in which every
    vector is merged with its nearest neighbours; a photo's score is the better of its two
    cosine similarities (``search.rank``), so an identical photo still scores 1.
    """

    @classmethod
    def for_config(cls, data_dir: Path | str, embedder: Embedder, config: EmbedderConfig,
                   **kwargs: Any) -> ImageLibrary:
        """The library as the CLI and the GUI open it: DBA and the query settings (rotations,
        alpha-QE) from the data dir's settings with the command's flags applied."""
        dba = config.dba
        return cls(data_dir, embedder, augmentation=Augmentation(n=dba) if dba > 0 else None,
                   query=search.QuerySettings.of(config), **kwargs)

    def __init__(
        self,
        data_dir: Path | str,
        embedder: Embedder,
        *,
        save_every: int = 2000,
        save_interval_s: float = 30.0,
        params: HnswParams | None = None,
        augmentation: Augmentation | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        settings: EmbedderConfig | None = None,
        query: search.QuerySettings | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        #: how a photo query is searched unless a call says otherwise (rotations, alpha-QE)
        self.query = query or search.QuerySettings()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.save_every = max(1, int(save_every))
        self.save_interval_s = float(save_interval_s)
        self._job_lock = threading.Lock()
        self._corrupt: IndexCorruptError | None = None
        self.augmentation = augmentation if augmentation and augmentation.n > 0 else None
        self._augmented: VectorStore | None = None
        self._params = params
        #: wait for another process's write (else WriterBusyError); ``on_wait`` gets the message
        self.wait_for_writer = wait
        self.on_wait = on_wait
        #: the embedder settings to record in embedder.json (app/config.py): indexing jobs and
        #: learning a whitening write them under the writer lock, right after the write's first
        #: save, so that they always name the model of the saved index (None: not recorded)
        self.settings = settings
        self._pending_settings: EmbedderConfig | None = None
        self._adopted_whitening: str | None = None
        self._writer = WriterLock(self.data_dir)
        self._state = threading.RLock()  # replacing the loaded stores
        self._stamp: tuple[int, int, int] | None = None
        self._cancel: CancelToken | None = None
        self._write_failed = False
        try:
            self._catalog = Catalog(self.data_dir / CATALOG_FILE)
        except CatalogTooNewError:
            raise
        except CatalogError as exc:
            raise CatalogCorruptError(self.data_dir, str(exc)) from exc
        self._aug_dirty = False  # the augmented store holds changes not saved yet
        self._open_stores()
        self._repair_if_free()

    def _open_stores(self) -> None:
        """Load the saved index (only reads: repairs are done under the writer lock).

        Everything is built first (a DBA sync or redo may take long); searches meanwhile use
        what was loaded before, then the new state replaces it at once."""
        index_dir = self.data_dir / INDEX_DIR
        stamp = pointer_stamp(index_dir)
        corrupt = None
        try:
            store = VectorStore.open(index_dir, self._params)
        except IndexCorruptError as exc:
            log.error("%s", exc)
            corrupt, store = exc, VectorStore(index_dir, self._params)
        else:
            if not store.existed and self._catalog.max_vector_id() >= 0:
                corrupt = IndexCorruptError(
                    index_dir, "the index files are missing but the catalog lists indexed photos"
                )
                log.error("%s", corrupt)
        augmented, dirty = None, False
        if self.augmentation is not None and corrupt is None:
            augmented, dirty = self._load_augmented(store)
        with self._state:
            self._store, self._corrupt, self._stamp = store, corrupt, stamp
            self._search = search.SearchPipeline(self._catalog)
            self._augmented, self._aug_dirty = augmented, dirty
            self._publish()

    def _open_augmented(self) -> None:
        """The searched copy of the index with DBA applied (see _load_augmented), loaded again."""
        augmented, dirty = self._load_augmented(self._store)
        with self._state:
            self._augmented, self._aug_dirty = augmented, dirty
            self._publish()

    def _load_augmented(self, store: VectorStore) -> tuple[VectorStore, bool]:
        """The saved DBA store brought up to date with ``store`` (True: not saved so); derived,
        so rebuilt (from the stored vectors) when it is damaged or was computed from another
        store."""
        aug = open_augmented(self.data_dir / AUGMENTED_DIR, self._params)
        assert self.augmentation is not None
        return aug, sync_augmented(store, aug, self.augmentation)

    def _publish(self) -> None:
        """Make the current stores what searches read. Queries go to the augmented store only
        when it is complete (a cancelled DBA redo leaves it behind: the store is searched then,
        so every saved photo is found)."""
        aug = self._augmented
        complete = (aug is not None and self.augmentation is not None
                    and is_current(self._store, aug, self.augmentation))
        if aug is not None and not complete:
            log.info("the DBA index lags the index: searching the index itself until it is done")
        self._view = _View(self._store, aug if complete and aug is not None else self._store,
                           self._search)

    def _repair_if_free(self) -> None:
        """At open, only if no process is writing (never waits): under the writer lock, repair
        what a crash left (catalog and store reconciled, stale files removed) and save a DBA
        store that had to be computed again, so later opens need not."""
        if not self._writer.try_acquire("index repair"):
            return
        failed = False
        try:
            self._begin_write()
            if self._corrupt is None and self._augmented is not None and self._aug_dirty:
                self._augmented.save()
                self._aug_dirty = False
        except (StorageError, OSError) as exc:
            failed = True
            log.warning("could not repair the index: %s", exc)
        except BaseException:
            failed = True
            raise
        finally:
            self._end_write(failed)

    # ------------------------------------------------------------------ writing
    def _wait_for_writer(self, what: str, cancel: CancelToken | None = None,
                         wait: bool | None = None) -> Iterator[Progress]:
        """Take the writer lock (waiting for another process); True when taken (False: cancelled
        while waiting). Progress events of stage "wait" say for whom it waits."""
        wait = self.wait_for_writer if wait is None else wait
        messages = self._writer.acquire(what, wait=wait, cancel=cancel)
        while True:
            try:
                message = next(messages)
            except StopIteration as stop:
                return bool(stop.value)
            if self.on_wait is not None:
                self.on_wait(message)
            yield Progress("wait", 0, 0, None, message=message)

    @contextmanager
    def _writing(self, what: str, wait: bool | None = None) -> Iterator[None]:
        """Hold the writer lock for a write that is not a generator (see _begin_write)."""
        for _ in self._wait_for_writer(what, wait=wait):
            pass
        failed = False
        try:
            self._begin_write()
            yield
        except BaseException:
            failed = True
            raise
        finally:
            self._end_write(failed)

    def _begin_write(self) -> None:
        """Under the writer lock: load what other processes saved since this library read the
        index, then make catalog and store agree and remove what crashed saves left."""
        with self._state:
            # what a failed or killed write committed since its last save is taken back first
            self._catalog.rollback()
            index_dir = self.data_dir / INDEX_DIR
            if self._corrupt is not None or read_pointer(index_dir) != self._store.pointer:
                log.debug("the saved index changed since it was loaded: loading it again")
                self._open_stores()
            elif self._augmented is not None and (
                    read_pointer(self.data_dir / AUGMENTED_DIR) != self._augmented.pointer):
                self._open_augmented()
            self._write_failed = False
            if self._corrupt is None:
                self._reconcile()
                self._store.cleanup()
                if self._augmented is not None:
                    self._augmented.cleanup()
            self._catalog.mark()  # a failed write goes back to this state (or its last save)

    def _end_write(self, failed: bool = False) -> None:
        """Release the writer lock. A write that ended with an exception (any: a catalog write
        error outside a commit too), or left catalog changes uncommitted, is rolled back first
        and the saved state loaded again: memory may be ahead of what is saved, and an open
        SQLite write transaction would block every other writer."""
        try:
            if failed or self._write_failed or self._catalog.in_transaction or self._catalog.staged:
                if not (failed or self._write_failed):
                    log.warning("a write left catalog changes uncommitted: rolling them back")
                with self._state:
                    try:
                        self._catalog.rollback()
                    except StorageError as exc:  # the next writer takes it back (undo_log)
                        log.info("could not roll the catalog back now: %s", exc)
                    self._open_stores()
            else:
                self._catalog.mark()  # the write is done: all it committed is kept
        finally:
            self._cancel = None
            self._pending_settings = None
            self._writer.release()

    def _reconcile(self) -> None:
        """Make catalog and store agree after a crash (see module docstring)."""
        catalog_ids = self._catalog.vector_ids()
        store_ids = set(self._store.labels().tolist())
        missing = catalog_ids - store_ids
        extra = store_ids - catalog_ids
        if missing:
            log.warning("%d catalog vectors were not saved in the index: redoing their files",
                        len(missing))
            with self._catalog.transaction():
                self._catalog.delete_vectors(sorted(missing))
        if extra:
            log.warning("removing %d index vectors the catalog does not know", len(extra))
            self._store.remove(sorted(extra))
            self._store.save()

    def _check_usable(self) -> None:
        if self._corrupt is not None:
            raise self._corrupt
        stored = self._store.meta
        current = self.embedder.meta
        if stored is not None and len(self._store) and stored.fingerprint != current.fingerprint:
            if not self._adopt_whitening(stored):
                raise ModelMismatchError(stored, current)

    def _adopt_whitening(self, stored: ModelMeta) -> bool:
        """The index was whitened here but embedder.json still names the plain model (the
        process died, or the settings could not be written, right after the index switched):
        when the whitening file is in the data dir and makes the embedder the index's model,
        use it (the next recorded settings name it). True when adopted."""
        with_whitening = getattr(self.embedder, "with_whitening", None)
        if not stored.whitening_id or self.embedder.meta.whitening_id or with_whitening is None:
            return False
        path = self.data_dir / f"whitening-{stored.whitening_id}.npz"
        if not path.is_file():
            return False
        try:
            candidate = with_whitening(path)
        except (UserError, OSError, ValueError) as exc:
            log.warning("cannot use %s: %s", path, exc)
            return False
        if candidate.meta.fingerprint != stored.fingerprint:
            return False
        log.warning("the index is whitened with %s, which the settings do not name: using it",
                    path.name)
        self.embedder = candidate
        self._adopted_whitening = str(path)
        return True

    def _record_settings(self) -> None:
        """Write the pending settings (see ``settings``); the writer lock is held."""
        settings, self._pending_settings = self._pending_settings, None
        if settings is None:
            return
        if self._adopted_whitening and settings.whitening is None:
            settings = replace(settings, whitening=self._adopted_whitening)
        save_config(self.data_dir, settings)  # FileWriteError/FileFullError: a StorageError

    def _save_and_commit(self) -> None:
        """The one place that makes work durable: store first, then the catalog (the writer
        lock is held).

        The augmented store is derived from the store; it is brought up to date and saved here
        too (a crash in between is repaired by the next writer). A failed save (StorageError)
        rolls the catalog back and ends the write: later calls of this write do nothing, and
        the saved state is loaded again when the write ends.
        """
        if self._write_failed:
            log.debug("not saving: an earlier save of this write failed")
            return
        try:
            self._store.save(self._cancel)
        except StorageError:
            self._write_failed = True  # the write ends: _end_write rolls the catalog back
            raise
        try:
            self._catalog.commit()  # the staged rows of the saved vectors, in one transaction
        except StorageError:  # the store is ahead of the catalog: the next writer reconciles
            self._write_failed = True
            raise
        self._record_settings()
        try:
            if self._augmented is not None and (self._sync_augmented() or self._aug_dirty):
                self._augmented.save()
                self._aug_dirty = False
        except StorageError:
            self._write_failed = True
            raise
        finally:
            with self._state:
                self._publish()

    def _sync_augmented(self) -> bool:
        """Bring the augmented store up to date with the store; True if anything changed."""
        if self._augmented is None or self.augmentation is None:
            return False
        return sync_augmented(self._store, self._augmented, self.augmentation, self._cancel)

    def _refresh_for_read(self) -> None:
        """Before a search: load the index again when another process saved it since (one stat
        of its pointer when nothing changed; never while this library writes)."""
        if self._writer.held:
            return
        stamp = pointer_stamp(self.data_dir / INDEX_DIR)
        if stamp == self._stamp:
            return
        with self._state:
            if self._writer.held or stamp == self._stamp:
                return
            try:
                current = read_pointer(self.data_dir / INDEX_DIR)
            except OSError:
                return
            if current == self._store.pointer and self._corrupt is None:
                self._stamp = stamp
                return
            log.debug("the index was saved by another process: loading it again")
            self._open_stores()

    def searched_stores(self) -> tuple[VectorStore, ...]:
        """What a search ranks over (the augmented store first where DBA is on and complete)."""
        self._refresh_for_read()
        return self._view.stores

    @property
    def _searched(self) -> VectorStore:
        """Where queries go: the augmented store when DBA is on (and it is complete)."""
        return self._view.searched

    @property
    def needs_rebuild(self) -> str | None:
        """Why the index must be rebuilt before use (damaged / another model), or None."""
        self._refresh_for_read()
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
        prune: bool = False,
        retry_skipped: bool = False,
        embed_with: BatchEmbedder | None = None,
    ) -> Iterator[Progress | IndexReport]:
        """Index ``root`` incrementally: Progress events, then one IndexReport.

        ``embed_with``: what embeds the new photos instead of ``self.embedder`` (a Ray cluster,
        cluster/ray_embed.py); it must give this embedder's vectors (its ``meta`` is checked).

        A library root that is missing, or empty while photos are indexed under it, is offline:
        the report says so and nothing is removed, unless ``prune``. ``retry_skipped`` embeds
        the files earlier runs skipped again (a rebuild does too).

        A generator: ModelMismatchError / IndexCorruptError (when not ``rebuild``) and
        NotADirectoryError (a missing folder that is not a library) are raised by the first
        ``next()``, before anything is changed.
        """
        root_s = scan.normalize_root(root)
        if not os.path.isdir(root_s) and self._catalog.library_id(root_s) is None:
            raise NotADirectoryError(f"not a folder: {root_s}")
        if not rebuild:
            self._check_usable()
        if embed_with is not None and embed_with.meta != self.embedder.meta:
            raise ModelMismatchError(self.embedder.meta, embed_with.meta)
        if not self._job_lock.acquire(blocking=False):
            raise RuntimeError("another indexing job is running on this library")
        cancel = cancel or CancelToken()
        try:
            if not (yield from self._wait_for_writer("indexing job", cancel)):
                yield self._cancelled_report(root_s, cancel)
                return
            failed = False
            try:
                self._begin_write()
                if not rebuild:
                    self._check_usable()
                self._cancel = cancel
                self._pending_settings = self.settings
                yield from self._index(root_s, rebuild, cancel, embed_with, prune=prune,
                                       retry_skipped=retry_skipped)
                self._record_settings()
            except BaseException:  # also GeneratorExit: a job its consumer dropped
                failed = True
                raise
            finally:
                self._end_write(failed)
        finally:
            self._job_lock.release()

    def _cancelled_report(self, root: str, cancel: CancelToken) -> IndexReport:
        """The report of a job cancelled before it began (while waiting for another writer)."""
        job = indexing.IndexJob(self._catalog, self._store, self.embedder,
                                commit=self._save_and_commit, root=root, cancel=cancel)
        return indexing.report(job, 0.0)

    def _index(
        self, root: str, rebuild: bool, cancel: CancelToken, embed_with: BatchEmbedder | None,
        **options: bool,
    ) -> Iterator[Progress | IndexReport]:
        started = time.perf_counter()
        if rebuild:
            log.info("rebuilding the index with %s", self.embedder.meta.describe())
            self._store.reset(self.embedder.meta)  # a new lineage: derived stores start again
            self._catalog.stage(self._catalog.reset_vectors)  # committed after the store save
            self._corrupt = None
            if self.augmentation is not None and self._augmented is None:
                self._augmented = open_augmented(self.data_dir / AUGMENTED_DIR, self._params)
            self._save_and_commit()
        elif len(self._store) == 0 and self._store.meta != self.embedder.meta:
            self._store.reset(self.embedder.meta)  # nothing to mix: adopt the current model
        job = indexing.IndexJob(
            self._catalog, self._store, embed_with or self.embedder,
            commit=self._save_and_commit, root=root,
            cancel=cancel, save_every=self.save_every, save_interval_s=self.save_interval_s,
            started=started, **options,
        )
        yield from indexing.run(job)

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: Query,
        k: int = 20,
        library: Path | str | None = None,
        settings: search.QuerySettings | None = None,
    ) -> list[SearchHit]:
        """Photos most similar to ``query``: a photo (path or image), several photos (their mean
        query, see :func:`~imgsearch_gui.app.search.mean_query`), a vector, or vectors (2-D, mean).

        ``settings`` (default ``self.query``, the data dir's): with rotations, the photo is also
        searched turned by 90, 180 and 270 degrees, each hit scored by its best view; with an
        expansion, the query is merged with its top neighbours and searched again (alpha-QE),
        which finds more of the same object or class at the cost of a second search.
        """
        self._check_usable()
        settings = settings or self.query
        views = search.query_views(self.embedder, query, settings.quarter_turns)
        return self._search_views([views], k, library, settings)[0]

    def search_vectors(
        self, vectors: np.ndarray, k: int = 20, library: Path | str | None = None,
        settings: search.QuerySettings | None = None,
    ) -> list[list[SearchHit]]:
        """One hit list per query vector (no turned views: a vector has none); every path of a
        shared (duplicate) vector is a hit."""
        self._check_usable()
        q = search.as_queries(vectors, self.embedder.meta.dim)
        return self._search_views([row[None, :] for row in q], k, library, settings or self.query)

    def _search_views(self, views: list[np.ndarray], k: int, library: Path | str | None,
                      settings: search.QuerySettings) -> list[list[SearchHit]]:
        self._refresh_for_read()
        self._check_usable()
        dim = self.embedder.meta.dim
        views = [search.as_queries(v, dim) for v in views]
        view = self._view  # one read: a reload meanwhile replaces it whole
        return view.pipeline.run(view.stores, views, k, library,
                                 settings.expansion if len(view.store) else None,
                                 self._bands(settings), settings.turned_min)

    def _bands(self, settings: search.QuerySettings):
        """The score bands of this model and search (None: not measured for them)."""
        dba = self.augmentation.n if self.augmentation is not None else 0
        return search.model_bands(self.embedder.config, dba, settings)

    # ------------------------------------------------------------------ libraries
    def libraries(self) -> list[LibraryInfo]:
        found_offline = self._catalog.offline_library_roots()
        return [LibraryInfo(r.root, r.files, r.indexed, r.skipped,
                            r.files > 0 and scan.library_offline(r.root, r.root in found_offline))
                for r in self._catalog.libraries()]

    def learn_whitening(self, dim: int | None = None) -> Path:
        """Learn PCA-whitening on this index's descriptors and re-project them in place.

        No photo is embedded again: the stored (unwhitened) vectors are transformed, the store
        gets the whitened model's meta, and ``self.embedder`` becomes the whitened embedder.
        Returns the whitening file; with ``settings``, they are recorded with it (in the same
        write, right after the store switched to the whitened vectors).
        """
        with self._job_lock, self._writing("whitening"):
            self._check_usable()
            if self.embedder.whitening is not None:
                raise WhiteningError("this index is already whitened; learn again from unwhitened "
                                 "descriptors (`imgsearch whiten` re-embeds them first)")
            labels, vectors = self._store.vectors()
            if len(vectors) < 2:
                raise WhiteningError("index at least two photos before learning a whitening")
            whitening = learn_pca_whitening(vectors, dim=dim)
            path = whitening.save(self.data_dir / f"whitening-{whitening.id}.npz")
            whitened = self.embedder.with_whitening(path)
            self._store.reset(whitened.meta)
            self._store.add(labels, whitening.apply(vectors))
            if self.settings is not None:
                self._pending_settings = replace(self.settings, whitening=str(path))
            self._save_and_commit()
            self.embedder = whitened
            log.info("learned %s on %d descriptors", whitening.id, len(vectors))
            return path

    def remove_library(self, root: Path | str) -> None:
        """Forget a library: its files leave the catalog, vectors no other file uses are deleted."""
        root_s = scan.normalize_root(root)
        with self._job_lock, self._writing("library removal"):
            lib_id = self._catalog.library_id(root_s)
            if lib_id is None:
                raise NotALibraryError(f"{root_s} is not an indexed library")
            orphans = sorted({*self._catalog.vectors_only_of_library(lib_id),
                              *self._catalog.orphan_vectors()})
            self._store.remove(orphans)

            def remove() -> None:  # committed after the store save
                self._catalog.remove_library(lib_id)
                self._catalog.delete_vectors(orphans)

            self._catalog.stage(remove)
            self._save_and_commit()

    # ------------------------------------------------------------------ duplicates
    def find_duplicates(self, options: FinderOptions | None = None,
                        cancel: CancelToken | None = None
                        ) -> Iterator[Progress | DuplicateReport]:
        """Exact and near-duplicate groups among the indexed photos (app/duplicates/finder.py);
        thumbprints an older catalog lacked are stored afterwards when no one else writes."""
        self._refresh_for_read()
        self._check_usable()
        for event in duplicates.run(self._catalog, self._store, options, cancel):
            if isinstance(event, DuplicateReport) and event.new_thumbprints:
                self._store_thumbprints(event.new_thumbprints)
            yield event

    def _store_thumbprints(self, thumbs: dict[int, bytes]) -> None:
        """Derived data, stored only when no one writes (neither this process's indexing job,
        which must never find the job lock taken by it, nor another process): else made again
        next time."""
        if not self._job_lock.acquire(blocking=False):
            log.info("thumbprints not stored: an indexing job runs")
            return
        try:
            with self._writing("storing thumbprints", wait=False):
                self._catalog.set_thumbprints(thumbs)
        except (WriterBusyError, StorageError) as exc:
            log.info("thumbprints not stored (%s)", exc)
        finally:
            self._job_lock.release()

    def mark_not_duplicates(self, paths: Sequence[str]) -> int:
        """Remember that these photos are not duplicates of each other (by content: it holds
        after a move, a rename or a model change); returns how many pairs were new."""
        hashes = duplicates.content_hashes(self._catalog, paths)
        with self._job_lock, self._writing("remembering photos that are not duplicates"):
            return self._catalog.add_distinct_pairs(itertools.combinations(hashes, 2))

    def forget_files(self, paths: Sequence[str]) -> int:
        """Take files that are gone (moved to the trash) out of the catalog and their vectors,
        if no other file uses them, out of the index; returns how many files."""
        with self._job_lock, self._writing("forgetting removed photos"):
            ids = duplicates.file_ids(self._catalog, paths)
            with self._catalog.transaction():
                self._catalog.delete_files(ids)
            orphans = self._catalog.orphan_vectors()
            self._store.remove(orphans)
            self._catalog.stage(lambda: self._catalog.delete_vectors(orphans))
            self._save_and_commit()
            return len(ids)

    def stats(self) -> IndexStats:
        self._refresh_for_read()
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

