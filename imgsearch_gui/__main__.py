"""``python -m imgsearch_gui`` / ``imgsearch-gui``: start the desktop app."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from imgsearch_gui import __version__
    from imgsearch_gui.base import registry

    poolings = registry.pooling_names()

    parser = argparse.ArgumentParser(
        prog="imgsearch-gui",
        description="Find photos by their content (desktop app).",
    )
    parser.add_argument("--data-dir",
                        help="folder of the index and catalog (default: user data dir)")
    parser.add_argument("--backbone", help=f"CNN backbone, e.g. {registry.DEFAULT_BACKBONE} "
                                           "(overrides the saved setting for this session)")
    parser.add_argument("--pooling", help=f"{', '.join(poolings[:-1])} or {poolings[-1]}")
    parser.add_argument("--size", type=int, help="input size: longest side in pixels")
    parser.add_argument("--device", choices=registry.device_names(), help="where the model runs")
    parser.add_argument("--runtime", choices=registry.runtime_names(),
                        help="what runs the model (default: the setting; auto: OpenVINO on the CPU)")
    parser.add_argument("--settings", help="use this INI file for the GUI settings (testing)")
    parser.add_argument("--demo", action="store_true",
                        help="add the bundled demo photos as a library, index them and search "
                             "with one (a first look before choosing your own folder)")
    parser.add_argument("photos", nargs="*", help="photos to search with as soon as the model is "
                                                  "ready (e.g. from a file manager's Open With); "
                                                  "a folder is added as a library")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"imgsearch {__version__}")
    return parser


def _no_screen() -> bool:
    """Linux without X11/Wayland and no Qt platform chosen: Qt would abort with a cryptic error."""

    return (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"))


def _missing_x11_libraries() -> bool:
    """Qt would abort on a missing xcb library without naming it: name it and its package."""
    from imgsearch_gui.base import xcb

    if not xcb.uses_xcb():
        return False
    missing = xcb.missing_libraries()
    if missing:
        print(f"imgsearch-gui: {xcb.install_advice(missing)}", file=sys.stderr)
    return bool(missing)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if _no_screen():
        print("imgsearch-gui: no screen found (DISPLAY/WAYLAND_DISPLAY unset). Use the command "
              "line instead, e.g. `imgsearch index DIR` and `imgsearch search PHOTO` "
              "(`imgsearch --help`), or set QT_QPA_PLATFORM=offscreen.", file=sys.stderr)
        return 2
    from imgsearch_gui.base.logs import enable_fault_log, setup_logging

    setup_logging("imgsearch-gui", verbose=args.verbose)
    if _missing_x11_libraries():
        return 2
    enable_fault_log("imgsearch-gui")

    from imgsearch_gui.ui.app import run  # Qt from here on

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
