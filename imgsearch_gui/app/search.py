"""The search pipeline, one for ``imgsearch search``, the GUI and ``imgsearch eval``.

query photo -> its views (turned by 0/90/180/270 degrees when rotations are on,
``ml/views.py``) -> descriptors -> the upright view also alpha-QE'd (optional) -> k-NN of every
row over the store and, when DBA is on, its augmented copy, limited to one library if asked ->
each photo's best score over the rows (turned ones gated) and its two vectors (:func:`rank`) ->
hits with their paths and score bands.

``mean_query`` is the one definition of a query made of several photos; :func:`query_views`
the one of a query's views; :func:`rank` the one ranking that search and eval both report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from imgsearch_gui.app import scan
from imgsearch_gui.base import registry
from imgsearch_gui.base.bands import MeasuredFor, ScoreBands, bands_for
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.base.errors import NotALibraryError, QueryError
from imgsearch_gui.base.images import load_image
from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.ml.query_expansion import QueryExpansion, expand

if TYPE_CHECKING:  # pragma: no cover
    from imgsearch_gui.app.catalog import Catalog
    from imgsearch_gui.index.store import VectorStore
    from imgsearch_gui.ml.embedder import Embedder

#: a photo given as a file or as an image already decoded
Photo = Path | str | Image.Image
#: what ``ImageLibrary.search`` accepts: one photo, several (their mean), or descriptors
Query = Photo | Sequence[Photo] | np.ndarray


def mean_query(vectors: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The mean direction of several query descriptors (each made unit length first), unit length.

    QueryError when they cancel each other out: a mean of length zero points nowhere, and a search
    with it would rank the library at random.
    """
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or len(v) == 0:
        raise QueryError("no query images")
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    mean = v.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        raise QueryError("the query images cancel each other out: search with fewer or other photos")
    return (mean / norm).astype(np.float32)


@dataclass(frozen=True)
class QuerySettings:
    """The query side of a search; the data dir's settings (``EmbedderConfig.rotations``,
    ``.qe``) unless a command or the GUI says otherwise."""

    #: also search with the query turned by 90, 180 and 270 degrees, each photo keeping its best
    #: score: sideways copies are found (one forward pass per view)
    rotations: bool = registry.DEFAULT_ROTATIONS
    expansion: QueryExpansion | None = field(default_factory=lambda: (
        QueryExpansion(registry.DEFAULT_QE) if registry.DEFAULT_QE > 0 else None))
    #: a photo found by a turned view counts only at this similarity or more (a sideways copy
    #: of the same photo), else photos that merely look alike when turned (a dress on its side
    #: and trousers) crowd out the upright matches
    turned_min: float = registry.DEFAULT_TURNED_MIN

    @classmethod
    def of(cls, config: EmbedderConfig) -> QuerySettings:
        return cls(config.rotations, QueryExpansion(config.qe) if config.qe > 0 else None)

    def search_args(self) -> dict[str, object]:
        """What :func:`rank` takes from these settings."""
        return {"expansion": self.expansion, "turned_min": self.turned_min}

    @property
    def quarter_turns(self) -> tuple[int, ...]:
        return registry.QUARTER_TURNS if self.rotations else (0,)

    def describe(self) -> dict[str, object]:
        """The settings as plain data (``eval --json`` reports them)."""
        return {"rotations": self.rotations,
                **({"turned_min": self.turned_min} if self.rotations else {}),
                "qe": self.expansion.n if self.expansion else 0,
                "qe_alpha": self.expansion.alpha if self.expansion else None}


def _photo_views(embedder: Embedder, photo: Photo, quarters: Sequence[int]) -> np.ndarray:
    image = photo if isinstance(photo, Image.Image) else load_image(photo, embedder.config.size)
    return embedder.embed_views(image, quarters)


def query_views(embedder: Embedder, query: Query, quarters: Sequence[int] = (0,)) -> np.ndarray:
    """The query's descriptors, one row per view (``quarters``: turns of 90 degrees): of a
    photo; of several photos (per view, the mean of the photos' descriptors); of descriptors
    given (one row: a 1-D descriptor, or the mean of a 2-D array; they have no views)."""
    if isinstance(query, np.ndarray):
        vec = np.asarray(query, dtype=np.float32)
        return (mean_query(vec) if vec.ndim == 2 else vec)[None, :]
    if isinstance(query, (str, os.PathLike, Image.Image)):
        return _photo_views(embedder, query, quarters)
    photos = list(query)
    if not photos:
        raise QueryError("no query images")
    per_photo = np.stack([_photo_views(embedder, p, quarters) for p in photos])  # (photos, v, d)
    return np.stack([mean_query(per_photo[:, v]) for v in range(per_photo.shape[1])])


def query_vector(embedder: Embedder, query: Query) -> np.ndarray:
    """One query descriptor, as given (no turned views): see :func:`query_views`."""
    return query_views(embedder, query)[0]


def as_queries(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Query descriptors as a (n, dim) float32 array; QueryError for another dimension."""
    q = np.asarray(vectors, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.shape[1] != dim:
        raise QueryError(f"query dim {q.shape[1]} != model dim {dim}")
    return q


class LibraryFilter:
    """The vector ids a search limited to one library may return (cached until the catalog
    changes)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._cache: dict[int, tuple[int, np.ndarray]] = {}

    def resolve(self, library: Path | str | None) -> tuple[int | None, np.ndarray | None]:
        """(library id, allowed vector ids): (None, None) for all libraries; no filter either when
        the library is the only one. NotALibraryError for a folder that is not indexed."""
        if library is None:
            return None, None
        root = scan.normalize_root(library)
        lib_id = self._catalog.library_id(root)
        if lib_id is None:
            raise NotALibraryError(f"{root} is not an indexed library")
        if len(self._catalog.libraries()) <= 1:
            return lib_id, None
        return lib_id, self._vectors(lib_id)

    def _vectors(self, lib_id: int) -> np.ndarray:
        stamp = self._catalog.changes
        cached = self._cache.get(lib_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ids = np.array(self._catalog.vector_ids_of_library(lib_id), dtype=np.int64)
        self._cache = {lib_id: (stamp, ids)}
        return ids


def expand_queries(store: VectorStore, q: np.ndarray, expansion: QueryExpansion,
                   allowed: np.ndarray | None) -> np.ndarray:
    """alpha-QE: each query merged with its top ``expansion.n`` hits (a query without hits stays)."""
    expanded = np.empty_like(q)
    for i, (labels, sims) in enumerate(store.query(q, expansion.n, allowed)):
        expanded[i] = expand(q[i], store.get(labels), sims, expansion.alpha) if len(labels) else q[i]
    return expanded


def best_per_label(labels: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of (label, similarity) pairs in which a label may appear more than once
    (once per view): each label once, with its best similarity, best first (ties: the earlier
    pair wins, so a single view keeps its order exactly)."""
    order = np.argsort(-sims, kind="stable")
    labels, sims = labels[order], sims[order]
    _, first = np.unique(labels, return_index=True)
    first.sort()
    return labels[first[:k]], sims[first[:k]]


def rank(stores: Sequence[VectorStore], views: Sequence[np.ndarray], k: int,
         allowed: np.ndarray | None, expansion: QueryExpansion | None,
         turned_min: float = registry.DEFAULT_TURNED_MIN) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ranking of each query, given as its views (each (v, dim), unit rows; row 0 as the
    photo is, the others turned), over ``stores``: the augmented store and the store itself when
    DBA is on (then each photo has two vectors: as indexed, and merged with its neighbours),
    else the store alone.

    With ``expansion`` the upright view is searched both as it is and alpha-QE'd (with the first
    store): the expanded query finds more of the same class or object, the plain one keeps the
    photo itself at 1 (measured: the same rankings as the expanded query alone). Turned views
    are not expanded (that would lift their look-alikes over the gate) and their pairs count only
    at ``turned_min`` or more. Every row is searched for ``k`` in each store; each label keeps its
    best similarity over the rows and stores, best first, ``k`` of them. The top-``k`` lists hold
    the merged top ``k`` exactly, so this equals ranking every photo by its best row and vector.
    With DBA a photo's own copy still scores 1 (its vector as indexed), and DBA's gain for photos
    of the same class or object stays (their augmented vectors)."""
    first = stores[0]
    rows: list[np.ndarray] = []
    gated: list[np.ndarray] = []  # per query, which of its rows the gate applies to
    expand_on = expansion is not None and expansion.n > 0 and len(first) > 0
    for v in views:
        v = np.asarray(v, dtype=np.float32)
        extra = expand_queries(first, v[:1], expansion, allowed) if expand_on else v[:0]
        rows.append(np.concatenate([v[:1], extra, v[1:]]))
        gated.append(np.arange(len(rows[-1])) >= 1 + len(extra))
    flat = np.concatenate(rows) if rows else np.zeros((0, first.dim or 0), dtype=np.float32)
    found = [store.query(flat, k, allowed) for store in stores]
    out, start = [], 0
    for query_rows, gate in zip(rows, gated, strict=True):
        n = len(query_rows)
        part = []
        for per_store in found:
            for row, (lab, sim) in enumerate(per_store[start : start + n]):
                keep = sim >= turned_min if gate[row] else slice(None)
                part.append((lab[keep], sim[keep]))
        start += n
        if len(part) == 1:
            out.append(part[0])
            continue
        labels = np.concatenate([lab for lab, _ in part])
        sims = np.concatenate([sim for _, sim in part])
        out.append(best_per_label(labels, sims, k))
    return out


def hits_of(labels: list[int], sims: list[float], paths: dict[int, list[tuple[str, str]]], k: int,
            bands: ScoreBands | None = None) -> list[SearchHit]:
    """The first ``k`` paths of the ranked vectors: every path of a shared (duplicate) vector is a
    hit, each path once; scores clipped to [-1, 1], each with its band if ``bands``."""
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for lab, sim in zip(labels, sims, strict=True):
        score = float(min(1.0, max(-1.0, sim)))
        band = bands.band(score) if bands is not None else None
        for path, root in paths.get(lab, ()):
            if path in seen:
                continue
            seen.add(path)
            hits.append(SearchHit(path, score, len(hits) + 1, root, band=band))
            if len(hits) >= k:
                return hits
    return hits


def mark_offline(hits: list[SearchHit], found_offline: set[str]) -> list[SearchHit]:
    """The hits of a library that is offline (``scan.library_offline``: ``found_offline`` are the
    roots the last index job found offline) are still results, marked ``offline`` (one listing
    of each root a search returns)."""
    roots = {h.library for h in hits if h.library}
    offline = {r for r in roots if scan.library_offline(r, r in found_offline)}
    return [replace(h, offline=True) if h.library in offline else h for h in hits]


class SearchPipeline:
    """Searches a store with the catalog's paths: one home for what ``ImageLibrary.search`` does."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.libraries = LibraryFilter(catalog)

    def run(self, stores: Sequence[VectorStore], views: Sequence[np.ndarray], k: int,
            library: Path | str | None = None, expansion: QueryExpansion | None = None,
            bands: ScoreBands | None = None, turned_min: float = registry.DEFAULT_TURNED_MIN
            ) -> list[list[SearchHit]]:
        """One hit list per query, each given as its views, over ``stores`` (see :func:`rank`);
        each hit with its band when the model's ``bands`` are known."""
        lib_id, allowed = self.libraries.resolve(library)
        if k <= 0:
            return [[] for _ in range(len(views))]
        out: list[list[SearchHit]] = []
        found_offline = self._catalog.offline_library_roots()
        for labels, sims in rank(stores, views, k, allowed, expansion, turned_min):
            ids = labels.tolist()
            paths = self._catalog.paths_of_vectors(ids, lib_id)
            out.append(mark_offline(hits_of(ids, sims.tolist(), paths, k, bands),
                                    found_offline))
        return out


def model_bands(config: EmbedderConfig, dba: int, settings: QuerySettings) -> ScoreBands | None:
    """The score bands of this model and search (None: not measured for them)."""
    setting = MeasuredFor(config.backbone, config.pooling, config.size, config.multiscale, dba,
                          settings.expansion.n if settings.expansion else 0)
    return bands_for(setting, weights=config.weights, whitening=config.whitening,
                     layer=config.layer)
