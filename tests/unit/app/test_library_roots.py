"""Issue 12 items 6 and 7: an unplugged drive, an unreadable folder or an empty mount point never
count as deletions; skipped files are tried again when they change, with ``retry_skipped`` and on
a rebuild. Real folders, renamed away and back; counts of embeddings by the CountingEmbedder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgsearch_gui.app import scan
from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress
from imgsearch_gui.ml.embedder import EmbedResult


def run(lib: ImageLibrary, root, **kw) -> IndexReport:
    events = list(lib.index_library(root, **kw))
    assert all(isinstance(e, Progress) for e in events[:-1])
    assert isinstance(events[-1], IndexReport)
    return events[-1]


def bump(path: Path, seconds: int = 5) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


@pytest.fixture
def photos(tmp_path, write_image) -> tuple[Path, list[Path]]:
    root = tmp_path / "drive" / "photos"
    files = [write_image(root / ("sub" if i % 2 else "") / f"p{i}.png", i) for i in range(6)]
    return root, files


def test_an_offline_root_keeps_its_photos_and_comes_back_without_embedding(tmp_path, photos,
                                                                           embedder):
    root, files = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    first = run(lib, root)
    assert (first.embedded, first.indexed, first.offline) == (6, 6, False)
    away = root.with_name("unplugged")
    root.rename(away)  # the drive is unplugged
    embedder.reset()

    rep = run(lib, root)

    assert rep.offline and rep.removed == 0 and rep.embedded == 0 and rep.indexed == 6
    assert len(lib.store) == 6 and lib.catalog.file_count() == 6
    (info,) = lib.libraries()
    assert info.offline and info.indexed == 6
    hits = lib.search(away / "p0.png", k=3)
    assert hits[0].path == str(files[0]) and all(h.offline for h in hits)

    away.rename(root)  # plugged in again
    rep = run(lib, root)
    assert embedder.calls == {} and (rep.unchanged, rep.removed, rep.offline) == (6, 0, False)
    assert not lib.libraries()[0].offline
    assert not any(h.offline for h in lib.search(files[0], k=3))
    lib.close()


def test_a_missing_folder_that_is_no_library_is_still_an_error(tmp_path, embedder):
    lib = ImageLibrary(tmp_path / "data", embedder)
    with pytest.raises(NotADirectoryError):
        next(lib.index_library(tmp_path / "never-there"))
    assert lib.libraries() == []
    lib.close()


def test_an_unreadable_subfolder_keeps_its_photos_and_is_reported(tmp_path, photos, embedder,
                                                                   monkeypatch):
    root, files = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, root)
    sub = str(root / "sub")
    real_scandir = os.scandir

    def scandir(path=".", *a):  # chmod 000 does not stop root (CI runs as root): refuse here
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == sub:
            raise PermissionError(13, "Permission denied", sub)
        return real_scandir(path, *a)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    embedder.reset()
    (root / "p0.png").unlink()  # a real deletion beside it is still one

    rep = run(lib, root)

    assert rep.unreadable == (sub,) and rep.removed == 1 and not rep.offline
    assert embedder.calls == {}
    kept = {f.path for f in lib.catalog.all_files()}
    assert kept == {str(f) for f in files[1:]}  # the three under sub/ are kept
    assert rep.indexed == 5 and len(lib.store) == 5
    monkeypatch.setattr(scan.os, "scandir", real_scandir)
    rep = run(lib, root)
    assert rep.unreadable == () and rep.unchanged == 5 and embedder.calls == {}
    lib.close()


def test_an_emptied_root_is_offline_until_pruned(tmp_path, photos, embedder):
    root, files = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, root)
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    root.mkdir()  # the empty mount point of an unplugged drive

    rep = run(lib, root)
    assert rep.offline and rep.removed == 0 and lib.catalog.file_count() == 6
    assert lib.libraries()[0].offline

    rep = run(lib, root, prune=True)  # the user confirms: the photos are gone
    assert not rep.offline and rep.removed == 6 and rep.indexed == 0
    assert lib.catalog.file_count() == 0 and len(lib.store) == 0
    lib.close()


def test_prune_of_a_missing_root_removes_its_photos(tmp_path, photos, embedder):
    root, _ = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, root)
    root.rename(root.with_name("gone"))
    rep = run(lib, root, prune=True)
    assert rep.removed == 6 and lib.catalog.file_count() == 0 and len(lib.store) == 0
    lib.close()


class FailingEmbedder:
    """The counting embedder, except that the paths in ``failing`` fail (as an image the model
    cannot take would: an EmbedResult with an error)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.config, self.meta = inner.config, inner.meta
        self.failing: set[str] = set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_files(self, paths, cancel: CancelToken | None = None):
        for res in self.inner.embed_files(paths, cancel=cancel):
            yield EmbedResult(res.path, None, "too thin") if res.path in self.failing else res


def test_skipped_files_are_retried_when_touched_and_on_request(tmp_path, photos, embedder):
    root, files = photos
    failing = FailingEmbedder(embedder)
    failing.failing = {str(files[0]), str(files[1])}
    lib = ImageLibrary(tmp_path / "data", failing)
    rep = run(lib, root)
    assert {s.path for s in rep.skipped} == failing.failing and rep.indexed == 4
    failing.failing = set()  # e.g. a newer version embeds them
    embedder.reset()
    rep = run(lib, root)
    assert embedder.calls == {} and len(rep.skipped) == 2  # unchanged: not retried

    bump(files[0])  # touched (same content): retried
    rep = run(lib, root)
    assert embedder.embedded() == {str(files[0])} and [s.path for s in rep.skipped] == [
        str(files[1])] and rep.indexed == 5

    embedder.reset()
    rep = run(lib, root, retry_skipped=True)
    assert embedder.embedded() == {str(files[1])} and rep.skipped == () and rep.indexed == 6
    lib.close()


def test_a_rebuild_retries_skipped_files(tmp_path, photos, embedder):
    root, files = photos
    failing = FailingEmbedder(embedder)
    failing.failing = {str(files[2])}
    lib = ImageLibrary(tmp_path / "data", failing)
    assert len(run(lib, root).skipped) == 1
    failing.failing = set()
    embedder.reset()
    rep = run(lib, root, rebuild=True)
    assert embedder.embedded() == {str(f) for f in files} and rep.skipped == ()
    assert rep.indexed == 6
    lib.close()


def test_a_linked_folder_whose_drive_is_unplugged_keeps_its_photos(tmp_path, write_image, embedder):
    root = tmp_path / "photos"
    external = tmp_path / "external"
    for i in range(3):
        write_image(external / f"e{i}.png", 50 + i)
    write_image(root / "local.png", 1)
    (root / "usb").symlink_to(external, target_is_directory=True)
    lib = ImageLibrary(tmp_path / "data", embedder)
    assert run(lib, root).embedded == 4
    external.rename(tmp_path / "elsewhere")  # the link now points nowhere
    embedder.reset()

    rep = run(lib, root)

    assert rep.removed == 0 and str(root / "usb") in rep.unreadable and not rep.offline
    assert lib.catalog.file_count() == 4
    (tmp_path / "elsewhere").rename(external)
    rep = run(lib, root)
    assert embedder.calls == {} and (rep.unchanged, rep.removed) == (4, 0)
    lib.close()


def test_an_empty_mount_point_inside_a_library_keeps_its_photos(tmp_path, photos, embedder,
                                                                monkeypatch):
    root, files = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, root)
    mount = root / "sub"
    for f in mount.iterdir():
        f.rename(tmp_path / f.name)  # what the folder looks like with its drive unplugged
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: str(p) == str(mount) or real_ismount(p))

    rep = run(lib, root)

    assert rep.removed == 0 and str(mount) in rep.unreadable
    assert lib.catalog.file_count() == 6
    lib.close()


def test_info_search_and_indexing_agree_on_an_emptied_root(tmp_path, photos, embedder):
    """A root left with no photo (only a text file and a hidden folder) is offline to indexing,
    and then to the library list and to search hits too: one rule."""
    root, files = photos
    lib = ImageLibrary(tmp_path / "data", embedder)
    run(lib, root)
    keep = tmp_path / "kept"
    root.rename(keep)
    root.mkdir()
    (root / "notes.txt").write_text("not a photo")
    (root / ".Trash-1000").mkdir()

    rep = run(lib, root)

    assert rep.offline and rep.removed == 0
    assert lib.libraries()[0].offline
    hits = lib.search(keep / "p0.png", k=2)
    assert hits and all(h.offline for h in hits)
    lib.close()
    with ImageLibrary(tmp_path / "data", embedder) as again:  # what `imgsearch info` opens
        assert again.libraries()[0].offline
