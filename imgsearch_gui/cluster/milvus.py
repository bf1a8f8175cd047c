"""The index served by Milvus: a collection of photos (one entity per file) that many users search.

``uri`` is a Milvus Lite file (``*.db``: the same engine embedded, for one machine or a test) or a
server (``http://host:19530``); the client is the same. The collection carries the ModelMeta of its
vectors in its properties, and a collection of another model is refused, never mixed.

Each entity: ``id`` (the catalog's file id), ``vid`` (its vector's id: duplicates share one),
``digest`` (of its two vectors, so that a re-export sees a DBA vector that changed),
``vector`` (as indexed), ``dba`` (database-side augmented, what the local search ranks with; the
plain vector where DBA is off), ``path`` (text; a name that is not UTF-8 shows ``\\xNN`` escapes),
``path_b64`` (the exact bytes, only for such names), ``library``, ``size``, ``mtime_ns``.

The stores (:class:`MilvusVectors`) answer ``query``/``get`` as index/store.VectorStore does, so
app/search.py ranks over them with the same pipeline (turned views, query expansion, DBA).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from pymilvus import DataType, MilvusClient

from imgsearch_gui.base.errors import ClusterUnavailableError, CollectionMismatchError
from imgsearch_gui.base.meta import ModelMeta

log = logging.getLogger(__name__)
# pymilvus logs a traceback whenever Milvus Lite lacks a server call it then does without
logging.getLogger("pymilvus").setLevel(logging.ERROR)

DEFAULT_COLLECTION = "imgsearch"
META_KEY = "imgsearch.meta"
DBA_KEY = "imgsearch.dba"  # the neighbours of the exported ``dba`` vectors (0: plain copies)
#: HNSW, chosen by bench/vector_scale.py (README, "Scale"): recall@10 >= 0.95 at the lowest p99
INDEX_PARAMS = {"M": 16, "efConstruction": 200}
SEARCH_EF = 128
_FIELDS = ("vid", "digest", "path", "path_b64", "library", "size", "mtime_ns")
_BATCH = 2000


@dataclass(frozen=True)
class PhotoRow:
    """One photo as exported: its file id, vector id, vectors and where the file is."""

    id: int
    vid: int
    vector: np.ndarray
    dba: np.ndarray
    path: str
    path_b64: str
    library: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    deleted: int
    total: int


class MilvusCollection:
    """One collection of one model's photo vectors."""

    def __init__(self, uri: str, name: str, client: MilvusClient, meta: ModelMeta) -> None:
        self.uri, self.name, self.client, self.meta = uri, name, client, meta

    @classmethod
    def open(cls, uri: str, meta: ModelMeta, name: str = DEFAULT_COLLECTION,
             create: bool = False) -> MilvusCollection:
        """The collection ``name`` at ``uri``; CollectionMismatchError when it holds another
        model's vectors; created (empty) when missing and ``create``."""
        client = _connect(uri)
        if client.has_collection(name):
            stored = stored_meta(client, name)
            if stored != meta:
                raise CollectionMismatchError(
                    f"the collection {name} at {uri} holds vectors of {stored.describe()}, not of "
                    f"{meta.describe()}: export to another collection (--collection), or use its "
                    "model")
            client.load_collection(name)  # a new client finds it released: searches would fail
        elif create:
            _create(client, name, meta)
        else:
            raise CollectionMismatchError(f"no collection {name} at {uri}: export to it first")
        return cls(uri, name, client, meta)

    def __len__(self) -> int:
        return int(self.client.get_collection_stats(self.name)["row_count"])

    def close(self) -> None:
        """Let go of the connection; a Milvus Lite file is open to one process at a time, so its
        in-process server is stopped too (else it holds the file until this process exits)."""
        self.client.close()
        if is_lite(self.uri):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)

    @property
    def dba(self) -> int:
        """The DBA neighbours the ``dba`` vectors were augmented with (0: none)."""
        props = self.client.describe_collection(self.name).get("properties") or {}
        return int(props.get(DBA_KEY, 0))

    def set_dba(self, n: int) -> None:
        self.client.alter_collection_properties(self.name, properties={DBA_KEY: str(int(n))})

    def stores(self, augmented: bool) -> tuple[MilvusVectors, ...]:
        """What ``search.rank`` ranks over: the augmented and the plain vectors, or the plain."""
        plain = MilvusVectors(self, "vector")
        return (MilvusVectors(self, "dba"), plain) if augmented else (plain,)

    def rows(self, ids: Sequence[int]) -> dict[int, dict]:
        """The stored fields of these entities, by id."""
        if not len(ids):
            return {}
        got = self.client.get(self.name, ids=[int(i) for i in ids], output_fields=list(_FIELDS))
        return {int(r["id"]): r for r in got}

    def sync(self, rows: Iterable[PhotoRow]) -> SyncReport:
        """Make the collection hold exactly ``rows``: new ones inserted, changed ones (moved,
        another vector, another size or time) upserted, the others deleted."""
        have = {int(r["id"]): r for r in self._all(_FIELDS)}
        added = updated = 0
        seen: set[int] = set()
        batch: list[dict] = []
        for row in rows:
            seen.add(row.id)
            old = have.get(row.id)
            if old is not None and _same(old, row):
                continue
            added, updated = (added + 1, updated) if old is None else (added, updated + 1)
            batch.append(_entity(row))
            if len(batch) >= _BATCH:
                self.client.upsert(self.name, batch)
                batch = []
        if batch:
            self.client.upsert(self.name, batch)
        gone = [i for i in have if i not in seen]
        for start in range(0, len(gone), _BATCH):
            self.client.delete(self.name, ids=gone[start:start + _BATCH])
        self.client.flush(self.name)
        log.info("%s/%s: %d added, %d updated, %d deleted", self.uri, self.name, added, updated,
                 len(gone))
        return SyncReport(added, updated, len(gone), len(seen))

    def _all(self, fields: Sequence[str]) -> Iterator[dict]:
        it = self.client.query_iterator(self.name, batch_size=_BATCH, filter="id >= 0",
                                        output_fields=list(fields))
        try:
            while page := it.next():
                yield from page
        finally:
            it.close()


class MilvusVectors:
    """One vector field of the collection, as ``search.rank`` reads a store (labels = file ids)."""

    def __init__(self, collection: MilvusCollection, field: str) -> None:
        self.collection, self.field = collection, field

    @property
    def dim(self) -> int:
        return self.collection.meta.dim

    def __len__(self) -> int:
        return len(self.collection)

    def query(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None
              ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each row's ``k`` nearest (labels, cosine similarities), best first."""
        if allowed is not None:
            raise NotImplementedError("a Milvus collection is searched whole")
        q = np.asarray(q, dtype=np.float32)
        if not len(q):
            return []
        c = self.collection
        found = c.client.search(c.name, data=q.tolist(), anns_field=self.field, limit=k,
                                search_params={"metric_type": "IP",
                                               "params": {"ef": max(SEARCH_EF, k)}})
        return [(np.array([h["id"] for h in hits], dtype=np.int64),
                 np.array([h["distance"] for h in hits], dtype=np.float32)) for hits in found]

    def get(self, labels: np.ndarray | list[int]) -> np.ndarray:
        ids = [int(i) for i in labels]
        c = self.collection
        got = {int(r["id"]): r[self.field]
               for r in c.client.get(c.name, ids=ids, output_fields=[self.field])}
        return np.array([got[i] for i in ids], dtype=np.float32).reshape(len(ids), self.dim)


def is_lite(uri: str) -> bool:
    """A local file (Milvus Lite), not a server's address."""
    return "://" not in uri


def stored_meta(client: MilvusClient, name: str) -> ModelMeta:
    props = client.describe_collection(name).get("properties") or {}
    if META_KEY not in props:
        raise CollectionMismatchError(f"the collection {name} was not made by imgsearch")
    return ModelMeta.from_json(props[META_KEY])


def _connect(uri: str) -> MilvusClient:
    try:
        return MilvusClient(uri)
    except Exception as exc:  # noqa: BLE001 - pymilvus raises its own types and OSError
        raise ClusterUnavailableError(f"cannot open Milvus at {uri}: {exc}") from exc


def _create(client: MilvusClient, name: str, meta: ModelMeta) -> None:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vid", DataType.INT64)
    schema.add_field("digest", DataType.VARCHAR, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=meta.dim)
    schema.add_field("dba", DataType.FLOAT_VECTOR, dim=meta.dim)
    schema.add_field("path", DataType.VARCHAR, max_length=16384)
    schema.add_field("path_b64", DataType.VARCHAR, max_length=16384)
    schema.add_field("library", DataType.VARCHAR, max_length=16384)
    schema.add_field("size", DataType.INT64)
    schema.add_field("mtime_ns", DataType.INT64)
    index = client.prepare_index_params()
    for field in ("vector", "dba"):
        index.add_index(field_name=field, index_type="HNSW", metric_type="IP", params=INDEX_PARAMS)
    client.create_collection(name, schema=schema, index_params=index,
                             properties={META_KEY: meta.to_json()})


def _same(old: dict, row: PhotoRow) -> bool:
    return (int(old["vid"]) == row.vid and old["digest"] == _digest(row) and old["path"] == row.path
            and old["path_b64"] == row.path_b64 and old["library"] == row.library
            and int(old["size"]) == row.size and int(old["mtime_ns"]) == row.mtime_ns)


def _digest(row: PhotoRow) -> str:
    """Of both vectors: a DBA vector changes when photos are added near it, its vid does not."""
    data = np.ascontiguousarray(row.vector, np.float32).tobytes() + np.ascontiguousarray(
        row.dba, np.float32).tobytes()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _entity(row: PhotoRow) -> dict:
    return {"id": row.id, "vid": row.vid, "digest": _digest(row), "vector": row.vector.tolist(),
            "dba": row.dba.tolist(),
            "path": row.path, "path_b64": row.path_b64, "library": row.library, "size": row.size,
            "mtime_ns": row.mtime_ns}
