import numpy as np
import pytest

from imgsearch_gui.ml.query_expansion import alpha_qe, augment, dba, expand


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_average_qe_by_hand():
    q = _unit([1, 0])
    nb = _unit([[0, 1]])
    out = expand(q, nb, np.array([0.5]), alpha=0)
    assert np.allclose(out, _unit([1, 1]))


def test_alpha_weights_by_similarity_power():
    q = _unit([1, 0, 0])
    nb = _unit([[0, 1, 0], [0, 0, 1]])
    out = expand(q, nb, np.array([1.0, 0.5]), alpha=3)
    assert np.allclose(out, _unit([1, 1, 0.125]))


def test_alpha_qe_pulls_query_towards_its_cluster():
    db = _unit([[1, 0.1, 0], [1, 0.2, 0], [0, 1, 0], [0, 0, 1]])
    q = _unit([[1, 0, 0.3]])
    out = alpha_qe(q, db, n=2, alpha=1)
    assert out.shape == (1, 3)
    assert float(out[0] @ db[0]) > float(q[0] @ db[0])


def test_dba_excludes_self_and_keeps_unit_norm():
    db = _unit(np.random.default_rng(0).normal(size=(20, 5)))
    out = dba(db, n=2, alpha=3)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out, db)
    assert dba(db, n=0, alpha=3) == pytest.approx(db, abs=1e-5)


def test_augment_merges_given_rows_with_their_neighbours():
    db = _unit(np.random.default_rng(1).normal(size=(6, 4)))
    rows = [1, 4]
    nbrs = [db[[0, 2]], db[:0]]
    sims = [db[[0, 2]] @ db[1], np.zeros(0, np.float32)]
    out = augment(db[rows], nbrs, sims, alpha=2)
    assert np.allclose(out[0], expand(db[1], db[[0, 2]], sims[0], alpha=2))
    assert np.array_equal(out[1], db[4])  # no neighbours: the row stays as it is


def test_dba_is_augment_of_every_row_with_its_exact_neighbours():
    db = _unit(np.random.default_rng(2).normal(size=(30, 6)))
    sims = db @ db.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :3]
    expected = augment(db, [db[t] for t in top], [sims[i, t] for i, t in enumerate(top)], alpha=3)
    assert np.array_equal(dba(db, n=3, alpha=3), expected)
