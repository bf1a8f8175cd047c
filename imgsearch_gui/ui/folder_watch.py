"""Watching the libraries while the window is open: app/watch.py's FolderWatcher, its batches
turned into Qt signals on the GUI thread (the watcher calls back from its own thread; a signal
of a QObject living in the GUI thread is queued there). Nothing here touches a widget or the
index: the window queues an incremental job for each changed root."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal

from imgsearch_gui.app.scan import normalize_root
from imgsearch_gui.app.watch import ChangeBatch, FolderWatcher
from imgsearch_gui.ui.qtcompat import emit

log = logging.getLogger(__name__)


class LibraryWatcher(QObject):
    """Emits ``changed(roots)`` when photos under a root changed or the root came back, and
    ``wentOffline(roots)`` when a root went away (an unplugged drive)."""

    changed = Signal(list)
    wentOffline = Signal(list)

    def __init__(self, ignore: Iterable[str] = (), parent: QObject | None = None,
                 **watcher_options) -> None:
        super().__init__(parent)
        self._ignore = tuple(str(p) for p in ignore)
        self._options = watcher_options
        self._watcher: FolderWatcher | None = None
        self._roots: dict[str, str] = {}  # the watcher's spelling (resolved) -> the library's

    @property
    def active(self) -> bool:
        return self._watcher is not None

    @property
    def modes(self) -> dict[str, str]:
        return self._watcher.modes if self._watcher is not None else {}

    def watch(self, roots: Iterable[str]) -> None:
        """Watch exactly ``roots`` from now on (starts the watcher on first use; the watches
        are set up in its thread, and each root gets a catch-up pass once it is watched)."""
        self._roots = {normalize_root(r): r for r in roots}
        if self._watcher is None:
            if not self._roots:
                return
            self._watcher = FolderWatcher(list(self._roots), self._batch, ignore=self._ignore,
                                          catch_up=True, **self._options)
            self._watcher.start()
            return
        self._watcher.set_roots(list(self._roots))

    def stop(self) -> None:
        """Stop watching without waiting long: a watcher still setting up a slow share ends
        on its own once that returns."""
        if self._watcher is not None:
            self._watcher.stop(timeout=0.5)
            self._watcher = None

    def _batch(self, batch: ChangeBatch) -> None:  # the watcher's thread
        roots = dict(self._roots)
        if batch.went_offline:
            emit(self.wentOffline, [roots.get(r, r) for r in batch.went_offline])
        if batch.changed:
            emit(self.changed, [roots.get(r, r) for r in batch.changed])
