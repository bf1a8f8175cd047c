from __future__ import annotations

import numpy as np

from imgsearch_gui.index import knn


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_graph_agrees_with_brute_force(monkeypatch):
    rng = np.random.default_rng(1)
    rows, queries = unit(rng.normal(size=(600, 24))), unit(rng.normal(size=(50, 24)))
    exact_i, exact_s = knn.nearest(rows, queries, 5)
    monkeypatch.setattr(knn, "EXACT_BELOW", 10)
    graph_i, graph_s = knn.nearest(rows, queries, 5)
    assert (graph_i[:, 0] == exact_i[:, 0]).mean() > 0.95
    assert np.all(np.diff(exact_s, axis=1) <= 1e-6)  # best first
    assert np.allclose(graph_s[:, 0], exact_s[:, 0], atol=1e-4)


def test_k_larger_than_rows_and_no_queries():
    rows = unit(np.eye(3, 4))
    idx, sims = knn.nearest(rows, rows, 10)
    assert idx.shape == (3, 3) and np.array_equal(idx[:, 0], [0, 1, 2])
    assert knn.nearest(rows, np.zeros((0, 4), np.float32), 2)[0].shape == (0, 0)
