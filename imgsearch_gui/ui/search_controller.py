"""Search sequencing: every query gets a number, goes to the model service, and only the answer
to the newest one is shown (the user moved on from the others). Keeps the query's photos for
region searches and the fetched hits for the count / minimum-score filters.

What a failure leaves on screen: a new query that fails ("Search failed: empty.jpg") shows *that*
query, never the one before: the query pane shows the photo if one was pasted, else the
placeholder, with the file's name and "could not be searched" as the caption; the results of the
previous query are cleared, so nothing on screen looks like an answer to it. A failed region search
keeps its photo. The warning is posted with the topic ``messages.SEARCH``; the next answered search
withdraws it (warnings about other things, indexing or an offline library, stay)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ui import format as fmt
from imgsearch_gui.ui.index_queue import index_unusable
from imgsearch_gui.ui.jobs import QueryOutcome, QueryRequest, filter_hits
from imgsearch_gui.ui.messages import SEARCH, MessageChannel
from imgsearch_gui.ui.model_service import ModelService
from imgsearch_gui.ui.prefs import Prefs
from imgsearch_gui.ui.qtcompat import emit
from imgsearch_gui.ui.results import pil_to_qimage
from imgsearch_gui.ui.widgets.query_panel import QueryPanel
from imgsearch_gui.ui.widgets.results_panel import ResultsPanel

log = logging.getLogger(__name__)


class SearchController(QObject):
    """Sends queries to ``models`` and shows the newest answer in the two panels."""

    finished = Signal(object)  # list[SearchHit]: every fetched hit of the newest query
    busyChanged = Signal(bool)  # a search is on its way (the window shows a busy cursor)
    queryChanged = Signal()  # another query photo is shown
    rebuildNeeded = Signal(object)  # the exception: the index cannot be searched as it is

    def __init__(self, models: ModelService, query: QueryPanel, results: ResultsPanel,
                 messages: MessageChannel, prefs: Prefs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models = models
        self.query = query
        self.results = results
        self.messages = messages
        self.prefs = prefs
        self._seq = 0
        self._images: tuple = ()
        self._label = ""
        self._box: fmt.Box | None = None  # of the answer shown
        self._caption = ""  # of the answer shown
        self._answered = 0  # the seq of the last request answered (or failed)
        self._refresh_after = False  # search again once the newest request is answered
        self._pending: QueryRequest | None = None  # the newest request sent
        self._pending_gen = 0  # the model service's generation it was sent to
        self._fetched: list[SearchHit] = []
        query.view.regionSelected.connect(self._region_selected)
        query.view.regionCleared.connect(self._region_cleared)
        results.count_spin.valueChanged.connect(self.apply_filter)
        results.score_spin.valueChanged.connect(self.apply_filter)
        models.answered.connect(self._result)
        models.queryFailed.connect(self._error)
        models.loaded.connect(self._resubmit_pending)

    @property
    def has_query(self) -> bool:
        return bool(self._images)

    # ==== requests ==========================================================================
    def search_paths(self, files: Sequence[str | os.PathLike[str]]) -> None:
        files = tuple(str(Path(f)) for f in files)
        self.submit(QueryRequest(paths=files, label=fmt.query_label(files)))

    def search_image(self, image, label: str = "Image") -> None:
        self.submit(QueryRequest(images=(image,), label=label))

    def _resubmit_pending(self, _library) -> None:
        """A model (re)loaded while a request was on its way: that request went to a service
        that is gone (the model failed, or was switched), so it is sent again, to the new one."""
        if (self._answered != self._seq and self._pending is not None
                and self._pending_gen != self.models.generation):
            self._pending_gen = self.models.generation
            self.models.submit(self._pending)

    def refresh(self) -> None:
        """Search the shown query again (the index changed under it: photos added, moved or
        removed by a job the user did not start); nothing when no query is shown. While a
        search is on its way (the user's newest), it is left alone and repeated once answered:
        a refresh never replaces what the user asked for with what they asked before."""
        if self._answered != self._seq:
            self._refresh_after = True
            return
        if self._images and self.models.running:
            self.submit(QueryRequest(images=self._images, box=self._box, label=self._caption,
                                     new_query=False))

    def search_region(self, box: fmt.Box | None) -> None:
        if not self._images:
            return
        self.submit(QueryRequest(images=self._images, box=box,
                                 label=fmt.region_label(self._label, box), new_query=False))

    def _region_selected(self, x0: int, y0: int, x1: int, y1: int) -> None:
        if len(self._images) != 1:
            self.messages.info("Region search works with a single query photo.")
            return
        self.query.clear_region_button.setEnabled(True)
        self.search_region((x0, y0, x1, y1))

    def _region_cleared(self) -> None:
        self.query.clear_region_button.setEnabled(False)
        self.search_region(None)

    def submit(self, request: QueryRequest) -> None:
        """Number ``request`` and send it; a pasted image is shown at once."""
        self._seq += 1
        request = QueryRequest(
            paths=request.paths, images=request.images, box=request.box, label=request.label,
            new_query=request.new_query, seq=self._seq, started=request.started,
        )
        if request.new_query and request.images:
            self._show_query(request.images, request.label)  # pasted: show it at once
        if not self.models.running:
            self._answered = self._seq  # nothing is on its way
            self.messages.warning("The model is not loaded; check Tools ▸ Settings.", topic=SEARCH)
            return
        if self.models.library is None:
            self.results.summary.setText("Loading the model… the search starts when it is ready")
        else:
            self.results.summary.setText("Searching…")
        emit(self.busyChanged, True)
        self._pending, self._pending_gen = request, self.models.generation
        self.models.submit(request)  # only the newest waiting request is answered

    # ==== answers ===========================================================================
    def _result(self, outcome: QueryOutcome) -> None:
        request = outcome.request
        if request.seq != self._seq:
            return  # a newer query is on its way
        self._answered = request.seq
        emit(self.busyChanged, False)
        self.messages.withdraw(SEARCH)  # searching works: "Search failed" is over
        self._box = request.box
        if request.new_query:
            if not request.images:
                self._show_query(outcome.images, request.label)
            self.query.view.set_region(request.box, notify=False)
            self.query.clear_region_button.setEnabled(request.box is not None)
        self.query.caption.setText(request.label)
        self._caption = request.label
        self._fetched = list(outcome.hits)
        self.apply_filter()
        if not self.prefs.libraries:
            self.messages.info("No library yet: add a photo folder (Library ▸ Add library…).")
        log.info("query %d: %d hits in %.0f ms (search %.0f ms)", request.seq, len(outcome.hits),
                 (time.perf_counter() - request.started) * 1000, outcome.seconds * 1000)
        emit(self.finished, outcome.hits)
        self._refresh_if_asked()

    def _refresh_if_asked(self) -> None:
        if self._refresh_after:
            self._refresh_after = False
            self.refresh()

    def _error(self, request: QueryRequest, exc: BaseException) -> None:
        if request.seq == self._seq:
            self._answered = request.seq
            self._refresh_after = False  # the results shown are not of this index anyway
            if request.new_query:
                self._show_failed_query(request)
            self.results.summary.setText("Search failed")
            emit(self.busyChanged, False)
        if index_unusable(exc):
            emit(self.rebuildNeeded, exc)
        else:
            self.messages.report("Search failed", exc, topic=SEARCH)

    def _show_failed_query(self, request: QueryRequest) -> None:
        """The query pane shows the query that failed (a pasted image stays, files leave the
        placeholder and their name), and no results: the old ones would look like its answer."""
        if not request.images:
            self._show_query((), request.label)
        self._box = None
        self._caption = request.label
        self.query.caption.setText(f"{request.label}: could not be searched")
        self._fetched = []
        self.apply_filter()

    def _show_query(self, images: Sequence, label: str) -> None:
        self._images = tuple(images)
        self._label = label
        self.query.view.set_image(pil_to_qimage(images[0]) if images else None)
        self.query.caption.setText(label)
        self.query.clear_region_button.setEnabled(False)
        emit(self.queryChanged)

    # ==== what is shown =====================================================================
    def apply_filter(self) -> None:
        """Show the fetched hits that pass the count and minimum-score controls."""
        count, min_score = self.results.count_spin.value(), self.results.score_spin.value()
        shown = filter_hits(self._fetched, count, min_score)
        self.results.model.set_hits(shown)
        self.results.summary.setText(
            fmt.results_summary(self._fetched, len(shown), count, min_score, self.has_query))

    def clear_results(self) -> None:
        self._fetched = []
        self.apply_filter()

    def forget_under(self, root: str) -> None:
        """A library was removed: its photos leave the results."""
        self._fetched = [h for h in self._fetched if not fmt.is_under(h.path, root)]
        self.apply_filter()
