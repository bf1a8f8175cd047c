"""What the duplicate finder reports: typed groups of files, and the options it runs with."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from imgsearch_gui.base.types import SkippedFile


class GroupKind(str, Enum):
    EXACT = "exact"  # the same bytes
    NEAR = "near"    # the same photo re-saved, resized, recoloured, turned, mirrored or cropped
    SIMILAR = "similar"  # only when asked: other shots of the same scene, look-alikes

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DuplicateFile:
    path: str
    size: int
    mtime_ns: int
    #: as shown (after the EXIF turn), when the file's header could be read
    width: int | None
    height: int | None
    #: how surely it is the same photo as the kept one: 1 for the same bytes, else how well the
    #: two agree once aligned (ml/same_photo.py)
    score: float
    keep: bool
    #: the same bytes as the kept file
    identical: bool
    fast_hash: str | None = None

    @property
    def pixels(self) -> int | None:
        return self.width * self.height if self.width and self.height else None


@dataclass(frozen=True)
class DuplicateGroup:
    kind: GroupKind
    files: tuple[DuplicateFile, ...]

    @property
    def kept(self) -> DuplicateFile:
        return next(f for f in self.files if f.keep)

    @property
    def freed(self) -> int:
        """Bytes the group's copies take beside the kept one."""
        return sum(f.size for f in self.files if not f.keep)

    def identical_part(self) -> DuplicateGroup | None:
        """The kept file with the files of its bytes, as an exact group (None: it has none)."""
        same = tuple(f for f in self.files if f.keep or f.identical)
        if len(same) < 2 or self.kind == GroupKind.SIMILAR:
            return None
        return DuplicateGroup(GroupKind.EXACT, same)


@dataclass(frozen=True)
class FinderOptions:
    #: only photos under these folders (default: every indexed library)
    roots: tuple[str, ...] = ()
    #: candidates per photo from the index, and the cosine they need
    neighbours: int = 5
    min_cosine: float = 0.6
    #: candidates per photo orientation from the thumbprints, and the correlation they need
    turned_neighbours: int = 3
    min_thumb_correlation: float = 0.9
    #: the order of the criteria that pick the copy to keep (app/duplicates/keep.py)
    keep_rule: tuple[str, ...] = ("resolution", "original", "size", "oldest")
    workers: int = 2
    #: also group photos that are merely similar (not copies) at this cosine: off by default
    similar: bool = False
    similar_cosine: float = 0.8


@dataclass(frozen=True)
class DuplicateReport:
    groups: tuple[DuplicateGroup, ...]
    photos: int
    pairs_checked: int
    seconds: float
    unreadable: tuple[SkippedFile, ...] = ()
    #: thumbprints computed for vectors that had none (an older catalog), to be stored
    new_thumbprints: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def freed(self) -> int:
        return sum(g.freed for g in self.groups)
