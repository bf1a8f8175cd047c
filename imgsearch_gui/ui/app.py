"""The desktop app's start: QApplication, settings, the window, the photos given, the exit.

``imgsearch_gui/__main__.py`` parses the arguments and sets up logging without Qt, then calls
``run`` (so `imgsearch-gui --version` and the "no screen" message need no Qt).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


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

    data_dir = paths.data_dir(args.data_dir)
    handed_over, server = _single_window(data_dir, args)
    if handed_over:
        return 0  # the running window took the photos: no second window, no second model

    from imgsearch_gui.ui.main_window import MainWindow

    settings = (
        QSettings(args.settings, QSettings.Format.IniFormat) if args.settings else QSettings()
    )
    prefs = Prefs(settings)
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
    _open_photos(window, _photos(args))
    if server is not None:
        server.setParent(window)
        server.received.connect(lambda request: _take_hand_over(window, request))
        # closing (the workers may take a while to stop): a later start opens its own window
        # rather than being acked by one that is going away and losing its photos
        window.closing.connect(server.close)
    _quit_on_signals(app, window)
    code = int(app.exec())
    # Tear down here, in order, rather than leave Qt objects to the interpreter's exit (where
    # Python may free them in any order, after QApplication).
    if server is not None:
        server.close()  # a later start becomes the window at once
    window.shutdown()
    window.deleteLater()
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return code


def _photos(args: argparse.Namespace) -> tuple[str, ...]:
    """The photos on the command line as absolute paths (a running window has another cwd)."""
    return tuple(os.path.abspath(p) for p in args.photos if p)


def _single_window(data_dir, args: argparse.Namespace):
    """One window per data dir: (True, None) when a running window took the arguments, else
    (False, the listening server), or (False, None) when local sockets fail: go on alone, the
    data dir's writer lock keeps the index safe."""
    from imgsearch_gui.ui.single_instance import HandOver, InstanceServer, Start, try_hand_over

    request = HandOver(photos=_photos(args), demo=bool(args.demo))
    if try_hand_over(data_dir, request):
        log.info("handed %d path(s) to the window already open on %s; exiting",
                 len(request.photos), data_dir)
        return True, None
    server = InstanceServer(data_dir)
    started = server.start()
    if started is Start.TAKEN:  # two started at once and the other won: it listens in a moment
        if try_hand_over(data_dir, request, wait_for_server_ms=5_000):
            log.info("handed %d path(s) to the window that started at the same time on %s; "
                     "exiting", len(request.photos), data_dir)
            return True, None
        log.warning("another window holds %s but does not answer: opening a second window "
                    "(the index stays safe: one writer at a time)", data_dir)
    if started is not Start.LISTENING:
        server.deleteLater()
        return False, None
    return False, server


def _take_hand_over(window, request) -> None:
    """A second start's photos: bring the window up and search as with the command line's."""
    if request.raise_window:
        # as QtSingleApplication does: un-minimise without un-maximising, then raise
        from PySide6.QtCore import Qt

        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
        window.show()
        window.raise_()
        window.activateWindow()
    if request.demo:
        window.start_demo()
    _open_photos(window, request.photos)


def _open_photos(window, photos) -> None:
    """As if dropped: photos are searched, a folder becomes a library, others are named."""
    if not photos:
        return
    from PySide6.QtCore import QMimeData, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in photos])
    window.handle_mime(mime, source="command line")


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


