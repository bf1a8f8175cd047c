import numpy as np
import pytest

from imgsearch_gui.ml.whitening import Whitening, learn_pca_whitening, learn_supervised_whitening


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


def test_supervised_whitening_shapes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    w = learn_supervised_whitening(x, [i % 4 for i in range(40)])
    assert w.mean.shape == (8,) and w.projection.shape == (8, 8)
    assert w.kind == "lw" and w.id.startswith("lw8-")


def test_supervised_whitening_pulls_classmates_together():
    """Lw whitens the within-class scatter: two classes apart along a quiet axis, hidden under
    loud noisy ones, become each other's nearest neighbours after whitening."""
    rng = np.random.default_rng(1)
    labels = np.array([i % 2 for i in range(200)])
    x = rng.normal(size=(200, 8)) * [1.0, 0.2, 5, 5, 5, 5, 5, 5]
    x[:, 1] += np.where(labels == 1, 1.0, -1.0)
    x = x.astype(np.float32)

    def nearest_is_classmate(v: np.ndarray) -> float:
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        return float(np.mean(labels[sim.argmax(axis=1)] == labels))

    before = nearest_is_classmate(x)
    after = nearest_is_classmate(learn_supervised_whitening(x, labels).apply(x))
    assert before < 0.6 and after > 0.8, (before, after)


def test_one_apply_for_every_kind_and_the_checkpoint_form(tmp_path):
    """A checkpoint stores ``state()`` as tensors; it comes back as the same whitening."""
    import torch

    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ml.whitening import checkpoint_ref

    x = _data(n=60, d=8)
    lw = learn_supervised_whitening(x, [i % 3 for i in range(60)])
    stored = {k: torch.from_numpy(v) for k, v in lw.state().items()}
    bb = load_backbone("tiny")
    path = save_checkpoint(tmp_path / "ft.pt", Checkpoint("tiny", bb.model.state_dict(), "gem", {"p": 3.0},
                                                          64, whitening=stored))
    back = Whitening.load(checkpoint_ref(path))
    assert back.kind == "lw" and back.id == lw.id
    np.testing.assert_array_equal(back.apply(x), lw.apply(x))
    manual = (x - lw.mean) @ lw.projection.T
    np.testing.assert_allclose(lw.apply(x), manual / np.linalg.norm(manual, axis=1, keepdims=True),
                               atol=1e-6)
    assert Whitening.from_state(lw.state(), "lw").id == lw.id


def test_a_checkpoint_without_whitening_is_refused(tmp_path):
    from imgsearch_gui.base.errors import CheckpointError
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ml.whitening import checkpoint_ref

    bb = load_backbone("tiny")
    path = save_checkpoint(tmp_path / "plain.pt", Checkpoint("tiny", bb.model.state_dict(), "gem", {}, 64))
    with pytest.raises(CheckpointError, match="holds no whitening"):
        Whitening.load(checkpoint_ref(path))
