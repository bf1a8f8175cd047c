"""The model service: loads the model and opens the library in the long-lived search-service
worker, hands on what that worker answers for the current model only, and switches models.

Nothing here imports torch at import time: :func:`open_library` imports the model code inside the
worker, so the window is on screen before torch loads. Once a model is loaded the long-lived
objects are frozen out of the garbage collector's scans (:func:`_freeze_long_lived_objects`).

Which devices work here (:func:`unavailable_devices`, for the settings dialog) is asked of ``ml``
once, in the loader worker right after the model loaded (torch is imported by then), so that the
dialog opens without waiting for torch or CUDA.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from imgsearch_gui.base import registry
from imgsearch_gui.base.errors import DeviceUnavailableError, UserError
from imgsearch_gui.ui.jobs import LibraryLoaded, QueryFailed, QueryOutcome, QueryRequest, SearchService
from imgsearch_gui.ui.prefs import MAX_COUNT, ModelChoice
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.worker import Worker, WorkerGroup

log = logging.getLogger(__name__)

LibraryFactory = Callable[[Path, ModelChoice], object]


def when_finished(workers: Iterable[Worker], then: Callable[[], None]) -> None:
    """Call ``then`` (in the GUI thread) once every one of ``workers`` has finished: at once when
    none runs, else from the last one's ``finished`` signal. Nothing blocks, nothing times out."""
    pending: set[Worker] = set()
    fired = False

    def done(worker: Worker | None = None) -> None:
        nonlocal fired
        pending.discard(worker)
        if not pending and not fired:
            fired = True
            then()

    for w in workers:
        pending.add(w)
        w.finished.connect(lambda w=w: done(w))  # connected first: a finish now is not missed
    for w in list(pending):
        if not _running(w):
            pending.discard(w)
    done()


def _running(worker: Worker) -> bool:
    try:
        return worker.isRunning()
    except RuntimeError:  # its C++ object is gone: it finished long ago
        return False


NO_TORCH = "PyTorch is not installed, so there is no CUDA. Automatic uses the CPU."
NO_CUDA = ("PyTorch finds no CUDA GPU on this computer (no NVIDIA GPU, no driver, or a PyTorch "
           "built without CUDA). Automatic uses the CPU.")


@functools.cache
def unavailable_devices() -> dict[str, str]:
    """Devices that cannot run here, with the reason the settings dialog shows (asked once).

    Asks ``ml`` (torch.cuda.is_available()); the loader worker asks first, once torch is loaded,
    so that the dialog finds the answer cached."""
    if importlib.util.find_spec("torch") is None:
        return {"cuda": NO_TORCH}
    from imgsearch_gui.ml.embedder import resolve_device

    try:
        resolve_device("cuda")
    except DeviceUnavailableError:
        return {"cuda": NO_CUDA}
    return {}


def _load_and_probe(factory: LibraryFactory, data_dir: Path, model: ModelChoice):
    """``factory``, then (in the same worker, torch loaded by it) which devices work here."""
    library = factory(data_dir, model)
    if "torch" in sys.modules:  # a test's factory may load none: torch is not imported for this
        unavailable_devices()
    return library


FIELDS = ("backbone", "pooling", "size", "device", "runtime", "weights")


def fallback_text(failed: ModelChoice, working: ModelChoice, exc: BaseException, *,
                  previous: bool = True) -> str:
    """What the banner says when ``failed`` could not be loaded and ``working`` loads instead
    (the previous model, or ``previous=False``: the first model, on another device): what was
    chosen, why in plain words (a traceback goes to the log and the message's details)."""
    changes = [f"{name} {_shown(name, getattr(failed, name))}" for name in FIELDS
               if getattr(failed, name) != getattr(working, name)]
    chosen = " and ".join(changes) or failed.describe()
    why = str(exc) if isinstance(exc, UserError) else "an unexpected error (see Details)"
    if previous:
        return (f"Could not load the model with {chosen}: {why}. The previous model is back "
                f"({working.describe()}).")
    instead = " and ".join(f"{name} {_shown(name, getattr(working, name))}" for name in FIELDS
                           if getattr(failed, name) != getattr(working, name))
    return (f"Could not load the model with {chosen}: {why}. Now using {instead} instead "
            f"({working.describe()}).")


def _shown(name: str, value) -> str:
    if name == "device":
        return registry.DEVICES[value].label if value in registry.DEVICES else str(value)
    if name == "runtime":
        return registry.RUNTIMES[value].label.split(" (")[0] if value in registry.RUNTIMES \
            else str(value)
    if name == "weights":
        return Path(value).stem if value else "ImageNet weights"
    return f"{value}px" if name == "size" else str(value)


def close_library(library) -> None:
    if library is None:
        return
    try:
        library.close()
    except Exception:  # noqa: BLE001
        log.exception("closing the library failed")


def open_library(data_dir: Path, model: ModelChoice):
    """Load the embedder, warm it up and open the library (runs in the loader worker)."""
    from PIL import Image

    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.ml.embedder import load_embedder

    config = model.to_config(data_dir)
    embedder = load_embedder(config)
    # One pass through the network now, so the first query is as fast as the others.
    embedder.embed_image(Image.new("RGB", (model.size, max(32, model.size * 3 // 4)), "gray"))
    _warm_up_decoding()
    return ImageLibrary.for_config(data_dir, embedder, config)


def _warm_up_decoding() -> None:
    """Load PIL's format plugins and decode one JPEG in this (loader) thread, so that indexing
    does not pay first-use costs, which hold the GIL and can stall the GUI thread."""
    import io

    from PIL import Image

    from imgsearch_gui.base.images import load_image

    Image.init()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(buf, "JPEG")
    with tempfile.NamedTemporaryFile(suffix=".jpg") as fh:
        fh.write(buf.getvalue())
        fh.flush()
        load_image(fh.name, max_side=32)


def _freeze_long_lived_objects() -> None:
    """Take what is loaded now (torch, the model, Qt wrappers: ~400k objects) out of the cyclic
    garbage collector's scans. A full collection over them took ~210 ms with the GIL held, which
    froze the window whenever one ran during indexing or a search; after the freeze it takes
    ~0 ms (bench/gc_pause.py). Unfreezing first lets a replaced model's cycles be collected."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelService(QObject):
    """Owns the current model, the library opened with it and the worker that serves its queries.

    Each :meth:`switch` is a new generation: what an older service still sends (a library it
    loaded late, the answer to a query) is dropped, so a switch never mixes two models.
    """

    loadStarted = Signal(object)  # the ModelChoice being loaded
    loaded = Signal(object)  # the library, opened with the current model
    failed = Signal(object)  # the exception: the model or the library could not be loaded
    answered = Signal(object)  # QueryOutcome
    queryFailed = Signal(object, object)  # QueryRequest, exception
    ended = Signal()  # the current service stopped (its queries will not be answered)

    def __init__(self, workers: WorkerGroup, data_dir: Path, model: ModelChoice,
                 factory: LibraryFactory = open_library, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.model = model
        self.data_dir = data_dir
        self.factory = factory
        self.library = None
        self._service: SearchService | None = None
        self._worker: Worker | None = None
        self._gen = 0
        self._closing = False
        self._switching = False  # waiting for the old model's workers before loading the new

    @property
    def generation(self) -> int:
        """Counts the switches: a request sent in an earlier generation is never answered."""
        return self._gen

    @property
    def running(self) -> bool:
        return self._service is not None and self._worker is not None

    @property
    def loading(self) -> bool:
        return self.library is None and (self._worker is not None or self._switching)

    def start(self) -> None:
        """Start the search service: it loads the model, then answers every query."""
        emit(self.loadStarted, self.model)
        service = SearchService(MAX_COUNT)
        load = functools.partial(_load_and_probe, self.factory)
        worker = Worker.with_cancel(service.serve, load, self.data_dir, self.model,
                                    name="search-service", progress_interval=0)
        gen = self._gen
        worker.result.connect(lambda item: self._item(item, gen, worker))
        # a model an earlier switch replaced failing late is not the current model's failure
        worker.error.connect(lambda exc: self._failed(exc) if gen == self._gen else
                             log.info("an earlier model's failure, ignored: %s", exc))
        worker.finished.connect(lambda: self._ended(worker))
        self._service, self._worker = service, worker
        self.workers.start(worker)

    def submit(self, request: QueryRequest) -> None:
        """Queue ``request``; only the newest waiting request is answered."""
        if self._service is not None:
            self._service.submit(request)

    def switch(self, model: ModelChoice, busy: Iterable[Worker] = ()) -> None:
        """Stop the service of the current model, close its library once the service and the
        ``busy`` workers (its indexing job) have ended, then load ``model``. The window stays
        responsive meanwhile; the library is never closed under a running job."""
        self._gen += 1  # what the old service still sends is stale now
        old_worker = self._worker
        if old_worker is not None:
            self._service.stop()
            old_worker.cancel()
        old, self.library = self.library, None
        self.model = model
        self._switching = True
        emit(self.loadStarted, model)

        gen = self._gen

        def reopen() -> None:
            close_library(old)
            if gen != self._gen:  # a later switch came meanwhile: its reopen starts its model
                return
            self._switching = False
            if not self._closing:
                self.start()

        when_finished([w for w in (old_worker, *busy) if w is not None], reopen)

    def shutdown(self) -> None:
        """The window closes: answer nothing more; the worker group stops the thread."""
        self._closing = True
        if self._service is not None:
            self._service.stop()

    def close_library(self) -> None:
        """Close the library (the caller made sure that no worker uses it any more)."""
        library, self.library = self.library, None
        close_library(library)

    def _item(self, item, gen: int, worker: Worker) -> None:
        if isinstance(item, LibraryLoaded):
            self._loaded(item.library, gen, worker)
        elif gen != self._gen or self._closing:
            return
        elif isinstance(item, QueryOutcome):
            emit(self.answered, item)
        elif isinstance(item, QueryFailed):
            emit(self.queryFailed, item.request, item.error)

    def _loaded(self, library, gen: int, worker: Worker) -> None:
        if self._closing or gen != self._gen:  # stale: closed once its service has ended
            when_finished([worker], lambda: close_library(library))
            return
        self.library = library
        _freeze_long_lived_objects()
        emit(self.loaded, library)

    def _failed(self, exc: BaseException) -> None:
        emit(self.failed, exc)

    def _ended(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            emit(self.ended)
