"""Which copy of a group to keep: an ordered rule of criteria the user can change.

The default keeps the copy with the most pixels, then the camera's own format (RAW, HEIC)
before a re-encoded one, then the largest file (less compressed), then the oldest; the path
breaks the last ties so the choice is stable from run to run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

from imgsearch_gui.base import raw
from imgsearch_gui.base.errors import UserError

CRITERIA: dict[str, str] = {
    "resolution": "most pixels first",
    "original": "the camera's format (RAW, HEIC/HEIF) before a re-encoded one",
    "size": "largest file first",
    "oldest": "oldest modification time first",
    "newest": "newest modification time first",
    "shortest-path": "shortest path first",
}
DEFAULT_RULE = ("resolution", "original", "size", "oldest")
_CAMERA_SUFFIXES = {".heic", ".heif", ".hif"}


def parse_rule(text: str) -> tuple[str, ...]:
    """``"resolution,oldest"`` as a rule; an unknown name is a UserError naming the known ones."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CRITERIA]
    if unknown or not names:
        raise UserError(f"unknown keep rule {', '.join(unknown) or repr(text)}: use a comma-"
                        f"separated list of {', '.join(CRITERIA)}")
    return names


def _resolution(file: object) -> float:
    """Fewer pixels rank later, in steps of 3 % (a RAW and its JPEG export differ by a few rows:
    the next criterion decides); an unknown size ranks with the largest."""
    pixels = file.pixels
    return -math.inf if not pixels else -math.floor(math.log(pixels) / math.log(1.03))


def format_rank(path: str) -> int:
    """0 for RAW, 1 for HEIC/HEIF (what cameras and phones write), 2 for anything else."""
    if raw.is_raw(path):
        return 0
    return 1 if os.path.splitext(path)[1].lower() in _CAMERA_SUFFIXES else 2


def sort_key(rule: Sequence[str]) -> Callable[[object], tuple]:
    """A key for sorted(): the file to keep first. Files need path, size, mtime_ns, pixels."""
    parts: dict[str, Callable[[object], object]] = {
        "resolution": _resolution,
        "original": lambda f: format_rank(f.path),
        "size": lambda f: -f.size,
        "oldest": lambda f: f.mtime_ns,
        "newest": lambda f: -f.mtime_ns,
        "shortest-path": lambda f: len(f.path),
    }
    chosen = [parts[name] for name in rule]
    return lambda f: (*(part(f) for part in chosen), f.path)

