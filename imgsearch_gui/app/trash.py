"""Moving photos to the system trash, safely, with an undo journal.

Why so careful: the duplicate finder removes files the user picked from a catalog that may be out
of date. Only ``send2trash`` moves anything (nothing is ever deleted, also not when the trash
fails: that file stays and is reported), and only a file that is still the regular file the
catalog saw (same size and mtime_ns) and not one the caller keeps. Each batch that moved is
recorded in ``DATA_DIR/trash-journal.json`` (rewritten atomically) so that :func:`restore` can put
it back.

Where the trash put a file is only knowable on freedesktop systems (Linux, the BSDs: what
send2trash follows there): after the move, the ``.trashinfo`` files of the home trash
(``$XDG_DATA_HOME/Trash``) and of the file's volume (``<top>/.Trash/<uid>``, ``<top>/.Trash-<uid>``)
are read for the original path, newest first. On macOS and Windows the trash's layout is private:
``restore`` says the file must be put back from the system trash.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import logging
import os
import shutil
import stat
import sys
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import unquote_to_bytes

import send2trash

from imgsearch_gui.base.atomic import atomic_write, fsync_dir
from imgsearch_gui.base.errors import StorageError, TrashJournalError

log = logging.getLogger(__name__)

JOURNAL_FILE = "trash-journal.json"
JOURNAL_VERSION = 1
#: the trash follows the freedesktop spec (send2trash's Linux/BSD backends): its files can be found
FREEDESKTOP = sys.platform not in ("darwin", "win32")
_INFO_SUFFIX = b".trashinfo"
_INFO_MAX_BYTES = 64 * 1024  # a .trashinfo is a few lines; more is not one


class RefusalReason(enum.Enum):
    """Why a file was not trashed: it is where it was, untouched."""

    KEPT = "kept"
    KEPT_GONE = "its kept copy is gone or changed"
    MISSING = "missing"
    NOT_A_FILE = "not a regular file"
    CHANGED = "changed since it was catalogued"
    PERMISSION = "permission denied"
    NO_TRASH = "no trash on its volume"
    FAILED = "could not be moved to the trash"


class RestoreProblem(enum.Enum):
    """Why a trashed file was not put back (it stays in the trash and in the journal)."""

    EXISTS = "another file is at its place"
    NOT_IN_TRASH = "no longer in the trash"
    IN_SYSTEM_TRASH = "in the system trash: put it back from there"
    FAILED = "could not be moved back"


@dataclass(frozen=True)
class TrashRequest:
    """A file to trash and what the catalog says it is: another size or mtime means it changed.
    With ``keeper`` (the copy that stays), it goes only while that one is there, unchanged: a
    copy must never be the last one left."""

    path: str
    size: int
    mtime_ns: int
    keeper: TrashRequest | None = None


@dataclass(frozen=True)
class TrashedFile:
    """A file moved to the trash: its absolute original path and, where knowable, its trash entry."""

    path: str
    size: int
    mtime_ns: int
    trash_path: str | None = None
    info_path: str | None = None


@dataclass(frozen=True)
class TrashRefusal:
    """A file that was not trashed, why, and a detail for the user."""

    path: str
    reason: RefusalReason
    detail: str = ""


@dataclass(frozen=True)
class TrashBatch:
    """The files of one :func:`trash_files` call: what one undo puts back."""

    id: str
    time: float
    files: tuple[TrashedFile, ...]


@dataclass(frozen=True)
class TrashReport:
    """What moved and what did not; ``journal_error`` says when the undo list could not be saved
    (the moved files are in the system trash all the same)."""

    trashed: tuple[TrashedFile, ...]
    refused: tuple[TrashRefusal, ...]
    batch: TrashBatch | None = None
    journal_error: str | None = None


@dataclass(frozen=True)
class RestoreFailure:
    """A trashed file that :func:`restore` did not put back."""

    file: TrashedFile
    problem: RestoreProblem
    detail: str = ""


@dataclass(frozen=True)
class RestoreReport:
    restored: tuple[TrashedFile, ...]
    failed: tuple[RestoreFailure, ...]


# --- trashing ---------------------------------------------------------------------------------

def trash_files(
    requests: Iterable[TrashRequest], journal: TrashJournal, keep: Iterable[str] = ()
) -> TrashReport:
    """Move each requested file to the system trash unless it is kept, gone, not a regular file or
    changed since it was catalogued; record what moved as one batch of ``journal``.

    The journal is read first, so that one written by a newer version (TrashJournalError) stops
    the batch before anything moves. What moved is recorded even when the loop is interrupted.
    """
    known = {f.info_path for b in journal.batches() for f in b.files if f.info_path}
    guard = _KeepGuard(keep)
    moved: list[TrashedFile] = []
    refused: list[TrashRefusal] = []
    try:
        for request in requests:
            outcome = _trash_one(request, guard)
            (refused if isinstance(outcome, TrashRefusal) else moved).append(outcome)
    finally:
        trashed = tuple(_locate_all(moved, known))
        batch, error = _record(journal, trashed)
    return TrashReport(trashed, tuple(refused), batch, error)


class _KeepGuard:
    """The paths that must stay, by real path and by file identity: another spelling of a kept
    file (a symlinked folder, ``..``) or a hard link of it is refused too."""

    def __init__(self, keep: Iterable[str]) -> None:
        self._paths: set[str] = set()
        self._ids: set[tuple[int, int]] = set()
        for path in keep:
            self._paths.add(_canonical(path))
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if st.st_ino:  # 0 where the file system has no inode numbers
                    self._ids.add((st.st_dev, st.st_ino))

    def keeps(self, path: str) -> bool:
        if _canonical(path) in self._paths:
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._ids


def _canonical(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _trash_one(request: TrashRequest, guard: _KeepGuard) -> TrashedFile | TrashRefusal:
    path = os.path.abspath(request.path)
    if guard.keeps(path):
        return TrashRefusal(path, RefusalReason.KEPT, "it is the copy to keep")
    refusal = _check(path, request)
    if refusal is not None:
        return refusal
    if request.keeper is not None:
        kept = os.path.abspath(request.keeper.path)
        gone = _check(kept, request.keeper)
        if gone is not None or os.path.samefile(kept, path):
            detail = f"the copy to keep, {kept}: {gone.detail if gone else 'is this file'}"
            return TrashRefusal(path, RefusalReason.KEPT_GONE, detail)
    try:
        # the real folder: send2trash would write a Path= with ".." through a symlinked folder
        send2trash.send2trash(_real_path(path))
    except Exception as exc:  # noqa: BLE001 - whatever failed, the file is reported, never deleted
        return _failed(path, exc)
    log.info("moved to the trash: %s", path)
    return TrashedFile(path, request.size, request.mtime_ns)


def _check(path: str, request: TrashRequest) -> TrashRefusal | None:
    """A refusal unless ``path`` is still the regular file the catalog saw."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return TrashRefusal(path, RefusalReason.MISSING, "it is no longer there")
    except OSError as exc:
        return _failed(path, exc)
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(
            st.st_mode) else "not a regular file"
        return TrashRefusal(path, RefusalReason.NOT_A_FILE, f"it is {kind}")
    if st.st_size != request.size or st.st_mtime_ns != request.mtime_ns:
        return TrashRefusal(path, RefusalReason.CHANGED,
                            f"size {st.st_size} and mtime_ns {st.st_mtime_ns}; the catalog has "
                            f"{request.size} and {request.mtime_ns}")
    return None


def _real_path(path: str) -> str:
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _failed(path: str, exc: Exception) -> TrashRefusal:
    """The refusal for a failed check or move: the reason from the exception's type and errno."""
    if isinstance(exc, send2trash.TrashPermissionError):
        reason = RefusalReason.NO_TRASH
    elif isinstance(exc, FileNotFoundError):
        reason = RefusalReason.MISSING
    elif isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
        reason = RefusalReason.PERMISSION
    else:
        reason = RefusalReason.FAILED
    detail = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or repr(exc)
    if reason is not RefusalReason.MISSING and not os.path.lexists(path):
        detail += "; it is no longer at its place: look for it in the system trash"
    log.warning("not moved to the trash: %s (%s: %s)", path, reason.value, detail)
    return TrashRefusal(path, reason, detail)


def _record(journal: TrashJournal, trashed: tuple[TrashedFile, ...]) -> tuple[TrashBatch | None, str | None]:
    if not trashed:
        return None, None
    try:
        return journal.record(trashed), None
    except (StorageError, OSError) as exc:
        log.warning("the undo list could not be saved (the files are in the system trash): %s", exc)
        return None, str(exc)


# --- finding a file in a freedesktop trash ----------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    """One ``.trashinfo`` and the trashed file it describes (bytes: names need not decode)."""

    original: bytes
    date: str
    info_mtime_ns: int
    info_path: bytes
    files_path: bytes


def _locate_all(moved: list[TrashedFile], known: set[str]) -> Iterator[TrashedFile]:
    """``moved`` with their trash entries, where found; entries already in the journal belong to
    an earlier batch (the same path trashed before) and are passed over."""
    if not FREEDESKTOP:
        yield from moved
        return
    scanned: dict[tuple[bytes, bytes], list[_Entry]] = {}
    claimed = {os.fsencode(p) for p in known}
    for file in moved:
        found = _locate(file, scanned, claimed)
        if found is None:
            log.warning("trashed but not found in the trash (restore it from there): %s", file.path)
            yield file
            continue
        claimed.add(found.info_path)
        yield replace(file, trash_path=os.fsdecode(found.files_path),
                      info_path=os.fsdecode(found.info_path))


def _locate(file: TrashedFile, scanned: dict[tuple[bytes, bytes], list[_Entry]],
            claimed: set[bytes]) -> _Entry | None:
    """The newest trash entry for ``file``'s path whose file is there with ``file``'s size."""
    original = os.path.normpath(os.fsencode(_real_path(file.path)))
    entries: list[_Entry] = []
    for trash_dir in _trash_dirs(original):
        if trash_dir not in scanned:
            scanned[trash_dir] = list(_scan(*trash_dir))
        entries += (e for e in scanned[trash_dir] if e.original == original)
    for entry in sorted(entries, key=lambda e: (e.date, e.info_mtime_ns), reverse=True):
        if entry.info_path not in claimed and _is_file_of_size(entry.files_path, file.size):
            return entry
    return None


def _trash_dirs(original: bytes) -> list[tuple[bytes, bytes]]:
    """(trash folder, folder its relative ``Path=`` start from) that may hold ``original``: the
    home trash, then those of its volume, as the spec says and send2trash does."""
    data_home = os.path.abspath(os.environb.get(b"XDG_DATA_HOME") or os.path.expanduser(b"~/.local/share"))
    top = _mount_top(os.path.dirname(original))
    uid = str(os.getuid()).encode("ascii")
    dirs = [(os.path.join(data_home, b"Trash"), data_home),
            (os.path.join(top, b".Trash", uid), top),
            (os.path.join(top, b".Trash-" + uid), top)]
    return list(dict.fromkeys(dirs))


def _mount_top(path: bytes) -> bytes:
    path = os.path.realpath(path)
    while not os.path.ismount(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _scan(trash_dir: bytes, top: bytes) -> Iterator[_Entry]:
    info_dir = os.path.join(trash_dir, b"info")
    try:
        names = os.listdir(info_dir)
    except OSError:  # no such trash (yet), or not ours to read
        return
    for name in names:
        if not name.endswith(_INFO_SUFFIX):
            continue
        info_path = os.path.join(info_dir, name)
        parsed = _read_info(info_path)
        if parsed is None:
            continue
        original, date, mtime_ns = parsed
        yield _Entry(os.path.normpath(os.path.join(top, original)), date, mtime_ns, info_path,
                     os.path.join(trash_dir, b"files", name[: -len(_INFO_SUFFIX)]))


def _read_info(info_path: bytes) -> tuple[bytes, str, int] | None:
    """``Path=`` (percent-decoded to bytes), ``DeletionDate=`` and the file's mtime; None when it
    is no readable ``.trashinfo``."""
    try:
        with open(info_path, "rb") as fh:
            data = fh.read(_INFO_MAX_BYTES)
            mtime_ns = os.fstat(fh.fileno()).st_mtime_ns
    except OSError:
        return None
    lines = data.splitlines()
    if not lines or lines[0].strip() != b"[Trash Info]":
        return None
    fields = dict(line.split(b"=", 1) for line in lines[1:] if b"=" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    if not fields.get(b"Path"):
        return None
    date = fields.get(b"DeletionDate", b"").decode("ascii", "replace")
    return unquote_to_bytes(fields[b"Path"]), date, mtime_ns


def _is_file_of_size(path: bytes | str, size: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


# --- restoring --------------------------------------------------------------------------------

def restore(batch: TrashBatch, journal: TrashJournal) -> RestoreReport:
    """Put the files of ``batch`` back at their original paths and drop them from ``journal``.

    Missing folders are made again; a file now at a file's place is never replaced (EXISTS). A
    file whose trash entry is unknown (macOS, Windows) or gone (the trash was emptied, or it was
    put back by hand) is reported and stays in the journal until the caller forgets it.
    """
    restored: list[TrashedFile] = []
    failed: list[RestoreFailure] = []
    for file in batch.files:
        outcome = _restore_one(file)
        (failed if isinstance(outcome, RestoreFailure) else restored).append(outcome)
    if restored:
        try:
            journal.forget(batch.id, [f.path for f in restored])
        except (StorageError, OSError) as exc:  # they are back all the same: say so, go on
            log.warning("restored, but the undo list could not be updated: %s", exc)
    return RestoreReport(tuple(restored), tuple(failed))


def _restore_one(file: TrashedFile) -> TrashedFile | RestoreFailure:
    if file.trash_path is None or file.info_path is None:
        return RestoreFailure(file, RestoreProblem.IN_SYSTEM_TRASH,
                              "its place in the trash is not known here; put it back from the system trash")
    if not _is_file_of_size(file.trash_path, file.size) or not os.path.lexists(file.info_path):
        return RestoreFailure(file, RestoreProblem.NOT_IN_TRASH,
                              "the trash was emptied, or it was put back by hand")
    try:
        _move_back(file.trash_path, file.path)
    except FileExistsError:
        return RestoreFailure(file, RestoreProblem.EXISTS, "a file is at its place; it stays in the trash")
    except OSError as exc:
        return RestoreFailure(file, RestoreProblem.FAILED, exc.strerror or str(exc))
    try:
        os.unlink(file.info_path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # restored all the same; the trash shows an entry without its file
        log.warning("restored %s, but its trash entry %s stays: %s", file.path, file.info_path, exc)
    log.info("restored from the trash: %s", file.path)
    return file


def _move_back(src: str, dst: str) -> None:
    """Move ``src`` to ``dst``, raising FileExistsError rather than replacing a file there.

    A hard link and an unlink cannot replace anything (``os.rename`` would, silently); volumes
    without hard links (FAT, exFAT) get a check then a rename, another device a copy into a file
    created exclusively.
    """
    parent = os.path.dirname(dst)
    os.makedirs(parent, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            _copy_exclusive(src, dst)
        elif os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from exc
        else:
            os.rename(src, dst)
            fsync_dir(parent)
            return
    os.unlink(src)
    fsync_dir(parent)


def _copy_exclusive(src: str, dst: str) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(dst)
        raise


# --- the journal ------------------------------------------------------------------------------

class TrashJournal:
    """The undo list: one batch per :func:`trash_files` call, oldest first, in
    ``DATA_DIR/trash-journal.json``.

    The whole file is rewritten atomically on each change (it is small): after a crash it is the
    old list or the new one, never half. Changes within a process are serialised; two processes
    changing it at the same instant could lose one batch's record, never its files (they are in
    the system trash). A damaged file is moved aside (kept, not read); one of a newer version
    raises TrashJournalError and is left as it is.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / JOURNAL_FILE
        self._lock = threading.Lock()

    def batches(self) -> tuple[TrashBatch, ...]:
        with self._lock:
            return self._load()

    def record(self, files: Iterable[TrashedFile], when: float | None = None) -> TrashBatch:
        """Add a batch of ``files`` (trashed at ``when``, default now) and save."""
        batch = TrashBatch(uuid.uuid4().hex, time.time() if when is None else when, tuple(files))
        with self._lock:
            self._save((*self._load(), batch))
        return batch

    def forget(self, batch_id: str, paths: Collection[str] | None = None) -> None:
        """Drop ``paths`` (default: all) from batch ``batch_id``; a batch left empty goes."""
        with self._lock:
            batches = self._load()
            left = tuple(b for b in (_without(b, batch_id, paths) for b in batches) if b is not None)
            if left != batches:
                self._save(left)

    def _load(self) -> tuple[TrashBatch, ...]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise TrashJournalError(self.path, exc.strerror or str(exc)) from exc
        try:
            doc = json.loads(raw)
            version = doc["version"]
            if type(version) is not int:
                raise TypeError("version")
            if version > JOURNAL_VERSION:
                raise TrashJournalError(self.path, f"it was written by a newer imgsearch (format "
                                        f"{version}; this one reads {JOURNAL_VERSION}): update imgsearch")
            return tuple(_batch_from(b) for b in doc["batches"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._move_aside(exc)

    def _move_aside(self, exc: Exception) -> tuple[TrashBatch, ...]:
        """Keep a damaged journal beside (a person may read it) and start an empty one."""
        aside = self.path.with_name(f"{JOURNAL_FILE}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except OSError as err:
            raise TrashJournalError(self.path, f"it is damaged ({exc!r}) and cannot be moved aside") from err
        log.warning("the undo list of trashed photos was damaged (%r); kept as %s", exc, aside)
        return ()

    def _save(self, batches: tuple[TrashBatch, ...]) -> None:
        doc = {"version": JOURNAL_VERSION, "batches": [asdict(b) for b in batches]}
        # ensure_ascii: names that do not decode (surrogates) are written as \udcxx and read back
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(doc, ensure_ascii=True, indent=1).encode("ascii"))


def _without(batch: TrashBatch, batch_id: str, paths: Collection[str] | None) -> TrashBatch | None:
    if batch.id != batch_id:
        return batch
    if paths is None:
        return None
    drop = set(paths)
    files = tuple(f for f in batch.files if f.path not in drop)
    return replace(batch, files=files) if files else None


def _batch_from(doc: dict) -> TrashBatch:
    """A batch from its JSON; TypeError/KeyError (a damaged journal) on anything unexpected."""
    files = tuple(TrashedFile(_typed(f["path"], str), _typed(f["size"], int), _typed(f["mtime_ns"], int),
                              _optional_str(f.get("trash_path")), _optional_str(f.get("info_path")))
                  for f in doc["files"])
    when = doc["time"]
    if type(when) not in (int, float):
        raise TypeError("time")
    return TrashBatch(_typed(doc["id"], str), float(when), files)


def _typed(value, kind: type):
    if type(value) is not kind:
        raise TypeError(f"{kind.__name__} expected, got {type(value).__name__}")
    return value


def _optional_str(value) -> str | None:
    return None if value is None else _typed(value, str)


__all__ = [
    "JOURNAL_FILE", "RefusalReason", "RestoreFailure", "RestoreProblem", "RestoreReport",
    "TrashBatch", "TrashJournal", "TrashRefusal", "TrashReport", "TrashRequest", "TrashedFile",
    "restore", "trash_files",
]
