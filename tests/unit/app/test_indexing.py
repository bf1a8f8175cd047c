"""The steps of the indexing job one by one, on a real catalog and store (ImageLibrary runs them
together: test_library.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgsearch_gui.app import indexing, scan
from imgsearch_gui.app.catalog import STATUS_INDEXED, STATUS_PENDING, STATUS_SKIPPED, Catalog
from imgsearch_gui.app.indexing import GoneFiles, IndexJob, Work
from imgsearch_gui.base.types import CancelToken, IndexReport, Progress
from imgsearch_gui.index.store import VectorStore


def _unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _drain(gen):
    """(events, return value) of a step generator."""
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


@pytest.fixture
def job(tmp_path, embedder):
    cat = Catalog(tmp_path / "catalog.sqlite3")
    store = VectorStore(tmp_path / "index")
    commits: list[int] = []

    def commit() -> None:
        store.save()
        cat.commit()
        commits.append(len(store))

    root = scan.normalize_root(tmp_path / "photos")
    (tmp_path / "photos").mkdir()
    j = IndexJob(cat, store, embedder, commit, root)
    j.lib_id = cat.add_library(root)
    j.commits = commits  # type: ignore[attr-defined]
    yield j
    cat.close()


def _scanned(path: Path) -> scan.ScannedFile:
    st = path.stat()
    return scan.ScannedFile(str(path), st.st_size, st.st_mtime_ns)


def _indexed(job: IndexJob, path: Path, vid: int, seed: int) -> None:
    """``path`` in the catalog as indexed with vector ``vid`` (and the vector in the store)."""
    f = _scanned(path)
    fast = scan.fast_hash(f.path, f.size)
    job.catalog.add_vector(vid, fast)
    job.catalog.add_file(job.lib_id, f.path, f.size, f.mtime_ns, fast, STATUS_INDEXED, None, vid)
    job.store.add([vid], _unit(seed))


def test_scan_folder_reports_first_and_returns_the_files(job, write_image):
    root = Path(job.root)
    paths = {str(write_image(root / f"{i}.png", i)) for i in range(3)}
    events, files = _drain(indexing.scan_folder(job.root, CancelToken()))
    assert events[0] == Progress("scan", 0, 0, job.root, message="Looking for photos")
    assert {f.path for f in files} == paths


def test_classify_counts_unchanged_and_sends_new_changed_and_unhashed_to_hashing(job, write_image):
    root = Path(job.root)
    same, skipped, pending, unhashed, changed, new = (
        write_image(root / f"{name}.png", i)
        for i, name in enumerate(["same", "skipped", "pending", "unhashed", "changed", "new"]))
    cat = job.catalog
    _indexed(job, same, 1, 1)
    for path, fast, status in [(skipped, None, STATUS_SKIPPED), (pending, "abc", STATUS_PENDING),
                               (unhashed, None, STATUS_PENDING)]:
        f = _scanned(path)
        cat.add_file(job.lib_id, f.path, f.size, f.mtime_ns, fast, status, "bad" if fast is None
                     and status == STATUS_SKIPPED else None)
    f = _scanned(changed)
    cat.add_file(job.lib_id, f.path, f.size + 1, f.mtime_ns, "old", STATUS_INDEXED, None, None)
    known = cat.files_of_library(job.lib_id)
    scanned = [_scanned(p) for p in (same, skipped, pending, unhashed, changed, new)]
    changes = scan.diff(scanned, {p: scan.KnownFile(p, r.size, r.mtime_ns) for p, r in known.items()})

    work, to_hash = indexing.classify(job, changes, known)

    assert job.counts.unchanged == 1
    assert [s.path for s in job.counts.skipped] == [str(skipped)]
    assert [(w.file.path, w.fast) for w in work] == [(str(pending), "abc")]
    # new and changed first, then the known files without a hash; rows where the catalog has one
    assert [(f.path, r is None) for f, r in to_hash] == [
        (str(new), True), (str(changed), False), (str(unhashed), False)]


def test_hash_files_keeps_the_vector_of_a_touched_file_and_skips_unreadable_ones(job, write_image):
    root = Path(job.root)
    touched, fresh = write_image(root / "touched.png", 1), write_image(root / "fresh.png", 2)
    _indexed(job, touched, 7, 1)
    row = job.catalog.files_of_library(job.lib_id)[str(touched)]
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    missing = scan.ScannedFile(str(root / "gone.png"), 10, 1)

    events, work = _drain(indexing.hash_files(
        job, [(_scanned(touched), row), (missing, None), (_scanned(fresh), None)]))

    assert events and all(e.stage == "scan" for e in events)
    assert [w.file.path for w in work] == [str(fresh)]
    assert work[0].fast == scan.fast_hash(fresh)
    after = job.catalog.files_of_library(job.lib_id)
    assert after[str(touched)].vector_id == 7 and after[str(touched)].mtime_ns == touched.stat().st_mtime_ns
    assert job.counts.unchanged == 1
    assert [s.path for s in job.counts.skipped] == [missing.path]
    assert after[missing.path].status == STATUS_SKIPPED
    assert after[missing.path].reason.startswith("cannot read")


def test_hash_files_stops_when_cancelled(job, write_image):
    f = _scanned(write_image(Path(job.root) / "a.png", 1))
    job.cancel.cancel()
    assert _drain(indexing.hash_files(job, [(f, None)])) == ([], [])


def test_gone_files_are_claimed_once_each():
    from imgsearch_gui.app.catalog import FileRecord

    rows = [FileRecord(i, 1, f"/p/{i}", 1, 1, "h", STATUS_INDEXED, None, 5) for i in (1, 2)]
    rows.append(FileRecord(3, 1, "/p/3", 1, 1, "h", STATUS_SKIPPED, "bad", None))
    gone = GoneFiles(rows)
    assert [gone.claim(5).id, gone.claim(5).id, gone.claim(5)] == [1, 2, None]
    assert gone.claim(6) is None
    assert gone.unclaimed() == [3]


def test_resolve_moves_shares_and_groups(job, write_image):
    root = Path(job.root)
    old = write_image(root / "old.png", 1)
    _indexed(job, old, 3, 1)
    old_row = job.catalog.files_of_library(job.lib_id)[str(old)]
    moved = root / "moved.png"
    os.replace(old, moved)
    copy = root / "copy.png"
    shutil.copy(moved, copy)
    twin_a, twin_b = write_image(root / "twin_a.png", 9), root / "twin_b.png"
    shutil.copy(twin_a, twin_b)
    other = write_image(root / "other.png", 10)
    work = [Work(_scanned(p), None, scan.fast_hash(p)) for p in (moved, copy, twin_a, twin_b, other)]

    _, groups = _drain(indexing.resolve(job, work, [old_row]))

    files = job.catalog.files_of_library(job.lib_id)
    assert str(old) not in files
    assert files[str(moved)].id == old_row.id and files[str(moved)].vector_id == 3  # same row
    assert files[str(copy)].vector_id == 3 and files[str(copy)].status == STATUS_INDEXED
    assert (job.counts.moved, job.counts.duplicates, job.counts.removed) == (1, 1, 0)
    assert [(g.rep.file.path, [m.file.path for m in g.members]) for g in groups] == [
        (str(twin_a), [str(twin_b)]), (str(other), [])]


def test_resolve_deletes_gone_files_nobody_claims(job, write_image):
    gone = write_image(Path(job.root) / "gone.png", 1)
    _indexed(job, gone, 4, 1)
    row = job.catalog.files_of_library(job.lib_id)[str(gone)]
    gone.unlink()
    _, groups = _drain(indexing.resolve(job, [], [row]))
    assert groups == [] and job.counts.removed == 1
    assert job.catalog.files_of_library(job.lib_id) == {}
    indexing.drop_orphans(job)  # the vector nobody uses goes too
    assert 4 not in job.store and job.catalog.vector_ids() == set()


def test_resolve_checks_cancel_between_files_and_then_deletes_nothing(job, write_image,
                                                                      monkeypatch):
    root = Path(job.root)
    paths = [write_image(root / f"{i}.png", i) for i in range(4)]
    gone = write_image(root / "gone.png", 9)
    _indexed(job, gone, 4, 9)
    row = job.catalog.files_of_library(job.lib_id)[str(gone)]
    gone.unlink()
    work = [Work(_scanned(p), None, scan.fast_hash(p)) for p in paths]
    looked: list[str] = []
    real = indexing.find_vector

    def find_vector(cat, store, w):  # the user presses Cancel during the first file's look-up
        looked.append(w.file.path)
        job.cancel.cancel()
        return real(cat, store, w)

    monkeypatch.setattr(indexing, "find_vector", find_vector)
    _, groups = _drain(indexing.resolve(job, work, [row]))
    assert looked == [str(paths[0])] and groups == []
    assert job.counts.removed == 0 and str(gone) in job.catalog.files_of_library(job.lib_id)


def test_unreadable_folders_keep_their_entries():
    gone, kept = scan.keep_unreadable(["/p/a.png", "/p/sub/b.png", "/p/subway.png", "/p/sub"],
                                      ["/p/sub"])
    assert gone == ["/p/a.png", "/p/subway.png"] and kept == ["/p/sub/b.png", "/p/sub"]


def test_group_by_content_tells_large_files_apart_by_their_full_hash(tmp_path):
    size = 3 * scan.HASH_BLOCK  # the fast hash reads only the ends of such a file
    a, b, c = (tmp_path / n for n in "abc")
    a.write_bytes(b"x" * size)
    b.write_bytes(b"x" * size)
    c.write_bytes(b"x" * scan.HASH_BLOCK + b"y" * scan.HASH_BLOCK + b"x" * scan.HASH_BLOCK)
    work = [Work(_scanned(p), None, scan.fast_hash(p)) for p in (a, b, c)]
    assert len({w.fast for w in work}) == 1
    groups: dict = {}
    for w in work:
        indexing.group_by_content(groups, w)
    (lst,) = groups.values()
    assert [(g.rep.file.path, [m.file.path for m in g.members]) for g in lst] == [
        (str(a), [str(b)]), (str(c), [])]


def test_mark_pending_gives_every_waiting_file_a_pending_row(job, write_image):
    root = Path(job.root)
    a, b = write_image(root / "a.png", 1), write_image(root / "b.png", 2)
    groups = [indexing.Group(Work(_scanned(a), None, "ha"), [Work(_scanned(b), None, "ha")])]
    indexing.mark_pending(job, groups)
    rows = job.catalog.files_of_library(job.lib_id)
    assert {p: (r.status, r.fast_hash, r.vector_id) for p, r in rows.items()} == {
        str(a): (STATUS_PENDING, "ha", None), str(b): (STATUS_PENDING, "ha", None)}
    assert groups[0].rep.row == rows[str(a)]


def test_embed_gives_each_group_a_vector_and_saves_in_batches(job, write_image, embedder):
    root = Path(job.root)
    job.store.add([41], _unit(0, embedder.meta.dim))  # new ids continue after the highest
    paths = [write_image(root / f"{i}.png", i) for i in range(5)]
    bad = root / "bad.png"
    bad.write_bytes(b"not a photo")
    groups = [indexing.Group(Work(_scanned(p), None, f"h{i}")) for i, p in enumerate([*paths, bad])]
    indexing.mark_pending(job, groups)
    job.save_every = 2

    events, seconds = _drain(indexing.embed(job, groups))

    assert seconds > 0
    embeds = [e for e in events if e.stage == "embed"]
    assert embeds[-1].done == embeds[-1].total == 6
    assert any(e.stage == "save" for e in events) and job.commits
    # the rows of the vectors added since the last save wait (staged) for the next commit
    assert job.catalog.staged
    assert job.catalog.files_of_library(job.lib_id)[str(paths[-1])].status == STATUS_PENDING
    job.commit()
    rows = job.catalog.files_of_library(job.lib_id)
    assert [rows[str(p)].vector_id for p in paths] == [42, 43, 44, 45, 46]
    assert rows[str(bad)].status == STATUS_SKIPPED and rows[str(bad)].vector_id is None
    assert set(job.store.labels().tolist()) == {41, 42, 43, 44, 45, 46}
    assert (job.counts.embedded, [s.path for s in job.counts.skipped]) == (5, [str(bad)])


def test_embed_of_nothing_takes_no_time(job):
    assert _drain(indexing.embed(job, [])) == ([], 0.0)


def test_finish_commits_and_report_counts(job):
    events, _ = _drain(indexing.finish(job))
    assert [(e.stage, e.done, e.total) for e in events] == [("save", 0, 1), ("save", 1, 1)]
    assert job.commits == [0]
    assert job.catalog.libraries()[0].last_indexed is not None
    job.counts.embedded, job.counts.moved = 3, 1
    rep = indexing.report(job, 0.5)
    assert isinstance(rep, IndexReport)
    assert (rep.library, rep.embedded, rep.moved, rep.images_per_s, rep.cancelled) == (
        job.root, 3, 1, 6.0, False)


def test_a_cancelled_job_does_not_mark_the_library_indexed(job):
    job.cancel.cancel()
    _drain(indexing.finish(job))
    assert job.catalog.libraries()[0].last_indexed is None
    assert indexing.report(job, 0.0).cancelled


def test_the_rate_and_eta_count_from_the_first_photo_done():
    """The first photo waits for the model's warm-up: 40 photos must not show "ETA 8:53"."""
    from imgsearch_gui.app.indexing import _SteadyRate

    rate = _SteadyRate()
    assert rate.update(1, 10.0) == 0.0  # the first one, after 10 s of warm-up: unknown yet
    assert rate.update(11, 11.0) == 10.0  # then 10 photos in a second: 10/s, not 11/11 s
    eta = (40 - 11) / rate.update(11, 11.0)
    assert eta < 3.0
