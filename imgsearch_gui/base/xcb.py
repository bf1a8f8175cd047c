"""The X11 libraries Qt's xcb platform plugin needs, checked before Qt is started.

Without one of them Qt prints "Could not load the Qt platform plugin xcb" and aborts the process
(no exception to catch), without naming the library. Asking the dynamic loader (``ldd``) about
the installed plugin, before the QApplication exists, finds the missing ones, so the app can say
which packages to install. Linux only; nothing here imports Qt.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemLibrary:
    soname: str
    debian: str  # Debian/Ubuntu package
    fedora: str  # Fedora/RHEL package


#: What PySide6's libqxcb.so and Qt's GUI library load (``ldd`` of PySide6 6.x), with packages.
XCB_LIBRARIES = (
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    SystemLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    SystemLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    SystemLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
)


def uses_xcb(environ: dict[str, str] | os._Environ = os.environ, platform: str = sys.platform
             ) -> bool:
    """Qt will start its xcb (X11) plugin: Linux with an X display, no other platform chosen
    (a Wayland session picks Wayland first)."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return False
    return bool(environ.get("DISPLAY"))


def plugin_file() -> str | None:
    """PySide6's xcb platform plugin, found without importing Qt (None: not there)."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "Qt", "plugins", "platforms", "libqxcb.so")
        if os.path.exists(path):
            return path
    return None


def _unresolved(plugin: str) -> list[str] | None:
    """The sonames the dynamic loader cannot find for ``plugin`` (``ldd``'s "not found"), or
    None when that cannot be told (no ldd): then nothing is reported missing."""
    import subprocess

    try:
        out = subprocess.run(["ldd", plugin], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return not_found(out)


def not_found(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` printed as "libX.so.N => not found"."""
    return [line.split("=>")[0].strip() for line in ldd_output.splitlines()
            if "=>" in line and "not found" in line.split("=>", 1)[1]]


def missing_libraries(unresolved: Callable[[str], list[str] | None] | None = None,
                      plugin: str | None = None) -> list[SystemLibrary]:
    """The libraries the installed xcb plugin needs that cannot be loaded here, with their
    packages (:data:`XCB_LIBRARIES`; one not in that table is named with its soname only). Only
    what the plugin itself asks for counts, so a list that is out of date never blocks a start."""
    plugin = plugin or plugin_file()
    if plugin is None:
        return []
    names = (unresolved or _unresolved)(plugin) or []
    known = {lib.soname: lib for lib in XCB_LIBRARIES}
    missing = [known.get(name, SystemLibrary(name, "", "")) for name in names]
    if missing:
        log.warning("missing for Qt's xcb platform: %s", ", ".join(m.soname for m in missing))
    return missing


def install_advice(missing: list[SystemLibrary]) -> str:
    """What to tell the user: the libraries, and the packages that bring them."""
    debian = " ".join(dict.fromkeys(m.debian for m in missing if m.debian))
    fedora = " ".join(dict.fromkeys(m.fedora for m in missing if m.fedora))
    names = ", ".join(m.soname for m in missing)
    how = (f" with `sudo apt install {debian}` (Debian/Ubuntu) or `sudo dnf install {fedora}` "
           "(Fedora)" if debian else " (your distribution's package that holds it)")
    return (f"the desktop app cannot start: Qt's X11 platform needs {names}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install "
            f"{'it' if len(missing) == 1 else 'them'}{how}, then start again. The command line "
            "works without them (`imgsearch --help`).")
