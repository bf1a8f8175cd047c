from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgsearch_gui.app import scan
from imgsearch_gui.base.types import CancelToken


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_walk_finds_supported_files_recursively(tmp_path):
    touch(tmp_path / "a.jpg")
    touch(tmp_path / "B.JPEG")
    touch(tmp_path / "sub" / "deep" / "c.PnG", b"12345")
    touch(tmp_path / "sub" / "notes.txt")
    touch(tmp_path / ".cache" / "hidden.jpg")
    touch(tmp_path / ".hidden.png")
    touch(tmp_path / "noext")
    found = list(scan.walk(tmp_path))
    names = sorted(os.path.relpath(f.path, tmp_path) for f in found)
    assert names == ["B.JPEG", "a.jpg", os.path.join("sub", "deep", "c.PnG")]
    c = next(f for f in found if f.path.endswith("c.PnG"))
    st = os.stat(c.path)
    assert (c.size, c.mtime_ns) == (5, st.st_mtime_ns)
    assert all(os.path.isabs(f.path) for f in found)


def test_walk_survives_symlink_loops(tmp_path):
    touch(tmp_path / "lib" / "a.jpg")
    (tmp_path / "lib" / "loop").symlink_to(tmp_path / "lib", target_is_directory=True)
    touch(tmp_path / "elsewhere" / "b.jpg")
    (tmp_path / "lib" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    found = sorted(os.path.basename(f.path) for f in scan.walk(tmp_path / "lib"))
    assert found == ["a.jpg", "b.jpg"]


def test_walk_rejects_a_file_and_honours_cancel(tmp_path):
    f = touch(tmp_path / "a.jpg")
    with pytest.raises(NotADirectoryError):
        list(scan.walk(f))
    cancel = CancelToken()
    cancel.cancel()
    assert list(scan.walk(tmp_path, cancel=cancel)) == []


def test_diff():
    known = {
        "/a": scan.KnownFile("/a", 1, 10),
        "/b": scan.KnownFile("/b", 2, 20),
        "/c": scan.KnownFile("/c", 3, 30),
    }
    walked = [
        scan.ScannedFile("/a", 1, 10),  # unchanged
        scan.ScannedFile("/b", 2, 21),  # mtime changed
        scan.ScannedFile("/d", 4, 40),  # new
    ]
    d = scan.diff(walked, known)
    assert [f.path for f in d.unchanged] == ["/a"]
    assert [f.path for f in d.changed] == ["/b"]
    assert [f.path for f in d.new] == ["/d"]
    assert d.gone == ("/c",)


def test_hashes(tmp_path):
    block = scan.HASH_BLOCK
    small = touch(tmp_path / "s", b"abc")
    same_small = touch(tmp_path / "s2", b"abc")
    assert scan.fast_hash(small) == scan.fast_hash(same_small)
    assert scan.fast_hash(small) != scan.fast_hash(touch(tmp_path / "s3", b"abd"))
    assert scan.fast_hash_is_full(2 * block) and not scan.fast_hash_is_full(2 * block + 1)
    # between one and two blocks: every byte counts
    mid1 = touch(tmp_path / "m1", b"a" * block + b"xyz")
    mid2 = touch(tmp_path / "m2", b"a" * block + b"xyw")
    assert scan.fast_hash(mid1) != scan.fast_hash(mid2)
    # large files differing only in the middle collide on the fast hash, not the full one
    head, tail = b"h" * block, b"t" * block
    big1 = touch(tmp_path / "b1", head + b"1" * 1000 + tail)
    big2 = touch(tmp_path / "b2", head + b"2" * 1000 + tail)
    assert scan.fast_hash(big1) == scan.fast_hash(big2)
    assert scan.full_hash(big1) != scan.full_hash(big2)
    assert scan.full_hash(big1) == scan.full_hash(touch(tmp_path / "b3", big1.read_bytes()))
    # size is part of the key
    assert scan.fast_hash(touch(tmp_path / "z1", b"")) != scan.fast_hash(
        touch(tmp_path / "z2", b"\0"))
    with pytest.raises(OSError):
        scan.fast_hash(tmp_path / "missing")


def test_normalize_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    assert scan.normalize_root("x") == str(tmp_path.resolve() / "x")
    assert scan.normalize_root(tmp_path / "x" / ".." / "x") == str(tmp_path.resolve() / "x")


def test_a_raw_with_a_jpeg_or_heic_of_the_same_name_is_one_photo(tmp_path):
    """RAW+JPEG: the camera's JPEG is indexed, its RAW sibling is left out (stems compare in any
    case); a RAW alone, or beside a PNG (not what a camera writes with it), is indexed."""
    for name in ("IMG_0001.CR2", "IMG_0001.JPG", "img_0002.nef", "IMG_0002.HEIC",
                 "DSCF3.RAF", "DSCF3.HIF", "IMG_0004.DNG", "IMG_0005.arw", "IMG_0005.png",
                 "sub/IMG_0006.CR3", ".IMG_0007.jpg", "IMG_0007.CR2"):
        touch(tmp_path / name)
    touch(tmp_path / "other" / "IMG_0006.jpg")  # another folder: not a sibling
    found = sorted(os.path.relpath(f.path, tmp_path) for f in scan.walk(tmp_path))
    assert found == ["DSCF3.HIF", "IMG_0001.JPG", "IMG_0002.HEIC", "IMG_0004.DNG",
                     "IMG_0005.arw", "IMG_0005.png", "IMG_0007.CR2",
                     os.path.join("other", "IMG_0006.jpg"), os.path.join("sub", "IMG_0006.CR3")]


def test_the_raw_is_indexed_once_its_jpeg_is_deleted(tmp_path):
    raw, jpeg = touch(tmp_path / "IMG_0001.CR2", b"raw"), touch(tmp_path / "IMG_0001.jpg")
    first = list(scan.walk(tmp_path))
    assert [f.path for f in first] == [str(jpeg)]
    known = {f.path: scan.KnownFile(f.path, f.size, f.mtime_ns) for f in first}
    jpeg.unlink()
    d = scan.diff(scan.walk(tmp_path), known)
    assert [f.path for f in d.new] == [str(raw)] and d.gone == (str(jpeg),)


def test_a_raw_is_not_left_out_for_a_sibling_the_walk_does_not_take(tmp_path):
    touch(tmp_path / "IMG_1.CR2")
    touch(tmp_path / "IMG_1.JPG")
    found = [os.path.basename(f.path) for f in scan.walk(tmp_path, extensions={".cr2"})]
    assert found == ["IMG_1.CR2"]


def test_raw_siblings():
    assert scan.raw_siblings(["IMG_1.CR2", "img_1.jpeg", "IMG_2.NEF", "IMG_3.dng",
                              "IMG_3.avif", "a.b.orf", "A.B.JPE"]) == {"IMG_1.CR2": "img_1.jpeg",
                                                                      "a.b.orf": "A.B.JPE"}
    assert scan.raw_siblings([]) == {}


def test_a_raw_whose_sibling_is_unusable_is_walked_and_one_left_out_is_reported(tmp_path):
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.NEF", "img_2.heic"):
        (tmp_path / name).write_bytes(b"x")
    left_out: dict = {}
    found = [os.path.basename(f.path) for f in scan.walk(
        tmp_path, unusable={str(tmp_path / "IMG_1.JPG")}, left_out=left_out)]
    assert found == ["IMG_1.CR2", "IMG_1.JPG", "img_2.heic"]  # the known-corrupt JPEG: both
    assert {k: os.path.basename(v.path) for k, v in left_out.items()} == {
        str(tmp_path / "img_2.heic"): "IMG_2.NEF"}
