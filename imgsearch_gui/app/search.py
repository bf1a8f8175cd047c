"""The search pipeline: query descriptors -> alpha-QE (optional) -> k-NN over the searched store
(the augmented one when DBA is on), limited to one library if asked -> hits with their paths.

``mean_query`` is the one definition of a query made of several photos; ``ImageLibrary.search``
and the GUI's query worker both use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from imgsearch_gui.app import scan
from imgsearch_gui.base.errors import NotALibraryError, QueryError
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


def _embed_photo(embedder: Embedder, photo: Photo) -> np.ndarray:
    if isinstance(photo, Image.Image):
        return embedder.embed_image(photo)
    return embedder.embed_path(photo)


def query_vector(embedder: Embedder, query: Query) -> np.ndarray:
    """One query descriptor: of a photo, the mean of several photos or descriptors (2-D), or a
    descriptor as given."""
    if isinstance(query, np.ndarray):
        vec = np.asarray(query, dtype=np.float32)
        return mean_query(vec) if vec.ndim == 2 else vec
    if isinstance(query, (str, os.PathLike, Image.Image)):
        return _embed_photo(embedder, query)
    photos = list(query)
    if not photos:
        raise QueryError("no query images")
    return mean_query([_embed_photo(embedder, p) for p in photos])


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


def hits_of(labels: list[int], sims: list[float], paths: dict[int, list[tuple[str, str]]], k: int
            ) -> list[SearchHit]:
    """The first ``k`` paths of the ranked vectors: every path of a shared (duplicate) vector is a
    hit, each path once; scores clipped to [-1, 1]."""
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for lab, sim in zip(labels, sims, strict=True):
        for path, root in paths.get(lab, ()):
            if path in seen:
                continue
            seen.add(path)
            hits.append(SearchHit(path, float(min(1.0, max(-1.0, sim))), len(hits) + 1, root))
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

    def run(self, store: VectorStore, q: np.ndarray, k: int, library: Path | str | None = None,
            expansion: QueryExpansion | None = None) -> list[list[SearchHit]]:
        """One hit list per row of ``q`` (see :func:`as_queries`)."""
        lib_id, allowed = self.libraries.resolve(library)
        if k <= 0:
            return [[] for _ in range(len(q))]
        if expansion is not None and expansion.n > 0:
            q = expand_queries(store, q, expansion, allowed)
        out: list[list[SearchHit]] = []
        found_offline = self._catalog.offline_library_roots()
        for labels, sims in store.query(q, k, allowed):
            ids = labels.tolist()
            paths = self._catalog.paths_of_vectors(ids, lib_id)
            out.append(mark_offline(hits_of(ids, sims.tolist(), paths, k), found_offline))
        return out
