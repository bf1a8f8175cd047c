"""Walk a library folder and tell what changed since the catalog last saw it.

Plain Python, no Qt. The walk yields supported image files with their size and mtime (ns);
``diff`` compares a walk with what the catalog knows; ``fast_hash`` / ``full_hash`` give the
content keys used to recognise moved, renamed and duplicate files without embedding them again.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from imgsearch_gui.base.images import SUPPORTED_EXTENSIONS
from imgsearch_gui.base.raw import RAW_EXTENSIONS
from imgsearch_gui.base.types import CancelToken

log = logging.getLogger(__name__)

#: Bytes read from the start and from the end of a file for the fast content hash.
HASH_BLOCK = 64 * 1024
_FULL_CHUNK = 1024 * 1024

#: What a camera or phone writes beside a RAW when it shoots RAW+JPEG (or RAW+HEIF: Fuji's .HIF,
#: phones' .HEIC): a RAW with such a sibling is the same photo, and the sibling is what is indexed.
RENDERED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".heic", ".heif", ".hif"})


@dataclass(frozen=True)
class ScannedFile:
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class KnownFile:
    """What the catalog remembers about a path (the part the scan compares)."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanDiff:
    new: tuple[ScannedFile, ...]
    changed: tuple[ScannedFile, ...]  # size or mtime differ from the catalog
    unchanged: tuple[ScannedFile, ...]
    gone: tuple[str, ...]  # catalog paths that are no longer on disk


def normalize_root(root: str | os.PathLike[str]) -> str:
    """The canonical spelling of a library root (absolute, symlinks resolved)."""
    return str(Path(root).expanduser().resolve())


def walk(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] = SUPPORTED_EXTENSIONS,
    cancel: CancelToken | None = None,
    on_error: Callable[[str, OSError], None] | None = None,
    unusable: Container[str] = frozenset(),
    left_out: dict[str, ScannedFile] | None = None,
) -> Iterator[ScannedFile]:
    """Yield every supported image under ``root`` (recursively, sorted per folder).

    Extensions match case-insensitively. Hidden files and folders (name starting with ".") are
    skipped. Symlinked folders are followed once: a folder already visited (same device and
    inode) is not entered again, so symlink loops end. Unreadable folders are logged and skipped.

    A RAW file with a JPEG or HEIC of the same stem in the same folder (IMG_0001.CR2 beside
    img_0001.jpg: stems compare case-insensitively) is left out (:func:`raw_siblings`): a photo shot
    RAW+JPEG is one result, not two, and the camera's JPEG is what the user sees and decodes
    faster. It is only the walk, so once the JPEG is deleted the next pass finds the RAW as new.
    A sibling in ``unusable`` (known to be skipped: a corrupt JPEG) stands for nothing, so its
    RAW is walked; each RAW left out goes to ``left_out`` under its sibling's path, for a job
    whose sibling turns out unusable now (:func:`imgsearch_gui.app.indexing.embed_left_out`).
    """
    exts = {e.lower() for e in extensions}
    top = Path(root).expanduser().resolve()
    if not top.is_dir():
        raise NotADirectoryError(f"not a folder: {top}")
    seen: set[tuple[int, int]] = set()
    stack = [str(top)]
    while stack:
        if cancel is not None and cancel.cancelled:
            return
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            _report(on_error, folder, exc)
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            log.debug("skipping already visited folder %s (symlink loop?)", folder)
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            _report(on_error, folder, exc)
            continue
        files, subdirs = _read_folder(entries, exts, on_error, unusable, left_out)
        yield from files
        # depth first, in name order
        stack.extend(reversed(subdirs))


def _read_folder(entries: list[os.DirEntry[str]], exts: set[str],
                 on_error: Callable[[str, OSError], None] | None,
                 unusable: Container[str] = frozenset(),
                 left_out: dict[str, ScannedFile] | None = None,
                 ) -> tuple[list[ScannedFile], list[str]]:
    """(supported files, subfolders) of one folder's entries; a RAW file that a rendered sibling
    stands for is not among the files."""
    files: list[ScannedFile] = []
    subdirs: list[str] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=True):
                if _empty_mount_point(entry.path):
                    raise FileNotFoundError(errno.ENOENT, "an empty mount point (unplugged?)")
                subdirs.append(entry.path)
                continue
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise FileNotFoundError(errno.ENOENT, "a link whose target is missing")
            if not entry.is_file(follow_symlinks=True):
                continue
            if os.path.splitext(entry.name)[1].lower() not in exts:
                continue
            fst = entry.stat(follow_symlinks=True)
        except OSError as exc:
            _report(on_error, entry.path, exc)
            continue
        files.append(ScannedFile(entry.path, fst.st_size, fst.st_mtime_ns))
    stood_for = raw_siblings(os.path.basename(f.path) for f in files
                             if f.path not in unusable or is_raw_name(f.path))
    kept: list[ScannedFile] = []
    for f in files:
        sibling = stood_for.get(os.path.basename(f.path))
        if sibling is None:
            kept.append(f)
        elif left_out is not None:
            left_out[os.path.join(os.path.dirname(f.path), sibling)] = f
    return kept, subdirs


def is_raw_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def raw_siblings(names: Iterable[str]) -> dict[str, str]:
    """The RAW names among ``names`` (one folder's files) that a JPEG or HEIC of the same stem
    stands for, each with that sibling's name, stems compared case-insensitively:
    {"IMG_1.CR2": "img_1.jpg"} of IMG_1.CR2, img_1.jpg, IMG_2.NEF."""
    split = [(n, *os.path.splitext(n)) for n in names]
    rendered = {stem.lower(): n for n, stem, ext in sorted(split)
                if ext.lower() in RENDERED_EXTENSIONS}
    return {n: rendered[stem.lower()] for n, stem, ext in split
            if ext.lower() in RAW_EXTENSIONS and stem.lower() in rendered}


def _empty_mount_point(path: str) -> bool:
    """A mounted-on folder with nothing in it: a drive that is not there (any more)."""
    return os.path.ismount(path) and root_looks_unmounted(path)


def _report(on_error: Callable[[str, OSError], None] | None, path: str, exc: OSError) -> None:
    log.warning("cannot read %s: %s", path, exc)
    if on_error is not None:
        on_error(path, exc)


def diff(scanned: Iterable[ScannedFile], known: Mapping[str, KnownFile]) -> ScanDiff:
    """Split a walk into new / changed / unchanged files, and the known paths that are gone."""
    new: list[ScannedFile] = []
    changed: list[ScannedFile] = []
    unchanged: list[ScannedFile] = []
    seen: set[str] = set()
    for f in scanned:
        seen.add(f.path)
        k = known.get(f.path)
        if k is None:
            new.append(f)
        elif k.size != f.size or k.mtime_ns != f.mtime_ns:
            changed.append(f)
        else:
            unchanged.append(f)
    gone = tuple(p for p in known if p not in seen)
    return ScanDiff(tuple(new), tuple(changed), tuple(unchanged), gone)


def is_under(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it (plain string comparison of normalised paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def keep_unreadable(gone: Iterable[str], unreadable: Iterable[str]) -> tuple[list[str], list[str]]:
    """(really gone, kept): a path at or under a folder the walk could not read is not gone, it
    could not be seen (a permission change, a failing disk): its catalog entry is kept."""
    blocked = list(unreadable)
    really: list[str] = []
    kept: list[str] = []
    for p in gone:
        (kept if any(is_under(p, b) for b in blocked) else really).append(p)
    return really, kept


def root_looks_unmounted(root: str) -> bool:
    """The root is missing or holds no visible entry (hidden ones, such as ``.Trash-1000``, are
    what the walk skips too): what an unplugged drive's mount point looks like (cheap: one
    listing, nothing walked)."""
    try:
        with os.scandir(root) as it:
            return not any(not e.name.startswith(".") for e in it)
    except OSError:
        return True


def library_offline(root: str, found_offline_last: bool) -> bool:
    """The one rule every caller shows: offline when the last index job found the root offline
    (missing, or no photo while the index holds some) or it looks unmounted now."""
    return found_offline_last or root_looks_unmounted(root)


def fast_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """blake2b of (size, first 64 KiB, last 64 KiB): cheap, and exact for files <= 128 KiB.

    Raises OSError when the file cannot be read.
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(fh.read(HASH_BLOCK))
        if size > 2 * HASH_BLOCK:
            fh.seek(size - HASH_BLOCK)
            h.update(fh.read(HASH_BLOCK))
        elif size > HASH_BLOCK:
            h.update(fh.read())
    return h.hexdigest()


def fast_hash_is_full(size: int) -> bool:
    """True when ``fast_hash`` covers every byte of a file of ``size`` bytes."""
    return size <= 2 * HASH_BLOCK


def full_hash(path: str | os.PathLike[str]) -> str:
    """blake2b of the whole file (used only when two different files share a fast hash)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        while chunk := fh.read(_FULL_CHUNK):
            h.update(chunk)
    return "f" + h.hexdigest()
