"""File paths as text for people and for JSON, whatever bytes their names hold.

On POSIX a file name is bytes; one that is not valid UTF-8 comes back from ``os.fsdecode`` with
lone surrogates (``caf\\udce9.png``), which a strict UTF-8 stream cannot write, Qt silently drops
and JSON readers turn into U+FFFD. :func:`display_path` shows such bytes as ``\\xNN`` escapes
(readable, valid text); :func:`path_b64` gives the exact bytes where that text is not the name.
The GUI (``ui/format.py``) and the command line share these.
"""

from __future__ import annotations

import base64
import os


def display_path(path: str) -> str:
    """``path`` (or any text holding one) as readable text: bytes that are not UTF-8 (lone
    surrogates after ``os.fsdecode``) show as ``\\xNN`` escapes; valid text is unchanged."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def path_b64(path: str) -> str | None:
    """The base64 of ``path``'s bytes where :func:`display_path` does not give them exactly;
    None for a valid UTF-8 name."""
    if display_path(path) == path:
        return None
    return base64.b64encode(os.fsencode(path)).decode("ascii")


def path_json(path: str, key: str = "path") -> dict[str, str]:
    """``{key: readable text}``, plus ``{key}_b64`` (the exact bytes) only for a name that is not
    valid UTF-8: the form of every path in the command line's JSON output."""
    out = {key: display_path(path)}
    exact = path_b64(path)
    if exact is not None:
        out[f"{key}_b64"] = exact
    return out
