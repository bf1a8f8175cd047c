"""Query expansion and database-side augmentation on unit descriptors (Radenović et al.).

alpha-QE: the query plus its top-n neighbours weighted by similarity**alpha, re-normalised,
then searched again; alpha=0 is average query expansion (AQE). DBA applies the same to every
database vector with its own neighbours, once, at indexing time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Database-side augmentation: each stored vector merged with its ``n`` neighbours."""

    n: int = 3
    alpha: float = 3.0


@dataclass(frozen=True)
class QueryExpansion:
    """alpha-QE settings for a search: ``n`` neighbours, weights similarity**alpha (0 = AQE)."""

    n: int = 2
    alpha: float = 3.0


def _l2n(x: np.ndarray) -> np.ndarray:
    return (x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)).astype(np.float32)


def expand(query: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray,
           alpha: float = 3.0) -> np.ndarray:
    """New query from ``query`` (d,) and its top neighbours (n, d) with their similarities (n,)."""
    weights = np.clip(similarities, 0, None) ** alpha if alpha > 0 else np.ones(len(neighbours))
    return _l2n(query + (weights[:, None] * neighbours).sum(axis=0))


def alpha_qe(queries: np.ndarray, database: np.ndarray, n: int = 2, alpha: float = 3.0
             ) -> np.ndarray:
    """Expanded queries (exact search over ``database``)."""
    queries = np.atleast_2d(queries)
    sims = queries @ database.T
    top = np.argsort(-sims, axis=1)[:, :n]
    out = np.empty_like(queries, dtype=np.float32)
    for i, idx in enumerate(top):
        out[i] = expand(queries[i], database[idx], sims[i, idx], alpha)
    return out


def augment(vectors: np.ndarray, neighbours: Sequence[np.ndarray],
            similarities: Sequence[np.ndarray], alpha: float = 3.0) -> np.ndarray:
    """DBA of the given rows: row i of ``vectors`` (m, d) merged with ``neighbours[i]`` (n_i, d),
    its nearest other database vectors, weighted by ``similarities[i]`` (n_i,).

    The one implementation of the merge: :func:`dba` (exact, a whole database) and the library's
    augmented store (incremental: only the rows that changed, neighbours from the index) call it.
    A row without neighbours stays as it is.
    """
    out = np.empty((len(vectors), np.shape(vectors)[-1]), dtype=np.float32)
    for i, (nbrs, sims) in enumerate(zip(neighbours, similarities, strict=True)):
        out[i] = expand(vectors[i], nbrs, sims, alpha) if len(nbrs) else vectors[i]
    return out


def dba(database: np.ndarray, n: int = 2, alpha: float = 3.0, exclude_self: bool = True
        ) -> np.ndarray:
    """Database-side augmentation: every vector merged with its top-n neighbours (exact search)."""
    out = np.empty_like(database, dtype=np.float32)
    for start in range(0, len(database), 1024):
        block = database[start : start + 1024]
        sims = block @ database.T
        if exclude_self:
            sims[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        top = np.argsort(-sims, axis=1)[:, :n]
        out[start : start + len(block)] = augment(
            block, [database[idx] for idx in top], [sims[i, idx] for i, idx in enumerate(top)], alpha)
    return out
