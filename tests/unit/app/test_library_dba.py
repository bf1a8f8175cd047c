"""Database-side augmentation in ImageLibrary: a derived, searched copy of the store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from imgsearch_gui.app.library import AUGMENTED_DIR, ImageLibrary
from imgsearch_gui.app.search import QuerySettings
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder
from imgsearch_gui.ml.query_expansion import Augmentation


@pytest.fixture(scope="module")
def tiny():
    return load_embedder(EmbedderConfig(backbone="tiny", size=64))


def _index(lib, root):
    return list(lib.index_library(root))[-1]


def _manual_dba(raw: dict[int, np.ndarray], n: int, alpha: float) -> dict[int, np.ndarray]:
    labels = sorted(raw)
    x = np.stack([raw[k] for k in labels])
    out = {}
    for i, lab in enumerate(labels):
        sims = x @ x[i]
        sims[i] = -np.inf
        top = np.argsort(-sims)[:n]
        v = x[i] + ((sims[top] ** alpha)[:, None] * x[top]).sum(axis=0)
        out[lab] = v / np.linalg.norm(v)
    return out


def _contents(store):
    labels, vecs = store.vectors()
    return dict(zip(labels.tolist(), vecs, strict=True))


def test_augmented_vectors_are_dba_of_the_store(tmp_path, photo_factory, tiny):
    for i in range(15):
        photo_factory(f"lib/{i}.png", seed=i)
    with ImageLibrary(tmp_path / "d", tiny, augmentation=Augmentation(n=3, alpha=3.0)) as lib:
        _index(lib, tmp_path / "lib")
        raw = _contents(lib.store)
        expected = _manual_dba(raw, 3, 3.0)
        got = _contents(lib._augmented)
        assert set(got) == set(raw)
        for lab, vec in expected.items():
            assert np.allclose(got[lab], vec, atol=1e-5)
        # search ranks every photo by the better of its augmented and its indexed vector
        q = tiny.embed_path(tmp_path / "lib" / "4.png")
        hits = lib.search(q, k=15, settings=QuerySettings(expansion=None))  # DBA alone
        best = np.maximum(np.stack([got[lab] for lab in sorted(got)]) @ q,
                          np.stack([raw[lab] for lab in sorted(raw)]) @ q)
        assert [h.score for h in hits] == pytest.approx(sorted(best, reverse=True), abs=1e-5)
        assert hits[0].path.endswith("4.png") and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_incremental_and_full_refresh(tmp_path, photo_factory, tiny):
    for i in range(30):
        photo_factory(f"lib/{i}.png", seed=i)
    with ImageLibrary(tmp_path / "d", tiny, augmentation=Augmentation(n=2)) as lib:
        _index(lib, tmp_path / "lib")
        before = _contents(lib._augmented)
        photo_factory("lib/new.png", seed=99)  # 1 of 31: below 10%, only the new one is done
        _index(lib, tmp_path / "lib")
        after = _contents(lib._augmented)
        assert len(after) == 31
        assert all(np.array_equal(before[k], after[k]) for k in before)
        for i in range(10):  # 10 of 41: a full refresh
            photo_factory(f"lib/more{i}.png", seed=200 + i)
        _index(lib, tmp_path / "lib")
        final = _contents(lib._augmented)
        expected = _manual_dba(_contents(lib.store), 2, 3.0)
        assert set(final) == set(expected)
        assert all(np.allclose(final[k], v, atol=1e-5) for k, v in expected.items())
        (tmp_path / "lib" / "3.png").unlink()
        _index(lib, tmp_path / "lib")
        assert set(_contents(lib._augmented)) == set(_contents(lib.store))


def test_missing_or_damaged_augmented_store_is_rebuilt(tmp_path, photo_factory, tiny):
    for i in range(12):
        photo_factory(f"lib/{i}.png", seed=i)
    aug = Augmentation(n=3)
    with ImageLibrary(tmp_path / "d", tiny, augmentation=aug) as lib:
        _index(lib, tmp_path / "lib")
        reference = lib.search(tmp_path / "lib" / "5.png", k=5)
    shutil.rmtree(tmp_path / "d" / AUGMENTED_DIR)
    with ImageLibrary(tmp_path / "d", tiny, augmentation=aug) as lib:
        assert lib.search(tmp_path / "lib" / "5.png", k=5) == reference
    pointer = tmp_path / "d" / AUGMENTED_DIR / "CURRENT"
    pointer.write_text("garbage")
    with ImageLibrary(tmp_path / "d", tiny, augmentation=aug) as lib:
        assert lib.search(tmp_path / "lib" / "5.png", k=5) == reference
    # turning DBA off searches the plain store: the photo itself at cosine 1
    with ImageLibrary(tmp_path / "d", tiny) as lib:
        assert lib.search(tmp_path / "lib" / "5.png", k=1)[0].score == pytest.approx(1.0, abs=1e-4)
