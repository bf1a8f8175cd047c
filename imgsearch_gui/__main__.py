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
    import os

    return (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if _no_screen():
        print("imgsearch-gui: no screen found (DISPLAY/WAYLAND_DISPLAY unset). Use the command "
              "line instead, e.g. `imgsearch index DIR` and `imgsearch search PHOTO` "
              "(`imgsearch --help`), or set QT_QPA_PLATFORM=offscreen.", file=sys.stderr)
        return 2
    from imgsearch_gui.base.logs import enable_fault_log, setup_logging

    setup_logging("imgsearch-gui", verbose=args.verbose)
    enable_fault_log("imgsearch-gui")

    from dataclasses import replace

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from imgsearch_gui import __version__
    from imgsearch_gui.ui import qtcompat  # noqa: F401 - first: binding work-arounds
    from imgsearch_gui.ui.messages import install_excepthook
    from imgsearch_gui.ui.prefs import APPLICATION, ORGANIZATION, Prefs, model_from_data_dir

    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationDisplayName("imgsearch")
    QApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    install_excepthook()
    _set_app_icon(app)

    from imgsearch_gui.base import paths
    from imgsearch_gui.ui.main_window import MainWindow

    settings = (
        QSettings(args.settings, QSettings.Format.IniFormat) if args.settings else QSettings()
    )
    prefs = Prefs(settings)
    data_dir = paths.data_dir(args.data_dir)
    # CLI flags > the model the data dir was indexed with > the saved GUI setting > defaults
    # (the device is not part of the index: it always comes from the GUI setting)
    model = prefs.model
    indexed_with = model_from_data_dir(data_dir)
    if indexed_with is not None:
        model = replace(indexed_with, device=model.device)
    overrides = {k: getattr(args, k) for k in ("backbone", "pooling", "size", "device")}
    model = replace(model, **{k: v for k, v in overrides.items() if v is not None})
    window = MainWindow(prefs, data_dir=data_dir, model=model)
    window.show()
    if args.demo:
        window.start_demo()
    photos = [p for p in args.photos if p]
    if photos:  # as if dropped: photos are searched, a folder becomes a library, others named
        from PySide6.QtCore import QMimeData, QUrl

        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(os.path.abspath(p)) for p in photos])
        window.handle_mime(mime, source="command line")
    _quit_on_signals(app, window)
    code = int(app.exec())
    # Tear down here, in order, rather than leave Qt objects to the interpreter's exit (where
    # Python may free them in any order, after QApplication).
    window.shutdown()
    window.deleteLater()
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return code


def _set_app_icon(app) -> None:
    """Window/taskbar icon from the bundled PNGs; on Wayland the desktop file names the icon."""
    from PySide6.QtGui import QGuiApplication, QIcon

    from imgsearch_gui import resources

    icon = QIcon()
    for size in resources.ICON_SIZES:
        icon.addFile(str(resources.icon_png(size)))
    app.setWindowIcon(icon)
    QGuiApplication.setDesktopFileName(resources.APP_ID)


def _quit_on_signals(app, window) -> None:
    """Ctrl+C / SIGTERM: stop the workers cleanly (no question asked), then quit."""
    import signal

    from PySide6.QtCore import QTimer

    def stop(*_args) -> None:
        window.shutdown()
        app.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    # Python handles signals only when it runs: wake it up now and then.
    timer = QTimer(window)
    timer.setInterval(250)
    timer.timeout.connect(lambda: None)
    timer.start()


if __name__ == "__main__":
    sys.exit(main())
