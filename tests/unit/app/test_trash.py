"""app/trash.py: only the system trash, only unchanged files that are not kept, and an undo that
puts files back without replacing anything.

The freedesktop trash is redirected into tmp_path: $XDG_DATA_HOME and $HOME point there, and
send2trash's own backend (which reads $XDG_DATA_HOME once, at import) is pointed there too, so
that files under tmp_path (same device as $HOME) go to tmp_path's home trash, never the user's.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import send2trash

from imgsearch_gui.app import trash
from imgsearch_gui.app.trash import (
    RefusalReason,
    RestoreProblem,
    TrashedFile,
    TrashJournal,
    TrashRequest,
    restore,
    trash_files,
)
from imgsearch_gui.base.errors import FileWriteError, TrashJournalError

freedesktop = pytest.mark.skipif(not trash.FREEDESKTOP, reason="the freedesktop trash is Linux/BSD only")


@pytest.fixture
def journal(tmp_path: Path) -> TrashJournal:
    return TrashJournal(tmp_path / "data")


def photo(path: Path | str, content: bytes = b"jpeg bytes") -> str:
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(content)
    return os.fsdecode(path)


def request(path: str, **change: int) -> TrashRequest:
    st = os.lstat(path)
    return TrashRequest(path, change.get("size", st.st_size), change.get("mtime_ns", st.st_mtime_ns))


def read(path: str) -> bytes:
    with open(os.fsencode(path), "rb") as fh:
        return fh.read()


def trash_one(path: str, journal: TrashJournal, **change: int):
    return trash_files([request(path, **change)], journal)


def assert_in_home_trash(file: TrashedFile, home_trash: Path) -> None:
    assert file.trash_path is not None and file.info_path is not None
    assert Path(file.trash_path).parent == home_trash / "files"
    assert Path(file.info_path).parent == home_trash / "info"


# --- round trip -------------------------------------------------------------------------------

@freedesktop
def test_trash_then_restore_round_trip(tmp_path, home_trash, journal):
    path = photo(tmp_path / "photos" / "2019 trip" / "beach 1.jpg", b"the beach")
    report = trash_one(path, journal)

    assert report.refused == () and report.journal_error is None
    (file,) = report.trashed
    assert file.path == path and not os.path.lexists(path)
    assert_in_home_trash(file, home_trash)
    assert read(file.trash_path) == b"the beach"
    assert journal.batches() == (report.batch,)
    os.rmdir(tmp_path / "photos" / "2019 trip")  # the folder went too: restore makes it again

    result = restore(report.batch, journal)

    assert result.failed == () and result.restored == (file,)
    assert read(path) == b"the beach" and os.listdir(os.path.dirname(path)) == ["beach 1.jpg"]
    assert os.lstat(path).st_mtime_ns == file.mtime_ns
    assert not os.path.lexists(file.trash_path) and not os.path.lexists(file.info_path)
    assert journal.batches() == ()


@freedesktop
def test_a_batch_keeps_what_failed_to_restore_and_drops_what_came_back(tmp_path, home_trash, journal):
    a, b = photo(tmp_path / "p" / "a.jpg", b"A"), photo(tmp_path / "p" / "b.jpg", b"B")
    report = trash_files([request(a), request(b)], journal)
    assert len(report.trashed) == 2 and len(report.batch.files) == 2
    photo(b, b"new b")

    result = restore(report.batch, journal)

    assert [f.path for f in result.restored] == [a]
    (left,) = journal.batches()
    assert [f.path for f in left.files] == [b] and left.id == report.batch.id


@freedesktop
def test_the_same_path_trashed_twice_finds_each_its_own_copy(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg", b"first")
    first = trash_one(path, journal)
    photo(path, b"secnd")  # same size, same second: only the journal tells them apart
    second = trash_one(path, journal)

    assert first.trashed[0].trash_path != second.trashed[0].trash_path
    assert read(second.trashed[0].trash_path) == b"secnd"
    restore(first.batch, journal)
    assert read(path) == b"first"



@freedesktop
def test_an_entry_of_an_earlier_batch_is_never_taken_for_a_new_one(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg", b"first")
    first = trash_one(path, journal)
    os.utime(first.trashed[0].info_path, ns=(2**62, 2**62))  # the earlier entry looks the newest
    photo(path, b"secnd")

    second = trash_one(path, journal)

    assert read(second.trashed[0].trash_path) == b"secnd"


@freedesktop
def test_the_newest_entry_of_a_path_is_taken(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg", b"older")
    send2trash.send2trash(path)  # by a file manager: not in the journal
    (older,) = os.listdir(home_trash / "info")
    os.utime(home_trash / "info" / older, ns=(10**18, 10**18))
    photo(path, b"newer")

    report = trash_one(path, journal)

    assert read(report.trashed[0].trash_path) == b"newer"
    assert report.trashed[0].info_path != str(home_trash / "info" / older)
    restore(report.batch, journal)
    assert read(path) == b"newer"

# --- refusals: the file stays -----------------------------------------------------------------

@freedesktop
@pytest.mark.parametrize("change", [{"size": 1}, {"mtime_ns": 1}], ids=["size", "mtime"])
def test_a_changed_file_is_refused(tmp_path, home_trash, journal, change):
    path = photo(tmp_path / "a.jpg")
    st = os.lstat(path)
    expected = {"size": st.st_size + change.get("size", 0),
                "mtime_ns": st.st_mtime_ns + change.get("mtime_ns", 0)}
    report = trash_one(path, journal, **expected)

    assert report.trashed == () and report.batch is None
    (refusal,) = report.refused
    assert refusal.reason is RefusalReason.CHANGED and refusal.path == path
    assert read(path) == b"jpeg bytes" and journal.batches() == ()
    assert not home_trash.exists()


@freedesktop
def test_a_missing_file_is_refused(tmp_path, home_trash, journal):
    path = str(tmp_path / "gone.jpg")
    report = trash_files([TrashRequest(path, 10, 10)], journal)
    assert [r.reason for r in report.refused] == [RefusalReason.MISSING]
    assert report.trashed == ()


@freedesktop
def test_symlinks_and_folders_are_refused(tmp_path, home_trash, journal):
    target = photo(tmp_path / "a.jpg")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    folder = tmp_path / "folder"
    folder.mkdir()

    report = trash_files([request(str(link)), request(str(folder))], journal)

    assert [r.reason for r in report.refused] == [RefusalReason.NOT_A_FILE] * 2
    assert link.is_symlink() and folder.is_dir() and read(target) == b"jpeg bytes"


@freedesktop
def test_a_kept_file_is_refused_under_any_spelling(tmp_path, home_trash, journal):
    kept = photo(tmp_path / "photos" / "keep.jpg")
    (tmp_path / "alias").symlink_to(tmp_path / "photos")
    other = photo(tmp_path / "photos" / "dup.jpg")

    report = trash_files([request(kept), request(str(tmp_path / "alias" / "keep.jpg")), request(other)],
                         journal, keep={str(tmp_path / "photos" / ".." / "photos" / "keep.jpg")})

    assert [r.reason for r in report.refused] == [RefusalReason.KEPT] * 2
    assert os.path.exists(kept) and [f.path for f in report.trashed] == [other]



@freedesktop
def test_a_hard_link_of_a_kept_file_is_refused(tmp_path, home_trash, journal):
    kept = photo(tmp_path / "keep.jpg")
    os.link(kept, tmp_path / "same.jpg")

    report = trash_files([request(str(tmp_path / "same.jpg"))], journal, keep=[kept])

    assert [r.reason for r in report.refused] == [RefusalReason.KEPT]
    assert (tmp_path / "same.jpg").exists()

@freedesktop
@pytest.mark.parametrize(("error", "reason"), [
    (send2trash.TrashPermissionError("/mnt/usb"), RefusalReason.NO_TRASH),
    (PermissionError(errno.EACCES, "Permission denied"), RefusalReason.PERMISSION),
    (OSError(errno.EIO, "Input/output error"), RefusalReason.FAILED),
    (OSError("Couldn't find mount point"), RefusalReason.FAILED),
], ids=["no-trash", "permission", "io", "no-errno"])
def test_a_file_the_trash_fails_on_stays_and_is_reported(tmp_path, home_trash, journal, monkeypatch,
                                                          error, reason):
    path = photo(tmp_path / "a.jpg")
    calls = []

    def failing(path):
        calls.append(path)
        raise error

    monkeypatch.setattr(send2trash, "send2trash", failing)
    for name in ("unlink", "remove", "rmdir"):  # no deleting as a fallback
        monkeypatch.setattr(os, name, lambda *a, **k: pytest.fail("deleted"))

    report = trash_one(path, journal)

    assert len(calls) == 1
    assert report.trashed == () and [r.reason for r in report.refused] == [reason]
    assert read(path) == b"jpeg bytes"
    assert not (Path(journal.path).exists())


@freedesktop
def test_a_failure_does_not_stop_the_batch_and_what_moved_is_recorded(tmp_path, home_trash, journal,
                                                                       monkeypatch):
    a, b = photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")
    real = send2trash.send2trash

    def fail_on_a(path):
        if path.endswith("a.jpg"):
            raise PermissionError(errno.EACCES, "Permission denied")
        real(path)

    monkeypatch.setattr(send2trash, "send2trash", fail_on_a)
    report = trash_files([request(a), request(b)], journal)
    assert [r.path for r in report.refused] == [a] and [f.path for f in report.trashed] == [b]
    assert [f.path for (batch,) in [journal.batches()] for f in batch.files] == [b]



@freedesktop
def test_an_interrupted_batch_still_records_what_moved(tmp_path, home_trash, journal, monkeypatch):
    a, b = photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg")
    real = send2trash.send2trash

    def interrupted_on_b(path):
        if path.endswith("b.jpg"):
            raise KeyboardInterrupt
        real(path)

    monkeypatch.setattr(send2trash, "send2trash", interrupted_on_b)
    with pytest.raises(KeyboardInterrupt):
        trash_files([request(a), request(b)], journal)
    (batch,) = journal.batches()
    assert [f.path for f in batch.files] == [a] and batch.files[0].trash_path is not None
    assert read(b) == b"jpeg bytes"

@freedesktop
def test_an_unwritable_journal_is_reported_and_the_moves_stand(tmp_path, home_trash, journal, monkeypatch):
    path = photo(tmp_path / "a.jpg")

    def full(*args, **kwargs):
        raise FileWriteError(journal.path, "No space left on device", errno.ENOSPC)

    monkeypatch.setattr(trash, "atomic_write", full)
    report = trash_one(path, journal)
    assert len(report.trashed) == 1 and report.batch is None
    assert "No space left" in report.journal_error
    assert os.path.exists(report.trashed[0].trash_path)


# --- restore's refusals -----------------------------------------------------------------------

@freedesktop
def test_restore_never_overwrites_a_file_at_the_place(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg", b"old")
    report = trash_one(path, journal)
    photo(path, b"new one")

    result = restore(report.batch, journal)

    assert result.restored == ()
    assert [(f.file.path, f.problem) for f in result.failed] == [(path, RestoreProblem.EXISTS)]
    assert read(path) == b"new one" and read(report.trashed[0].trash_path) == b"old"
    assert os.path.exists(report.trashed[0].info_path)
    assert journal.batches() == (report.batch,)


@freedesktop
@pytest.mark.parametrize("link_error", [errno.EPERM, errno.EXDEV], ids=["no-hard-links", "other-device"])
def test_restore_without_hard_links_still_never_overwrites(tmp_path, home_trash, journal, monkeypatch,
                                                           link_error):
    a, b = photo(tmp_path / "a.jpg", b"A"), photo(tmp_path / "b.jpg", b"B")
    report = trash_files([request(a), request(b)], journal)
    photo(b, b"new B")

    def no_link(src, dst):
        raise OSError(link_error, os.strerror(link_error))

    monkeypatch.setattr(os, "link", no_link)
    result = restore(report.batch, journal)

    assert [f.path for f in result.restored] == [a] and read(a) == b"A"
    assert [f.problem for f in result.failed] == [RestoreProblem.EXISTS] and read(b) == b"new B"
    assert not os.path.lexists(report.trashed[0].trash_path)


@freedesktop
def test_restore_after_the_trash_was_emptied(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg")
    report = trash_one(path, journal)
    os.unlink(report.trashed[0].trash_path)
    os.unlink(report.trashed[0].info_path)

    result = restore(report.batch, journal)

    assert [f.problem for f in result.failed] == [RestoreProblem.NOT_IN_TRASH]
    assert not os.path.lexists(path)



@freedesktop
def test_restore_does_not_take_another_file_under_the_same_trash_name(tmp_path, home_trash, journal):
    path = photo(tmp_path / "a.jpg", b"mine")
    report = trash_one(path, journal)
    photo(report.trashed[0].trash_path, b"someone else's, trashed after an emptying")

    result = restore(report.batch, journal)

    assert [f.problem for f in result.failed] == [RestoreProblem.NOT_IN_TRASH]
    assert not os.path.lexists(path) and os.path.exists(report.trashed[0].trash_path)

def test_restore_of_a_file_whose_place_in_the_trash_is_unknown(tmp_path, journal):
    file = TrashedFile(str(tmp_path / "a.jpg"), 3, 4)  # what macOS and Windows give
    batch = journal.record([file])

    result = restore(batch, journal)

    assert [(f.file, f.problem) for f in result.failed] == [(file, RestoreProblem.IN_SYSTEM_TRASH)]
    assert journal.batches() == (batch,)


# --- the journal ------------------------------------------------------------------------------

def test_the_journal_survives_a_reload_and_forgets(tmp_path):
    data = tmp_path / "data"
    files = [TrashedFile("/p/a b.jpg", 1, 2, "/t/files/a b.jpg", "/t/info/a b.jpg.trashinfo"),
             TrashedFile(os.fsdecode(b"/p/caf\xe9.jpg"), 3, 4)]
    first = TrashJournal(data).record(files, when=1000.5)
    second = TrashJournal(data).record(files[:1])

    assert TrashJournal(data).batches() == (first, second)
    TrashJournal(data).forget(first.id, [files[0].path])
    assert TrashJournal(data).batches() == (
        trash.TrashBatch(first.id, 1000.5, (files[1],)), second)
    TrashJournal(data).forget(second.id)
    TrashJournal(data).forget(first.id, [files[1].path])
    assert TrashJournal(data).batches() == ()


def test_an_interrupted_journal_write_keeps_the_previous_journal(tmp_path, monkeypatch):
    journal = TrashJournal(tmp_path)
    first = journal.record([TrashedFile("/p/a.jpg", 1, 2)])
    before = journal.path.read_bytes()
    # a crash while writing: a temporary file left over beside the journal
    (tmp_path / f".{trash.JOURNAL_FILE}.123.abcd.tmp").write_bytes(before[: len(before) // 2])

    def fsync_fails(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync_fails)
        with pytest.raises(FileWriteError):
            journal.record([TrashedFile("/p/b.jpg", 1, 2)])

    assert journal.path.read_bytes() == before
    assert TrashJournal(tmp_path).batches() == (first,)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{trash.JOURNAL_FILE}.123.abcd.tmp",
                                                            trash.JOURNAL_FILE]


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "batches": [{"id": 3}]}', b"[]"],
                         ids=["not-json", "bad-batch", "not-an-object"])
def test_a_damaged_journal_is_moved_aside_not_lost(tmp_path, content):
    journal = TrashJournal(tmp_path)
    journal.path.write_bytes(content)

    assert journal.batches() == ()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(f"{trash.JOURNAL_FILE}.damaged-")]
    assert aside.read_bytes() == content
    journal.record([TrashedFile("/p/a.jpg", 1, 2)])
    assert len(journal.batches()) == 1


def test_a_journal_of_a_newer_version_is_refused_and_left_alone(tmp_path):
    journal = TrashJournal(tmp_path)
    journal.path.write_text(json.dumps({"version": trash.JOURNAL_VERSION + 1, "batches": []}))

    with pytest.raises(TrashJournalError, match="newer"):
        journal.batches()
    with pytest.raises(TrashJournalError):  # before anything moves
        trash_files([TrashRequest(str(tmp_path / "a.jpg"), 1, 1)], journal)
    assert json.loads(journal.path.read_text())["version"] == trash.JOURNAL_VERSION + 1


# --- odd names --------------------------------------------------------------------------------

ODD_NAMES = [b"with  spaces .jpg", "\u00e9t\u00e9 \U0001f4f7 \u5199\u771f.jpg".encode(), b"caf\xe9 \xff.jpg",
             b"100% #1?&=.jpg", b"new\nline.jpg"]


@freedesktop
@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse undecodable names")
@pytest.mark.parametrize("under", ["photos", "xdg"], ids=["absolute-path", "relative-path"])
def test_odd_names_go_and_come_back(tmp_path, home_trash, journal, under):
    folder = os.fsencode(tmp_path / under / "dossier \u00e0 moi")
    paths = []
    for i, name in enumerate(ODD_NAMES):
        try:
            paths.append(photo(os.path.join(folder, name), b"photo %d" % i))
        except OSError:  # pragma: no cover - a file system that refuses such names
            pytest.skip(f"this file system refuses the name {name!r}")

    report = trash_files([request(p) for p in paths], journal)

    assert report.refused == () and [f.path for f in report.trashed] == paths
    for file in report.trashed:
        assert_in_home_trash(file, home_trash)
    assert TrashJournal(journal.path.parent).batches() == (report.batch,)  # surrogates round-trip
    result = restore(TrashJournal(journal.path.parent).batches()[0], journal)
    assert result.failed == ()
    assert [read(p) for p in paths] == [b"photo %d" % i for i in range(len(paths))]


def test_a_copy_whose_kept_copy_is_gone_or_changed_stays(tmp_path, home_trash, journal):
    """The last copy of a photo must never go: the kept file was deleted or overwritten after
    the duplicates were found."""
    kept, copy = photo(tmp_path / "p" / "kept.jpg"), photo(tmp_path / "p" / "copy.jpg")
    keeper = request(kept)
    os.unlink(kept)
    report = trash_files([replace(request(copy), keeper=keeper)], journal)
    assert not report.trashed and os.path.exists(copy)
    assert report.refused[0].reason is RefusalReason.KEPT_GONE
    photo(kept, b"another photo under the kept name")
    report = trash_files([replace(request(copy), keeper=keeper)], journal)
    assert not report.trashed and report.refused[0].reason is RefusalReason.KEPT_GONE
    report = trash_files([replace(request(copy), keeper=request(kept))], journal)
    assert [t.path for t in report.trashed] == [copy]
