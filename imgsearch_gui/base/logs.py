"""Logging for the app and the CLI: the console plus a rotating file in the platform log dir.

The file is what a bug report needs (the crash dialog and ``imgsearch info`` name it), so it gets
INFO and up even when the console is quiet; ``--verbose`` turns both to DEBUG.
"""

from __future__ import annotations

import logging
import logging.handlers
import platform
import sys
from pathlib import Path

from imgsearch_gui import __version__
from imgsearch_gui.base import paths

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
MAX_BYTES = 2_000_000
BACKUPS = 3
_MARK = "_imgsearch_handler"  # handlers we installed (setup is idempotent)
#: ``log.error(..., extra=FILE_ONLY)``: details for the file that the console already told in short
#: (shown on the console too with --verbose).
FILE_ONLY = {"file_only": True}
_current_file: Path | None = None
_fault_file = None  # the open fault log (faulthandler writes to its file descriptor)


def log_file(program: str = "imgsearch") -> Path:
    return paths.log_dir() / f"{program}.log"


def enable_fault_log(program: str) -> Path | None:
    """Native crashes (a segfault in Qt or torch) leave every thread's Python stack in
    ``<program>-faults.log`` beside the log, where Python's own logging cannot reach."""
    import faulthandler

    global _fault_file
    try:
        path = paths.log_dir() / f"{program}-faults.log"
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process lifetime
    except OSError as exc:
        log.warning("no fault log (%s)", exc)
        return None
    faulthandler.enable(file=handle, all_threads=True)
    if _fault_file is not None:
        _fault_file.close()  # only now: the handler never points at a closed file
    _fault_file = handle
    return path


def current_log_file() -> Path | None:
    """The file this process logs to, or None (not set up, or the log dir was not writable)."""
    return _current_file


def setup_logging(program: str, *, verbose: bool = False, console_level: int = logging.WARNING,
                  to_file: bool = True) -> Path | None:
    """Install the console and rotating-file handlers on the root logger; returns the log file.

    ``program`` names the file (``imgsearch-gui.log``, ``imgsearch.log``): the GUI and a CLI run
    at the same time never rotate each other's file. A log dir that cannot be written is
    reported on the console and the program goes on without a file.
    """
    global _current_file
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else console_level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        console.addFilter(lambda record: not getattr(record, "file_only", False))
    setattr(console, _MARK, True)
    root.addHandler(console)

    _current_file = None
    if to_file:
        try:
            path = log_file(program)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                errors="backslashreplace",  # file names that are not UTF-8 (lone surrogates)
            )
        except OSError as exc:
            log.warning("cannot write the log file (%s); logging to the console only", exc)
        else:
            handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            setattr(handler, _MARK, True)
            root.addHandler(handler)
            _current_file = path
    # third-party chatter that drowns our own debug messages
    for noisy in ("PIL", "matplotlib", "urllib3", "filelock", "fsspec", "httpx", "httpcore",
                  "watchdog"):  # watchdog logs every inotify event at DEBUG
        logging.getLogger(noisy).setLevel(logging.INFO)
    log.info("%s %s started (Python %s, %s%s); argv: %s", program, __version__,
             platform.python_version(), platform.platform(),
             ", bundled" if getattr(sys, "frozen", False) else "", sys.argv[1:])
    return _current_file
