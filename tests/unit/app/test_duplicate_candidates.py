"""Stage one of the duplicate finder: which pairs get verified."""

from __future__ import annotations

import numpy as np
from photo_edits import mirrored, turned

from imgsearch_gui.app.duplicates import candidates
from imgsearch_gui.base.thumbprint import thumbprint
from imgsearch_gui.index.store import VectorStore


def test_thumbprints_pair_turned_and_mirrored_copies_only(real_photos):
    astro, coffee, rocket = (real_photos[n] for n in ("astronaut", "coffee", "rocket"))
    thumbs = {0: thumbprint(astro), 1: thumbprint(turned(astro)), 2: thumbprint(mirrored(astro)),
              3: thumbprint(coffee), 4: thumbprint(rocket)}
    pairs = candidates.from_thumbprints(thumbs, k=2, min_correlation=0.8)
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    assert pairs[(0, 2)].mirrored and not pairs[(0, 1)].mirrored


def test_the_index_pairs_close_vectors_above_the_cosine(tmp_path):
    store = VectorStore(tmp_path / "s")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 32)).astype(np.float32)
    near = base[0] + 0.05 * rng.normal(size=32).astype(np.float32)
    vecs = np.vstack([base, near])
    store.add(np.arange(7), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    pairs = candidates.from_index(store, list(range(7)), k=3, min_cosine=0.9)
    assert set(pairs) == {(0, 6)}
    assert set(candidates.from_index(store, [1, 2, 3, 6], k=3, min_cosine=0.9)) == set()


def test_merged_keeps_each_pair_once_with_the_mirror_hint():
    a = {(1, 2): candidates.Candidate(1, 2)}
    b = {(1, 2): candidates.Candidate(1, 2, mirrored=True), (0, 5): candidates.Candidate(0, 5)}
    assert candidates.merged(a, b) == [candidates.Candidate(0, 5),
                                       candidates.Candidate(1, 2, mirrored=True)]
