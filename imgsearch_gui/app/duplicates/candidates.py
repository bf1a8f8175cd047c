"""Stage one of the duplicate finder: pairs of photos worth verifying, about n log n of them.

Two sources, both from what indexing stored, so no photo is decoded here:
- the index: each photo's nearest neighbours by CNN descriptor (re-saved, resized, recoloured,
  mirrored and cropped copies stay close);
- the thumbprints (base/thumbprint.py) in all eight orientations: a photo turned by a quarter
  turn is far from its original in descriptor space but its turned thumbprint is the original's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imgsearch_gui.base import thumbprint
from imgsearch_gui.index.knn import nearest
from imgsearch_gui.index.store import VectorStore

_QUERY_BLOCK = 4096


@dataclass(frozen=True)
class Candidate:
    a: int  # vector ids, a < b
    b: int
    #: the thumbprints matched with one of them mirrored: the verifier tries that first
    mirrored: bool = False
    #: their descriptors' cosine, when the index proposed them (0 otherwise)
    cosine: float = 0.0


def from_index(store: VectorStore, vids: Sequence[int], k: int, min_cosine: float,
               restricted: bool = False) -> dict[tuple[int, int], Candidate]:
    """Pairs of ``vids`` among each other's ``k`` nearest by descriptor, cosine >= min_cosine
    (``restricted``: the neighbours are searched among ``vids`` only, so a folder's copies are
    not crowded out by look-alikes elsewhere in the library)."""
    wanted = set(vids)
    out: dict[tuple[int, int], Candidate] = {}
    ids = np.asarray(list(vids), dtype=np.int64)
    allowed = ids if restricted else None
    for start in range(0, len(ids), _QUERY_BLOCK):
        block = ids[start:start + _QUERY_BLOCK]
        found = store.query(store.get(block), k + 1, allowed)
        for vid, (labels, sims) in zip(block.tolist(), found, strict=True):
            for other, sim in zip(labels.tolist(), sims.tolist(), strict=True):
                if other != vid and other in wanted and sim >= min_cosine:
                    key = (min(vid, other), max(vid, other))
                    out.setdefault(key, Candidate(*key, cosine=float(sim)))
    return out


def from_thumbprints(thumbs: dict[int, bytes], k: int, min_correlation: float
                     ) -> dict[tuple[int, int], Candidate]:
    """Pairs whose thumbprints agree in some orientation (correlation >= min_correlation)."""
    vids = sorted(thumbs)
    if len(vids) < 2:
        return {}
    grids = np.stack([thumbprint.orientations(thumbs[v]) for v in vids])  # (n, 8, 16, 16)
    rows = thumbprint.features(grids[:, 0])
    queries = thumbprint.features(grids.reshape(-1, thumbprint.SIDE, thumbprint.SIDE))
    idx, sims = nearest(rows, queries, k + 1)
    out: dict[tuple[int, int], Candidate] = {}
    for q in range(len(queries)):
        vid, orientation = vids[q // 8], q % 8
        for j, sim in zip(idx[q].tolist(), sims[q].tolist(), strict=True):
            other = vids[j]
            if other != vid and sim >= min_correlation:
                key = (min(vid, other), max(vid, other))
                known = out.get(key)
                if known is None or (orientation >= 4 and not known.mirrored):
                    out[key] = Candidate(*key, mirrored=orientation >= 4)
    return out


def local_order(pairs: Sequence[Candidate]) -> list[Candidate]:
    """The pairs in the breadth-first order of the photos they join, so each photo's pairs come
    close together and its features are dropped soon after they are made (sorted by id, a photo
    met early and late would keep them all the way)."""
    neighbours: dict[int, list[int]] = {}
    for p in pairs:
        neighbours.setdefault(p.a, []).append(p.b)
        neighbours.setdefault(p.b, []).append(p.a)
    rank: dict[int, int] = {}
    for start in sorted(neighbours):
        if start in rank:
            continue
        rank[start] = len(rank)
        queue = [start]
        for vid in queue:
            for other in sorted(neighbours[vid]):
                if other not in rank:
                    rank[other] = len(rank)
                    queue.append(other)
    return sorted(pairs, key=lambda p: (min(rank[p.a], rank[p.b]), max(rank[p.a], rank[p.b])))


def merged(*sources: dict[tuple[int, int], Candidate]) -> list[Candidate]:
    """All pairs once, with a thumbprint's mirror hint and the index's cosine, in a stable
    order."""
    out: dict[tuple[int, int], Candidate] = {}
    for source in sources:
        for key, cand in source.items():
            known = out.get(key)
            out[key] = cand if known is None else Candidate(
                *key, known.mirrored or cand.mirrored, max(known.cosine, cand.cosine))
    return [out[k] for k in sorted(out)]
