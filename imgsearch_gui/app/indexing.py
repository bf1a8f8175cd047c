"""The indexing job: one folder made searchable, in named steps.

:func:`run` chains the steps; each is a function of the job (:class:`IndexJob`: catalog, store,
embedder, counts) that can be read and tested alone. Steps that take time are generators: they
yield Progress events and return their result (``result = yield from step(...)``).

1. :func:`scan_folder`: the photo files under the root (path, size, mtime), and the folders
   that could not be read. A root that is missing, or empty while the catalog holds photos under
   it (an unplugged drive, an empty mount point), is *offline*: the job reports it and changes
   nothing, unless ``prune`` (the user confirmed that the photos are gone).
2. :func:`classify`: against the catalog, without reading a file: unchanged (counted), new or
   changed (to hash), known but without a vector yet (pending after a crash or a rebuild).
   Skipped files are retried when their size or mtime changed, or with ``retry_skipped``.
3. :func:`hash_files`: the fast content hash of what is new or changed; a file touched without
   a change of content keeps its vector.
4. :func:`resolve`: a file whose content has a stored vector is re-pointed (moved) or shares it
   (duplicate); the others are grouped by content, one vector a group; files gone are deleted
   (never those under a folder that could not be read: they were not seen, not gone).
   :func:`mark_pending` and :func:`drop_orphans` then leave the catalog consistent.
5. :func:`embed`: one vector a group; work becomes durable in batches through ``job.commit``
   (store save, then catalog commit), so a kill -9 loses at most the work since the last save.
6. :func:`finish` (the last commit) and :func:`report`.

Catalog write transactions are short (milliseconds): none is open across a yield, the hashing of
files or embedding. What does not refer to unsaved vectors (the library row, skipped files, files
touched without a change, moves and duplicates of stored vectors, deletions, new files as
pending, dropped orphans) commits at once; the rows of new vectors (the vector, its files
indexed) and the library's "indexed" time are staged (``Catalog.stage``) and written by the
``job.commit`` right after the store save that made those vectors durable.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from imgsearch_gui.app import scan
from imgsearch_gui.app.catalog import STATUS_INDEXED, STATUS_PENDING, STATUS_SKIPPED, Catalog, FileRecord
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress, SkippedFile
from imgsearch_gui.index.store import VectorStore

if TYPE_CHECKING:  # pragma: no cover
    from imgsearch_gui.base.meta import ModelMeta
    from imgsearch_gui.ml.embedder import EmbedResult

log = logging.getLogger(__name__)


class BatchEmbedder(Protocol):
    """What the job embeds with: the local Embedder, or a cluster's (cluster/ray_embed.py)."""

    @property
    def meta(self) -> ModelMeta: ...

    def embed_files(self, paths: Sequence[str], cancel: CancelToken | None = None
                    ) -> Iterator[EmbedResult]: ...

_FLUSH_EVERY = 64  # vectors buffered before they are added to the store


@dataclass
class Work:
    """A file that needs a vector: new, changed, or pending (after a crash or a rebuild)."""

    file: scan.ScannedFile
    row: FileRecord | None
    fast: str
    full: str | None = None


@dataclass
class Group:
    """Files of identical content found in this run: embedded once, all point at the vector."""

    rep: Work
    members: list[Work] = field(default_factory=list)


@dataclass
class Counts:
    embedded: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    duplicates: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    offline: bool = False


@dataclass
class IndexJob:
    """What the steps share. ``commit`` makes the work durable: the library's store save (and its
    augmented store), then the catalog commit."""

    catalog: Catalog
    store: VectorStore
    embedder: BatchEmbedder
    commit: Callable[[], None]
    root: str
    cancel: CancelToken = field(default_factory=CancelToken)
    save_every: int = 2000
    save_interval_s: float = 30.0
    started: float = field(default_factory=time.perf_counter)
    lib_id: int = -1
    counts: Counts = field(default_factory=Counts)
    #: remove the photos of a root that is missing or empty (else it is offline: kept)
    prune: bool = False
    #: embed the files skipped by earlier runs again, changed or not
    retry_skipped: bool = False


class _Throttle:
    """True at most once per ``interval`` seconds (the first call always)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = 0.0

    def due(self, now: float | None = None) -> bool:
        now = time.perf_counter() if now is None else now
        if now - self.last > self.interval:
            self.last = now
            return True
        return False


def run(job: IndexJob) -> Iterator[Progress | IndexReport]:
    """The whole job: Progress events, then one IndexReport (also when cancelled or offline)."""
    cat = job.catalog
    with cat.transaction():
        job.lib_id = cat.add_library(job.root)
    known = cat.files_of_library(job.lib_id)
    skipped_before = {p for p, r in known.items() if r.status == STATUS_SKIPPED}
    left_out: dict[str, scan.ScannedFile] = {}  # RAWs left out for their JPEG
    scanned = yield from scan_folder(job.root, job.cancel, job.counts.unreadable,
                                     unusable=skipped_before, left_out=left_out)
    if job.cancel.cancelled or is_offline(job, scanned, known):
        if job.counts.offline:  # info and search show it so until a job finds it back
            with cat.transaction():
                cat.set_library_offline(job.lib_id, True)
        yield report(job, 0.0)
        return
    with cat.transaction():
        cat.set_library_offline(job.lib_id, False)
    changes = scan.diff(scanned, {p: scan.KnownFile(p, r.size, r.mtime_ns) for p, r in known.items()})
    gone, _kept = scan.keep_unreadable(changes.gone, job.counts.unreadable)
    work, to_hash = classify(job, changes, known)
    work += yield from hash_files(job, to_hash)
    groups: list[Group] = []
    if not job.cancel.cancelled:
        groups = yield from resolve(job, work, [known[p] for p in gone])
    if job.cancel.cancelled:
        job.commit()
        yield report(job, 0.0)
        return
    mark_pending(job, groups)
    drop_orphans(job)
    embed_seconds = yield from embed(job, groups)
    embed_seconds += yield from embed_left_out(job, left_out)
    yield from finish(job)
    yield report(job, embed_seconds)


# ---------------------------------------------------------------------- 1. scan
def scan_folder(root: str, cancel: CancelToken, unreadable: list[str] | None = None,
                **walk_options) -> Generator[Progress, None, list[scan.ScannedFile]]:
    """The photo files under ``root`` (none when it is missing); the folders and files that
    could not be read go to ``unreadable``. ``walk_options``: RAW+JPEG (``scan.walk``)."""
    scanned: list[scan.ScannedFile] = []
    tick = _Throttle(0.2)
    yield Progress("scan", 0, 0, root, message="Looking for photos")
    if not os.path.isdir(root):
        return scanned
    on_error = None if unreadable is None else (lambda path, _exc: unreadable.append(path))
    for f in scan.walk(root, cancel=cancel, on_error=on_error, **walk_options):
        scanned.append(f)
        if tick.due():
            yield Progress("scan", len(scanned), 0, f.path, message="Looking for photos")
    return scanned


def is_offline(job: IndexJob, scanned: Sequence[scan.ScannedFile],
               known: dict[str, FileRecord]) -> bool:
    """The root is missing, or shows no photo while the catalog holds some under it (an unplugged
    drive, an empty mount point): offline, nothing is removed, unless ``job.prune``."""
    if job.prune:
        return False
    if not os.path.isdir(job.root):
        log.warning("%s is offline (not found): its %d photos stay in the index", job.root,
                    len(known))
    elif not scanned and known and not job.counts.unreadable:
        log.warning("%s is empty but the index holds %d photos under it (an unplugged drive?): "
                    "they stay in the index; index it with prune to remove them", job.root,
                    len(known))
    else:
        return False
    job.counts.offline = True
    return True


# ---------------------------------------------------------------------- 2. classify
ToHash = list[tuple[scan.ScannedFile, FileRecord | None]]


def classify(job: IndexJob, changes: scan.ScanDiff, known: dict[str, FileRecord]
             ) -> tuple[list[Work], ToHash]:
    """(work whose hash the catalog knows, files to hash): unchanged files with a vector or a skip
    reason are only counted (skipped ones are retried with ``job.retry_skipped``); new and changed
    files, and pending ones without a hash, are hashed."""
    work: list[Work] = []
    unhashed: ToHash = []
    for f in changes.unchanged:
        r = known[f.path]
        if r.status == STATUS_INDEXED and r.vector_id is not None and r.vector_id in job.store:
            job.counts.unchanged += 1
        elif r.status == STATUS_SKIPPED and not job.retry_skipped:
            job.counts.skipped.append(SkippedFile(f.path, r.reason or "skipped"))
        elif r.fast_hash:
            work.append(Work(f, r, r.fast_hash))
        else:
            unhashed.append((f, r))
    to_hash: ToHash = [(f, known.get(f.path)) for f in (*changes.new, *changes.changed)]
    return work, to_hash + unhashed


# ---------------------------------------------------------------------- 3. hash
def hash_files(job: IndexJob, to_hash: ToHash) -> Generator[Progress, None, list[Work]]:
    """Work for every readable file of new content (stops early when cancelled)."""
    work: list[Work] = []
    tick = _Throttle(0.2)
    writes = _Writes(job.catalog)  # in memory while hashing, then one short transaction
    for i, (f, r) in enumerate(to_hash):
        if job.cancel.cancelled:
            break
        if tick.due():
            writes.flush()
            yield Progress("scan", i, len(to_hash), f.path, message="Checking new files")
        try:
            h = scan.fast_hash(f.path, f.size)
        except OSError as exc:
            writes.add(skip, job, f, r, f"cannot read: {exc.strerror or exc}")
            continue
        if r is not None and _same_content(job, r, h):
            # same content, new mtime: remember it, keep the vector
            writes.add(_write, job.catalog, r.id, f, h, r.status, r.reason, r.vector_id)
            job.counts.unchanged += 1
            continue
        work.append(Work(f, r, h))
    writes.flush()
    return work


class _Writes:
    """Catalog writes kept in memory (no transaction open while files are read), then written
    in one short transaction by :meth:`flush`."""

    def __init__(self, cat: Catalog) -> None:
        self.cat = cat
        self.ops: list[tuple[Callable[..., None], tuple]] = []

    def add(self, op: Callable[..., None], *args: object) -> None:
        self.ops.append((op, args))

    def flush(self) -> None:
        if not self.ops:
            return
        ops, self.ops = self.ops, []
        with self.cat.transaction():
            for op, args in ops:
                op(*args)


def _same_content(job: IndexJob, r: FileRecord, fast: str) -> bool:
    """The file of row ``r`` still has its content and a vector for it. A skipped file that was
    touched is tried again (the user may have fixed it, or the decoder may do better now)."""
    return r.fast_hash == fast and r.status == STATUS_INDEXED and r.vector_id in job.store


def skip(job: IndexJob, f: scan.ScannedFile, row: FileRecord | None, reason: str) -> None:
    if row is None:
        job.catalog.add_file(job.lib_id, f.path, f.size, f.mtime_ns, None, STATUS_SKIPPED, reason)
    else:
        _write(job.catalog, row.id, f, None, STATUS_SKIPPED, reason)
    job.counts.skipped.append(SkippedFile(f.path, reason))


def _write(cat: Catalog, file_id: int, f: scan.ScannedFile, fast: str | None, status: str,
           reason: str | None = None, vector_id: int | None = None) -> None:
    """Row ``file_id`` describes ``f`` as it is now."""
    cat.update_file(file_id, path=f.path, size=f.size, mtime_ns=f.mtime_ns, fast_hash=fast,
                    status=status, reason=reason, vector_id=vector_id)


# ---------------------------------------------------------------------- 4. resolve
class GoneFiles:
    """Files of the library that are no longer on disk: a new file that has the vector of one of
    them is that file, moved (each gone file is claimed once); the unclaimed ones are deleted."""

    def __init__(self, rows: Sequence[FileRecord]) -> None:
        self.rows = list(rows)
        self.claimed: set[int] = set()
        self._by_vector: dict[int, list[FileRecord]] = {}
        for g in self.rows:
            if g.vector_id is not None and g.status == STATUS_INDEXED:
                self._by_vector.setdefault(g.vector_id, []).append(g)

    def claim(self, vector_id: int) -> FileRecord | None:
        for g in self._by_vector.get(vector_id, ()):
            if g.id not in self.claimed:
                self.claimed.add(g.id)
                return g
        return None

    def unclaimed(self) -> list[int]:
        return [g.id for g in self.rows if g.id not in self.claimed]


def resolve(job: IndexJob, work: list[Work], gone_rows: Sequence[FileRecord]
            ) -> Generator[Progress, None, list[Group]]:
    """Re-point moved files and duplicates of stored vectors, delete files that are gone, and
    return the rest grouped by content (the groups to embed, in order). Cancelled, it stops
    early and deletes nothing (a gone file may be one not matched yet: moved, not deleted)."""
    gone = GoneFiles(gone_rows)
    groups: dict[str, list[Group]] = {}
    tick = _Throttle(0.2)
    for i, w in enumerate(work):
        if job.cancel.cancelled:
            return []
        if tick.due():
            yield Progress("scan", i, len(work), w.file.path, message="Matching known photos")
        vid = find_vector(job.catalog, job.store, w)  # reads; may hash (no transaction open)
        if vid is None:
            group_by_content(groups, w)
        else:
            with job.catalog.transaction():
                reuse_vector(job, w, vid, gone)
    unclaimed = gone.unclaimed()
    if unclaimed:
        with job.catalog.transaction():
            job.catalog.delete_files(unclaimed)
        job.counts.removed += len(unclaimed)
    return [grp for lst in groups.values() for grp in lst]


def reuse_vector(job: IndexJob, w: Work, vid: int, gone: GoneFiles) -> None:
    """``w`` has the content of the stored vector ``vid``: a gone file of that vector moved here
    (its row is kept, so its id too), or ``w`` is a duplicate sharing the vector."""
    cat = job.catalog
    g = gone.claim(vid)
    if g is None:
        if w.row is None:
            cat.add_file(job.lib_id, w.file.path, w.file.size, w.file.mtime_ns, w.fast,
                         STATUS_INDEXED, None, vid)
        else:
            _write(cat, w.row.id, w.file, w.fast, STATUS_INDEXED, None, vid)
        job.counts.duplicates += 1
        return
    if w.row is None:
        _write(cat, g.id, w.file, w.fast, STATUS_INDEXED, None, vid)
    else:
        _write(cat, w.row.id, w.file, w.fast, STATUS_INDEXED, None, vid)
        cat.delete_files([g.id])
    job.counts.moved += 1


def full_hash(w: Work) -> str | None:
    """The full content hash of ``w`` (computed once), None if the file cannot be read."""
    if w.full is None:
        try:
            w.full = scan.full_hash(w.file.path)
        except OSError:
            return None
    return w.full


def find_vector(cat: Catalog, store: VectorStore, w: Work) -> int | None:
    """A stored vector of the same content as ``w``, or None."""
    cands = [(v, full) for v, full in cat.vectors_by_fast_hash(w.fast) if v in store]
    if not cands:
        return None
    if scan.fast_hash_is_full(w.file.size):
        return cands[0][0]
    mine = full_hash(w)
    for vid, theirs in cands:
        if theirs is None:
            theirs = _vector_full_hash(cat, vid)
        # no readable file of that vector (e.g. it was moved): trust the fast hash
        if theirs is None or theirs == mine:
            return vid
    return None


def _vector_full_hash(cat: Catalog, vid: int) -> str | None:
    """The full hash of a stored vector's content, from one of its unchanged files (remembered)."""
    for f in cat.files_of_vector(vid):
        try:
            st = os.stat(f.path)
            if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
                continue
            h = scan.full_hash(f.path)
        except OSError:
            continue
        with cat.transaction():
            cat.set_vector_full_hash(vid, h)
        return h
    return None


def group_by_content(groups: dict[str, list[Group]], w: Work) -> None:
    """Add ``w`` to the group of its content (same fast hash, and same full hash where the fast
    hash does not cover the whole file), or start a group."""
    lst = groups.setdefault(w.fast, [])
    if not lst:
        lst.append(Group(w))
        return
    if scan.fast_hash_is_full(w.file.size):
        lst[0].members.append(w)
        return
    mine = full_hash(w)
    for grp in lst:
        if mine is not None and full_hash(grp.rep) == mine:
            grp.members.append(w)
            return
    lst.append(Group(w))


def mark_pending(job: IndexJob, groups: Sequence[Group]) -> None:
    """Files waiting for a vector are pending in the catalog, so a crash leaves them to be redone."""
    cat, lib_id = job.catalog, job.lib_id
    added: list[tuple[Work, int]] = []
    with cat.transaction():  # one short transaction (no vector is referred to)
        for grp in groups:
            for w in (grp.rep, *grp.members):
                if w.row is None:
                    added.append((w, cat.add_file(lib_id, w.file.path, w.file.size,
                                                  w.file.mtime_ns, w.fast, STATUS_PENDING)))
                elif w.row.status != STATUS_PENDING or w.row.vector_id is not None:
                    _write(cat, w.row.id, w.file, w.fast, STATUS_PENDING)
    for w, fid in added:  # the rows exist (committed): the embedding step refers to them
        w.row = FileRecord(fid, lib_id, w.file.path, w.file.size, w.file.mtime_ns, w.fast,
                           STATUS_PENDING, None, None)


def drop_orphans(job: IndexJob) -> None:
    """Vectors no file points at any more leave the store and the catalog."""
    orphans = job.catalog.orphan_vectors()
    if orphans:
        job.store.remove(orphans)
        # committed at once: the saved store may keep them until the next save, which the
        # next writer's reconcile would remove too (store labels the catalog does not know)
        with job.catalog.transaction():
            job.catalog.delete_vectors(orphans)


# ---------------------------------------------------------------------- 5. embed
class _VectorBuffer:
    """New vectors on their way into the store (added in small batches, and before every save)."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.labels: list[int] = []
        self.vectors: list[np.ndarray] = []

    def append(self, label: int, vector: np.ndarray) -> None:
        self.labels.append(label)
        self.vectors.append(np.asarray(vector, dtype=np.float32))

    def flush(self, at_least: int = 1) -> None:
        if len(self.labels) >= at_least:
            self.store.add(np.array(self.labels, dtype=np.int64), np.stack(self.vectors))
            self.labels.clear()
            self.vectors.clear()


class _SaveSchedule:
    """When to make the work durable: every ``every`` images or ``interval_s`` seconds, but saving
    is O(N), so never more than ~10% of the time goes to it."""

    def __init__(self, every: int, interval_s: float) -> None:
        self.every, self.interval_s = every, interval_s
        self.since = 0
        self.last = time.perf_counter()
        self.cost = 0.0

    def due(self, now: float) -> bool:
        wanted = self.since >= self.every or now - self.last >= self.interval_s
        return wanted and now - self.last >= 9 * self.cost

    def save(self, commit: Callable[[], None]) -> None:
        started = time.perf_counter()
        commit()
        self.last = time.perf_counter()
        self.cost = self.last - started
        self.since = 0


def embed(job: IndexJob, groups: list[Group]) -> Generator[Progress, None, float]:
    """Embed one file of each group; returns the seconds it took (0 when there was nothing)."""
    if not groups:
        return 0.0
    start = time.perf_counter()
    yield from _embed_groups(job, groups)
    return time.perf_counter() - start


class _SteadyRate:
    """Photos per second counted from the first photo done, not from the start: the first one
    waits for the model's warm-up and the decoders to start, which made a 40-photo job show
    "0.1 images/s, ETA 8:53" for a job of seconds. Unknown (0) until a second photo is done."""

    def __init__(self) -> None:
        self._first: tuple[int, float] | None = None

    def update(self, done: int, now: float) -> float:
        if self._first is None:
            self._first = (done, now)
        first_done, first_at = self._first
        if done <= first_done or now <= first_at:
            return 0.0
        return (done - first_done) / (now - first_at)


def _embed_groups(job: IndexJob, groups: list[Group]) -> Iterator[Progress]:
    total = len(groups)
    ids = itertools.count(max(job.catalog.max_vector_id(), job.store.max_label) + 1)
    buffer = _VectorBuffer(job.store)
    saves = _SaveSchedule(job.save_every, job.save_interval_s)
    tick = _Throttle(0.1)
    steady = _SteadyRate()
    results = job.embedder.embed_files([g.rep.file.path for g in groups], cancel=job.cancel)
    finished = False
    try:
        for done, (grp, res) in enumerate(zip(groups, results, strict=False), start=1):
            if res.path != grp.rep.file.path:  # pragma: no cover - contract violation
                raise RuntimeError(f"embedder returned {res.path} for {grp.rep.file.path}")
            record(job, grp, res, ids, buffer)
            saves.since += 1
            now = time.perf_counter()
            rate = steady.update(done, now)
            if tick.due(now) or done == total:
                yield Progress("embed", done, total, res.path, rate,
                               (total - done) / rate if rate > 0 else None,
                               message="Describing photos")
            if done < total and saves.due(now):
                buffer.flush()
                yield Progress("save", done, total, None, message="Saving the index")
                saves.save(job.commit)
            if job.cancel.cancelled:
                break
        finished = True
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
        buffer.flush()
        if not finished:
            # the consumer closed us or something failed: keep what is done, durably
            try:
                job.commit()
            except Exception:  # noqa: BLE001 - reconcile on the next open handles it
                log.exception("could not save the index after an interrupted job")


def record(job: IndexJob, grp: Group, res: EmbedResult, ids: Iterator[int],
           buffer: _VectorBuffer) -> None:
    """The catalog rows of a group after its embedding: indexed with a new vector, or skipped."""
    cat = job.catalog
    members = (grp.rep, *grp.members)
    if res.vector is None:  # refers to no vector: committed at once
        reason = res.error or "could not be embedded"
        with cat.transaction():
            for w in members:
                assert w.row is not None
                _write(cat, w.row.id, w.file, w.fast, STATUS_SKIPPED, reason)
        job.counts.skipped.extend(SkippedFile(w.file.path, reason) for w in members)
        return
    vid = next(ids)
    buffer.append(vid, res.vector)

    def assign() -> None:  # staged: written right after the store save that holds ``vid``
        cat.add_vector(vid, grp.rep.fast, grp.rep.full, res.thumbprint)
        for w in members:
            assert w.row is not None
            _write(cat, w.row.id, w.file, w.fast, STATUS_INDEXED, None, vid)

    cat.stage(assign, vid, [(job.lib_id, w.file.path) for w in members])
    job.counts.embedded += 1
    job.counts.duplicates += len(grp.members)
    buffer.flush(at_least=_FLUSH_EVERY)


# ---------------------------------------------------------------------- 6. commit, report
def embed_left_out(job: IndexJob, left_out: dict[str, scan.ScannedFile]
                   ) -> Generator[Progress, None, float]:
    """A RAW left out for its JPEG (or HEIC), whose JPEG was skipped in this run (corrupt): the
    RAW is the photo, so it is indexed now, not lost until the next run. (Later runs walk it:
    a sibling known to be skipped stands for nothing.)"""
    skipped_now = {s.path for s in job.counts.skipped}
    raws = [raw for sibling, raw in left_out.items() if sibling in skipped_now]
    if not raws or job.cancel.cancelled:
        return 0.0
    log.info("%d RAW files indexed instead of their unusable JPEG/HEIC", len(raws))
    work, to_hash = classify(job, scan.ScanDiff(tuple(raws), (), (), ()), {})
    work += yield from hash_files(job, to_hash)
    groups = yield from resolve(job, work, [])
    mark_pending(job, groups)
    return (yield from embed(job, groups))


def finish(job: IndexJob) -> Iterator[Progress]:
    """The last commit; the library counts as indexed unless the job was cancelled."""
    yield Progress("save", 0, 1, None, message="Saving the index")
    if not job.cancel.cancelled:  # with the last vectors, after the store save
        job.catalog.stage(lambda: job.catalog.set_library_indexed(job.lib_id))
    job.commit()
    yield Progress("save", 1, 1, None, message="Saved")


def report(job: IndexJob, embed_seconds: float) -> IndexReport:
    c, cancelled = job.counts, job.cancel.cancelled
    seconds = time.perf_counter() - job.started
    rate = c.embedded / embed_seconds if embed_seconds > 0 else 0.0
    indexed = job.catalog.indexed_count(job.lib_id)
    log.info(
        "%s: %d embedded, %d unchanged, %d moved, %d removed, %d duplicates, %d skipped, "
        "%d searchable in %.1fs%s%s", job.root, c.embedded, c.unchanged, c.moved, c.removed,
        c.duplicates, len(c.skipped), indexed, seconds, " (cancelled)" if cancelled else "",
        " (offline)" if c.offline else "",
    )
    for path in c.unreadable:
        log.warning("could not read %s: its photos stay in the index as they were", path)
    return IndexReport(
        library=job.root, embedded=c.embedded, unchanged=c.unchanged, moved=c.moved,
        removed=c.removed, duplicates=c.duplicates, skipped=tuple(c.skipped),
        seconds=seconds, images_per_s=rate, cancelled=cancelled, indexed=indexed,
        offline=c.offline, unreadable=tuple(c.unreadable),
    )
