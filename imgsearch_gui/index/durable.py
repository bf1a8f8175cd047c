"""Verified writes for the vector store: every file of a generation is read back from disk (size
and CRC32) before the pointer moves to it.

``np.save`` and Python's file writes raise on a failing write, but hnswlib's ``save_index`` (C++
streams) reports nothing: under a full disk or a file size limit it leaves a short file and
returns normally. So ``hnsw.bin`` is checked against its own layout (hnswlib 0.8: a fixed header,
``count`` level-0 records, then one length-prefixed link list per element; the file ends right
after the last one) and the element count and capacity of the index that wrote it.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from imgsearch_gui.base.atomic import FULL_ERRNOS
from imgsearch_gui.base.errors import StorageFullError, StorageWriteError

#: hnswlib 0.8's header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
#: label_offset, offsetData (size_t), maxlevel (int), enterpoint (uint32), maxM, maxM0, M
#: (size_t), mult (double), ef_construction (size_t)
_HNSW_HEADER = struct.Struct("<QQQQQQiIQQQdQ")



def crc_file(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def crc_array(arr: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(arr).tobytes() if arr.size == 0 else
                      memoryview(np.ascontiguousarray(arr)).cast("B"))


def write_error(directory: Path, what: str, exc: OSError, path: Path | None = None
                ) -> StorageWriteError:
    """The StorageError for an OSError while writing ``what``: full (ENOSPC/EFBIG/EDQUOT) or not.
    An error without an errno (numpy's "N requested and M written") is a short write of ``path``."""
    if exc.errno is None and path is not None:
        return short_write(directory, path, str(exc))
    reason = exc.strerror or str(exc)
    if exc.errno in FULL_ERRNOS:
        return StorageFullError(directory, f"writing {what} failed: {reason}")
    return StorageWriteError(directory, f"writing {what} failed: {reason}")


def short_write(directory: Path, path: Path, detail: str) -> StorageWriteError:
    """A file that read back short or different: find out whether there is room to grow it (a
    full disk or a size limit leaves short files without an error from hnswlib)."""
    try:
        with open(path, "ab") as fh:
            fh.write(b"\0" * 65536)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            return StorageFullError(directory, f"{path.name} was cut short ({detail}): "
                                    f"{exc.strerror or exc}")
    return StorageWriteError(directory, f"{path.name} does not read back as written ({detail})")


def save_npy(directory: Path, path: Path, arr: np.ndarray) -> dict:
    """Write ``arr`` to ``path`` (fsynced), read it back, and return its {"size", "crc32"}."""
    try:
        with open(path, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
            size = fh.tell()
    except OSError as exc:
        raise write_error(directory, path.name, exc, path) from exc
    crc = crc_array(arr)
    try:
        on_disk = path.stat().st_size
        back = np.load(path, mmap_mode="r", allow_pickle=False) if on_disk == size else None
        ok = back is not None and back.shape == arr.shape and crc_array(back) == crc
        del back
    except (OSError, ValueError) as exc:
        raise short_write(directory, path, str(exc)) from exc
    if not ok:
        raise short_write(directory, path, f"{on_disk} bytes on disk, {size} written")
    return {"size": size, "crc32": crc}


def save_text(directory: Path, path: Path, text: str) -> None:
    """Write ``text`` (fsynced) and check that it reads back byte for byte."""
    data = text.encode("utf-8")
    try:
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise write_error(directory, path.name, exc) from exc
    try:
        back = path.read_bytes()
    except OSError as exc:
        raise write_error(directory, path.name, exc) from exc
    if back != data:
        raise short_write(directory, path, f"{len(back)} of {len(data)} bytes")


def check_hnsw(directory: Path, path: Path, count: int, capacity: int) -> dict:
    """fsync the graph file hnswlib wrote, check it is complete, return its {"size", "crc32"}."""
    try:
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        size = path.stat().st_size
        problem = _hnsw_layout_problem(path, size, count, capacity)
        crc = crc_file(path)
    except OSError as exc:
        raise write_error(directory, path.name, exc) from exc
    if problem:
        raise short_write(directory, path, problem)
    return {"size": size, "crc32": crc}


def _hnsw_layout_problem(path: Path, size: int, count: int, capacity: int) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(_HNSW_HEADER.size)
        if len(head) < _HNSW_HEADER.size:
            return f"{size} bytes, shorter than the header"
        fields = _HNSW_HEADER.unpack(head)
        max_elements, n, per_element = fields[1], fields[2], fields[3]
        if n != count or max_elements != capacity:
            return f"it holds {n} of {max_elements} elements, the index {count} of {capacity}"
        pos = _HNSW_HEADER.size + n * per_element
        if pos > size:
            return f"{size} bytes, the element data needs {pos}"
        fh.seek(pos)
        tail = fh.read()
    at = 0
    for _ in range(n):
        if at + 4 > len(tail):
            return f"{size} bytes, the link lists are cut short"
        at += 4 + int.from_bytes(tail[at : at + 4], "little")
    if at != len(tail):
        return f"{size} bytes, {pos + at} expected"
    return None
