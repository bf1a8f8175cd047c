"""Safe image loading: every failure becomes an ImageError with a reason, never a crash.

Applies EXIF orientation, decodes JPEGs with PIL's draft mode close to the target size (much
faster than a full decode followed by a resize), and converts any mode (greyscale, CMYK, palette,
alpha, 16-bit) to 8-bit RGB.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PIL import Image, ImageOps

from imgsearch_gui.base.errors import ImageError

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)

#: Pixels above which a file is treated as a decompression bomb (PIL warns at ~89 MP). Checked
#: per call from the header, before decoding (:func:`check_size`), so the guard does not depend
#: on process-wide state: PIL's limit (set here once to the same value, for the checks PIL makes
#: itself, e.g. on later frames) or warning filters, which threads would change for each other.
MAX_PIXELS = 178_956_970
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def is_supported(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


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
        with Image.open(path) as im:
            check_size(path, im.size)  # the header's size, before anything is decoded
            if max_side and im.format == "JPEG":
                # draft picks a scale >= requested size, so the final resize still downsamples.
                ratio = max_side / max(im.size)
                if ratio < 0.5:
                    im.draft("RGB", (int(im.width * ratio * 2), int(im.height * ratio * 2)))
            im.seek(0)  # first frame of GIF/TIFF
            im.load()
            image = ImageOps.exif_transpose(im) or im
            image = to_rgb(image)
            if image is im:
                image = im.copy()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check (its limit may be lower)
        raise ImageError(path, f"too large (decompression bomb guard): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(path, "not an image (unrecognised format)") from exc
    except OSError as exc:
        reason = "truncated or corrupt image" if "truncat" in str(exc).lower() else str(exc)
        raise ImageError(path, reason or "unreadable image") from exc
    except (ValueError, SyntaxError, MemoryError, EOFError, IndexError, TypeError) as exc:
        raise ImageError(path, f"corrupt image: {exc}") from exc
    if image.width < 1 or image.height < 1:
        raise ImageError(path, "image has no pixels")
    return image
