"""Thumbnails on disk: one JPEG per photo version, found again by the photo's path when the photo
cannot be reached (its library is offline: an unplugged drive, a network share that is down).

A thumbnail's name is ``<path hash>-<version hash>.jpg``: the path hash covers the photo's path
and the thumbnail size, the version hash its mtime and size, so an edited photo gets a new
thumbnail and an unchanged one is never decoded twice. Every version of a path lies in the same
folder (the path hash's first two digits), so the last thumbnail of a photo that cannot be
stat'ed is one listing of that folder away: no second file (a pointer) has to be kept in step
with the thumbnail, and :func:`diskcache.prune` needs to know nothing of it (the version shown
last was touched last, so it is the one a prune keeps longest).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from PySide6.QtGui import QImage

from imgsearch_gui.app import diskcache

log = logging.getLogger(__name__)

THUMB_SIZE = 160
#: ~60,000 thumbnails of 160 px (about 8 KB each)
THUMBNAIL_CACHE_BYTES = 500_000_000


def pil_to_qimage(image) -> QImage:
    """A deep-copied QImage of an RGB PIL image (safe to use in any thread)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    data = image.tobytes("raw", "RGB")
    qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    return qimage.copy()  # own the pixels: ``data`` goes away


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class ThumbnailCache:
    """Thumbnails under ``root``, kept within ``max_bytes`` (:meth:`prune`: least recently shown
    first; the old versions of edited photos and those of deleted photos go first)."""

    def __init__(self, root: Path, size: int = THUMB_SIZE,
                 max_bytes: int = THUMBNAIL_CACHE_BYTES) -> None:
        self.root = Path(root)
        self.size = size
        self.max_bytes = max_bytes

    def prune(self, cancel=None) -> diskcache.PruneReport:
        return diskcache.prune(self.root, self.max_bytes, cancel=cancel)

    def path_key(self, path: str) -> str:
        """What every thumbnail of ``path`` (at this size) is named after."""
        return _sha1(f"{os.path.abspath(path)}|{self.size}")

    def key(self, path: str) -> str | None:
        """The name of the thumbnail of ``path`` as it is now; None when it cannot be stat'ed."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return f"{self.path_key(path)}-{_sha1(f'{st.st_mtime_ns}|{st.st_size}')[:16]}"

    def file_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.jpg"

    def last_cached(self, path: str) -> Path | None:
        """The thumbnail of ``path`` shown last, whatever version of the photo it was made of
        (the photo cannot be reached to tell): the newest by use."""
        prefix = self.path_key(path) + "-"
        best: tuple[float, str] | None = None
        try:
            with os.scandir(self.root / prefix[:2]) as entries:
                for entry in entries:
                    if entry.name.startswith(prefix) and entry.name.endswith(".jpg"):
                        try:
                            mtime = entry.stat().st_mtime
                        except OSError:  # pruned meanwhile
                            continue
                        if best is None or mtime > best[0]:
                            best = (mtime, entry.path)
        except OSError:
            return None
        return Path(best[1]) if best is not None else None

    def load(self, path: str, offline: bool = False) -> QImage | None:
        """The thumbnail of ``path`` (from the cache, else decoded and stored). Any thread.

        When the photo cannot be stat'ed, or ``offline`` says its library is not reachable (a
        stat of a share that is down can hang: it is not even tried), the last cached thumbnail
        of the path is shown."""
        key = None if offline else self.key(path)
        if key is None:
            last = self.last_cached(path)
            return self._read(last) if last is not None else None
        cached = self.file_for(key)
        image = self._read(cached)
        if image is not None:
            return image
        return self._make(path, cached)

    def _read(self, cached: Path) -> QImage | None:
        if not cached.exists():
            return None
        image = QImage(str(cached))
        if image.isNull():
            return None
        diskcache.touch(cached)  # recently used: pruned last
        return image

    def _make(self, path: str, cached: Path) -> QImage | None:
        from imgsearch_gui.base.errors import ImageError
        from imgsearch_gui.base.images import load_image

        try:
            pil = load_image(path, max_side=self.size)
        except ImageError as exc:
            log.debug("no thumbnail for %s: %s", path, exc.reason)
            return None
        pil.thumbnail((self.size, self.size))
        # a name of its own per thread and process (two windows may share the cache); no
        # fsync: a thumbnail lost in a crash is made again, and a torn one does not load
        tmp = cached.with_name(f"{cached.stem}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            pil.save(tmp, "JPEG", quality=85)
            os.replace(tmp, cached)
        except OSError as exc:
            log.debug("cannot cache thumbnail %s: %s", cached, exc)
            try:
                os.remove(tmp)
            except OSError:
                pass
        return pil_to_qimage(pil)
