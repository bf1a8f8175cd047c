"""One worker class: runs a core callable or generator in a QThread and reports through signals.

``Worker(fn, *args, **kwargs)`` calls ``fn`` in its own thread. If ``fn`` returns a generator
(e.g. ``ImageLibrary.index_library``), every :class:`~imgsearch_gui.base.types.Progress` it yields
is emitted as ``progress`` and every other item as ``result``; a plain return value is emitted as
``result``. Exceptions never escape the thread: they are emitted as ``error`` (the views show them
through the one message channel). Signals, in order: ``started``, ``progress``*, ``result``*,
``error``?, ``finished`` (always, once).

Cancellation is cooperative: :meth:`cancel` sets the :class:`CancelToken` (pass it on to the core
function by giving ``cancel=worker.token`` or using :meth:`with_cancel`) and stops pulling items
from a generator that cannot see the token. Workers never touch widgets.

A :class:`WorkerGroup` holds a window's running workers, so that closing it stops them all.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from imgsearch_gui.base.types import CancelToken, Progress
from imgsearch_gui.ui.qtcompat import emit

log = logging.getLogger(__name__)


class Worker(QThread):
    """Runs ``fn(*args, **kwargs)`` off the GUI thread (``started``/``finished``: QThread's)."""

    progress = Signal(object)  # Progress
    result = Signal(object)  # any non-Progress item / the return value
    error = Signal(object)  # the exception (BaseException)

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "",
        token: CancelToken | None = None,
        progress_interval: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.token = token if token is not None else CancelToken()
        self.name = name or getattr(fn, "__name__", "job")
        self.setObjectName(f"worker:{self.name}")
        self.failed = False
        #: Progress is coalesced to one signal per this many seconds (the latest wins; stage
        #: changes and the last one before a result always go out): every queued signal costs
        #: the GUI thread a trip through the GIL, and a burst of them would freeze it.
        self.progress_interval = progress_interval
        # Workers keep the normal thread priority on purpose: a lowered one that holds the GIL
        # starves the GUI thread waiting for it (priority inversion; measured 115-235 ms
        # event-loop stalls while indexing under load with nice 10, 35-53 ms without).
        # When fn got the token it winds down itself (and yields its final report).
        self._token_passed = kwargs.get("cancel") is self.token

    @classmethod
    def with_cancel(
        cls, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any
    ) -> Worker:
        """A worker whose token is passed to ``fn`` as ``cancel=``."""
        token = CancelToken()
        return cls(fn, *args, name=name, token=token, cancel=token, **kwargs)

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:  # runs in the worker thread
        threading.current_thread().name = self.objectName()  # log lines say which job wrote them
        try:
            out = self.fn(*self.args, **self.kwargs)
            if inspect.isgenerator(out):
                pending: Progress | None = None
                last_emit = 0.0
                last_stage = None
                try:
                    for item in out:
                        if isinstance(item, Progress):
                            now = time.monotonic()
                            if (item.stage != last_stage
                                    or now - last_emit >= self.progress_interval):
                                if pending is not None and pending.stage != item.stage:
                                    emit(self.progress, pending)  # a stage's last step
                                emit(self.progress, item)
                                pending, last_emit, last_stage = None, now, item.stage
                            else:
                                pending = item
                        else:
                            if pending is not None:
                                emit(self.progress, pending)
                                pending = None
                            emit(self.result, item)
                        if self.token.cancelled and not self._token_passed:
                            break  # fn cannot see the token: stop pulling items
                    if pending is not None:
                        emit(self.progress, pending)
                finally:
                    out.close()
            else:
                emit(self.result, out)
        except BaseException as exc:  # noqa: BLE001 - reported, never swallowed
            self.failed = True
            log.debug("worker %s failed", self.name, exc_info=True)
            emit(self.error, exc)

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel and wait for the thread (GUI thread only). True if it ended in time."""
        self.cancel()
        if not self.isRunning():
            return True
        return self.wait(timeout_ms)


class WorkerGroup(QObject):
    """The running workers of one window: started here, forgotten (and deleted) once finished, so
    that closing the window can cancel every one of them and wait until all have stopped."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        self._workers.add(worker)
        worker.finished.connect(lambda w=worker: self._forget(w))
        worker.start()
        return worker

    def _forget(self, worker: Worker) -> None:
        self._workers.discard(worker)
        worker.deleteLater()

    @property
    def busy(self) -> bool:
        return any(w.isRunning() for w in self._workers)

    def cancel_all(self) -> None:
        """Cancel every worker (each ends at its next cancel check)."""
        for worker in list(self._workers):
            worker.cancel()

    def wait_any(self, timeout_ms: int) -> None:
        """Block up to ``timeout_ms`` for a running worker to end (GUI thread: a short wait
        between event-loop passes, so the window keeps painting while jobs wind down)."""
        for worker in list(self._workers):
            if worker.isRunning():
                worker.wait(timeout_ms)
                return

    def stop_all(self, timeout_ms: int = 60_000) -> None:
        """Cancel every worker, then wait for each (GUI thread only)."""
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            if not worker.wait(timeout_ms):  # pragma: no cover - a stuck worker
                log.error("worker %s did not stop", worker.name)
