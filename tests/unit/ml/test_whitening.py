import numpy as np
import pytest

from imgsearch_gui.ml.whitening import Whitening, learn_pca_whitening


def _data(n=400, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(5, 0.5, d) + 3.0
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_whitened_data_has_near_identity_covariance():
    x = _data()
    w = learn_pca_whitening(x, floor=0.0)
    y = (x - w.mean) @ w.projection.T
    cov = np.cov(y, rowvar=False)
    assert np.allclose(cov, np.eye(16), atol=0.05)


def test_apply_gives_unit_vectors_and_reduces_dim():
    x = _data()
    w = learn_pca_whitening(x, dim=8)
    y = w.apply(x)
    assert y.shape == (400, 8)
    assert np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)


def test_rank_deficient_library_is_handled():
    x = _data(n=10, d=32)
    w = learn_pca_whitening(x)
    assert w.dim_out == 9 and np.isfinite(w.apply(x)).all()


def test_save_load_roundtrip(tmp_path):
    w = learn_pca_whitening(_data(), dim=4)
    path = w.save(tmp_path / "w.npz")
    back = Whitening.load(path)
    assert back.id == w.id and np.array_equal(back.projection, w.projection)


def test_needs_two_vectors():
    with pytest.raises(ValueError):
        learn_pca_whitening(np.ones((1, 4)))
