"""k nearest neighbours of many queries among rows held in memory (cosine), for derived data that
is never persisted: the duplicate finder's thumbprints. Exact below a size, an HNSW graph above,
so the cost grows about n log n."""

from __future__ import annotations

import hnswlib
import numpy as np

EXACT_BELOW = 4000
_BLOCK = 2048


def nearest(rows: np.ndarray, queries: np.ndarray, k: int, threads: int = -1
            ) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities), each (len(queries), min(k, len(rows))), best first.
    Rows and queries must be L2-normalised (or zero)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(rows))
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
    if len(rows) < EXACT_BELOW:
        return _exact(rows, queries, k)
    graph = hnswlib.Index(space="ip", dim=rows.shape[1])
    graph.init_index(max_elements=len(rows), ef_construction=100, M=16)
    graph.set_num_threads(threads)
    graph.add_items(rows, np.arange(len(rows)))
    graph.set_ef(max(64, 2 * k))
    labels, distances = graph.knn_query(queries, k=k)
    return labels.astype(np.int64), (1.0 - distances).astype(np.float32)


def _exact(rows: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    out_i, out_s = [], []
    for start in range(0, len(queries), _BLOCK):
        sims = queries[start:start + _BLOCK] @ rows.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < rows.shape[0] else \
            np.tile(np.arange(rows.shape[0]), (len(sims), 1))
        part = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-part, axis=1, kind="stable")
        out_i.append(np.take_along_axis(idx, order, axis=1))
        out_s.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_s).astype(np.float32)
