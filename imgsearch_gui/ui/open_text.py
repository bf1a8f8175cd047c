"""What the window says when a photo (or its folder) could not be opened: why, in plain words,
from the typed :class:`~imgsearch_gui.app.desktop.OpenResult` (no Qt: tested under
``tests/unit/ui``)."""

from __future__ import annotations

import os

from imgsearch_gui.app.desktop import OpenFailure, OpenResult
from imgsearch_gui.base.images import FORMATS
from imgsearch_gui.base.pathtext import display_path

#: failures where the path is worth having (the file is there, the desktop could not take it)
COPY_PATH_FAILURES = frozenset({OpenFailure.NO_OPENER, OpenFailure.NO_APPLICATION,
                                OpenFailure.NO_FILE_MANAGER, OpenFailure.FAILED})


def file_kind(path: str) -> str:
    """A photo's format as people call it ("JPEG", "camera RAW"), else its extension."""
    ext = os.path.splitext(path)[1].lower()
    for fmt in FORMATS:
        if ext in fmt.extensions:
            return fmt.name
    return ext.lstrip(".").upper() or "these"


def _tried(result: OpenResult) -> str:
    return f" (tried {', '.join(result.tried)})" if result.tried else ""


def open_failure_text(result: OpenResult, reveal: bool = False, copied: bool = False) -> str:
    """One sentence or two: what could not be done, why, and what to do. ``reveal``: it was
    "Reveal in file manager"; ``copied``: the path was put on the clipboard meanwhile."""
    name = display_path(os.path.basename(result.path) or result.path)
    what = f"Could not show {name} in its folder" if reveal else f"Could not open {name}"
    reason = result.reason
    if reason is OpenFailure.OFFLINE:
        return (f"{what}: its library is offline (an unplugged drive, a network share that is "
                "down?). Connect it and try again.")
    if reason is OpenFailure.NOT_FOUND:
        return (f"{what}: it is no longer at {display_path(result.path)} (moved or deleted "
                "since it was indexed?). Library ▸ Re-index all (F5) updates the results.")
    if reason is OpenFailure.NO_OPENER:
        why = ("no program to open files with was found on this system (xdg-open, gio, "
               "kde-open); installing xdg-utils usually brings one")
    elif reason is OpenFailure.NO_APPLICATION:
        why = f"no program is set to open {file_kind(result.path)} files on this system"
    elif reason is OpenFailure.NO_FILE_MANAGER:
        why = "no file manager was found to show the folder"
    else:
        why = f"the desktop could not open it ({result.detail or 'no reason given'})"
    tail = " The path is copied to the clipboard." if copied else ""
    return f"{what}: {why}{_tried(result)}.{tail}"
