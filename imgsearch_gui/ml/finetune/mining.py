"""Hard negatives for the metric losses, mined from a pool of training images re-embedded with
the current network at the start of every epoch (as cirtorch does).

In-batch mining alone only finds the hardest of the few classes a batch happens to hold; the pool
finds, for every anchor, the images of other classes that the network confuses it with now. A
batch is anchor pairs (two images of a class, each the other's positive) plus, per pair, the
``negatives`` hardest pool images of other classes, at most one per class.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np


def pool_rows(anchors: Sequence[int], n_train: int, pool_size: int, rng: random.Random
              ) -> list[int]:
    """This epoch's pool: every anchor (each needs its own vector) plus random other training
    rows up to ``pool_size`` (all rows of a small folder)."""
    chosen = set(anchors)
    others = [r for r in range(n_train) if r not in chosen]
    extra = max(0, pool_size - len(chosen))
    if extra < len(others):
        others = rng.sample(others, extra)
    return sorted(chosen.union(others))


def hardest_negatives(anchor_vecs: np.ndarray, anchor_labels: Sequence[int], pool_vecs: np.ndarray,
                      pool_labels: Sequence[int], pool: Sequence[int], negatives: int,
                      ) -> list[list[int]]:
    """For every anchor, the training rows of its ``negatives`` most similar pool images of other
    classes, at most one per class (so one confusable class does not fill every slot)."""
    sims = anchor_vecs @ pool_vecs.T
    out = []
    for a, label in enumerate(anchor_labels):
        chosen: list[int] = []
        classes: set[int] = set()
        for j in np.argsort(-sims[a], kind="stable"):
            c = pool_labels[j]
            if c == label or c in classes:
                continue
            chosen.append(pool[j])
            classes.add(c)
            if len(chosen) == negatives:
                break
        out.append(chosen)
    return out


def anchors_of(pair_batches: Sequence[Sequence[int]]) -> list[int]:
    """The first image of every pair (``[a1, b1, a2, b2, ...]``): the ones negatives are mined for."""
    return [batch[i] for batch in pair_batches for i in range(0, len(batch), 2)]


def mined_batches(pair_batches: Sequence[Sequence[int]], labels: Sequence[int], pool: Sequence[int],
                  pool_vecs: np.ndarray, negatives: int) -> list[list[int]]:
    """Each batch of anchor pairs followed by the hard negatives of its anchors, mined from the
    pool (``pool_vecs[i]`` is row ``pool[i]``; every anchor is in the pool)."""
    where = {r: i for i, r in enumerate(pool)}
    pool_labels = [labels[r] for r in pool]
    out = []
    for batch in pair_batches:
        anchors = anchors_of([batch])
        negs = hardest_negatives(pool_vecs[[where[r] for r in anchors]], [labels[r] for r in anchors],
                                 pool_vecs, pool_labels, pool, negatives)
        out.append(list(batch) + [n for row in negs for n in row])
    return out
