"""Retrieval metrics: AP as in the Oxford/Paris ``compute_ap`` protocol, mAP, precision@k, N-S.

AP is the trapezoidal area under the precision/recall curve; junk images are removed from the
ranking before positions are counted (they neither help nor hurt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def compute_ap(positive_ranks: Sequence[int] | np.ndarray, n_positives: int) -> float:
    """AP from the 0-based, sorted ranks of the positives in a junk-free ranking."""
    if n_positives <= 0:
        raise ValueError("a query needs at least one positive")
    ap = 0.0
    step = 1.0 / n_positives
    for j, rank in enumerate(positive_ranks):
        precision_0 = 1.0 if rank == 0 else j / rank
        precision_1 = (j + 1) / (rank + 1)
        ap += (precision_0 + precision_1) * step / 2.0
    return ap


def ranks_without_junk(ranking: Sequence[int] | np.ndarray, positives: set[int],
                       junk: set[int] | None = None) -> np.ndarray:
    """0-based positions of ``positives`` in ``ranking`` after dropping ``junk`` items."""
    junk = junk or set()
    ranks = []
    position = 0
    for item in ranking:
        item = int(item)
        if item in junk:
            continue
        if item in positives:
            ranks.append(position)
        position += 1
    return np.asarray(ranks, dtype=np.int64)


def average_precision(ranking: Sequence[int] | np.ndarray, positives: set[int],
                      junk: set[int] | None = None) -> float:
    return compute_ap(ranks_without_junk(ranking, positives, junk), len(positives))


def precision_at(ranking: Sequence[int] | np.ndarray, positives: set[int], k: int,
                 junk: set[int] | None = None) -> float:
    junk = junk or set()
    kept = [int(i) for i in ranking if int(i) not in junk][:k]
    return sum(1 for i in kept if i in positives) / k


@dataclass(frozen=True)
class RetrievalScores:
    map: float
    mp_at_1: float
    mp_at_5: float
    mp_at_10: float
    n_queries: int
    per_query_ap: tuple[float, ...]
    ns_score: float | None = None
    query_rows: tuple[int, ...] = ()  # which rows were queries, in the order of per_query_ap


def _ranks_from_similarity(sim: np.ndarray, positives: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(-sim, axis=1, kind="stable")
    hits = np.take_along_axis(positives, order, axis=1)
    return [np.flatnonzero(row) for row in hits]


def label_retrieval(vectors: np.ndarray, labels: Sequence[object],
                    query_mask: np.ndarray | None = None,
                    queries: np.ndarray | None = None) -> RetrievalScores:
    """Every image a query against all others (itself excluded); relevant = same label.

    Queries with no other image of their label are skipped (``query_mask`` can restrict further).
    ``queries`` (same rows as ``vectors``) replaces the query side, e.g. after query expansion.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    query_vectors = vectors if queries is None else np.asarray(queries, dtype=np.float32)
    labels_arr = np.asarray([str(x) for x in labels])
    same = labels_arr[:, None] == labels_arr[None, :]
    np.fill_diagonal(same, False)
    usable = same.any(axis=1)
    if query_mask is not None:
        usable &= query_mask
    queries = np.flatnonzero(usable)
    per_query: list[tuple[np.ndarray, int]] = []
    for start in range(0, len(queries), 512):
        q = queries[start : start + 512]
        sim = query_vectors[q] @ vectors.T
        sim[np.arange(len(q)), q] = -np.inf  # itself excluded
        positives = same[q]
        per_query += [(ranks, int(positives[row].sum()))
                      for row, ranks in enumerate(_ranks_from_similarity(sim, positives))]
    return _scores(per_query, tuple(int(i) for i in queries))


def _scores(per_query: Sequence[tuple[np.ndarray, int]], query_rows: tuple[int, ...] = ()
            ) -> RetrievalScores:
    """mAP and mP@1/5/10 from each query's (0-based ranks of its positives, number of them)."""
    aps = [compute_ap(ranks, n) for ranks, n in per_query]
    at = {k: [float(np.sum(ranks < k)) / k for ranks, _ in per_query] for k in (1, 5, 10)}
    return RetrievalScores(
        map=float(np.mean(aps)) if aps else 0.0,
        mp_at_1=float(np.mean(at[1])) if aps else 0.0,
        mp_at_5=float(np.mean(at[5])) if aps else 0.0,
        mp_at_10=float(np.mean(at[10])) if aps else 0.0,
        n_queries=len(aps),
        per_query_ap=tuple(aps),
        query_rows=query_rows,
    )


def ns_score(vectors: np.ndarray, groups: Sequence[object],
             queries: np.ndarray | None = None) -> float:
    """UKBench N-S score: mean number of a query's group (itself included) in its top 4."""
    vectors = np.asarray(vectors, dtype=np.float32)
    query_vectors = vectors if queries is None else np.asarray(queries, dtype=np.float32)
    g = np.asarray([str(x) for x in groups])
    total = 0
    for start in range(0, len(g), 512):
        sim = query_vectors[start : start + 512] @ vectors.T
        top4 = np.argsort(-sim, axis=1, kind="stable")[:, :4]
        total += int((g[top4] == g[start : start + 512, None]).sum())
    return total / len(g)


def ranking_scores(rankings: Sequence[np.ndarray], positives: Sequence[np.ndarray]
                   ) -> RetrievalScores:
    """mAP and mP@1/5/10 of given rankings (what the search pipeline returned, the query and
    junk already left out): ``positives[i]`` are the relevant items of query i."""
    return _scores([(np.flatnonzero(np.isin(np.asarray(ranking), pos)), len(pos))
                    for ranking, pos in zip(rankings, positives, strict=True)])
