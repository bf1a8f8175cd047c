"""HEIC/HEIF photos (iPhones, many Android phones, Fuji's .HIF) through pillow-heif.

pillow-heif is imported and its Pillow opener registered on first use, once, under a lock:
registering sets pillow-heif's process-wide options, and importing it costs ~75 ms that a command
which never meets a HEIC (``imgsearch --help``) should not pay. Without pillow-heif a HEIC is
skipped with a reason (:data:`NEEDS_PILLOW_HEIF`), never a crash.

Orientation: libheif applies the container's ``irot``/``imir`` transforms while it decodes, and
pillow-heif resets the EXIF orientation it reads to 1 (the HEIF standard makes EXIF orientation
informative only; iPhones write both, in agreement), so the ``exif_transpose`` that every photo
gets afterwards does nothing: a HEIC ends upright exactly once. A HEIC whose EXIF says "rotated"
without an ``irot`` box is shown as stored, like libheif's and Apple's viewers show it.
"""

from __future__ import annotations

import logging
import os
import threading

from PIL import Image

from imgsearch_gui.base.errors import ImageError

log = logging.getLogger(__name__)

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
NEEDS_PILLOW_HEIF = "HEIC support needs pillow-heif (pip install pillow-heif)"

#: libheif threads per photo: it decodes the tiles of a grid image (as iPhones write them) in
#: parallel. Two nearly halve the wait for one photo (a query: 0.65 s instead of 1.04 s for
#: 12 MP, bench/decode_formats.py); on the indexing pool (config.decode_workers, one thread per
#: 2 cores) 1, 2 and 4 measured the same, so more than 2 would only add threads.
DECODE_THREADS = 2

# ftyp major brands of HEVC-coded HEIF; mif1/msf1 are generic and also used by AVIF files.
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
_AV1_BRANDS = frozenset({b"avif", b"avis"})

_lock = threading.Lock()
_registered: bool | None = None  # None: not tried yet


def available() -> bool:
    """pillow-heif is importable and its opener registered (done once, on the first call)."""
    global _registered
    if _registered is None:
        with _lock:
            if _registered is None:
                _registered = _register()
    return _registered


def _register() -> bool:
    try:
        import pillow_heif
    except ImportError as exc:
        log.info("HEIC/HEIF photos will be skipped: pillow-heif cannot be imported (%s)", exc)
        return False
    # thumbnails: Image.draft may decode an embedded thumbnail (the GUI's 160 px cells);
    # depth and auxiliary images (depth maps, HDR gain maps, mattes) are never used here.
    try:
        pillow_heif.register_heif_opener(thumbnails=True, depth_images=False, aux_images=False,
                                         decode_threads=DECODE_THREADS)
    except Exception as exc:  # noqa: BLE001 - e.g. an option an older pillow-heif lacks
        log.warning("HEIC/HEIF photos will be skipped: pillow-heif cannot be set up (%s)", exc)
        return False
    log.debug("pillow-heif %s registered (libheif %s)", pillow_heif.__version__,
              pillow_heif.libheif_version())
    return True


def looks_like_heif(header: bytes) -> bool:
    """``header`` (the first 32 bytes or more) starts an HEVC-coded HEIF file, not an AVIF (which
    Pillow itself decodes) and not something else named .heic (a JPEG, as some exports are)."""
    if header[4:8] != b"ftyp":
        return False
    major = header[8:12]
    if major in _HEVC_BRANDS:
        return True
    if major not in _GENERIC_BRANDS:
        return False
    size = int.from_bytes(header[0:4], "big")
    compatible = {header[i:i + 4] for i in range(16, min(size, len(header)) - 3, 4)}
    return not compatible & _AV1_BRANDS


def open_heif(path: str | os.PathLike[str]) -> Image.Image:
    """The opened (not yet decoded) HEIF image; ImageError with libheif's own reason when the file
    cannot be parsed (e.g. "Too many auxiliary image references" from some iPhone photos), which
    ``Image.open`` would turn into a bare "cannot identify image file"."""
    if not available():
        raise ImageError(path, NEEDS_PILLOW_HEIF)
    from pillow_heif import HeifImageFile

    try:
        return HeifImageFile(os.fspath(path))
    except SyntaxError as exc:  # what the plugin raises for every libheif parsing error
        raise ImageError(path, f"HEIC cannot be read (libheif: {exc})") from exc
