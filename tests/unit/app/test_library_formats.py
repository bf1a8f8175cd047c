"""Phone and camera photos through the library: HEIC, AVIF and RAW indexed and found, a photo
shot RAW+JPEG is one result, and a RAW whose JPEG is corrupt is the photo (nothing lost)."""

from __future__ import annotations

from photos import make_dng, make_photo
from PIL import Image

from imgsearch_gui.app.library import ImageLibrary
from imgsearch_gui.base import heif
from imgsearch_gui.base.types import IndexReport


def index(library: ImageLibrary, root) -> IndexReport:
    return [e for e in library.index_library(root) if isinstance(e, IndexReport)][-1]


def photo(tmp_path, seed: int) -> Image.Image:
    return Image.open(make_photo(tmp_path / "src" / f"{seed}.png", seed, (96, 72))).convert("RGB")


def test_heic_avif_and_raw_are_indexed_and_found(tmp_path, embedder):
    assert heif.available()  # also registers pillow-heif's writer, for Image.save
    root = tmp_path / "phone"
    root.mkdir()
    photo(tmp_path, 1).save(root / "IMG_0001.HEIC", format="HEIF")
    photo(tmp_path, 2).save(root / "img_0002.AVIF", format="AVIF")
    make_dng(root / "DSC_0003.DNG", photo(tmp_path, 3).resize((192, 144)), preview=photo(tmp_path, 3))
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        report = index(lib, root)
        assert report.embedded == 3 and not report.skipped
        for name in ("IMG_0001.HEIC", "img_0002.AVIF", "DSC_0003.DNG"):
            assert lib.search(str(root / name), k=1)[0].path == str((root / name).resolve())


def test_raw_plus_jpeg_is_one_result_and_a_corrupt_jpeg_leaves_the_raw(tmp_path, embedder):
    root = tmp_path / "camera"
    root.mkdir()
    good = photo(tmp_path, 4)
    make_dng(root / "IMG_0004.CR2", good.resize((192, 144)), preview=good)  # a RAW by name
    good.save(root / "IMG_0004.JPG")
    make_dng(root / "IMG_0005.NEF", photo(tmp_path, 5).resize((192, 144)), preview=photo(tmp_path, 5))
    (root / "img_0005.jpg").write_bytes(b"\xff\xd8\xff\xe0 a card error: not a JPEG")
    with ImageLibrary(tmp_path / "data", embedder) as lib:
        report = index(lib, root)
        paths = {f.path for f in lib.catalog.all_files() if f.vector_id is not None}
        assert paths == {str(root / "IMG_0004.JPG"), str(root / "IMG_0005.NEF")}
        assert [s.path for s in report.skipped] == [str(root / "img_0005.jpg")]
        again = index(lib, root)  # the next run keeps the RAW (its JPEG is known unusable)
        assert again.embedded == 0 and again.removed == 0 and again.indexed == 2
