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
from imgsearch_gui.base.errors import UserError

__all__ = ["CRITERIA", "DEFAULT_RULE", "DuplicateFile", "DuplicateGroup", "DuplicateReport",
           "FinderOptions", "GroupKind", "content_hashes", "file_ids", "parse_rule", "run"]


def run(*args, **kwargs):
    """finder.run, imported when first called: the command line's parser reads the keep rule's
    names from this package and must not pay for hnswlib, OpenCV and torch."""
    from imgsearch_gui.app.duplicates.finder import run as run_finder

    return run_finder(*args, **kwargs)


def _records(catalog: Catalog, paths: Sequence[str]) -> list[FileRecord]:
    """The indexed files at ``paths``; a path the catalog does not know is a UserError."""
    wanted = {os.path.abspath(p) for p in paths}
    found = [r for r in catalog.indexed_files() if r.path in wanted]
    missing = wanted - {r.path for r in found}
    if missing:
        raise UserError(f"not an indexed photo: {sorted(missing)[0]}")
    return found


def content_hashes(catalog: Catalog, paths: Sequence[str]) -> list[str]:
    """The content hashes (fast hashes) of these indexed files, each once."""
    return sorted({r.fast_hash for r in _records(catalog, paths) if r.fast_hash})


def file_ids(catalog: Catalog, paths: Sequence[str]) -> list[int]:
    """The catalog ids of indexed files at ``paths`` (paths it does not know are left out)."""
    wanted = {os.path.abspath(p) for p in paths}
    return [r.id for r in catalog.indexed_files() if r.path in wanted]
