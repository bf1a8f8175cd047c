"""A library shared through Milvus (cluster/milvus.py): exported from a data dir, searched read-only.

``export`` writes what the local search ranks over (each photo's vector as indexed and, with DBA,
its augmented vector) with the photo's path, library, size and time; a second export syncs. A
:class:`SharedIndex` searches the collection with the local pipeline (``search.rank``: turned views,
query expansion, DBA) and the local embedder, whose ModelMeta must be the collection's.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from imgsearch_gui import cluster
from imgsearch_gui.app import search
from imgsearch_gui.base.pathtext import display_path, path_b64
from imgsearch_gui.base.types import SearchHit

if TYPE_CHECKING:  # pragma: no cover
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.cluster.milvus import MilvusCollection, PhotoRow, SyncReport

log = logging.getLogger(__name__)


def _milvus():
    cluster.require("pymilvus", "Milvus")
    from imgsearch_gui.cluster import milvus

    return milvus


def export(library: ImageLibrary, uri: str, collection: str | None = None) -> SyncReport:
    """Sync the collection at ``uri`` with the library's searchable photos."""
    milvus = _milvus()
    target = milvus.MilvusCollection.open(uri, library.embedder.meta,
                                          collection or milvus.DEFAULT_COLLECTION, create=True)
    try:
        report = target.sync(photo_rows(library))
        augmented = len(library.searched_stores()) > 1
        target.set_dba(library.augmentation.n if augmented and library.augmentation else 0)
    finally:
        target.close()
    return report


def photo_rows(library: ImageLibrary) -> Iterator[PhotoRow]:
    """Every indexed file with its vectors (the augmented one where DBA is complete)."""
    milvus = _milvus()
    roots = {r.id: r.root for r in library.catalog.libraries()}
    stores = library.searched_stores()
    files = library.catalog.indexed_files()
    for start in range(0, len(files), 1000):
        part = files[start:start + 1000]
        vids = np.array([f.vector_id for f in part], dtype=np.int64)
        plain = stores[-1].get(vids)
        dba = stores[0].get(vids) if len(stores) > 1 else plain
        for f, v, d in zip(part, plain, dba, strict=True):
            yield milvus.PhotoRow(f.id, int(f.vector_id), v, d, display_path(f.path),
                                  path_b64(f.path) or "", roots.get(f.library_id, ""), f.size,
                                  f.mtime_ns)


class SharedIndex:
    """A Milvus collection searched like a local library (read-only: it is indexed elsewhere)."""

    def __init__(self, uri: str, embedder, collection: str | None = None) -> None:
        milvus = _milvus()
        self.uri, self.embedder = uri, embedder
        self.collection: MilvusCollection = milvus.MilvusCollection.open(
            uri, embedder.meta, collection or milvus.DEFAULT_COLLECTION)

    def __len__(self) -> int:
        return len(self.collection)

    def close(self) -> None:
        self.collection.close()

    def __enter__(self) -> SharedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: search.Query, k: int, settings: search.QuerySettings
               ) -> list[SearchHit]:
        """The ``k`` most similar photos, as ``ImageLibrary.search`` ranks them (and scores them
        in bands, where measured for this model and search)."""
        dba = self.collection.dba
        views = search.as_queries(search.query_views(self.embedder, query, settings.quarter_turns),
                                  self.embedder.meta.dim)
        stores = self.collection.stores(augmented=dba > 0)
        expansion = settings.expansion if len(self.collection) else None
        [(labels, sims)] = search.rank(stores, [views], k, None, expansion, settings.turned_min)
        rows = self.collection.rows(labels.tolist())
        paths = {i: [(_exact_path(r), r["library"])] for i, r in rows.items()}
        bands = search.model_bands(self.embedder.config, dba, settings)
        return search.hits_of(labels.tolist(), sims.tolist(), paths, k, bands)


def _exact_path(row: dict) -> str:
    """The file's name as exported: its exact bytes where the text shows escapes."""
    return os.fsdecode(base64.b64decode(row["path_b64"])) if row["path_b64"] else row["path"]
