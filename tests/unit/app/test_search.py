"""The search pipeline's parts: the mean query, query descriptors, the library filter, alpha-QE and
hits mapped to paths (ImageLibrary.search end to end: test_library.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.app import scan, search
from imgsearch_gui.app.catalog import STATUS_INDEXED, Catalog
from imgsearch_gui.base.errors import NotALibraryError, QueryError, UserError
from imgsearch_gui.base.types import SearchHit
from imgsearch_gui.index.store import VectorStore
from imgsearch_gui.ml.query_expansion import QueryExpansion, expand


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_mean_query_is_the_unit_mean_of_unit_vectors():
    a, b = np.array([3.0, 0, 0], np.float32), np.array([0, 0.5, 0], np.float32)
    out = search.mean_query([a, b])
    assert out.dtype == np.float32
    assert np.allclose(out, _unit([1, 1, 0]))  # each counts the same, whatever its length
    assert np.allclose(search.mean_query(np.stack([a, b])), out)
    assert np.allclose(search.mean_query([a]), _unit(a))


def test_mean_query_refuses_photos_that_cancel_out():
    v = _unit([1, 2, 3])
    with pytest.raises(QueryError, match="cancel each other out") as err:
        search.mean_query([v, -v])
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)
    with pytest.raises(QueryError, match="no query images"):
        search.mean_query([])


def test_query_vector_of_each_kind(tmp_path, write_image, embedder):
    a, b = write_image(tmp_path / "a.png", 1), write_image(tmp_path / "b.png", 2)
    va, vb = embedder.embed_path(a), embedder.embed_path(b)
    assert np.array_equal(search.query_vector(embedder, a), va)
    assert np.array_equal(search.query_vector(embedder, str(a)), va)
    with Image.open(a) as im:
        image = im.convert("RGB")
    assert np.allclose(search.query_vector(embedder, image), va, atol=1e-5)
    mean = search.mean_query([va, vb])
    assert np.allclose(search.query_vector(embedder, [a, b]), mean)
    assert np.allclose(search.query_vector(embedder, [image, str(b)]), mean, atol=1e-5)
    assert np.allclose(search.query_vector(embedder, np.stack([va, vb])), mean)
    assert np.array_equal(search.query_vector(embedder, va), va)
    with pytest.raises(QueryError):
        search.query_vector(embedder, [])


def test_as_queries_shapes_and_checks_the_dimension():
    assert search.as_queries(np.ones(4), 4).shape == (1, 4)
    assert search.as_queries(np.ones((3, 4), np.float64), 4).dtype == np.float32
    with pytest.raises(QueryError, match="query dim 3 != model dim 4"):
        search.as_queries(np.ones((1, 3)), 4)


def test_hits_of_lists_every_path_of_a_shared_vector_once_up_to_k():
    paths = {1: [("/a", "/r"), ("/b", "/r")], 2: [("/a", "/r"), ("/c", "/r")], 3: [("/d", "/r")]}
    hits = search.hits_of([1, 2, 3, 4], [1.2, 0.5, -2.0, 0.1], paths, k=10)
    assert hits == [SearchHit("/a", 1.0, 1, "/r"), SearchHit("/b", 1.0, 2, "/r"),
                    SearchHit("/c", 0.5, 3, "/r"), SearchHit("/d", -1.0, 4, "/r")]
    assert [h.path for h in search.hits_of([1, 2], [0.9, 0.8], paths, k=2)] == ["/a", "/b"]


@pytest.fixture
def two_libraries(tmp_path):
    """A catalog of two libraries (vectors 0-3 in the first, 4-5 in the second) and its store."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    store = VectorStore(tmp_path / "index")
    roots = [scan.normalize_root(tmp_path / n) for n in ("one", "two")]
    rng = np.random.default_rng(0)
    for vid in range(6):
        root = roots[0] if vid < 4 else roots[1]
        lib_id = cat.add_library(root)
        cat.add_vector(vid, f"h{vid}")
        cat.add_file(lib_id, f"{root}/{vid}.png", 1, 1, f"h{vid}", STATUS_INDEXED, None, vid)
        store.add([vid], _unit(rng.normal(size=8)))
    yield cat, store, roots
    cat.close()


def test_library_filter_allows_one_librarys_vectors_and_follows_the_catalog(two_libraries):
    cat, _, roots = two_libraries
    libraries = search.LibraryFilter(cat)
    assert libraries.resolve(None) == (None, None)
    lib_id, allowed = libraries.resolve(roots[1])
    assert lib_id == cat.library_id(roots[1]) and allowed.tolist() == [4, 5]
    assert libraries.resolve(roots[1])[1] is allowed  # cached
    cat.add_vector(6, "h6")
    cat.add_file(lib_id, f"{roots[1]}/6.png", 1, 1, "h6", STATUS_INDEXED, None, 6)
    assert libraries.resolve(roots[1])[1].tolist() == [4, 5, 6]
    with pytest.raises(NotALibraryError):
        libraries.resolve(roots[0] + "-not")


def test_the_only_library_needs_no_filter(tmp_path):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    root = scan.normalize_root(tmp_path)
    lib_id = cat.add_library(root)
    assert search.LibraryFilter(cat).resolve(root) == (lib_id, None)
    cat.close()


def test_expand_queries_merges_each_query_with_its_hits(two_libraries):
    _, store, _ = two_libraries
    q = _unit(np.random.default_rng(1).normal(size=(2, 8)))
    out = search.expand_queries(store, q, QueryExpansion(n=2, alpha=3.0), np.array([0, 1, 2]))
    for i in range(2):
        labels, sims = store.query(q[i], 2, np.array([0, 1, 2]))[0]
        assert set(labels.tolist()) <= {0, 1, 2}
        assert np.allclose(out[i], expand(q[i], store.get(labels), sims, 3.0))
    # nothing allowed: no hits, the query stays
    assert np.array_equal(search.expand_queries(store, q, QueryExpansion(n=2), np.array([99])), q)


def test_pipeline_searches_one_library_and_maps_hits_to_paths(two_libraries):
    cat, store, roots = two_libraries
    pipeline = search.SearchPipeline(cat)
    q = store.get([5])
    (hits,) = pipeline.run([store], [q], 3, library=roots[1])
    assert [h.path for h in hits][0] == f"{roots[1]}/5.png"
    assert {h.library for h in hits} == {roots[1]} and len(hits) == 2
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert pipeline.run([store], [q, q], 0) == [[], []]
    with pytest.raises(NotALibraryError):
        pipeline.run([store], [q], 0, library="/nowhere")
    # alpha-QE: every photo by the better of the plain and the expanded query (itself stays 1)
    (expanded,) = pipeline.run([store], [q], 6, expansion=QueryExpansion(n=2, alpha=1.0))
    eq = search.expand_queries(store, q, QueryExpansion(n=2, alpha=1.0), None)
    labels, vectors = store.vectors()
    best = np.maximum(vectors @ q[0], vectors @ eq[0])
    assert [h.score for h in expanded] == pytest.approx(np.sort(best)[::-1][:6].tolist(), abs=1e-6)
    assert expanded[0].path.endswith("5.png") and expanded[0].score == pytest.approx(1.0, abs=1e-5)
    plain = dict(zip(labels.tolist(), (vectors @ q[0]).tolist(), strict=True))
    assert any(h.score > plain[int(h.path.rsplit("/", 1)[1].split(".")[0])] + 1e-4
               for h in expanded)  # the expansion raised some photos' scores


def test_the_library_refuses_photos_that_cancel_out(tmp_path, write_image, embedder):
    from imgsearch_gui.app.library import ImageLibrary

    v = embedder.embed_path(write_image(tmp_path / "a.png", 1))
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        with pytest.raises(QueryError, match="cancel each other out"):
            lib.search(np.stack([v, -v]))
        with pytest.raises(QueryError, match="no query images"):
            lib.search([])


def test_best_per_label_keeps_each_label_once_with_its_best_score():
    labels = np.array([4, 7, 4, 9, 7])
    sims = np.array([0.5, 0.9, 0.95, 0.1, 0.2], np.float32)
    out_labels, out_sims = search.best_per_label(labels, sims, 10)
    assert out_labels.tolist() == [4, 7, 9] and np.allclose(out_sims, [0.95, 0.9, 0.1])
    assert search.best_per_label(labels, sims, 1)[0].tolist() == [4]


def test_rank_of_views_equals_ranking_the_store_by_the_best_view():
    rng = np.random.default_rng(3)
    store = VectorStore("unused")
    vectors = _unit(rng.normal(size=(50, 8)))
    store.add(np.arange(50), vectors)
    views = _unit(rng.normal(size=(4, 8)))
    (labels, sims), = search.rank([store], [views], 5, None, None, turned_min=-1.0)
    best = (views @ vectors.T).max(axis=0)
    assert labels.tolist() == np.argsort(-best)[:5].tolist()
    assert np.allclose(sims, np.sort(best)[::-1][:5], atol=1e-6)
    # one view: exactly the store's own ranking
    (one, _), = search.rank([store], [views[:1]], 5, None, None)
    assert one.tolist() == store.query(views[:1], 5)[0][0].tolist()
    # a turned view's hits count only from turned_min up: the upright view's stay as they are
    gate = float(np.sort((views[1:] @ vectors.T).ravel())[-3])  # the 3 best turned pairs pass
    (gated, gated_sims), = search.rank([store], [views], 50, None, None, turned_min=gate)
    upright = views[0] @ vectors.T
    turned = np.where((views[1:] @ vectors.T) >= gate, views[1:] @ vectors.T, -np.inf).max(0)
    want = np.maximum(upright, turned)
    assert gated.tolist() == np.argsort(-want).tolist()
    assert np.allclose(gated_sims, np.sort(want)[::-1], atol=1e-6)
    # alpha-QE: the upright view searched as it is and expanded; a turned view ranks as it is
    qe = QueryExpansion(n=2)
    (expanded, expanded_sims), = search.rank([store], [views], 50, None, qe, turned_min=gate)
    up = search.expand_queries(store, views[:1], qe, None)[0] @ vectors.T
    assert expanded.tolist() == np.argsort(-np.maximum(np.maximum(up, upright), turned)).tolist()


@pytest.mark.parametrize("turn", [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                  Image.Transpose.ROTATE_270])
def test_a_turned_copy_is_found_as_the_same_photo_only_with_rotations(
        tmp_path, write_image, embedder, turn):
    from imgsearch_gui.app.library import ImageLibrary

    photo = write_image(tmp_path / "query.png", 1)
    for seed in range(2, 8):
        write_image(tmp_path / "lib" / f"other{seed}.png", seed)
    with Image.open(photo) as im:
        im.transpose(turn).save(tmp_path / "lib" / "turned.png")
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        list(lib.index_library(tmp_path / "lib"))
        turned = lib.search(photo, k=3, settings=search.QuerySettings(rotations=True))
        upright = lib.search(photo, k=3, settings=search.QuerySettings(rotations=False))
        gated = lib.search(photo, k=3, settings=search.QuerySettings(turned_min=1.01))
    assert turned[0].path.endswith("turned.png") and turned[0].score > 0.9999
    found = {h.path.rsplit("/", 1)[-1]: h.score for h in upright}
    assert found.get("turned.png", 0.0) < 0.999  # the upright query alone does not match it
    # the library passes the gate on: above any cosine, turned views find nothing
    assert [h.path for h in gated] == [h.path for h in upright]
    assert [h.score for h in gated] == pytest.approx([h.score for h in upright], abs=1e-5)


def test_rank_over_the_store_and_its_dba_copy_keeps_each_photos_best_vector(tmp_path):
    from imgsearch_gui.app.augmented import sync_augmented
    from imgsearch_gui.ml.query_expansion import Augmentation

    rng = np.random.default_rng(5)
    store, augmented = VectorStore(tmp_path / "a"), VectorStore(tmp_path / "b")
    vectors = _unit(rng.normal(size=(40, 8)))
    store.add(np.arange(40), vectors)
    sync_augmented(store, augmented, Augmentation(n=3))
    q = vectors[7:8]
    (labels, sims), = search.rank([augmented, store], [q], 40, None, None)
    best = np.maximum(q @ vectors.T, q @ augmented.get(np.arange(40)).T)[0]
    assert labels.tolist() == np.argsort(-best).tolist()
    # the photo itself: 1 from its vector as indexed, though its DBA vector scores less
    assert labels[0] == 7 and sims[0] == pytest.approx(1.0, abs=1e-6)
    assert float(q[0] @ augmented.get([7])[0]) < 0.999
