"""Every kind of bad file becomes an ImageError with a reason; odd modes become RGB."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from imgsearch_gui.base import images
from imgsearch_gui.base.errors import ImageError
from imgsearch_gui.base.images import is_supported, load_image


def _photo(w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_supported_extensions_case_insensitive():
    assert is_supported("a/B.JPG") and is_supported("x.Jpeg") and is_supported("y.TIFF")
    assert is_supported("z.webp") and is_supported("g.gif") and is_supported("b.BMP")
    assert is_supported("IMG_0001.HEIC") and is_supported("p.heif") and is_supported("f.HIF")
    assert is_supported("a.AVIF") and is_supported("raw.cr2") and is_supported("DSC_1.NEF")
    assert is_supported(b"bytes/IMG_2.Dng")
    assert not is_supported("notes.txt") and not is_supported("clip.mov") and not is_supported("x")


def test_the_formats_text_names_every_extension():
    text = images.SUPPORTED_FORMATS_TEXT
    assert all(e in text.split() or e + ":" in text.split() for e in images.SUPPORTED_EXTENSIONS)
    assert "RAW+JPEG" in text and max(len(line) for line in text.splitlines()) <= 100


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(p)


def test_text_with_image_extension(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("hello, I am not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(p)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    _photo(256, 256).save(buf, "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(p)


def test_garbage_after_valid_header(tmp_path):
    buf = io.BytesIO()
    _photo().save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[60:] = os.urandom(len(data) - 60)
    p = tmp_path / "noise.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError):
        load_image(p)


def test_decompression_bomb(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    Image.new("L", (400, 400)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(p)


def test_unreadable_file(tmp_path):
    p = tmp_path / "missing.jpg"
    with pytest.raises(ImageError, match="cannot read"):
        load_image(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_no_permission(tmp_path):
    p = tmp_path / "secret.png"
    _photo().save(p)
    p.chmod(0)
    with pytest.raises(ImageError):
        load_image(p)


def test_directory_with_image_name(tmp_path):
    d = tmp_path / "folder.jpg"
    d.mkdir()
    with pytest.raises(ImageError):
        load_image(d)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    src = _photo()
    if mode == "I;16":
        arr = (np.asarray(src.convert("L"), dtype=np.uint16) * 257)
        im = Image.fromarray(arr)
        p = tmp_path / "deep.png"
    else:
        im = src.convert(mode)
        p = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    im.save(p)
    out = load_image(p)
    assert out.mode == "RGB" and out.size == (64, 48)


def test_alpha_composited_on_white(tmp_path):
    p = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(p)
    assert load_image(p).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_applied(tmp_path):
    p = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    _photo(80, 40).save(p, exif=exif)
    assert load_image(p).size == (40, 80)


def test_gif_first_frame(tmp_path):
    p = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(p, save_all=True, append_images=frames[1:])
    r, g, b = load_image(p).getpixel((5, 5))
    assert r > 200 and b < 50


def test_jpeg_draft_decodes_near_target(tmp_path):
    p = tmp_path / "big.jpg"
    _photo(2000, 1500).save(p, quality=90)
    out = load_image(p, max_side=300)
    assert 600 <= max(out.size) < 2000  # draft scale keeps >= 2x the target, skips the rest
    assert load_image(p).size == (2000, 1500)


def test_bomb_limit_is_set():
    assert images.MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_bomb_guard_is_per_call_and_ignores_pil_global(tmp_path, monkeypatch):
    """The size check reads the header before decoding; whatever PIL's process-wide limit is (other
    code may turn it off), a photo above MAX_PIXELS is refused without being decoded."""
    p = tmp_path / "big.png"
    Image.new("L", (150, 100)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 15_000)
    assert load_image(p).size == (150, 100)  # the limit itself is allowed


def test_bomb_guard_holds_while_other_threads_change_warning_filters(tmp_path, monkeypatch):
    """Decode threads used to turn the guard off for each other: each swapped the process-wide
    warning filters in and out (catch_warnings) around its decode."""
    import threading
    import warnings

    p = tmp_path / "big.png"
    Image.new("L", (150, 100)).save(p)  # between PIL's warning and its error threshold
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    stop = threading.Event()

    def other_decoder() -> None:
        while not stop.is_set():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")

    thread = threading.Thread(target=other_decoder)
    thread.start()
    loaded = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's own warning is not what this test checks
            for _ in range(300):
                try:
                    load_image(p)
                    loaded += 1
                except ImageError:
                    pass
    finally:
        stop.set()
        thread.join()
    assert loaded == 0


def test_photo_size_reads_the_header_and_the_exif_turn(tmp_path):
    from PIL import Image

    from imgsearch_gui.base.images import photo_size

    img = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned: 40 x 60
    img.save(tmp_path / "turned.jpg", exif=exif)
    img.save(tmp_path / "plain.png")
    (tmp_path / "junk.jpg").write_bytes(b"not a photo")
    assert photo_size(tmp_path / "plain.png") == (60, 40)
    assert photo_size(tmp_path / "turned.jpg") == (40, 60)
    assert photo_size(tmp_path / "junk.jpg") is None
