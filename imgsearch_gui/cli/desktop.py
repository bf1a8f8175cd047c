"""``imgsearch gui`` and ``desktop-entry``: start the app, add it to the desktop menu."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgsearch_gui.base.errors import UserError


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    """gui and desktop-entry."""
    p = sub.add_parser("gui", parents=parents, help="start the desktop app")
    p.add_argument("photos", nargs="*", help="photos to search with at start")
    p.add_argument("--demo", action="store_true", help="index the bundled demo photos and search")

    p = sub.add_parser("desktop-entry", help="add the app to the desktop menu (Linux, this user)")
    p.add_argument("--remove", action="store_true", help="remove the menu entry and icons again")
    p.add_argument("--prefix", type=Path, help="data folder to write to (default: $XDG_DATA_HOME "
                   "or ~/.local/share)")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log debug messages")


def run_gui(args: argparse.Namespace) -> int:
    from imgsearch_gui.__main__ import main as gui_main

    forwarded = []
    if args.data_dir:
        forwarded += ["--data-dir", str(args.data_dir)]
    for flag in ("backbone", "pooling", "size", "device", "runtime"):
        if getattr(args, flag) is not None:
            forwarded += [f"--{flag}", str(getattr(args, flag))]
    forwarded += ["--verbose"] * bool(args.verbose) + ["--demo"] * bool(args.demo)
    return int(gui_main([*forwarded, *args.photos]) or 0)


def run_desktop_entry(args: argparse.Namespace) -> int:
    from imgsearch_gui.app import desktop

    if not sys.platform.startswith("linux"):
        raise UserError("desktop entries are for Linux desktops; on Windows and macOS start "
                        "imgsearch-gui from the folder of the bundle, or pin it to the taskbar/Dock")
    if args.remove:
        removed = desktop.remove(args.prefix)
        print(f"removed {len(removed)} files under {desktop.data_home(args.prefix)}")
        return 0
    written = desktop.install(args.prefix)
    print(f"wrote {len(written)} files under {desktop.data_home(args.prefix)}; "
          f"the menu entry starts: {' '.join(desktop.gui_command())}")
    return 0
