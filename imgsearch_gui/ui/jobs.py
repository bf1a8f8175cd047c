"""What the GUI's workers run: plain Python (no Qt), so it can be tested and timed alone."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from imgsearch_gui.base import registry
from imgsearch_gui.base.types import SearchHit

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class QueryRequest:
    """One query: files (several -> mean query) or an image (paste); optionally a region box."""

    paths: tuple[str, ...] = ()
    images: tuple = ()  # PIL images already decoded (paste, or a region search reusing a query)
    box: Box | None = None
    label: str = ""
    new_query: bool = True  # False for a region change: the query panel keeps its image
    seq: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class QueryOutcome:
    request: QueryRequest
    images: tuple  # the decoded query images (PIL)
    hits: list[SearchHit]
    seconds: float


def run_query(library, request: QueryRequest, k: int) -> QueryOutcome:
    """Decode, crop and embed the query, then search ``library`` (runs in a worker thread).

    Images are decoded as the embedder decodes library files (same draft size), so a photo that
    is in the library finds itself with a score of ~1.
    """
    from imgsearch_gui.base.images import load_image

    t0 = time.perf_counter()
    embedder = library.embedder
    size = int(getattr(getattr(embedder, "config", None), "size", None) or registry.DEFAULT_SIZE)
    images = tuple(request.images) or tuple(load_image(p, max_side=size) for p in request.paths)
    if not images:
        raise ValueError("nothing to search")
    if len(images) == 1:
        image = images[0]
        if request.box is not None:
            image = image.crop(request.box)
        hits = library.search(image, k=k)
    else:  # their mean query (QueryError if the photos cancel out), views as for one photo
        hits = library.search(list(images), k=k)
    return QueryOutcome(request, images, list(hits), time.perf_counter() - t0)



@dataclass(frozen=True)
class QueryFailed:
    request: QueryRequest
    error: BaseException


@dataclass(frozen=True)
class LibraryLoaded:
    library: object
    seconds: float


class SearchService:
    """The model's home: one long-lived worker thread loads the model (and warms it up), then
    answers queries from a queue, so every query runs on the thread the warm-up ran on.

    Only the newest waiting request is answered (older ones are stale: the user moved on).
    :meth:`serve` is the generator a :class:`~imgsearch_gui.ui.worker.Worker` runs; it yields
    :class:`LibraryLoaded`, then a :class:`QueryOutcome` or :class:`QueryFailed` per query.
    """

    _STOP = object()

    def __init__(self, k: int) -> None:
        self.k = k
        self._requests: queue.Queue = queue.Queue()

    def submit(self, request: QueryRequest) -> None:
        self._requests.put(request)

    def stop(self) -> None:
        self._requests.put(self._STOP)

    def _next(self, cancel) -> QueryRequest | None:
        while not cancel.cancelled:
            try:
                item = self._requests.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:  # skip to the newest request
                try:
                    newer = self._requests.get_nowait()
                except queue.Empty:
                    break
                item = newer if item is not self._STOP else item
            return None if item is self._STOP else item
        return None

    def serve(self, factory: Callable, data_dir, model, *, cancel) -> Iterator[object]:
        from imgsearch_gui.ml.threads import single_threaded_inference

        single_threaded_inference()
        t0 = time.perf_counter()
        library = factory(data_dir, model)
        yield LibraryLoaded(library, time.perf_counter() - t0)
        while True:
            request = self._next(cancel)
            if request is None:
                return
            try:
                yield run_query(library, request, self.k)
            except Exception as exc:  # noqa: BLE001 - one failed query does not end the service
                yield QueryFailed(request, exc)


def filter_hits(hits: Sequence[SearchHit], count: int, min_score: float) -> list[SearchHit]:
    """The ``count`` best hits scoring at least ``min_score`` (ranks stay as fetched)."""
    return [h for h in hits if h.score >= min_score][: max(0, count)]


def index_and_remember(library, root, *, rebuild: bool = False, cancel=None, **options):
    """``library.index_library`` (``options``: prune, retry_skipped), recording the embedder
    settings beside the index as the CLI does (the library writes them under the writer lock, with
    the job's first save), so the CLI and later sessions use the model the index was built with."""
    config = getattr(getattr(library, "embedder", None), "config", None)
    if config is not None and hasattr(library, "settings"):
        library.settings = config
    yield from library.index_library(root, rebuild=rebuild, cancel=cancel, **options)
