"""Phone and camera formats: HEIC/HEIF (pillow-heif), AVIF (Pillow), RAW (rawpy). Each ends
upright exactly once (asserted on pixels: where a coloured quadrant ends up), small sizes take
the fast path (a HEIC's thumbnail, a RAW's preview), and every failure is an ImageError."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import pillow_heif
import pytest
from photos import add_irot, coloured_corner, make_dng, quadrant
from PIL import Image

from imgsearch_gui.base import heif, images, raw
from imgsearch_gui.base.errors import ImageError
from imgsearch_gui.base.images import load_image

heif.available()  # the app's registration, which can also write HEIC (the fixtures)

SIDEWAYS = 6  # EXIF: turn 90° clockwise to show; a red top-left quadrant ends top-right


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _heic(path: Path, image: Image.Image, irot: int | None = None, **save) -> Path:
    buf = io.BytesIO()
    image.save(buf, "HEIF", quality=90, **save)
    data = buf.getvalue() if irot is None else add_irot(buf.getvalue(), irot)
    path.write_bytes(data)
    return path


@pytest.fixture
def no_heif_state(monkeypatch):
    """pillow-heif not registered yet, so a test sees the first registration."""
    monkeypatch.setattr(heif, "_registered", None)


# --- HEIC/HEIF ------------------------------------------------------------------------------

def test_an_iphone_style_sideways_heic_ends_upright_once(tmp_path):
    """Stored as the sensor saw it, with an irot box and EXIF orientation 6 (as iPhones write):
    libheif turns it, pillow-heif resets the EXIF tag, exif_transpose must not turn it again."""
    jpeg = tmp_path / "side.jpg"
    quadrant((128, 64)).save(jpeg, exif=_exif(SIDEWAYS))
    heic = _heic(tmp_path / "IMG_0001.HEIC", quadrant((128, 64)), irot=3, exif=_exif(SIDEWAYS))
    expected = load_image(jpeg)
    assert (expected.size, coloured_corner(expected)) == ((64, 128), "red tr")
    out = load_image(heic)
    assert out.mode == "RGB" and (out.size, coloured_corner(out)) == ((64, 128), "red tr")


def test_heic_exif_orientation_alone_is_informative(tmp_path):
    """The HEIF standard: only irot/imir turn a HEIC; an EXIF tag without them is shown as stored
    (as libheif's and Apple's viewers do), so a photo is never turned by both."""
    heic = _heic(tmp_path / "exif-only.heic", quadrant((128, 64)), exif=_exif(SIDEWAYS))
    out = load_image(heic)
    assert (out.size, coloured_corner(out)) == ((128, 64), "red tl")


def test_small_sizes_decode_the_heic_thumbnail(tmp_path):
    heic = _heic(tmp_path / "grid.heic", quadrant((1024, 512)), irot=3, tile_size=256,
                 thumbnails=[256])
    thumb = load_image(heic, max_side=64)  # 2x 64 fits the 256 px thumbnail
    assert (thumb.size, coloured_corner(thumb)) == ((128, 256), "red tr")
    full = load_image(heic, max_side=300)  # 600 px wanted: the thumbnail is too small
    assert (full.size, coloured_corner(full)) == ((512, 1024), "red tr")


def test_a_heic_decodes_its_primary_image_even_when_it_is_not_the_first(tmp_path):
    p = tmp_path / "two.heic"
    quadrant(colour="green").save(p, "HEIF", save_all=True, primary_index=1,
                                  append_images=[quadrant(colour="blue")])
    assert coloured_corner(load_image(p)) == "blue tl"


def test_a_heic_named_jpg_and_a_jpeg_named_heic(tmp_path):
    _heic(tmp_path / "x.heic", quadrant())
    (tmp_path / "really-heic.jpg").write_bytes((tmp_path / "x.heic").read_bytes())
    quadrant().save(tmp_path / "really-jpeg.heic", "JPEG")
    for name in ("really-heic.jpg", "really-jpeg.heic"):
        out = load_image(tmp_path / name)
        assert (out.size, coloured_corner(out)) == ((128, 64), "red tl")


def test_a_truncated_heic_is_an_image_error(tmp_path):
    data = _heic(tmp_path / "x.heic", quadrant((256, 128))).read_bytes()
    cut = tmp_path / "cut.heic"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match="HEIC|corrupt|truncated"):
        load_image(cut)


def test_libheif_errors_keep_their_reason(tmp_path, monkeypatch):
    """Some iPhone photos fail in libheif with "Too many auxiliary image references"; the reason
    reaches the user instead of "cannot identify image file"."""
    heic = _heic(tmp_path / "aux.heic", quadrant())

    def refuse(*args, **kwargs):
        raise RuntimeError("Invalid input: Unspecified: Too many auxiliary image references")

    monkeypatch.setattr(pillow_heif.as_plugin, "HeifFile", refuse)
    with pytest.raises(ImageError, match="Too many auxiliary image references"):
        load_image(heic)


def test_a_libheif_decoding_error_is_an_image_error(tmp_path, monkeypatch):
    heic = _heic(tmp_path / "x.heic", quadrant())

    def fail(self):
        raise RuntimeError("Decoder plugin generated an error: Unsupported feature")

    monkeypatch.setattr(pillow_heif.HeifImageFile, "load", fail)
    with pytest.raises(ImageError, match="Unsupported feature"):
        load_image(heic)


def test_without_pillow_heif_a_heic_is_skipped_with_a_reason(tmp_path, monkeypatch,
                                                              no_heif_state):
    heic = _heic(tmp_path / "x.heic", quadrant())
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails
    with pytest.raises(ImageError, match="HEIC support needs pillow-heif"):
        load_image(heic)
    quadrant().save(tmp_path / "still.png")
    assert load_image(tmp_path / "still.png").size == (128, 64)


def test_pillow_heif_is_registered_once_across_threads(monkeypatch, no_heif_state):
    calls = []
    real = pillow_heif.register_heif_opener
    monkeypatch.setattr(pillow_heif, "register_heif_opener",
                        lambda **kw: (calls.append(kw), real(**kw)))
    barrier = threading.Barrier(8)

    def first_use() -> None:
        barrier.wait()
        assert heif.available()

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and calls[0]["decode_threads"] == heif.DECODE_THREADS


def test_heif_sniffing_leaves_avif_to_pillow():
    assert heif.looks_like_heif(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")
    assert heif.looks_like_heif(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic")
    assert not heif.looks_like_heif(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf")
    assert not heif.looks_like_heif(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf")
    assert not heif.looks_like_heif(b"\xff\xd8\xff\xe0\0\x10JFIF")


# --- AVIF -----------------------------------------------------------------------------------

def test_avif_decodes_upright_once(tmp_path):
    """Pillow writes EXIF orientation 6 as an irot box and turns the photo by it when reading
    (through the EXIF orientation it reports, which exif_transpose applies once)."""
    p = tmp_path / "side.AVIF"
    quadrant((128, 64)).save(p, "AVIF", exif=_exif(SIDEWAYS), quality=90)
    out = load_image(p)
    assert out.mode == "RGB" and (out.size, coloured_corner(out)) == ((64, 128), "red tr")


def test_a_truncated_avif_is_an_image_error(tmp_path):
    buf = io.BytesIO()
    quadrant((256, 128)).save(buf, "AVIF")
    p = tmp_path / "cut.avif"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError):
        load_image(p)


# --- RAW ------------------------------------------------------------------------------------
# The sensor data has a red quadrant, the embedded preview a blue one: the colour tells which
# of the two was decoded.

SENSOR = quadrant((256, 128), "red")
PREVIEW = quadrant((256, 128), "blue")


def test_a_raw_without_preview_is_developed(tmp_path):
    p = make_dng(tmp_path / "IMG_0001.DNG", SENSOR)
    full = load_image(p)
    assert full.mode == "RGB" and (full.size, coloured_corner(full)) == ((256, 128), "red tl")
    half = load_image(p, max_side=64)  # half size still has 128 px >= 64
    assert (half.size, coloured_corner(half)) == ((128, 64), "red tl")
    assert load_image(p, max_side=200).size == (256, 128)  # half (128) would be too small


def test_a_big_enough_preview_is_used(tmp_path):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW.resize((128, 64)))
    out = load_image(p, max_side=100)
    assert (out.size, coloured_corner(out)) == ((128, 64), "blue tl")
    small = load_image(p, max_side=160)  # the GUI's thumbnails: 128 < 160, developed
    assert coloured_corner(small) == "red tl"
    assert coloured_corner(load_image(p)) == "red tl"  # full size wanted, the preview is half


def test_a_full_size_preview_serves_full_size(tmp_path):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW)
    out = load_image(p)
    assert (out.size, coloured_corner(out)) == ((256, 128), "blue tl")


def test_a_thumbnail_sized_preview_is_not_upscaled(tmp_path):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW.resize((32, 16)))
    assert coloured_corner(load_image(p, max_side=64)) == "red tl"
    assert coloured_corner(load_image(p, max_side=16)) == "blue tl"


@pytest.mark.parametrize("preview_exif", [None, _exif(SIDEWAYS)],
                         ids=["preview-without-exif", "preview-with-its-own-exif"])
def test_raw_orientation_applies_once(tmp_path, preview_exif):
    """LibRaw turns what it develops but not the preview; a preview with its own EXIF orientation
    is turned by that, and not again by the RAW's."""
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW.resize((128, 64)),
                 orientation=SIDEWAYS, preview_exif=preview_exif)
    preview = load_image(p, max_side=100)
    assert (preview.size, coloured_corner(preview)) == ((64, 128), "blue tr")
    developed = load_image(p, max_side=200)
    assert (developed.size, coloured_corner(developed)) == ((128, 256), "red tr")


@pytest.mark.parametrize(("orientation", "corner"), [(3, "br"), (8, "bl")])
def test_raw_orientations(tmp_path, orientation, corner):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW.resize((128, 64)),
                 orientation=orientation)
    assert coloured_corner(load_image(p, max_side=100)) == f"blue {corner}"
    assert coloured_corner(load_image(p, max_side=200)) == f"red {corner}"


def test_a_broken_preview_is_developed_instead(tmp_path):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW)
    data = bytearray(p.read_bytes())
    start = data.index(b"\xff\xd8\xff")
    end = data.index(b"\xff\xd9", start)
    middle = (start + end) // 2
    data[middle:end] = b"\xff\xd9" + bytes(end - middle - 2)  # an early end of image
    p.write_bytes(bytes(data))
    assert coloured_corner(load_image(p, max_side=100)) == "red tl"


def test_bad_raw_files_are_image_errors(tmp_path):
    fake = tmp_path / "fake.CR2"
    fake.write_text("not a raw photo\n" * 100)
    with pytest.raises(ImageError, match="not a RAW file LibRaw can read"):
        load_image(fake)
    fake.write_text("tiny")
    with pytest.raises(ImageError, match="RAW file"):
        load_image(fake)
    good = make_dng(tmp_path / "good.dng", SENSOR).read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageError):
        load_image(cut)


def test_the_bomb_guard_holds_for_raw(tmp_path, monkeypatch):
    p = make_dng(tmp_path / "x.dng", SENSOR, preview=PREVIEW)
    monkeypatch.setattr(images, "MAX_PIXELS", 256 * 128 - 1)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(p, max_side=64)


def test_a_raw_whose_name_is_not_utf8(tmp_path):
    import os

    name = os.path.join(os.fsencode(tmp_path), b"caf\xe9.nef")
    make_dng(Path(os.fsdecode(name)), SENSOR)
    assert coloured_corner(load_image(os.fsdecode(name))) == "red tl"


def test_without_rawpy_a_raw_is_skipped_with_a_reason(tmp_path, monkeypatch):
    p = make_dng(tmp_path / "x.dng", SENSOR)
    monkeypatch.setitem(sys.modules, "rawpy", None)
    with pytest.raises(ImageError, match="RAW support needs rawpy"):
        load_image(p)


def test_raw_extensions_are_supported_in_any_case():
    assert raw.is_raw("a/IMG_1.CR2") and raw.is_raw("b.Nef") and raw.is_raw(b"c.dng")
    assert not raw.is_raw("d.jpg") and raw.RAW_EXTENSIONS <= images.SUPPORTED_EXTENSIONS
