"""The plain-Python jobs the GUI's workers run (ui/jobs.py: no Qt, so tested without a display)."""

from __future__ import annotations

import threading
import time

import numpy as np
from PIL import Image

from imgsearch_gui.base.types import CancelToken, SearchHit
from imgsearch_gui.ui.jobs import (
    LibraryLoaded,
    QueryFailed,
    QueryOutcome,
    QueryRequest,
    SearchService,
    filter_hits,
    run_query,
)


class StubLibrary:
    class embedder:  # noqa: N801
        class config:  # noqa: N801
            size = 64

        @staticmethod
        def embed_image(image):
            v = np.asarray(image.resize((4, 4)), dtype=np.float32).ravel() + 1
            return v / np.linalg.norm(v)

    def __init__(self):
        self.queries = []

    def search(self, query, k=20, library=None):
        self.queries.append(query)
        if isinstance(query, Image.Image) and query.size == (1, 1):
            raise ValueError("too small")
        return [SearchHit(f"/p/{i}.jpg", 1.0 - i / 10, i + 1) for i in range(min(k, 5))]


def test_filter_hits_keeps_ranks():
    hits = [SearchHit(f"/p/{i}", s, i + 1) for i, s in enumerate([0.9, 0.8, 0.5, 0.2])]
    assert filter_hits(hits, 2, 0.0) == hits[:2]
    assert filter_hits(hits, 10, 0.55) == hits[:2]
    assert [h.rank for h in filter_hits(hits, 10, 0.3)] == [1, 2, 3]


def test_run_query_crops_region_and_means_several_images():
    lib = StubLibrary()
    img = Image.new("RGB", (100, 80), "red")
    out = run_query(lib, QueryRequest(images=(img,), box=(10, 10, 50, 40)), 3)
    assert isinstance(out, QueryOutcome) and len(out.hits) == 3
    assert lib.queries[-1].size == (40, 30)
    blue = Image.new("RGB", (50, 50), "blue")
    run_query(lib, QueryRequest(images=(img, blue)), 3)
    # several photos go to the library as they are: its search makes their mean query (with
    # the same turned views as one photo has, app/search.query_views)
    assert lib.queries[-1] == [img, blue]


def test_search_service_answers_the_newest_request_and_survives_failures():
    lib = StubLibrary()
    service = SearchService(k=4)
    img = Image.new("RGB", (20, 20), "green")
    for seq in (1, 2, 3):  # queued before the model is ready: only the newest counts
        service.submit(QueryRequest(images=(img,), seq=seq))
    cancel = CancelToken()
    items = []
    gen = service.serve(lambda d, m: lib, "data", "model", cancel=cancel)

    def consume():
        for item in gen:
            items.append(item)

    thread = threading.Thread(target=consume)
    thread.start()
    service.submit(QueryRequest(images=(Image.new("RGB", (1, 1)),), seq=4))  # fails
    service.submit(QueryRequest(images=(img,), seq=5))
    deadline = time.monotonic() + 5
    while not any(getattr(getattr(i, "request", None), "seq", 0) == 5 for i in items):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    service.stop()  # a stop skips whatever is still waiting
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(items[0], LibraryLoaded) and items[0].library is lib
    answered = [(type(i).__name__, i.request.seq) for i in items[1:]]
    seqs = [seq for _, seq in answered]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 3  # 1 and 2 were stale: never answered
    assert answered[-1] == ("QueryOutcome", 5)
    failed = [i for i in items if isinstance(i, QueryFailed)]
    assert all("too small" in str(f.error) for f in failed)


def test_indexing_from_the_window_records_the_model_beside_the_index(tmp_path):
    """The settings go to the library, which writes them under the writer lock with the job's
    first save (not after the job, when another process may already be writing)."""
    from PIL import Image

    from imgsearch_gui.app.config import load_config
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.embedder import load_embedder
    from imgsearch_gui.ui.jobs import index_and_remember

    (tmp_path / "p").mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (60 * i, 20, 200)).save(tmp_path / "p" / f"{i}.png")
    config = EmbedderConfig(backbone="tiny", size=64, pooling="gem")
    with ImageLibrary(tmp_path / "data", load_embedder(config)) as lib:
        list(index_and_remember(lib, tmp_path / "p"))
        assert lib.settings == config
    saved = load_config(tmp_path / "data")
    assert (saved.backbone, saved.pooling, saved.size) == ("tiny", "gem", 64)
