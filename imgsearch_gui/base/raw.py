"""Camera RAW photos through rawpy (LibRaw): the embedded preview when it is big enough, else a
half-size development of the sensor data.

Cameras embed a JPEG preview (often full size, at least ~1600 px on most bodies since ~2010):
decoding it is several times faster than demosaicing, and it is the camera's own rendering (its
white balance, tone curve and picture style), so it looks like what the user saw. A preview
smaller than what the caller asks for (old bodies keep only a 160 px thumbnail) is not upscaled:
the sensor data is developed instead, at half size (2x2 blocks, no demosaicing) when that is
still big enough.

Orientation: LibRaw applies the RAW's orientation (``sizes.flip``) when it develops, but not to a
preview, whose pixels are stored as the sensor saw them; :attr:`RawFile.orientation` is that
orientation in EXIF terms, for the caller to apply to a preview that has no EXIF orientation of
its own (one that has is turned by it, not twice).

rawpy (and numpy with it) is imported on first use: it costs ~0.15 s, which a command that meets
no RAW file (``imgsearch --help``) should not pay.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from PIL import Image, UnidentifiedImageError

from imgsearch_gui.base.errors import ImageError

log = logging.getLogger(__name__)

#: The RAW formats LibRaw reads that cameras commonly write.
RAW_EXTENSIONS = frozenset({
    ".3fr", ".arw", ".cr2", ".cr3", ".dng", ".erf", ".iiq", ".mrw", ".nef", ".nrw", ".orf",
    ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf", ".srw",
})
NEEDS_RAWPY = "RAW support needs rawpy (pip install rawpy)"

#: A preview this close to the sensor's size counts as full size (cameras crop a few pixels).
FULL_SIZE_FRACTION = 0.9

# LibRaw's flip (dcraw: bit 4 transposes, bit 2 flips vertically, bit 1 horizontally) as the EXIF
# orientation that means the same turn: 3 = 180°, 5 = 90° counter-clockwise, 6 = 90° clockwise.
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


def is_raw(path: str | os.PathLike[str]) -> bool:
    """The name has a RAW extension (any case)."""
    return os.path.splitext(os.fsdecode(path))[1].lower() in RAW_EXTENSIONS


def _rawpy() -> Any:
    try:
        import rawpy
    except ImportError:
        return None
    return rawpy


class RawFile:
    """One opened RAW file (a context manager); every rawpy error becomes an ImageError."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._rawpy = _rawpy()
        if self._rawpy is None:
            raise ImageError(path, NEEDS_RAWPY)
        with _errors(path, self._rawpy):
            self._raw = self._open(path)
        sizes = self._raw.sizes
        #: (width, height) of the developed image, before it is turned upright
        self.size: tuple[int, int] = (int(sizes.width), int(sizes.height))
        #: the RAW's orientation as an EXIF orientation (1: upright)
        self.orientation: int = _FLIP_TO_EXIF.get(int(sizes.flip), 1)

    def _open(self, path: str | os.PathLike[str]) -> Any:
        """LibRaw reads a path itself (only the parts it needs); a name it cannot take (not valid
        UTF-8) is read into memory and handed over as bytes."""
        name = os.fsdecode(path)
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            with open(path, "rb") as fh:
                return self._rawpy.imread(fh)
        return self._rawpy.imread(name)

    def __enter__(self) -> RawFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._raw.close()

    def preview(self, max_side: int | None) -> Image.Image | None:
        """The embedded preview, opened (a JPEG is not decoded yet, so draft mode still applies),
        when its longest side is at least ``max_side`` (for None: when it is full size); None when
        there is none, LibRaw cannot extract it, or it is too small."""
        rawpy = self._rawpy
        try:
            thumb = self._raw.extract_thumb()
        except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
            return None
        except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
            log.debug("%s: no usable preview (%s)", self.path, _text(exc))
            return None
        image = _thumb_image(rawpy, thumb)
        if image is None or not self._big_enough(image.size, max_side):
            return None
        return image

    def _big_enough(self, size: tuple[int, int], max_side: int | None) -> bool:
        longest = max(size)
        if max_side is None:
            return longest >= FULL_SIZE_FRACTION * max(self.size)
        return longest >= max_side

    def develop(self, max_side: int | None) -> Image.Image:
        """The sensor data developed to 8-bit sRGB with the camera's white balance, upright: at half
        size when that still has ``max_side`` pixels on its longest side."""
        half = max_side is not None and max(self.size) // 2 >= max_side
        with _errors(self.path, self._rawpy):
            rgb = self._raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)
        return Image.fromarray(rgb)


@contextlib.contextmanager
def _errors(path: str | os.PathLike[str], rawpy: Any) -> Iterator[None]:
    """rawpy's exceptions as an ImageError that says what went wrong."""
    try:
        yield
    except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
        raise ImageError(path, _reason(rawpy, exc)) from exc


def _reason(rawpy: Any, exc: Exception) -> str:
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return "not a RAW file LibRaw can read (an unsupported camera, or not a RAW photo)"
    if isinstance(exc, rawpy.LibRawIOError):
        return "truncated or unreadable RAW file"
    if isinstance(exc, (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError,
                        rawpy.LibRawMemPoolOverflowError)):
        return f"RAW too large to develop: {_text(exc)}"
    return f"corrupt or unsupported RAW file: {_text(exc)}"


def _thumb_image(rawpy: Any, thumb: Any) -> Image.Image | None:
    """The preview as a PIL image: a JPEG opened (not decoded), a bitmap as 8-bit pixels."""
    import numpy as np  # with rawpy, which needs it anyway

    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            return Image.open(io.BytesIO(thumb.data))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            log.debug("unreadable RAW preview: %s", exc)
            return None
    data = np.asarray(thumb.data)
    if data.ndim != 3 or data.shape[2] not in (1, 3):
        return None
    if data.dtype != np.uint8:  # 16-bit bitmaps: keep the top byte
        data = (data >> 8).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(data[..., 0] if data.shape[2] == 1 else data))


def _text(exc: BaseException) -> str:
    """LibRaw's messages come as bytes (b'No thumbnail in file')."""
    arg = exc.args[0] if exc.args else ""
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg or exc)
