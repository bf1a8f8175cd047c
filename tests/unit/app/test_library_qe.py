"""Query expansion in ImageLibrary.search: the second search uses query + neighbours."""

from __future__ import annotations

import numpy as np

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.app.search import QuerySettings
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.query_expansion import QueryExpansion


def test_expanded_search_equals_search_with_the_expanded_vector(tmp_path, photo_factory):
    for i in range(10):
        photo_factory(f"lib/{i}.png", seed=i)
    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64))
    with ImageLibrary(tmp_path / "data", emb) as lib:
        list(lib.index_library(tmp_path / "lib"))
        q = emb.embed_path(tmp_path / "lib" / "3.png")
        first = lib.search(q, k=3)
        assert first[0].path.endswith("3.png")
        vecs = np.stack([emb.embed_path(h.path) for h in first[:2]])
        sims = vecs @ q
        manual = q + (sims[:, None] ** 1.0 * vecs).sum(axis=0)
        manual /= np.linalg.norm(manual)
        expanded = lib.search(q, k=10, settings=QuerySettings(
            expansion=QueryExpansion(n=2, alpha=1.0)))
        plain = QuerySettings(expansion=None)
        direct = {h.path: h.score for h in lib.search(manual, k=10, settings=plain)}
        for h in lib.search(q, k=10, settings=plain):  # each photo: the better of the two
            direct[h.path] = max(direct[h.path], h.score)
        assert [h.path for h in expanded] == sorted(direct, key=lambda p: -direct[p])
        assert np.allclose([h.score for h in expanded], sorted(direct.values(), reverse=True),
                           atol=1e-5)
        assert expanded[0].path.endswith("3.png") and expanded[0].score > 0.9999
