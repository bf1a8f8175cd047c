"""Safe image loading: every failure becomes an ImageError with a reason, never a crash.

Applies EXIF orientation, decodes JPEGs with PIL's draft mode close to the target size (much
faster than a full decode followed by a resize; a HEIC's draft is its embedded thumbnail when that
is big enough), and converts any mode (greyscale, CMYK, palette, alpha, 16-bit) to 8-bit RGB.
HEIC/HEIF goes through pillow-heif (``heif.py``), AVIF through Pillow's own plugin, camera RAW
through rawpy's embedded preview or a half-size development (``raw.py``).
"""

from __future__ import annotations

import functools
import logging
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, features

from imgsearch_gui.base import heif, raw
from imgsearch_gui.base.errors import ImageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoFormat:
    """One format as the user knows it; the first extension is the one messages name."""

    name: str
    extensions: tuple[str, ...]
    note: str = ""


RAW_FORMAT = PhotoFormat("camera RAW", tuple(sorted(raw.RAW_EXTENSIONS)),
                         "its embedded preview, or the sensor data developed at half size")

#: Every format a library may hold, in the order help texts list them.
FORMATS = (
    PhotoFormat("JPEG", (".jpg", ".jpeg", ".jpe")),
    PhotoFormat("HEIC/HEIF", tuple(sorted(heif.HEIF_EXTENSIONS)), "iPhones, many Android phones"),
    PhotoFormat("AVIF", (".avif",)),
    PhotoFormat("PNG", (".png",)),
    PhotoFormat("WebP", (".webp",)),
    PhotoFormat("TIFF", (".tiff", ".tif")),
    PhotoFormat("BMP", (".bmp",)),
    PhotoFormat("GIF", (".gif",), "the first frame"),
    RAW_FORMAT,
)

SUPPORTED_EXTENSIONS = frozenset(e for f in FORMATS for e in f.extensions)


def _formats_text(width: int = 92) -> str:
    lines = ["photo formats (extensions match in any case):"]
    for f in FORMATS:
        text = " ".join(f.extensions) + (f": {f.note}" if f.note else "")
        lines += textwrap.wrap(text, width, initial_indent=f"  {f.name:<12}",
                               subsequent_indent=" " * 14, break_on_hyphens=False)
    lines += ["A RAW file next to a JPEG or HEIC of the same name (IMG_0001.CR2 + IMG_0001.JPG, a",
              "photo shot RAW+JPEG) is skipped: the JPEG is indexed, so the photo is one result;",
              "delete the JPEG (or let it be unreadable) and the RAW is indexed."]
    return "\n".join(lines)


#: The supported formats as lines for a help text (``imgsearch index --help``).
SUPPORTED_FORMATS_TEXT = _formats_text()

#: Pixels above which a file is treated as a decompression bomb (PIL warns at ~89 MP). Checked
#: per call from the header, before decoding (:func:`check_size`), so the guard does not depend
#: on process-wide state: PIL's limit (set here once to the same value, for the checks PIL makes
#: itself, e.g. on later frames) or warning filters, which threads would change for each other.
MAX_PIXELS = 178_956_970
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def is_supported(path: str | os.PathLike[str]) -> bool:
    """The name has a supported extension, in any case (IMG_0001.JPG, photo.Heic)."""
    return Path(os.fsdecode(path)).suffix.lower() in SUPPORTED_EXTENSIONS


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any PIL mode; transparent areas are composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = Image.fromarray(((arr - lo) * scale).astype("uint8"))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def check_size(path: str | os.PathLike[str], size: tuple[int, int]) -> None:
    """ImageError when ``size`` (width, height) is above :data:`MAX_PIXELS`."""
    if size[0] * size[1] > MAX_PIXELS:
        raise ImageError(path, f"too large (decompression bomb guard): {size[0]}x{size[1]} px is "
                               f"more than {MAX_PIXELS:,} pixels")


def load_image(path: str | os.PathLike[str], max_side: int | None = None) -> Image.Image:
    """Open ``path`` as an RGB image, upright, with its longest side at most ~2x ``max_side``.

    The result is not resized exactly to ``max_side`` (that is the model's preprocessing); draft
    mode only skips decoding detail that the resize would throw away anyway.
    """
    try:
        if os.path.getsize(path) == 0:
            raise ImageError(path, "empty file (0 bytes)")
    except OSError as exc:
        raise ImageError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        image = _load_raw(path, max_side) if raw.is_raw(path) else _load(path, max_side)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check (its limit may be lower)
        raise ImageError(path, f"too large (decompression bomb guard): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(path, _unidentified(path)) from exc
    except OSError as exc:
        reason = "truncated or corrupt image" if "truncat" in str(exc).lower() else str(exc)
        raise ImageError(path, reason or "unreadable image") from exc
    # RuntimeError: what libheif's decoding errors may arrive as (pillow-heif)
    except (ValueError, SyntaxError, MemoryError, EOFError, IndexError, TypeError,
            RuntimeError) as exc:
        raise ImageError(path, f"corrupt image: {exc}") from exc
    if image.width < 1 or image.height < 1:
        raise ImageError(path, "image has no pixels")
    return image


def _load(path: str | os.PathLike[str], max_side: int | None) -> Image.Image:
    with _open(path) as im:
        check_size(path, im.size)  # the header's size, before anything is decoded
        _draft(im, max_side)
        # no seek(0): a file opens at its first frame (GIF, TIFF), a HEIF at its primary image,
        # which need not be its first
        im.load()
        return _finish(im)


def _open(path: str | os.PathLike[str]) -> Image.Image:
    """The opened, not yet decoded image. A HEIC goes through pillow-heif's own class, whose errors
    keep libheif's reason; anything else through ``Image.open``, which reads a HEIC too once
    pillow-heif is registered (a HEIC named .jpg, as some exports are)."""
    heif.available()  # registers pillow-heif's opener, once
    if _suffix(path) in heif.HEIF_EXTENSIONS and heif.looks_like_heif(_header(path)):
        return heif.open_heif(path)
    return Image.open(path)


#: Formats whose ``Image.draft`` decodes less: JPEG scales by 1/2..1/8 while decoding, HEIF
#: decodes an embedded thumbnail instead of the photo when one is big enough.
_DRAFT_FORMATS = frozenset({"JPEG", "HEIF"})


def _draft(im: Image.Image, max_side: int | None) -> None:
    if max_side and im.format in _DRAFT_FORMATS:
        # draft picks a scale >= requested size, so the final resize still downsamples.
        ratio = max_side / max(im.size)
        if ratio < 0.5:
            # at least 1 pixel each way: a sliver (2400 x 6) would ask for 0 rows (PIL divides)
            im.draft("RGB", (max(1, int(im.width * ratio * 2)), max(1, int(im.height * ratio * 2))))


def _finish(im: Image.Image) -> Image.Image:
    """Upright (EXIF orientation), RGB, and never the opened file's own image object."""
    image = ImageOps.exif_transpose(im) or im
    image = to_rgb(image)
    return im.copy() if image is im else image


def _load_raw(path: str | os.PathLike[str], max_side: int | None) -> Image.Image:
    """The embedded preview when it is big enough and decodes, else the developed sensor data."""
    with raw.RawFile(path) as rf:
        check_size(path, rf.size)  # the sensor's size, before anything is developed
        preview = rf.preview(max_side)
        if preview is not None:
            try:
                return _load_preview(path, preview, max_side, rf.orientation)
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                log.debug("%s: the embedded preview does not decode (%s); developing", path, exc)
        return _finish(rf.develop(max_side))


def _load_preview(path: str | os.PathLike[str], preview: Image.Image, max_side: int | None,
                  orientation: int) -> Image.Image:
    """A RAW's preview, upright: turned by its own EXIF orientation when it has one, else by the
    RAW's (which LibRaw does not apply to previews), never by both."""
    with preview:
        check_size(path, preview.size)
        _draft(preview, max_side)
        preview.load()
        own = preview.getexif().get(_ORIENTATION, 1)
        image = _finish(preview)
    return _turn(image, orientation) if own == 1 else image


_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _turn(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned upright for an EXIF ``orientation`` (1, or an unknown value: as it is)."""
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _unidentified(path: str | os.PathLike[str]) -> str:
    """Why PIL does not know a file: a missing decoder says so, anything else is not an image."""
    suffix = _suffix(path)
    if suffix == ".avif" and not _avif_available():
        return "AVIF support needs Pillow built with libavif (Pillow 11.3 or newer)"
    if not heif.available() and heif.looks_like_heif(_header(path)):
        return heif.NEEDS_PILLOW_HEIF
    return "not an image (unrecognised format)"


@functools.cache
def _avif_available() -> bool:
    return bool(features.check_module("avif"))


def _suffix(path: str | os.PathLike[str]) -> str:
    return os.path.splitext(os.fsdecode(path))[1].lower()


def _header(path: str | os.PathLike[str], size: int = 64) -> bytes:
    """The first bytes of a file (b"" when it cannot be read: the decoder will say why)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


_TURNED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


def photo_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) as the photo is shown (after its EXIF turn), from its header, without
    decoding it (HEIC too; a RAW's embedded preview is not read); None when it cannot be read."""
    try:
        if raw.is_raw(path):  # PIL would read a TIFF-based RAW's first thumbnail
            with raw.RawFile(path) as opened:
                (width, height), turned = opened.size, opened.orientation in _TURNED_ORIENTATIONS
        else:
            with _open(path) as im:
                width, height = int(im.width), int(im.height)
                turned = im.getexif().get(0x0112) in _TURNED_ORIENTATIONS
    except Exception:  # noqa: BLE001 - an odd file: unknown size, never an error
        return None
    return (height, width) if turned else (width, height)
