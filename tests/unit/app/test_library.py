from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.app import scan
from imgsearch_gui.app.library import ImageLibrary, IndexStats, move_aside_damaged
from imgsearch_gui.base.errors import CatalogCorruptError, ImageError, IndexCorruptError, ModelMismatchError
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress
from imgsearch_gui.index.store import VectorStore


def run(lib: ImageLibrary, root, **kw) -> tuple[list[Progress], IndexReport]:
    events = list(lib.index_library(root, **kw))
    assert isinstance(events[-1], IndexReport)
    assert all(isinstance(e, Progress) for e in events[:-1])
    return events[:-1], events[-1]  # type: ignore[return-value]


def bump(path: Path, seconds: int = 5) -> None:
    """Move mtime forward (coarse filesystem clocks could otherwise hide a rewrite)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def consistent(lib: ImageLibrary) -> None:
    """catalog vectors == store labels == vectors used by files; every indexed file has one."""
    cat_ids = lib.catalog.vector_ids()
    used = {f.vector_id for f in lib.catalog.all_files() if f.vector_id is not None}
    assert set(lib.store.labels().tolist()) == cat_ids == used
    for f in lib.catalog.all_files():
        assert (f.status == "indexed") == (f.vector_id is not None)


def hit_paths(hits) -> list[str]:
    return [h.path for h in hits]


def test_incremental_runs_embed_only_what_changed(tmp_path, write_image, embedder, monkeypatch):
    root = tmp_path / "photos"
    a = write_image(root / "a.png", 1)
    b = write_image(root / "b.png", 2)
    c = write_image(root / "sub" / "c.png", 3)
    d = write_image(root / "d.PNG", 4)  # extensions are case-insensitive
    (root / "notes.txt").write_text("not a photo")
    write_image(root / ".hidden" / "x.png", 5)  # hidden folders are skipped
    lib = ImageLibrary(tmp_path / "data", embedder)

    _, rep = run(lib, root)
    assert embedder.embedded() == {str(a), str(b), str(c), str(d)}
    assert (rep.embedded, rep.unchanged, rep.moved, rep.removed, rep.duplicates) == (4, 0, 0, 0, 0)
    assert rep.skipped == () and not rep.cancelled
    hits = lib.search(a, k=4)
    assert hits[0].path == str(a) and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].rank == 1 and hits[0].library == str(root.resolve())
    assert sorted(hit_paths(hits)) == sorted(map(str, (a, b, c, d)))

    # nothing changed: nothing embedded, nothing even hashed
    embedder.reset()
    hashed: list[str] = []
    real_fast_hash = scan.fast_hash
    monkeypatch.setattr(scan, "fast_hash", lambda p, s=None: hashed.append(p) or
                        real_fast_hash(p, s))
    _, rep = run(lib, root)
    assert embedder.calls == {} and hashed == []
    assert (rep.embedded, rep.unchanged) == (0, 4)

    # add, change, delete, rename, duplicate, touch
    embedder.reset()
    e = write_image(root / "e.png", 6)
    write_image(b, 20)
    bump(b)
    c.unlink()
    d2 = root / "sub" / "d2.png"
    d.rename(d2)
    a_copy = root / "a_copy.png"
    shutil.copyfile(a, a_copy)
    bump(a)  # touched, same content: hashed again but not embedded
    _, rep = run(lib, root)
    assert embedder.embedded() == {str(e), str(b)}
    assert all(n == 1 for n in embedder.calls.values())
    assert (rep.embedded, rep.unchanged, rep.moved, rep.removed, rep.duplicates) == (2, 1, 1, 1, 1)
    assert rep.total_files == 5
    assert set(hashed) == {str(e), str(b), str(d2), str(a_copy), str(a)}
    assert len(lib.store) == 4  # a (+copy), b (new content), d (moved), e
    consistent(lib)

    hits = lib.search(a, k=10)
    assert set(hit_paths(hits[:2])) == {str(a), str(a_copy)}  # every path of a shared vector
    assert hits[0].score == hits[1].score
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert sorted(hit_paths(hits)) == sorted(map(str, (a, a_copy, b, d2, e)))
    assert lib.search(d2, k=1)[0].path == str(d2)
    assert lib.search(b, k=1)[0].path == str(b)
    assert lib.search(b, k=1)[0].score == pytest.approx(1.0, abs=1e-4)

    # deleting one of two copies keeps the vector; deleting both removes it
    embedder.reset()
    a_copy.unlink()
    _, rep = run(lib, root)
    assert rep.removed == 1 and len(lib.store) == 4 and embedder.calls == {}
    a.unlink()
    _, rep = run(lib, root)
    assert rep.removed == 1 and len(lib.store) == 3
    assert str(a) not in hit_paths(lib.search(e, k=10))
    consistent(lib)
    lib.close()

    # a fresh process sees the same state and has nothing to do
    embedder.reset()
    with ImageLibrary(tmp_path / "data", embedder) as again:
        _, rep = run(again, root)
        assert embedder.calls == {} and rep.unchanged == 3
        assert again.stats().vectors == 3


def test_identical_new_files_are_embedded_once(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    x = write_image(root / "x.png", 1)
    shutil.copyfile(x, root / "x2.png")
    shutil.copyfile(x, root / "x3.png")
    write_image(root / "y.png", 2)
    lib = ImageLibrary(tmp_path / "data", embedder)
    _, rep = run(lib, root)
    assert sum(embedder.calls.values()) == 2
    assert (rep.embedded, rep.duplicates) == (2, 2) and len(lib.store) == 2
    hits = lib.search(x, k=3)
    assert sorted(hit_paths(hits)) == sorted(str(root / n) for n in ("x.png", "x2.png", "x3.png"))
    assert len({h.score for h in hits}) == 1
    consistent(lib)


def _bmp(path: Path, middle_value: int) -> Path:
    """A 256x256 BMP (~196 KB, > 2 hash blocks) whose middle rows differ with middle_value."""
    arr = np.zeros((256, 256, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(256, dtype=np.uint8)[None, :]
    arr[120:136] = middle_value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="BMP")
    return path


def test_fast_hash_collision_uses_the_full_hash(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    one = _bmp(root / "one.bmp", 10)
    two = _bmp(root / "two.bmp", 200)
    assert one.stat().st_size == two.stat().st_size > 2 * scan.HASH_BLOCK
    assert scan.fast_hash(one) == scan.fast_hash(two)
    assert scan.full_hash(one) != scan.full_hash(two)
    lib = ImageLibrary(tmp_path / "data", embedder)
    _, rep = run(lib, root)
    assert (rep.embedded, rep.duplicates) == (2, 0) and len(lib.store) == 2
    # a later true copy of a large file shares the vector (verified by the full hash)
    embedder.reset()
    shutil.copyfile(two, root / "two_copy.bmp")
    three = _bmp(root / "three.bmp", 77)  # collides again, different content
    _, rep = run(lib, root)
    assert embedder.embedded() == {str(three)}
    assert (rep.embedded, rep.duplicates) == (1, 1) and len(lib.store) == 3
    consistent(lib)


def test_unreadable_files_are_skipped_with_a_reason(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    good = write_image(root / "good.png", 1)
    bad = root / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    empty = root / "empty.png"
    empty.write_bytes(b"")
    lib = ImageLibrary(tmp_path / "data", embedder)
    _, rep = run(lib, root)
    assert rep.embedded == 1
    reasons = {s.path: s.reason for s in rep.skipped}
    assert set(reasons) == {str(bad), str(empty)} and all(reasons.values())
    assert "empty" in reasons[str(empty)]
    assert lib.libraries()[0].skipped == 2 and lib.libraries()[0].indexed == 1
    # unchanged broken files are not retried, but still reported
    embedder.reset()
    _, rep = run(lib, root)
    assert embedder.calls == {} and {s.path for s in rep.skipped} == {str(bad), str(empty)}
    # a repaired file is picked up
    write_image(bad, 3, fmt="JPEG")
    bump(bad)
    _, rep = run(lib, root)
    assert embedder.embedded() == {str(bad)} and rep.embedded == 1
    assert lib.search(good, k=5)[0].path == str(good)
    consistent(lib)


def test_several_libraries_and_the_library_filter(tmp_path, write_image, embedder):
    lib1, lib2 = tmp_path / "one", tmp_path / "two"
    ones = [write_image(lib1 / f"o{i}.png", 100 + i) for i in range(4)]
    twos = [write_image(lib2 / f"t{i}.png", 200 + i) for i in range(4)]
    shared = write_image(lib1 / "shared.png", 999)
    shutil.copyfile(shared, lib2 / "shared.png")
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, lib1)
    _, rep = run(lib, lib2)
    assert rep.duplicates == 1 and rep.embedded == 4
    assert len(lib.store) == 9
    assert [li.root for li in lib.libraries()] == [str(lib1), str(lib2)]
    assert [li.files for li in lib.libraries()] == [5, 5]

    every = hit_paths(lib.search(shared, k=20))
    assert len(every) == 10
    assert set(every[:2]) == {str(shared), str(lib2 / "shared.png")}
    only1 = lib.search(shared, k=20, library=lib1)
    assert sorted(hit_paths(only1)) == sorted(map(str, [*ones, shared]))
    assert {h.library for h in only1} == {str(lib1)}
    only2 = lib.search(twos[0], k=3, library=str(lib2))
    assert only2[0].path == str(twos[0]) and len(only2) == 3
    assert all(p.startswith(str(lib2)) for p in hit_paths(only2))
    with pytest.raises(ValueError, match="not an indexed library"):
        lib.search(shared, library=tmp_path / "nowhere")

    lib.remove_library(lib2)
    assert [li.root for li in lib.libraries()] == [str(lib1)]
    assert len(lib.store) == 5  # the shared vector stays (lib1 uses it)
    assert sorted(hit_paths(lib.search(shared, k=20))) == sorted(map(str, [*ones, shared]))
    consistent(lib)
    stats = lib.stats()
    assert isinstance(stats, IndexStats) and stats.vectors == 5 and stats.files == 5
    assert stats.meta == embedder.meta


def test_other_model_is_refused_and_rebuild_rebuilds(
    tmp_path, write_image, embedder, tiny_embedder, counting_embedder
):
    lib1, lib2 = tmp_path / "one", tmp_path / "two"
    for i in range(3):
        write_image(lib1 / f"o{i}.png", 10 + i)
        write_image(lib2 / f"t{i}.png", 20 + i)
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        run(lib, lib1)
        run(lib, lib2)

    other_meta = dataclasses.replace(embedder.meta, weights_id="finetuned-abc")
    other = counting_embedder(tiny_embedder, meta=other_meta)
    lib = ImageLibrary(tmp_path / "data", other)
    with pytest.raises(ModelMismatchError) as err:
        run(lib, lib1)
    msg = str(err.value)
    assert embedder.meta.fingerprint in msg and other_meta.fingerprint in msg
    assert "--rebuild" in msg
    with pytest.raises(ModelMismatchError):
        lib.search(lib1 / "o0.png")
    assert other.calls == {} and lib.needs_rebuild

    _, rep = run(lib, lib1, rebuild=True)
    assert rep.embedded == 3 and len(other.calls) == 3
    assert lib.stats().meta == other_meta and lib.needs_rebuild is None
    infos = {li.root: li for li in lib.libraries()}
    assert infos[str(lib2)].indexed == 0  # pending until indexed again
    assert all(h.library == str(lib1) for h in lib.search(lib1 / "o0.png", k=10))
    other.reset()
    _, rep = run(lib, lib2)
    assert rep.embedded == 3 and len(other.calls) == 3
    assert len(lib.search(lib1 / "o0.png", k=10)) == 6
    consistent(lib)
    lib.close()
    # the stored meta survives a restart
    with ImageLibrary(tmp_path / "data", other) as again:
        assert again.stats().meta == other_meta
        with pytest.raises(ModelMismatchError):
            list(ImageLibrary(tmp_path / "data", embedder).index_library(lib1))


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_index_gives_a_clear_error_and_rebuild_works(
    tmp_path, write_image, embedder, damage
):
    root = tmp_path / "p"
    paths = [write_image(root / f"{i}.png", i) for i in range(5)]
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        run(lib, root)
    index_dir = tmp_path / "data" / "index"
    if damage == "truncate":
        gen = next(index_dir.glob("gen-*"))
        vec = gen / "vectors.npy"
        vec.write_bytes(vec.read_bytes()[:100])
    else:
        shutil.rmtree(index_dir)
    lib = ImageLibrary(tmp_path / "data", embedder)  # opening works: the GUI can offer a rebuild
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        lib.search(paths[0])
    with pytest.raises(IndexCorruptError):
        run(lib, root)
    embedder.reset()
    _, rep = run(lib, root, rebuild=True)
    assert rep.embedded == 5 and len(embedder.calls) == 5
    assert lib.search(paths[2], k=1)[0].path == str(paths[2])
    consistent(lib)
    lib.close()
    with ImageLibrary(tmp_path / "data", embedder) as again:
        assert again.search(paths[3], k=1)[0].path == str(paths[3])


def test_cancel_keeps_finished_work(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    for i in range(60):
        write_image(root / f"{i:03d}.png", i)
    lib = ImageLibrary(tmp_path / "data", embedder, save_every=10)
    cancel = CancelToken()
    embedder.cancel_after = (cancel, 15)
    events = list(lib.index_library(root, cancel=cancel))
    embedder.cancel_after = None
    rep = events[-1]
    assert isinstance(rep, IndexReport) and rep.cancelled
    assert 15 <= rep.embedded < 60
    done_first = set(embedder.calls)
    lib.close()
    # everything finished before the cancel was committed: a new session only does the rest
    embedder.reset()
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        consistent(lib)
        _, rep2 = run(lib, root)
        assert not (set(embedder.calls) & done_first)
        assert rep2.embedded + rep.embedded == 60 and rep2.unchanged == rep.embedded
        assert len(lib.store) == 60
        consistent(lib)


def test_progress_events(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    for i in range(20):
        write_image(root / f"{i:03d}.png", i)
    lib = ImageLibrary(tmp_path / "data", embedder)
    events, rep = run(lib, root)
    stages = [e.stage for e in events]
    assert stages[0] == "scan" and "embed" in stages and stages[-1] == "save"
    embeds = [e for e in events if e.stage == "embed"]
    assert embeds[-1].done == embeds[-1].total == 20
    assert [e.done for e in embeds] == sorted(e.done for e in embeds)
    assert embeds[-1].images_per_s > 0 and embeds[-1].eta_s == 0
    assert rep.images_per_s > 0 and rep.seconds > 0


def test_search_query_kinds(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    paths = [write_image(root / f"{i}.png", i) for i in range(6)]
    lib = ImageLibrary(tmp_path / "data", embedder)
    assert lib.search(paths[0]) == []  # empty index: no hits, no error
    run(lib, root)
    assert lib.search(str(paths[1]), k=1)[0].path == str(paths[1])
    with Image.open(paths[2]) as im:
        assert lib.search(im.convert("RGB"), k=1)[0].path == str(paths[2])
    vec = embedder.embed_path(paths[3])
    assert lib.search(vec, k=1)[0].path == str(paths[3])
    both = lib.search([paths[4], paths[5]], k=2)
    assert {h.path for h in both} == {str(paths[4]), str(paths[5])}
    batch = lib.search_vectors(np.stack([vec, embedder.embed_path(paths[0])]), k=2)
    assert [hits[0].path for hits in batch] == [str(paths[3]), str(paths[0])]
    bad = root / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageError):
        lib.search(bad)
    with pytest.raises(ValueError):
        lib.search_vectors(np.ones((1, 3), np.float32))


def test_open_reconciles_catalog_and_store(tmp_path, write_image, embedder):
    """The two crash states: store ahead of the catalog, and catalog ahead of the store."""
    root = tmp_path / "p"
    paths = [write_image(root / f"{i}.png", i) for i in range(4)]
    data = tmp_path / "data"
    with ImageLibrary(data, embedder) as lib:
        run(lib, root)
        ids = sorted(lib.catalog.vector_ids())
    # store saved with a vector the catalog never committed
    store = VectorStore.open(data / "index")
    store.add([max(ids) + 5], np.ones((1, embedder.meta.dim), np.float32))
    # ... and missing a vector the catalog has
    victim = lib_file_vector(data, embedder, paths[1])
    store.remove([victim])
    store.save()
    embedder.reset()
    with ImageLibrary(data, embedder) as lib:
        consistent(lib)
        assert max(ids) + 5 not in lib.store
        assert lib.libraries()[0].indexed == 3
        _, rep = run(lib, root)
        assert embedder.embedded() == {str(paths[1])}
        assert rep.embedded == 1 and rep.unchanged == 3
        assert lib.search(paths[1], k=1)[0].path == str(paths[1])
        # labels are never reused (the stray one was max+5)
        assert max(lib.catalog.vector_ids()) > max(ids) + 5
        consistent(lib)


def lib_file_vector(data: Path, embedder, path: Path) -> int:
    with ImageLibrary(data, embedder) as lib:
        (rec,) = [f for f in lib.catalog.all_files() if f.path == str(path)]
        assert rec.vector_id is not None
        return rec.vector_id


def test_search_while_indexing_in_another_thread(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    first = write_image(root / "first.png", 0)
    lib = ImageLibrary(tmp_path / "data", embedder, save_every=25)
    run(lib, root)
    for i in range(1, 120):
        write_image(root / f"{i:03d}.png", i)
    errors: list[BaseException] = []
    done = threading.Event()

    def index() -> None:
        try:
            for _ in lib.index_library(root):
                pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=index)
    t.start()
    searches = 0
    while not done.is_set() or searches == 0:
        hits = lib.search_vectors(embedder.embed_path(first)[None], k=5)[0]
        assert hits[0].path == str(first)
        searches += 1
    t.join()
    assert not errors and searches > 0
    assert len(lib.store) == 120
    consistent(lib)


def test_graph_path_with_library_filter(tmp_path, write_image, embedder):
    """Above the exact threshold the HNSW graph answers, filtered to one library."""
    from imgsearch_gui.index.store import HnswParams

    lib1, lib2 = tmp_path / "one", tmp_path / "two"
    ones = [write_image(lib1 / f"o{i}.png", 300 + i) for i in range(15)]
    for i in range(15):
        write_image(lib2 / f"t{i}.png", 400 + i)
    params = HnswParams(M=8, ef_construction=50, ef=50, exact_threshold=10)
    with ImageLibrary(tmp_path / "data", embedder, params=params) as lib:
        run(lib, lib1)
        run(lib, lib2)
        assert lib.store.uses_hnsw
        hits = lib.search(ones[3], k=12, library=lib1)
        assert hits[0].path == str(ones[3]) and len(hits) == 12
        assert all(h.library == str(lib1) for h in hits)
        assert len(lib.search(ones[3], k=30)) == 30
    with ImageLibrary(tmp_path / "data", embedder, params=params) as again:
        assert again.store.uses_hnsw  # the graph was saved and loaded
        assert again.search(ones[5], k=1, library=lib1)[0].path == str(ones[5])


def test_unreadable_catalog_is_moved_aside_never_deleted(tmp_path, write_image, embedder):
    root = tmp_path / "p"
    paths = [write_image(root / f"{i}.png", i) for i in range(4)]
    data = tmp_path / "data"
    with ImageLibrary(data, embedder) as lib:
        run(lib, root)
    (data / "embedder.json").write_text("{}")  # settings stay where they are
    catalog = data / "catalog.sqlite3"
    catalog.write_bytes(b"garbage" * 1000)
    with pytest.raises(CatalogCorruptError, match="damaged") as info:
        ImageLibrary(data, embedder)
    assert "--rebuild" in str(info.value) and info.value.data_dir == data
    aside = move_aside_damaged(data)
    assert aside.parent == data and aside.name.startswith("damaged-")
    assert (aside / "catalog.sqlite3").read_bytes() == b"garbage" * 1000
    assert (aside / "index").is_dir() and not (data / "index").exists()
    assert (data / "embedder.json").read_text() == "{}"
    assert move_aside_damaged(data) != aside  # a second time: another folder
    with ImageLibrary(data, embedder) as fresh:
        _, rep = run(fresh, root)
        assert rep.embedded == 4
        assert fresh.search(paths[1], k=1)[0].path == str(paths[1])


def test_catalog_of_a_newer_version_is_not_called_damaged(tmp_path, embedder):
    from imgsearch_gui.app.catalog import SCHEMA_VERSION, Catalog
    from imgsearch_gui.base.errors import CatalogTooNewError

    data = tmp_path / "data"
    data.mkdir()
    cat = Catalog(data / "catalog.sqlite3")
    cat.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    cat.commit()
    cat.close()
    with pytest.raises(CatalogTooNewError, match="Update imgsearch"):
        ImageLibrary(data, embedder)


def test_the_photos_are_only_read(tmp_path, write_image, embedder):
    """Indexing, searching, a rebuild and removing the library write nothing under the library."""
    root = tmp_path / "photos"
    for i in range(6):
        write_image(root / f"sub{i % 2}" / f"{i}.png", i)
    (root / "broken.jpg").write_text("not a photo")

    def snapshot() -> dict:
        return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
                for p in sorted(root.rglob("*")) if p.is_file()} | {"dirs": sorted(
                    str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())}

    before = snapshot()
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        run(lib, root)
        lib.search(root / "sub0" / "0.png", k=3)
        run(lib, root, rebuild=True)
        lib.remove_library(root)
    assert snapshot() == before
