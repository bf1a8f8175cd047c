"""The desktop app's start: QApplication, settings, the window, the photos given, the exit.

``imgsearch_gui/__main__.py`` parses the arguments and sets up logging without Qt, then calls
``run`` (so `imgsearch-gui --version` and the "no screen" message need no Qt).
"""

from __future__ import annotations

import argparse
import os
import sys


def run(args: argparse.Namespace) -> int:
    """Show the window for the parsed ``imgsearch-gui`` arguments; returns the exit status."""
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
    # (the device and the runtime are not part of the index: they come from the GUI setting)
    model = prefs.model
    indexed_with = model_from_data_dir(data_dir)
    if indexed_with is not None:
        model = replace(indexed_with, device=model.device, runtime=model.runtime)
    overrides = {k: getattr(args, k, None)
                 for k in ("backbone", "pooling", "size", "device", "runtime")}
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


