"""The augmented (DBA) store kept in step with the store: the same merge as exact DBA in eval."""

from __future__ import annotations

import numpy as np

from imgsearch_gui.app.augmented import augment_labels, augmented_meta, sync_augmented
from imgsearch_gui.base.meta import ModelMeta
from imgsearch_gui.index.store import VectorStore
from imgsearch_gui.ml.query_expansion import Augmentation, dba

META = ModelMeta(backbone="test", weights_id="w", pooling="gem", input_size=64, mean=(0.5, 0.5, 0.5),
                 std=(0.5, 0.5, 0.5), dim=8)


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _store(tmp_path, name: str, labels, vectors) -> VectorStore:
    store = VectorStore(tmp_path / name)
    store.reset(META)
    store.add(labels, vectors)
    return store


def _contents(store: VectorStore) -> dict[int, np.ndarray]:
    labels, vecs = store.vectors()
    return dict(zip(labels.tolist(), vecs, strict=True))


def test_the_incremental_rows_equal_exact_dba_of_the_whole_store(tmp_path):
    x = _vectors(20)
    labels = np.arange(100, 120)
    store = _store(tmp_path, "raw", labels, x)
    aug = Augmentation(n=3, alpha=3.0)
    exact = dba(x, n=aug.n, alpha=aug.alpha)
    some = np.array([103, 111, 119])
    assert np.allclose(augment_labels(store, some, aug), exact[some - 100], atol=1e-6)


def test_sync_follows_the_store_incrementally_then_in_full(tmp_path):
    x = _vectors(45)
    store = _store(tmp_path, "raw", np.arange(30), x[:30])
    aug_store = VectorStore(tmp_path / "aug")
    aug = Augmentation(n=2)
    assert sync_augmented(store, aug_store, aug)
    assert aug_store.meta == augmented_meta(META, aug) != META
    first = _contents(aug_store)
    assert set(first) == set(range(30))
    assert not sync_augmented(store, aug_store, aug)  # nothing to do
    store.add([30], x[30])  # 1 of 31: only the new vector is augmented
    assert sync_augmented(store, aug_store, aug)
    second = _contents(aug_store)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    store.add(np.arange(31, 45), x[31:45])  # more than 10% new: all of them again
    assert sync_augmented(store, aug_store, aug)
    full = dba(x, n=2, alpha=aug.alpha)
    assert all(np.allclose(v, full[k], atol=1e-5) for k, v in _contents(aug_store).items())
    store.remove([3, 4])
    assert sync_augmented(store, aug_store, aug)
    assert set(_contents(aug_store)) == set(range(45)) - {3, 4}


def test_other_dba_settings_start_the_augmented_store_again(tmp_path):
    store = _store(tmp_path, "raw", np.arange(10), _vectors(10))
    aug_store = VectorStore(tmp_path / "aug")
    sync_augmented(store, aug_store, Augmentation(n=2))
    sync_augmented(store, aug_store, Augmentation(n=3))
    assert aug_store.meta == augmented_meta(META, Augmentation(n=3))
    exact = dba(_vectors(10), n=3, alpha=3.0)
    assert all(np.allclose(v, exact[k], atol=1e-5) for k, v in _contents(aug_store).items())


def test_a_lone_vector_stays_as_it_is(tmp_path):
    x = _vectors(1)
    store = _store(tmp_path, "raw", [7], x)
    assert np.allclose(augment_labels(store, np.array([7]), Augmentation(n=3)), x)


def test_searches_during_a_full_redo_see_the_complete_old_store(tmp_path, monkeypatch):
    """The redo is built beside and swapped in: a search meanwhile gets every old vector."""
    from imgsearch_gui.app import augmented

    x = _vectors(60)
    store = _store(tmp_path, "raw", np.arange(40), x[:40])
    aug_store = VectorStore(tmp_path / "aug")
    aug = Augmentation(n=2)
    sync_augmented(store, aug_store, aug)
    store.add(np.arange(40, 60), x[40:])  # 20 of 60 new: every vector is redone
    seen: list[int] = []
    real = augmented.augment_labels

    def augment_and_search(s, labels, a):
        (found, _), = aug_store.query(x[0], k=100)
        seen.append(len(found))
        return real(s, labels, a)

    monkeypatch.setattr(augmented, "_BLOCK", 8)
    monkeypatch.setattr(augmented, "augment_labels", augment_and_search)
    assert sync_augmented(store, aug_store, aug)
    assert len(seen) == 8 and set(seen) == {40}  # never an empty or half-filled store
    assert set(_contents(aug_store)) == set(range(60))


def test_a_cancelled_redo_keeps_the_old_vectors(tmp_path):
    from imgsearch_gui.base.types import CancelToken

    x = _vectors(30)
    store = _store(tmp_path, "raw", np.arange(20), x[:20])
    aug_store = VectorStore(tmp_path / "aug")
    sync_augmented(store, aug_store, Augmentation(n=2))
    before = _contents(aug_store)
    store.add(np.arange(20, 30), x[20:])
    cancel = CancelToken()
    cancel.cancel()
    assert not sync_augmented(store, aug_store, Augmentation(n=2), cancel)
    assert _contents(aug_store).keys() == before.keys()


def test_a_store_that_started_again_is_augmented_again(tmp_path):
    """Same labels, other vectors (a rebuilt index hands out ids from 0 again): a new lineage."""
    first = _store(tmp_path, "raw", np.arange(10), _vectors(10, seed=1))
    aug_store = VectorStore(tmp_path / "aug")
    sync_augmented(first, aug_store, Augmentation(n=2))
    again = _store(tmp_path, "raw2", np.arange(10), _vectors(10, seed=2))
    assert sync_augmented(again, aug_store, Augmentation(n=2))
    exact = dba(_vectors(10, seed=2), n=2, alpha=3.0)
    assert all(np.allclose(v, exact[k], atol=1e-5) for k, v in _contents(aug_store).items())
    assert aug_store.source == again.lineage
