"""What the library panel shows for each library, without Qt: its name, folder, photo count and
state (indexing, offline, watching, skipped files), built from what the window's parts know.
``widgets/library_panel.py`` only draws these rows."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgsearch_gui.app.scan import normalize_root
from imgsearch_gui.base.pathtext import display_path
from imgsearch_gui.ui.format import is_under

OFFLINE_TEXT = "offline — connect the drive"
INDEXING_TEXT = "indexing…"
NOT_INDEXED_TEXT = "not indexed yet"


@dataclass(frozen=True)
class LibraryRow:
    """One library as the panel shows it."""

    root: str
    name: str  # the folder's name, in bold
    path: str  # the full path, smaller
    photos: int | None  # indexed photos; None while unknown (the model loads)
    in_index: bool  # the catalog knows it (False before its first job)
    skipped: int
    offline: bool
    indexing: bool
    watching: bool  # watched for changes now (not while offline)

    @property
    def count_text(self) -> str:
        if self.photos is None:
            return ""
        if not self.in_index:
            return NOT_INDEXED_TEXT
        return f"{self.photos:,} photo{'' if self.photos == 1 else 's'}"

    @property
    def state_text(self) -> str:
        """"indexing…", "offline — connect the drive", "watching", "3 skipped", joined by " · "."""
        parts = []
        if self.indexing:
            parts.append(INDEXING_TEXT)
        if self.offline:
            parts.append(OFFLINE_TEXT)
        elif self.watching and not self.indexing:
            parts.append("watching")
        if self.skipped:
            parts.append(f"{self.skipped:,} skipped")
        return " · ".join(parts)

    @property
    def tip(self) -> str:
        lines = [self.path, self.count_text] if self.count_text else [self.path]
        if self.offline:
            lines.append("The folder is not reachable (an unplugged drive, a network share that "
                         "is down?). Its photos stay in the index and are still found; the "
                         "library catches up when it is back.")
        if self.watching and not self.offline:
            lines.append("Watched: new, edited, moved and deleted photos are picked up a few "
                         "seconds later.")
        if self.skipped:
            lines.append(f"{self.skipped:,} file{'' if self.skipped == 1 else 's'} could not be "
                         "indexed (Library ▸ Show skipped files…).")
        lines.append("Double-click to open the folder; right-click for more.")
        return "\n".join(lines)


def folder_name(root: str) -> str:
    """The last part of ``root`` (the root itself for ``/`` or a drive)."""
    name = Path(root).name
    return display_path(name or root)


def library_rows(
    roots: Sequence[str],
    infos: Iterable | None,  # app LibraryInfo (root, indexed, skipped, offline); None: unknown
    offline: Mapping[str, bool],
    indexing_root: str,
    watching: bool,
    modes: Mapping[str, str],
    skipped: Iterable[str],
) -> list[LibraryRow]:
    """A row per library root, in the order of ``roots`` (the preferences' list).

    ``infos`` are the catalog's counts (none yet for a library not indexed; None while the
    library is not open: the counts are not shown); ``offline`` the
    window's last refresh; ``indexing_root`` the root being indexed now ("" when none);
    ``modes`` how the folder watcher watches each root (its spelling: resolved);
    ``skipped`` the paths this session's jobs skipped (the catalog counts those of earlier
    sessions: the larger count is shown)."""
    by_root = {info.root: info for info in infos or ()}
    skipped = list(skipped)
    rows = []
    for root in roots:
        info = by_root.get(root)
        mode = (modes.get(root) or modes.get(_normalized(root))) if modes else None
        is_offline = bool(offline.get(root, False) or getattr(info, "offline", False)
                          or mode == "offline")
        session_skipped = sum(1 for p in skipped if is_under(p, root))
        rows.append(LibraryRow(
            root=root,
            name=folder_name(root),
            path=display_path(root),
            photos=None if infos is None else int(info.indexed) if info is not None else 0,
            in_index=info is not None,
            skipped=max(int(getattr(info, "skipped", 0) or 0), session_skipped),
            offline=is_offline,
            indexing=bool(indexing_root) and indexing_root == root,
            watching=watching and not is_offline,
        ))
    return rows


def _normalized(root: str) -> str:
    try:
        return normalize_root(root)
    except (OSError, RuntimeError):
        return os.path.abspath(root)
