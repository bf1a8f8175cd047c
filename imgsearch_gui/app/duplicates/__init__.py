"""The duplicate finder (finder.py) and what acting on its groups needs from the catalog."""

from __future__ import annotations

import os
from collections.abc import Sequence

from imgsearch_gui.app.catalog import Catalog, FileRecord
from imgsearch_gui.app.duplicates.keep import CRITERIA, DEFAULT_RULE, parse_rule
from imgsearch_gui.app.duplicates.model import (
    DuplicateFile,
    DuplicateGroup,
    DuplicateReport,
    FinderOptions,
    GroupKind,
)
from imgsearch_gui.app.trash import TrashRequest
from imgsearch_gui.base.errors import UserError

__all__ = ["CRITERIA", "DEFAULT_RULE", "DuplicateFile", "DuplicateGroup", "DuplicateReport",
           "FinderOptions", "GroupKind", "content_hashes", "file_ids", "parse_rule", "run",
           "trash_requests"]


def run(*args, **kwargs):
    """finder.run, imported when first called: the command line's parser reads the keep rule's
    names from this package and must not pay for hnswlib, OpenCV and torch."""
    from imgsearch_gui.app.duplicates.finder import run as run_finder

    return run_finder(*args, **kwargs)


def _indexed_at(catalog: Catalog, paths: Sequence[str]) -> tuple[list[FileRecord], set[str]]:
    """The indexed files at ``paths``, and the absolute paths asked for."""
    wanted = {os.path.abspath(p) for p in paths}
    return [r for r in catalog.indexed_files() if r.path in wanted], wanted


def _records(catalog: Catalog, paths: Sequence[str]) -> list[FileRecord]:
    """The indexed files at ``paths``; a path the catalog does not know is a UserError."""
    found, wanted = _indexed_at(catalog, paths)
    missing = wanted - {r.path for r in found}
    if missing:
        raise UserError(f"not an indexed photo: {sorted(missing)[0]}")
    return found


def content_hashes(catalog: Catalog, paths: Sequence[str]) -> list[str]:
    """The content hashes (fast hashes) of these indexed files, each once."""
    return sorted({r.fast_hash for r in _records(catalog, paths) if r.fast_hash})


def file_ids(catalog: Catalog, paths: Sequence[str]) -> list[int]:
    """The catalog ids of indexed files at ``paths`` (paths it does not know are left out)."""
    return [r.id for r in _indexed_at(catalog, paths)[0]]


def trash_requests(groups: Sequence[DuplicateGroup]) -> list[TrashRequest]:
    """Every copy but the kept one of ``groups``, as the catalog saw it (a file changed since is
    refused), each going only while its group's kept file is there unchanged."""
    return [TrashRequest(f.path, f.size, f.mtime_ns,
                         TrashRequest(g.kept.path, g.kept.size, g.kept.mtime_ns))
            for g in groups for f in g.files if not f.keep]
