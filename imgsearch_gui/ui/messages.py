"""The one channel for messages to the user, and the crash-report excepthook.

Everything the user should read (a non-image drop, a failed search, indexing finished) goes
through :class:`MessageChannel.post`; the main window shows the latest message in an inline banner
and in the status bar. A message may have a topic ("search"): once what it warned about works
again (a search is answered), :meth:`MessageChannel.withdraw` takes it down, while warnings about
other things stay. Unhandled exceptions in the GUI thread end up in a copyable crash report.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import traceback
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgsearch_gui.base.errors import ImageError, UserError
from imgsearch_gui.ui.qtcompat import emit

log = logging.getLogger(__name__)


class Level(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Message:
    text: str
    level: Level = Level.INFO
    details: str = ""
    topic: str = ""  # what it is about, for :meth:`MessageChannel.withdraw`; "" for no topic


#: the topic of messages about searching ("Search failed: empty.jpg"): a search answered ends them
SEARCH = "search"


class MessageChannel(QObject):
    """Views post here; the banner and the status bar listen."""

    posted = Signal(object)  # Message
    withdrawn = Signal(object)  # Message: no longer true (hide it if it is still shown)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history: list[Message] = []
        self._standing: dict[str, Message] = {}  # topic -> its latest warning or error

    def post(self, text: str, level: Level | str = Level.INFO, details: str = "",
             topic: str = "") -> Message:
        message = Message(text, Level(level), details, topic)
        if topic and message.level is not Level.INFO:
            self._standing[topic] = message
        self.history.append(message)
        del self.history[:-200]
        log.log(
            {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING}.get(
                message.level, logging.ERROR
            ),
            "%s",
            text,
        )
        emit(self.posted, message)
        return message

    def info(self, text: str) -> Message:
        return self.post(text, Level.INFO)

    def warning(self, text: str, details: str = "", topic: str = "") -> Message:
        return self.post(text, Level.WARNING, details, topic)

    def error(self, text: str, details: str = "", topic: str = "") -> Message:
        return self.post(text, Level.ERROR, details, topic)

    def report(self, what: str, exc: BaseException, topic: str = "") -> Message:
        """``what`` failed: a photo that cannot be used is a one-line warning, another user error
        (UserError: the message says what to change) one line; anything else is an error with its
        traceback (behind "Details"), for a bug report."""
        if isinstance(exc, ImageError):
            return self.warning(f"{what}: {os.path.basename(exc.path)}: {exc.reason}", topic=topic)
        if isinstance(exc, UserError):
            return self.error(f"{what}: {exc}", topic=topic)
        return self.error(f"{what}: {exc}", format_details(exc), topic)

    def withdraw(self, topic: str) -> None:
        """What the warnings about ``topic`` said is over (a search was answered): the latest one
        is taken down wherever it is still shown. Messages about other topics stay."""
        message = self._standing.pop(topic, None)
        if message is not None:
            emit(self.withdrawn, message)

    @property
    def last(self) -> Message | None:
        return self.history[-1] if self.history else None


def format_details(exc: BaseException) -> str:
    """The traceback of ``exc``, for a message's "Details" (never its one line of text)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


_COLOURS = {
    Level.INFO: ("#e8f1fb", "#1d4f82"),
    Level.WARNING: ("#fff4d6", "#7a5300"),
    Level.ERROR: ("#fde7e7", "#8a1c1c"),
}


class MessageBanner(QFrame):
    """An inline banner above the content: the latest warning or error, with a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self._show_details)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.details_button)
        layout.addWidget(close)
        self._message: Message | None = None
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text()

    def withdraw(self, message: Message) -> bool:
        """Hide the banner if it shows ``message``; True if it did."""
        if self._message is not message or self.isHidden():
            return False
        self.hide()
        return True

    def show_message(self, message: Message) -> None:
        self._message = message
        bg, fg = _COLOURS[message.level]
        self.setStyleSheet(
            f"#messageBanner {{ background: {bg}; border: 1px solid {fg}; border-radius: 4px; }}"
            f"#messageBanner QLabel {{ color: {fg}; }}"
        )
        self.label.setText(message.text)
        self.details_button.setVisible(bool(message.details))
        self.show()

    def _show_details(self) -> None:
        if self._message is not None:
            TextDialog("Details", self._message.text, self._message.details, self).exec()


class TextDialog(QDialog):
    """A message with a copyable block of text (details, crash reports)."""

    def __init__(self, title: str, summary: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 400)
        label = QLabel(summary)
        label.setWordWrap(True)
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.buttons = buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy to clipboard", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)


def crash_report(exc_type, exc, tb) -> str:
    """Versions, platform, log file and traceback: what a bug report needs, as plain text."""
    from imgsearch_gui import __version__
    from imgsearch_gui.base.logs import current_log_file

    try:
        from PySide6 import __version__ as pyside_version
    except ImportError:  # pragma: no cover
        pyside_version = "?"
    torch_version = getattr(sys.modules.get("torch"), "__version__", "not loaded")
    lines = traceback.format_exception(exc_type, exc, tb)
    return (
        f"imgsearch {__version__}{' (bundle)' if getattr(sys, 'frozen', False) else ''}, "
        f"Python {platform.python_version()}, PySide6 {pyside_version}, torch {torch_version}, "
        f"{platform.platform()}\n"
        f"Log file: {current_log_file() or '(none)'}\n\n" + "".join(lines)
    )


class CrashDialog(TextDialog):
    """The crash report: copyable, with the log file's place and a button to open its folder.

    Non-modal, and only one: a second error while it is open is appended to it rather than
    stacking a dialog per repaint of a broken widget.
    """

    def __init__(self, report: str, parent: QWidget | None = None) -> None:
        from imgsearch_gui.base.logs import current_log_file

        log_file = current_log_file()
        where = (f" The report is also in the log file <code>{log_file}</code>."
                 if log_file else "")
        super().__init__(
            "imgsearch: unexpected error",
            "Something went wrong. The app keeps running, but what you were doing may not have "
            f"finished.{where} Please copy this report into a bug report.",
            report,
            parent,
        )
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.count = 1
        open_logs = self.buttons.addButton("Open log folder", QDialogButtonBox.ButtonRole.ActionRole)
        open_logs.setEnabled(log_file is not None)
        open_logs.clicked.connect(lambda: _open_folder(log_file.parent if log_file else None))

    def add_report(self, report: str) -> None:
        self.count += 1
        self.setWindowTitle(f"imgsearch: {self.count} unexpected errors")
        self.text.appendPlainText("\n" + "-" * 60 + "\n" + report)


def _open_folder(folder) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    if folder is not None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class _CrashReporter(QObject):
    """Shows reports in the GUI thread, whichever thread the exception happened in."""

    reported = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.dialog: CrashDialog | None = None
        self.reported.connect(self.show_report, Qt.ConnectionType.QueuedConnection)

    def show_report(self, report: str) -> None:
        try:
            if self.dialog is not None and self.dialog.isVisible():
                self.dialog.add_report(report)
            else:
                self.dialog = CrashDialog(report)
                self.dialog.destroyed.connect(self._forget)
                self.dialog.show()
            self.dialog.raise_()
            self.dialog.activateWindow()
        except Exception:  # noqa: BLE001 - never recurse into the hook
            log.exception("could not show the crash report")

    def _forget(self, *_args) -> None:
        self.dialog = None


_reporter: _CrashReporter | None = None


def crash_reporter() -> _CrashReporter | None:
    return _reporter


def install_excepthook() -> None:
    """Unhandled exceptions: log them with the report and show a copyable crash dialog (no crash).

    Covers the GUI thread (``sys.excepthook``: PySide6 calls it for exceptions in slots and event
    handlers) and other Python threads (``threading.excepthook``); workers report their own
    errors as signals, so this is for bugs only.
    """
    global _reporter
    import threading

    if _reporter is None:
        _reporter = _CrashReporter()
    reporter = _reporter
    previous = sys.excepthook

    def report(exc_type, exc, tb) -> None:
        text = crash_report(exc_type, exc, tb)
        log.error("unhandled exception\n%s", text)
        emit(reporter.reported, text)  # queued: shown by the GUI thread's event loop

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        report(exc_type, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        report(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
