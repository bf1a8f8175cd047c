"""Keep the index in step with library folders while the app runs.

:class:`FolderWatcher` turns file events (watchdog: inotify, FSEvents, ReadDirectoryChangesW; a
stat-polling observer where events do not arrive, e.g. network drives) into debounced batches of
library roots that changed. It also notices a root that went away or came back (an unplugged
drive, a re-mounted share): its watch is made again and the root is reported, so a normal
incremental pass catches up. :func:`watch_libraries` is the loop ``imgsearch watch`` runs: a
catch-up pass, then one incremental pass per batch, until cancelled.

Why whole-library passes and not per-file updates: the incremental pass already knows moves,
renames, duplicates, offline roots and the writer lock; an event only says *when* to run it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from imgsearch_gui.app import scan
from imgsearch_gui.base.errors import StorageWriteError
from imgsearch_gui.base.images import is_supported
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress

log = logging.getLogger(__name__)

#: quiet time after the last event before a batch is sent (a copy of 500 photos is one batch)
DEBOUNCE_S = 2.0
#: a batch is sent at the latest this long after its first event, even while events keep coming
MAX_DELAY_S = 30.0
#: how often the polling observer stats the whole tree (~0.3 s of CPU per 20,000 files: about 1 %
#: of a core at this interval), and how often roots are checked for presence (one listing each)
POLL_INTERVAL_S = 30.0
PRESENCE_INTERVAL_S = 2.0

#: file systems whose changes made elsewhere send no local events: polled instead
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "afs", "9p", "ceph", "glusterfs",
    "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gvfsd-fuse", "davfs", "fuse.davfs2",
    "fuse.glusterfs", "fuse.ceph", "vboxsf", "fuse.vmhgfs-fuse", "virtiofs", "fuse.smbnetfs",
})

EVENTS, POLLING, OFFLINE = "events", "polling", "offline"


@dataclass(frozen=True)
class ChangeBatch:
    """Roots to pass over again (changed, or back online), and roots that went offline."""

    changed: tuple[str, ...]
    went_offline: tuple[str, ...] = ()
    events: int = 0  # file events coalesced into this batch (for the log)


@dataclass(frozen=True)
class Watching:
    """How each root is watched now: ``events``, ``polling`` or ``offline``."""

    modes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Presence:
    """What a root looks like from outside: a change means its watch must be made again (a
    drive mounted on its folder: another device; a folder replaced by a new one: another
    inode, while the old watch follows the old folder wherever it was moved)."""

    online: bool
    device: int | None = None
    inode: int | None = None


def _presence(root: str) -> _Presence:
    """Online is the app's one rule (``scan.root_looks_unmounted``): a folder that is there and
    holds something. An empty folder (an unplugged drive's mount point) is offline: it is not
    passed over, so its photos are kept, and it is back once something appears in it."""
    try:
        st = os.stat(root)
    except OSError:
        return _Presence(False)
    if scan.root_looks_unmounted(root):
        return _Presence(False, st.st_dev, st.st_ino)
    return _Presence(True, st.st_dev, st.st_ino)


def filesystem_type(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The type of the file system holding ``path`` (Linux: the longest mount point above it)."""
    best, kind = "", None
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                if scan.is_under(path, mount) and len(mount) >= len(best):
                    best, kind = mount, parts[2]
    except OSError:
        return None
    return kind


def needs_polling(root: str) -> bool:
    """Events do not arrive for changes another machine makes on a network share."""
    return filesystem_type(root) in NETWORK_FILESYSTEMS


@dataclass
class _Pending:
    roots: set[str] = field(default_factory=set)
    offline: set[str] = field(default_factory=set)
    events: int = 0
    first: float = 0.0
    last: float = 0.0


class FolderWatcher:
    """Watches library roots; ``on_batch`` gets a :class:`ChangeBatch` from the watcher's thread.

    ``poll``: True polls every root, False never polls, None (default) polls network shares and
    roots whose events cannot be set up (e.g. the inotify watch limit), events elsewhere.
    ``ignore``: folders whose changes are ours (the data dir, the cache) and never a batch.
    ``catch_up``: a root, once watched, is in a batch at once (what changed while nobody was
    watching: the window's libraries when it opens).

    Every watch is made and dropped in the watcher's own thread: watchdog sets a watch up inside
    ``schedule`` (inotify adds one per folder, polling stats every file), which can take long on
    a big tree or a slow share, and the caller (a window) must never wait for it, not even to
    stop. Observers call :meth:`notify`, which only takes the lock of the pending batch.
    """

    def __init__(self, roots: Iterable[str], on_batch: Callable[[ChangeBatch], None], *,
                 debounce_s: float = DEBOUNCE_S, max_delay_s: float = MAX_DELAY_S,
                 poll: bool | None = None, poll_interval_s: float = POLL_INTERVAL_S,
                 presence_interval_s: float = PRESENCE_INTERVAL_S,
                 ignore: Iterable[str] = (), catch_up: bool = False) -> None:
        self._on_batch = on_batch
        self._debounce_s = debounce_s
        self._max_delay_s = max(max_delay_s, debounce_s)
        self._poll = poll
        self._poll_interval_s = poll_interval_s
        self._presence_interval_s = presence_interval_s
        self._ignore = tuple(os.path.abspath(p) for p in ignore)
        self._catch_up = catch_up
        self._lock = threading.Condition()  # the pending batch, the roots asked for, stopping
        self._pending = _Pending()
        self._wanted: list[str] | None = _sorted_roots(roots)
        self._stopping = False
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        # the watcher thread's own state (no lock: no other thread touches it)
        self._roots: list[str] = []
        self._watches: dict[str, tuple[object, object]] = {}  # root -> (observer, watch)
        self._presence: dict[str, _Presence] = {}
        self._observers: dict[str, object] = {}
        self._mode_of: dict[str, str] = {}  # root -> how it is watched (this thread's)
        self._modes: dict[str, str] = {}  # its copy for others: replaced whole, never changed

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the watcher's thread; it sets up the watches (see :meth:`wait_ready`)."""
        self._thread = threading.Thread(target=self._run, name="folder-watcher", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the roots asked for are watched (before a catch-up pass, so nothing made
        meanwhile is missed)."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching: the watcher's thread drops its watches and ends. Waits at most
        ``timeout`` (a thread stuck in a hung share's set-up ends when it returns, watching
        nothing more)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def set_roots(self, roots: Iterable[str]) -> None:
        """Watch these roots from now on (a library added or removed in the GUI); applied by
        the watcher's thread."""
        with self._lock:
            self._wanted = _sorted_roots(roots)
            self._ready.clear()
            self._lock.notify_all()

    @property
    def modes(self) -> dict[str, str]:
        """root -> ``events`` | ``polling`` | ``offline`` (a snapshot; never waits)."""
        return dict(self._modes)

    # ------------------------------------------------------------------ the watcher's thread
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._tear_down()

    def _loop(self) -> None:
        next_presence = time.monotonic() + self._presence_interval_s
        while True:
            with self._lock:
                wanted, self._wanted = self._wanted, None
            if wanted is not None:
                self._set_up(wanted)
            with self._lock:
                if self._stopping:
                    return
                batch = self._due_batch(time.monotonic())
                if batch is None and self._wanted is None:
                    self._lock.wait(self._wait_time(next_presence))
                    if self._stopping:
                        return
                    batch = self._due_batch(time.monotonic())
            if time.monotonic() >= next_presence:
                self._check_presence()
                next_presence = time.monotonic() + self._presence_interval_s
            if batch is not None:
                self._send(batch)

    def _tear_down(self) -> None:
        observers = list(self._observers.values())
        self._observers.clear()
        self._watches.clear()
        for observer in observers:
            observer.stop()
        for observer in observers:
            observer.join(2.0)

    def _set_up(self, wanted: list[str]) -> None:
        """(Un)schedule to match ``wanted``; with ``catch_up``, the roots added are a batch."""
        added: list[str] = []
        for root in set(self._roots) - set(wanted):
            self._unschedule(root)
            self._presence.pop(root, None)
        for root in wanted:
            if self._stopping:
                break
            if root not in self._roots:
                self._presence[root] = _presence(root)
                self._schedule(root)
                if self._presence[root].online:
                    added.append(root)
        self._roots = wanted
        self._publish_modes()
        with self._lock:
            if self._catch_up and added:
                self._pending.roots.update(added)
                self._pending.first = self._pending.last = time.monotonic() - self._debounce_s
            if self._wanted is None:
                self._ready.set()

    def _check_presence(self) -> None:
        """A root that went away or came back (or was mounted over, or replaced) gets its
        watch again, and a batch says so."""
        for root in list(self._roots):
            now = _presence(root)
            if now == self._presence.get(root):
                continue
            self._presence[root] = now
            self._unschedule(root)
            self._schedule(root)
            self._publish_modes()
            log.info("%s %s", root, "is back: catching up" if now.online else "went offline")
            with self._lock:
                (self._pending.roots if now.online else self._pending.offline).add(root)
                self._pending.first = self._pending.last = time.monotonic() - self._debounce_s

    def _publish_modes(self) -> None:
        modes = {r: m for r, m in self._mode_of.items() if r in self._roots}
        self._modes = modes

    # ------------------------------------------------------------------ watches
    def _observer(self, kind: str):
        if kind not in self._observers:
            if kind == POLLING:
                from watchdog.observers.polling import PollingObserver

                observer = PollingObserver(timeout=self._poll_interval_s)
            else:
                from watchdog.observers import Observer

                observer = Observer()
            observer.daemon = True
            observer.start()
            self._observers[kind] = observer
        return self._observers[kind]

    def _schedule(self, root: str) -> None:
        if not self._presence[root].online:
            self._mode_of[root] = OFFLINE
            log.info("not watching %s: offline", root)
            return
        kind = POLLING if self._poll or (self._poll is None and needs_polling(root)) else EVENTS
        try:
            self._add_watch(root, kind)
        except OSError as exc:  # e.g. ENOSPC: the inotify watch limit
            if kind == POLLING or self._poll is False:
                log.warning("cannot watch %s: %s", root, exc)
                self._mode_of[root] = OFFLINE
                return
            log.warning("no file events for %s (%s): polling every %.0f s instead", root, exc,
                        self._poll_interval_s)
            kind = POLLING
            self._add_watch(root, kind)
        self._mode_of[root] = kind
        log.info("watching %s (%s)", root, kind)

    def _add_watch(self, root: str, kind: str) -> None:
        observer = self._observer(kind)
        # symlinked folders are followed, as the walk follows them
        watch = observer.schedule(_Handler(self, root), root, recursive=True, follow_symlink=True)
        self._watches[root] = (observer, watch)

    def _unschedule(self, root: str) -> None:
        self._mode_of.pop(root, None)
        entry = self._watches.pop(root, None)
        if entry is None:
            return
        observer, watch = entry
        try:
            observer.unschedule(watch)
        except (KeyError, OSError) as exc:  # the drive went away under it
            log.debug("unscheduling %s: %s", root, exc)

    # ------------------------------------------------------------------ events (observers' threads)
    def _relevant(self, root: str, path: str, is_directory: bool, event_type: str) -> bool:
        if any(scan.is_under(path, ignored) for ignored in self._ignore):
            return False
        if not scan.is_under(path, root):
            return False
        below = path[len(root):].split(os.sep)
        if any(p.startswith(".") for p in below if p):
            return False  # the walk skips hidden files and folders too (below the root)
        if is_directory:
            return event_type in ("created", "deleted", "moved")  # a folder of photos
        return is_supported(path)

    def notify(self, root: str, paths: Iterable[str], is_directory: bool, event_type: str) -> None:
        """One file event (from an observer thread): counted into the pending batch."""
        if event_type in ("opened", "closed_no_write"):
            return
        if not any(self._relevant(root, os.fsdecode(p), is_directory, event_type)
                   for p in paths if p):
            return
        with self._lock:
            now = time.monotonic()
            pending = self._pending
            if not pending.roots and not pending.offline:
                pending.first = now
            pending.roots.add(root)
            pending.events += 1
            pending.last = now
            self._lock.notify_all()

    # ------------------------------------------------------------------ batching
    def _wait_time(self, next_presence: float) -> float:
        now = time.monotonic()
        waits = [next_presence - now]
        p = self._pending
        if p.roots or p.offline:
            waits.append(min(p.last + self._debounce_s, p.first + self._max_delay_s) - now)
        return max(0.01, min(waits))

    def _due_batch(self, now: float) -> ChangeBatch | None:
        p = self._pending
        if not p.roots and not p.offline:
            return None
        if now < p.last + self._debounce_s and now < p.first + self._max_delay_s:
            return None
        batch = ChangeBatch(tuple(sorted(p.roots)), tuple(sorted(p.offline - p.roots)), p.events)
        self._pending = _Pending()
        return batch

    def _send(self, batch: ChangeBatch) -> None:
        log.debug("watch batch: %s", batch)
        try:
            self._on_batch(batch)
        except Exception:  # noqa: BLE001 - a consumer's bug must not end the watching
            log.exception("the watch batch handler failed")


def _sorted_roots(roots: Iterable[str]) -> list[str]:
    return sorted({scan.normalize_root(r) for r in roots}, key=len, reverse=True)


class _Handler:
    """The watchdog handler of one root (duck-typed: watchdog only calls ``dispatch``)."""

    def __init__(self, watcher: FolderWatcher, root: str) -> None:
        self._watcher = watcher
        self._root = root

    def dispatch(self, event) -> None:
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        self._watcher.notify(self._root, paths, event.is_directory, event.event_type)


# ---------------------------------------------------------------------- the watch loop
class _BatchQueue:
    def __init__(self) -> None:
        self._queue: queue.Queue[ChangeBatch] = queue.Queue()

    def put(self, batch: ChangeBatch) -> None:
        self._queue.put(batch)

    def take(self, timeout: float) -> ChangeBatch | None:
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        changed, offline, events = set(first.changed), set(first.went_offline), first.events
        while True:  # batches that piled up while a pass ran: one pass each root
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            changed |= set(more.changed)
            offline |= set(more.went_offline)
            events += more.events
        return ChangeBatch(tuple(sorted(changed)), tuple(sorted(offline - changed)), events)


@dataclass(frozen=True)
class PassFailed:
    """An incremental pass could not write (a full disk): the next change tries again."""

    root: str
    error: StorageWriteError


def watch_libraries(library, roots: Iterable[str], *, cancel: CancelToken,
                    ignore: Iterable[str] = (), **watcher_options
                    ) -> Iterator[Progress | IndexReport | Watching | PassFailed]:
    """Catch up on ``roots``, then pass over each root again when it changes, until ``cancel``.

    ``library``: an :class:`~imgsearch_gui.app.library.ImageLibrary`; its writer lock is taken
    per pass, so other processes can search (and index) the data dir while this runs.
    """
    roots = [scan.normalize_root(r) for r in roots]
    batches = _BatchQueue()
    watcher = FolderWatcher(roots, batches.put, ignore=(str(library.data_dir), *ignore),
                            **watcher_options)
    watcher.start()
    try:
        while not watcher.wait_ready(0.2):  # before the catch-up: changes during it are seen
            if cancel.cancelled:
                return
        for root in roots:
            if cancel.cancelled:
                return
            yield from _pass(library, root, cancel)
        if cancel.cancelled:
            return
        modes = watcher.modes
        yield Watching(tuple(sorted(modes.items())))
        while not cancel.cancelled:
            batch = batches.take(timeout=0.2)
            if batch is None:
                continue
            if watcher.modes != modes and not cancel.cancelled:
                modes = watcher.modes
                yield Watching(tuple(sorted(modes.items())))
            for root in batch.changed:
                if cancel.cancelled:
                    break
                yield from _pass(library, root, cancel)
    finally:
        watcher.stop()


def _pass(library, root: str, cancel: CancelToken
          ) -> Iterator[Progress | IndexReport | PassFailed]:
    try:
        yield from library.index_library(root, cancel=cancel)
    except StorageWriteError as exc:
        log.warning("could not update the index for %s: %s", root, exc)
        yield PassFailed(root, exc)
    except NotADirectoryError:
        log.info("%s is not a folder (any more): not indexed", root)
